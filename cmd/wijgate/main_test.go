package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/wijtechniek/wijgate/internal/testport"
)

// binary is the wijgate command built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wijgate-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "wijgate")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building wijgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the binary with stdin and returns its combined output.
func run(t *testing.T, stdin string, env []string, args ...string) (string, error) {
	t.Helper()
	return runIn(t, "", stdin, env, args...)
}

// runIn is run in the working directory dir.
func runIn(t *testing.T, dir, stdin string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestDefaultCaddyfileIsValid(t *testing.T) {
	out, err := run(t, "", []string{"WIJGATE_DATA=" + t.TempDir(), "XDG_DATA_HOME=" + t.TempDir()},
		"validate", "--config", "../../Caddyfile", "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("wijgate validate: %v\n%s", err, out)
	}
}

func TestModulesAreListed(t *testing.T) {
	out, err := run(t, "", nil, "list-modules")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"wijgate", "http.handlers.wijgate", "http.handlers.wijgate_forward_auth", "admin.api.wijgate", "http.handlers.reverse_proxy",
		"http.handlers.eherkenning_simulator", "http.handlers.wijgate_demo_app"} {
		if !strings.Contains(out, m+"\n") {
			t.Errorf("list-modules lacks %s", m)
		}
	}
}

func TestAccountsCommandsWithoutServer(t *testing.T) {
	storage := t.TempDir()
	admin := "--address=" + testport.Addr(t) // nothing listens there
	out, err := run(t, "correct horse battery staple\n", nil, "accounts", "add", "--email", "Jan@Example.nl", "--name", "Jan Jänssen", admin, "--storage", storage)
	if err != nil || !strings.Contains(out, "added jan@example.nl") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	out, err = run(t, "short\n", nil, "accounts", "add", "--email", "piet@example.nl", "--name", "Piet", admin, "--storage", storage)
	if err == nil || !strings.Contains(out, "password") {
		t.Fatalf("a too-short password was accepted: %v\n%s", err, out)
	}
	out, err = run(t, "", nil, "accounts", "list", admin, "--storage", storage)
	if err != nil || !strings.Contains(out, "jan@example.nl") || !strings.Contains(out, "Jan Jänssen") || strings.Contains(out, "piet@") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = run(t, "", nil, "accounts", "disable", "--email", "jan@example.nl", admin, "--storage", storage)
	if err != nil || !strings.Contains(out, "disabled jan@example.nl") {
		t.Fatalf("disable: %v\n%s", err, out)
	}
	out, _ = run(t, "", nil, "accounts", "list", admin, "--storage", storage)
	if !strings.Contains(out, "disabled") {
		t.Fatalf("list after disable:\n%s", out)
	}
	out, err = run(t, "", nil, "orgs", "list", admin, "--storage", storage)
	if err != nil || !strings.Contains(out, "KVK") {
		t.Fatalf("orgs list: %v\n%s", err, out)
	}
}

// TestServerRestartKeepsSessions runs the real binary, logs in, stops the
// process and starts it again on the same store: the session still works.
func TestServerRestartKeepsSessions(t *testing.T) {
	dir := t.TempDir()
	site, admin := testport.Addr(t), testport.Addr(t)
	caddyfile := filepath.Join(dir, "Caddyfile")
	cfg := fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
	wijgate {
		storage %s/store
		mail {
			outbox %s/outbox
		}
	}
}
http://%s {
	handle /app/* {
		wijgate {
			app demo
			require session
		}
		respond "hello {http.request.header.X-Wij-User-Email}"
	}
	handle {
		wijgate portal
	}
}
`, admin, dir, dir, site)
	if err := os.WriteFile(caddyfile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(binary, "run", "--config", caddyfile, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if resp, err := http.Get("http://" + site + "/healthz"); err == nil {
				resp.Body.Close()
				return cmd
			}
			time.Sleep(50 * time.Millisecond)
		}
		cmd.Process.Kill()
		t.Fatal("server did not start")
		return nil
	}
	stop := func(cmd *exec.Cmd) {
		out, err := run(t, "", nil, "stop", "--address", admin)
		if err != nil {
			t.Fatalf("wijgate stop: %v\n%s", err, out)
		}
		cmd.Wait()
	}

	server := start()
	out, err := run(t, "correct horse battery staple\n", nil, "accounts", "add", "--email", "jan@example.nl", "--name", "Jan", "--address", admin)
	if err != nil {
		server.Process.Kill()
		t.Fatalf("add through the admin API: %v\n%s", err, out)
	}
	cookie := loginOver(t, "http://"+site)
	get := func() string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+site+"/app/", nil)
		req.Header.Set("Cookie", cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, b.String())
	}
	if got := get(); got != "200 hello jan@example.nl" {
		stop(server)
		t.Fatalf("before restart: %s", got)
	}
	stop(server)
	server = start()
	defer stop(server)
	if got := get(); got != "200 hello jan@example.nl" {
		t.Fatalf("after restart: %s", got)
	}
}

// loginOver logs in through the portal's form and returns the Cookie
// header value for the session.
func loginOver(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	var csrfCookie string
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-wijgate_csrf" {
			csrfCookie = c.Value
		}
	}
	_, after, ok := strings.Cut(page.String(), `name="csrf" value="`)
	if !ok || csrfCookie == "" {
		t.Fatal("no csrf token")
	}
	token, _, _ := strings.Cut(after, `"`)
	form := "csrf=" + token + "&email=jan%40example.nl&password=correct+horse+battery+staple"
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "__Host-wijgate_csrf="+csrfCookie)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-wijgate" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("login did not set a session cookie: %d", resp.StatusCode)
	return ""
}

// TestDefaultCaddyfileListensOnLoopbackOnly: the demo's outbox shows every
// code and invitation link and its simulator makes anyone an admin, so
// `make run` must not be reachable from the network.
func TestDefaultCaddyfileListensOnLoopbackOnly(t *testing.T) {
	out := adapt(t, "", []string{"WIJGATE_DATA=" + t.TempDir()}, "--config", "../../Caddyfile", "--adapter", "caddyfile")
	var cfg struct {
		Admin struct {
			Listen string `json:"listen"`
		} `json:"admin"`
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("adapted config: %v\n%s", err, out)
	}
	loopback := func(addr string) bool {
		na, err := caddy.ParseNetworkAddress(addr)
		if err != nil {
			t.Fatalf("listen address %q: %v", addr, err)
		}
		if na.Host == "localhost" {
			return true
		}
		ip, err := netip.ParseAddr(na.Host)
		return err == nil && ip.IsLoopback()
	}
	if !loopback(cfg.Admin.Listen) {
		t.Errorf("the admin API listens on %q", cfg.Admin.Listen)
	}
	if len(cfg.Apps.HTTP.Servers) == 0 {
		t.Fatalf("no servers in the adapted config:\n%s", out)
	}
	for name, srv := range cfg.Apps.HTTP.Servers {
		for _, addr := range srv.Listen {
			if !loopback(addr) {
				t.Errorf("server %s listens on %q, beyond this machine", name, addr)
			}
		}
	}
}

const password = "correct horse battery staple\n"

// TestOfflineAccountsUseTheServersStore: with no server running, `accounts
// add` writes to the store the Caddyfile names, with the same {$ENV}
// placeholders `make run` resolves, so the server started from that
// Caddyfile has the account. A JSON config works as well.
func TestOfflineAccountsUseTheServersStore(t *testing.T) {
	dir := t.TempDir()
	data, xdg := filepath.Join(dir, "data"), filepath.Join(dir, "xdg")
	site, admin := testport.Addr(t), testport.Addr(t)
	writeFile(t, filepath.Join(dir, "Caddyfile"), fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
	wijgate {
		storage {$WIJGATE_DATA:.data}/store
		mail {
			outbox {$WIJGATE_DATA:.data}/outbox
		}
	}
}
http://%s {
	wijgate portal
}
`, admin, site))
	env := []string{"WIJGATE_DATA=" + data, "XDG_DATA_HOME=" + xdg, "XDG_CONFIG_HOME=" + xdg}

	out, err := runIn(t, dir, password, env, "accounts", "add", "--email", "jan@example.nl", "--name", "Jan")
	if err != nil || !strings.Contains(out, "added jan@example.nl") {
		t.Fatalf("offline add: %v\n%s", err, out)
	}
	if store := filepath.Join(data, "store"); !strings.Contains(out, store) {
		t.Errorf("the command did not say it used %s:\n%s", store, out)
	}
	if entries, _ := os.ReadDir(xdg); len(entries) != 0 {
		t.Errorf("something was written to Caddy's default data folder: %v", entries)
	}

	stop := startServer(t, dir, env, admin, "run", "--config", "Caddyfile")
	out, err = runIn(t, dir, "", env, "accounts", "list")
	if err != nil || !strings.Contains(out, "jan@example.nl") || strings.Contains(out, "no server answered") {
		t.Fatalf("list through the running server: %v\n%s", err, out)
	}
	loginOver(t, "http://"+site)
	out, err = runIn(t, dir, "short\n", env, "accounts", "add", "--email", "piet@example.nl", "--name", "Piet")
	if err == nil || !strings.Contains(out, "the server at "+admin+": ") || !strings.Contains(out, "password") || strings.Contains(out, "caddy") {
		t.Errorf("a refusal through the running server: %v\n%s", err, out)
	}
	stop()

	writeFile(t, filepath.Join(dir, "wijgate.json"), adapt(t, dir, env, "--config", "Caddyfile"))
	out, err = runIn(t, t.TempDir(), "", env, "accounts", "list", "--config", filepath.Join(dir, "wijgate.json"))
	if err != nil || !strings.Contains(out, "jan@example.nl") {
		t.Fatalf("offline list with a JSON config: %v\n%s", err, out)
	}
}

// TestOfflineAccountsRefuseWithoutTheServersConfig: with no server
// running and no config naming the store, the commands refuse and say
// what to do; nothing is written anywhere.
func TestOfflineAccountsRefuseWithoutTheServersConfig(t *testing.T) {
	dir, xdg := t.TempDir(), t.TempDir()
	env := []string{"XDG_DATA_HOME=" + xdg, "XDG_CONFIG_HOME=" + xdg}
	noServer := "--address=" + testport.Addr(t)
	check := func(what, stdin, want string, args ...string) {
		t.Helper()
		out, err := runIn(t, dir, stdin, env, args...)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("%s: %v, want a refusal saying %q:\n%s", what, err, want, out)
		}
	}
	add := []string{"accounts", "add", "--email", "jan@example.nl", "--name", "Jan", noServer}
	check("add without a Caddyfile", password, "no Caddyfile here to find the server's store in: run this where the server's Caddyfile is, or name it with --config", add...)
	check("orgs list without a Caddyfile", "", "name it with --config", "orgs", "list", noServer)
	check("a named config that is missing", password, "reading the config", append(add, "--config", "missing.caddyfile")...)

	writeFile(t, filepath.Join(dir, "Caddyfile"), "http://"+testport.Addr(t)+" {\n\trespond ok\n}\n")
	check("a Caddyfile without wijgate", password, "Caddyfile has no wijgate app", add...)

	for _, d := range []string{dir, xdg} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.Name() != "Caddyfile" {
				t.Errorf("%s was written in %s", e.Name(), d)
			}
		}
	}
}

// TestOperatorUsageSaysWijgate: help and usage name the binary people run.
func TestOperatorUsageSaysWijgate(t *testing.T) {
	for _, args := range [][]string{
		{"help", "accounts"}, {"accounts", "--help"}, {"accounts", "add", "--help"},
		{"accounts", "disable", "--help"}, {"orgs", "--help"}, {"orgs", "show", "--help"},
	} {
		out, err := run(t, "", nil, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if !strings.Contains(out, "Usage:\n  wijgate ") {
			t.Errorf("%v: no wijgate usage line:\n%s", args, out)
		}
		if strings.Contains(out, "caddy accounts") || strings.Contains(out, "caddy orgs") || strings.Contains(out, "  caddy ") {
			t.Errorf("%v names caddy:\n%s", args, out)
		}
	}
}

// adapt returns the JSON config `wijgate adapt` makes.
func adapt(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"adapt"}, args...)...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wijgate adapt: %v\n%s", err, stderr.String())
	}
	return string(out)
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startServer runs the binary (`run ...`) in dir and returns once it
// reports that its config is loaded (Caddy's --pingback); stop ends it
// through the admin API at admin.
func startServer(t *testing.T, dir string, env []string, admin string, args ...string) (stop func()) {
	t.Helper()
	ready, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	logFile := filepath.Join(t.TempDir(), "server.log")
	logOut, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logOut.Close()
	cmd := exec.Command(binary, append(args, "--pingback", ready.Addr().String())...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("ready")
	cmd.Stdout, cmd.Stderr = logOut, logOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pinged := make(chan error, 1)
	go func() {
		conn, err := ready.Accept()
		if err == nil {
			conn.Close()
		}
		pinged <- err
	}()
	select {
	case err := <-pinged:
		if err != nil {
			cmd.Process.Kill()
			t.Fatal(err)
		}
	case err := <-exited:
		log, _ := os.ReadFile(logFile)
		t.Fatalf("the server exited: %v\n%s", err, log)
	}
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		if out, err := run(t, "", nil, "stop", "--address", admin); err != nil {
			cmd.Process.Kill()
			t.Errorf("wijgate stop: %v\n%s", err, out)
		}
		<-exited
	}
	t.Cleanup(stop)
	return stop
}
