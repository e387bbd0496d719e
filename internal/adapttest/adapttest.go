// Package adapttest runs golden Caddyfile tests, in the manner of Caddy's
// caddytest/integration/caddyfile_adapt: each file is a Caddyfile, a line
// of ten dashes, and what becomes of it.
package adapttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the Caddyfile adapter
)

// separator divides a golden file's sections.
const separator = "----------"

// UpdateEnv names the environment variable that, set to 1, makes Run
// rewrite each golden file with what the code makes of it now.
const UpdateEnv = "WIJGATE_UPDATE_GOLDEN"

// Run checks every *.caddyfiletest in dir. After the Caddyfile comes the
// adapter's JSON, indented, or the adapter's error (a syntax error). The
// JSON is then validated as `wijgate validate` does — every module
// provisioned and validated — and a third section holds the error when
// validation refuses it. So a file shows a rule refused for the JSON the
// Caddyfile became, after the Caddyfile reader accepted it.
//
// A configuration that validates runs with XDG_DATA_HOME and
// WIJGATE_TEST_DIR set to a fresh directory, so `{env.WIJGATE_TEST_DIR}`
// places files there; the cases run one after another.
func Run(t *testing.T, dir string) {
	files, err := filepath.Glob(filepath.Join(dir, "*.caddyfiletest"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden Caddyfiles in %s: %v", dir, err)
	}
	update := os.Getenv(UpdateEnv) == "1"
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".caddyfiletest"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.TrimSpace(string(raw))
			caddyfile, _, _ := strings.Cut(want, "\n"+separator+"\n")
			got := strings.Join(outcome(t, caddyfile), "\n"+separator+"\n")
			if got == want {
				return
			}
			if update {
				if err := os.WriteFile(file, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			t.Errorf("%s differs from what the code makes of it now (%s=1 rewrites it) %s; all of it:\n%s",
				file, UpdateEnv, firstDifference(got, want), got)
		})
	}
}

// firstDifference says where got first differs from want, by line.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("at line %d:\n\tgot  %s\n\twant %s", i+1, gl, wl)
		}
	}
	return ""
}

// outcome is the golden file's sections for a Caddyfile.
func outcome(t *testing.T, caddyfile string) []string {
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile+"\n"), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return []string{caddyfile, err.Error()}
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, adapted, "", "\t"); err != nil {
		t.Fatalf("the adapter made no JSON: %v\n%s", err, adapted)
	}
	sections := []string{caddyfile, indented.String()}
	if err := validate(t, adapted); err != nil {
		sections = append(sections, err.Error())
	}
	return sections
}

// validate provisions and validates a JSON configuration, as `wijgate
// validate` does, and returns its error from the module that refused it.
func validate(t *testing.T, config []byte) error {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dir)
	t.Setenv("WIJGATE_TEST_DIR", dir)
	var cfg caddy.Config
	if err := json.Unmarshal(config, &cfg); err != nil {
		return fmt.Errorf("decoding the adapted JSON: %w", err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		return fmt.Errorf("%s", fromModule(err.Error()))
	}
	return nil
}

// reModuleStep matches the step of Caddy's error chain where a module's
// own error begins.
var reModuleStep = regexp.MustCompile(`provision [\w.]+: |[\w.]+: invalid configuration: `)

// fromModule cuts Caddy's error down to the innermost module's step.
// Caddy provisions the apps in map order, so the steps before it (which
// app loaded which) vary from run to run.
func fromModule(msg string) string {
	steps := reModuleStep.FindAllStringIndex(msg, -1)
	if len(steps) == 0 {
		return msg
	}
	return msg[steps[len(steps)-1][0]:]
}
