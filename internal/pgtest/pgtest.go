// Package pgtest runs a real PostgreSQL server for tests: Debian's
// postgresql package, initialised in a temporary folder, listening only on
// a Unix socket there. One server serves a whole test binary (Shared, with
// Main in TestMain to stop it); each test gets a database of its own.
package pgtest

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// Server is a PostgreSQL server in a folder of its own.
type Server struct {
	dir  string // the folder: data/, the socket and the log
	bin  string // the folder of initdb, pg_ctl, createdb
	cred *syscall.Credential
	dbs  atomic.Int64
}

// Start initialises a server in a new temporary folder and starts it. As
// root it runs as the postgres user, since PostgreSQL refuses to run as
// root.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wijgate-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin}
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs the postgres user of Debian's postgresql package: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if err := s.run("initdb", "-D", s.dataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.Resume(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// binDir finds Debian's PostgreSQL programs: on PATH, or the newest
// version under /usr/lib/postgresql.
func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pgtest: no PostgreSQL server found; install Debian's postgresql package")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// run runs one of PostgreSQL's programs as the server's user.
func (s *Server) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: %s: %v\n%s", name, err, out)
	}
	return nil
}

// Resume starts the server (again), waiting until it takes connections.
// fsync is off: the tests' outages stop the server, not the machine, so
// the operating system keeps what was written; commits stay synchronous,
// so an acknowledged write survives a Pause.
func (s *Server) Resume() error {
	return s.run("pg_ctl", "-D", s.dataDir(), "-l", filepath.Join(s.dir, "server.log"), "-w", "-t", "60",
		"-o", "-k "+s.dir+" -c listen_addresses='' -c fsync=off -c max_connections=300",
		"start")
}

// Pause stops the server at once, ending every connection, as an outage
// would; Resume starts it again with its data.
func (s *Server) Pause() error {
	return s.run("pg_ctl", "-D", s.dataDir(), "-w", "-m", "immediate", "stop")
}

// Close stops the server and removes its folder.
func (s *Server) Close() error {
	err := s.run("pg_ctl", "-D", s.dataDir(), "-w", "-m", "fast", "stop")
	if rmErr := os.RemoveAll(s.dir); err == nil {
		err = rmErr
	}
	return err
}

// NewDatabase creates an empty database and returns its connection URL.
func (s *Server) NewDatabase() (string, error) {
	name := fmt.Sprintf("test%d", s.dbs.Add(1))
	if err := s.run("createdb", "-h", s.dir, "-U", "postgres", name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// URL is the connection URL of a database on the server.
func (s *Server) URL(database string) string {
	q := url.Values{"host": {s.dir}, "sslmode": {"disable"}}
	return "postgres://postgres@/" + database + "?" + q.Encode()
}

// LogTail is the end of the server's log, for a failing test's message.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the test binary's server, starting it on first use.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() { shared.srv, shared.err = Start() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// Database returns the URL of a new database on the test binary's server.
func Database(t testing.TB) string {
	t.Helper()
	u, err := Shared(t).NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Main runs the tests and then stops the shared server, if one started;
// call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}
