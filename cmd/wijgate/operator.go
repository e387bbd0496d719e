package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/wijtechniek/wijgate/caddymodule"
)

// defaultConfigFile is the config the operator commands read when
// --config is not given, as `wijgate run` does.
const defaultConfigFile = "Caddyfile"

// addOperatorFlags adds the flags every operator command shares.
func addOperatorFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.String("config", "", "The server's config file (default ./Caddyfile): its admin address and its store")
	f.String("adapter", "", "The config's adapter (default caddyfile for a file named Caddyfile or *.caddyfile, else JSON)")
	f.String("address", "", "Admin API address of a running server (default the config's)")
	f.String("storage", "", "Store directory to open when no server runs, instead of the config's")
}

// serverConfig is what the operator commands read from the server's
// config: where its admin API listens and where its store is.
type serverConfig struct {
	file  string
	Admin struct {
		Disabled bool   `json:"disabled"`
		Listen   string `json:"listen"`
	} `json:"admin"`
	Apps struct {
		WijGate *struct {
			Storage string `json:"storage"`
		} `json:"wijgate"`
	} `json:"apps"`
}

// loadServerConfig reads the config named by --config, adapted like
// `wijgate run` adapts it (so {$ENV} placeholders resolve the same way).
// Without --config it reads ./Caddyfile, and returns nil when there is none.
func loadServerConfig(c *cobra.Command) (*serverConfig, error) {
	file, _ := c.Flags().GetString("config")
	adapter, _ := c.Flags().GetString("adapter")
	named := file != ""
	if !named {
		file = defaultConfigFile
	}
	raw, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) && !named {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	base := strings.ToLower(filepath.Base(file))
	if adapter == "" && (strings.HasPrefix(base, "caddyfile") || filepath.Ext(base) == ".caddyfile") {
		adapter = "caddyfile"
	}
	if adapter != "" {
		a := caddyconfig.GetAdapter(adapter)
		if a == nil {
			return nil, fmt.Errorf("unknown config adapter %q", adapter)
		}
		raw, _, err = a.Adapt(raw, map[string]any{"filename": file})
		if err != nil {
			return nil, fmt.Errorf("adapting %s: %w", file, err)
		}
	}
	cfg := &serverConfig{file: file}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("%s is not a JSON config (for another format, name its adapter with --adapter): %w", file, err)
	}
	return cfg, nil
}

// adminAddress is where a running server's admin API would answer.
func (cfg *serverConfig) adminAddress(flagAddr string) string {
	switch {
	case flagAddr != "":
		return flagAddr
	case cfg != nil && cfg.Admin.Listen != "":
		return cfg.Admin.Listen
	}
	return caddy.DefaultAdminListen
}

// storeLocation is the storage a server started from cfg opens, resolved as the
// wijgate app resolves it, or an error saying why there is none to use.
func (cfg *serverConfig) storeLocation(flagDir string) (location, source string, err error) {
	var setting string
	switch {
	case flagDir != "":
		setting, source = flagDir, "--storage"
	case cfg == nil:
		return "", "", fmt.Errorf("there is no %s here to find the server's store in: run this where the server's Caddyfile is, or name it with --config (or the store with --storage)", defaultConfigFile)
	case cfg.Apps.WijGate == nil:
		return "", "", fmt.Errorf("%s has no wijgate app, so it names no store: name the server's config with --config (or the store with --storage)", cfg.file)
	default:
		setting, source = cfg.Apps.WijGate.Storage, cfg.file
	}
	location, err = caddymodule.ResolveStorage(setting)
	return location, source, err
}

// withOperator runs an operator command through the admin API of a
// running server, or, when none answers, on the server's store opened
// directly, saying which store that is.
func withOperator(c *cobra.Command, method, uri string, body, result any, direct func(*caddymodule.Operator) error) error {
	return withStore(c, method, uri, body, result, func(dir string) error {
		op, closeStore, err := caddymodule.OpenOperator(dir)
		if err != nil {
			return fmt.Errorf("opening the store %s: %w", caddymodule.RedactStorage(dir), err)
		}
		defer closeStore()
		return direct(op)
	})
}

// withStore is withOperator for commands that open the store their own
// way: direct gets the store's location.
func withStore(c *cobra.Command, method, uri string, body, result any, direct func(location string) error) error {
	cfg, err := loadServerConfig(c)
	if err != nil {
		return err
	}
	flagAddr, _ := c.Flags().GetString("address")
	addr := cfg.adminAddress(flagAddr)
	// With the admin API off in the config, whatever answers at the
	// default address is not this server.
	adminOff := flagAddr == "" && cfg != nil && cfg.Admin.Disabled
	if !adminOff && serverAnswers(addr) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, rd)
		if err != nil {
			return fmt.Errorf("the server at %s: %s", addr, serverMessage(err))
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(result)
	}

	flagDir, _ := c.Flags().GetString("storage")
	dir, source, err := cfg.storeLocation(flagDir)
	if err != nil {
		return fmt.Errorf("no server answered at %s, and %w", addr, err)
	}
	fmt.Fprintf(c.ErrOrStderr(), "no server answered at %s; using the store %s (from %s)\n", addr, caddymodule.RedactStorage(dir), source)
	return direct(dir)
}

// serverMessage is the server's own message in an admin API error, which
// Caddy's client words as `caddy responded with error: HTTP 400:
// {"error":"..."}`; other errors are returned as they are.
func serverMessage(err error) string {
	var answer struct {
		Error string `json:"error"`
	}
	if _, body, ok := strings.Cut(err.Error(), ": {"); ok && json.Unmarshal([]byte("{"+body), &answer) == nil && answer.Error != "" {
		return answer.Error
	}
	return err.Error()
}

// serverAnswers reports whether something listens at the admin address.
func serverAnswers(addr string) bool {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil {
		return false
	}
	conn, err := net.DialTimeout(na.Network, na.JoinHostPort(0), 2*time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
