package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// cookieName is wijgate's default session cookie name.
const cookieName = "__Host-wijgate"

// server is one wijgate process serving a generated Caddyfile.
type server struct {
	*child
	port, admin int
	addr        string // host:port of the site
	adminAddr   string
	logPath     string // its stdout and stderr
}

// serverConfig is what the Caddyfile is made from.
type serverConfig struct {
	name    string // for file names
	dir     string // run directory
	store   string // storage: badger directory or postgres:// URL; "" for the plain-only server
	backend string
	guarded bool // false: the plain route only, no wijgate app at all
	// headers, when set, is the guard's `headers` list (default: all).
	headers string
	// sameHeaders, when set, adds the route /same-headers/*: plain
	// reverse_proxy setting these headers (name, value) statically,
	// the bytes the guarded route sends without the guard.
	sameHeaders [][2]string
	// gctrace has the Go runtime log every collection to the server's
	// log, which gcShare reads the collector's CPU from.
	gctrace bool
}

// caddyfile writes the configuration. Both servers share the global
// options: loopback only, no TLS, no access logs (Caddy's default), a
// short grace period, and loopback as a trusted proxy so that the
// login-storm client can present many client addresses in
// X-Forwarded-For (see the storm).
func (c serverConfig) caddyfile(port, admin int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	grace_period 2s
	servers {
		trusted_proxies static 127.0.0.1/32
		client_ip_headers X-Forwarded-For
	}
`, admin)
	if c.guarded {
		fmt.Fprintf(&b, `	wijgate {
		storage %s
		mail {
			outbox %s
		}
	}
`, c.store, filepath.Join(c.dir, "outbox"))
	}
	fmt.Fprintf(&b, `}

http://127.0.0.1:%d {
	handle /plain/* {
		reverse_proxy %s
	}
`, port, c.backend)
	if len(c.sameHeaders) > 0 {
		fmt.Fprintf(&b, "\thandle /same-headers/* {\n\t\treverse_proxy %s {\n", c.backend)
		for _, h := range c.sameHeaders {
			// A backquoted token: the values hold no backquote (JWTs,
			// names, numbers); guardHeaders refuses any that do.
			fmt.Fprintf(&b, "\t\t\theader_up %s `%s`\n", h[0], h[1])
		}
		b.WriteString("\t\t}\n\t}\n")
	}
	if c.guarded {
		headers := ""
		if c.headers != "" {
			headers = "\n\t\t\theaders " + c.headers
		}
		fmt.Fprintf(&b, `	handle /g/* {
		wijgate {
			app bench
			name "Bench app"%s
		}
		reverse_proxy %s
	}
	handle {
		wijgate portal
	}
`, headers, c.backend)
	} else {
		b.WriteString("\trespond 404\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func (c serverConfig) logPath() string { return filepath.Join(c.dir, c.name+".log") }

// startServer writes the Caddyfile and starts wijgate on it.
func startServer(bin string, c serverConfig) (*server, error) {
	port, err1 := freePort()
	admin, err2 := freePort()
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("no free port: %v %v", err1, err2)
	}
	cfgPath := filepath.Join(c.dir, c.name+".caddyfile")
	if err := os.WriteFile(cfgPath, []byte(c.caddyfile(port, admin)), 0o644); err != nil {
		return nil, err
	}
	xdg := filepath.Join(c.dir, "xdg")
	env := []string{"XDG_DATA_HOME=" + xdg, "XDG_CONFIG_HOME=" + xdg + "-config"}
	if c.gctrace {
		env = append(env, "GODEBUG=gctrace=1")
	}
	ch, err := startChild("wijgate ("+c.name+")", c.logPath(), env,
		bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	s := &server{child: ch, port: port, admin: admin, logPath: c.logPath(),
		addr: fmt.Sprintf("127.0.0.1:%d", port), adminAddr: fmt.Sprintf("127.0.0.1:%d", admin)}
	probe := "http://" + s.addr + "/plain/ready"
	if c.guarded {
		probe = "http://" + s.addr + "/healthz"
	}
	if err := waitHTTP(ch, probe, 60*time.Second); err != nil {
		_ = ch.stop(5 * time.Second)
		return nil, err
	}
	return s, nil
}
