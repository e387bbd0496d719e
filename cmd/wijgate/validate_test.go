package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateRefusesBrokenCaddyfiles runs `wijgate validate` on each
// Caddyfile in testdata/invalid: it must exit non-zero with the message in
// the file's header, which names the option, and name the line marked
// `# refused` when there is one (a syntax error: the adapter knows the
// line; a value is checked by Provision and Validate, which do not).
func TestValidateRefusesBrokenCaddyfiles(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no broken Caddyfiles: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".caddyfile"), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			want, refused := readBrokenCaddyfile(t, file)
			want = strings.ReplaceAll(want, "$DIR", dir)
			msg := validateError(t, dir, "--config", file, "--adapter", "caddyfile")
			if !strings.Contains(msg, want) {
				t.Fatalf("validate said\n\t%s\nwant it to say\n\t%s", msg, want)
			}
			if refused > 0 {
				if at := fmt.Sprintf(", at %s:%d", file, refused); !strings.Contains(msg, at) {
					t.Fatalf("validate said\n\t%s\nwithout the line%s", msg, at)
				}
			}
		})
	}
}

// TestValidateRefusesBrokenJSON: a JSON configuration goes through the
// same rules as a Caddyfile, without the lines.
func TestValidateRefusesBrokenJSON(t *testing.T) {
	for name, want := range map[string]string{
		"duplicate-portal":   "wijgate portal: a second portal handler; serve the portal on one site only",
		"alias-underscore":   "alias X_Wij_Org_Role: a header name with '_' does not reach most apps; write X-Wij-Org-Role",
		"bad-service-uuid":   `eherkenning service_uuid: "9001" is not a UUID`,
		"short-idle-timeout": "idle_timeout: 1µs is not a duration between 1s and 720h",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			msg := validateError(t, dir, "--config", filepath.Join("testdata/invalid", name+".json"))
			if !strings.Contains(msg, want) {
				t.Fatalf("validate said\n\t%s\nwant it to say\n\t%s", msg, want)
			}
		})
	}
}

// readBrokenCaddyfile returns the expected message (the header's second
// line) and the number of the line marked `# refused`.
func readBrokenCaddyfile(t *testing.T, file string) (want string, refused int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case n == 2:
			want = strings.TrimPrefix(line, "# ")
		case strings.HasSuffix(line, "# refused"):
			refused = n
		}
	}
	if want == "" {
		t.Fatalf("%s: no expected message on line 2", file)
	}
	return want, refused
}

// validateError runs `wijgate validate` with WIJGATE_TEST_DIR=dir, wants
// it to fail, and returns the error it logged.
func validateError(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := run(t, "", []string{"WIJGATE_TEST_DIR=" + dir, "XDG_DATA_HOME=" + dir}, append([]string{"validate"}, args...)...)
	if err == nil {
		t.Fatalf("wijgate validate accepted it:\n%s", out)
	}
	var msgs []string
	for line := range strings.SplitSeq(out, "\n") {
		var entry struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "error" {
			msgs = append(msgs, entry.Msg)
		}
	}
	if len(msgs) == 0 {
		t.Fatalf("wijgate validate failed without logging an error:\n%s", out)
	}
	return strings.Join(msgs, "\n")
}
