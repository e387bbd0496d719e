// Package layering checks the import graph: the production adapter and
// everything it is built from stay free of development code.
package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/wijtechniek/wijgate"

// forbidden are the development packages: the Caddy modules for `make run`
// and tests with the simulator's engine below them (devmodules/ehsim), and
// the examples for app owners.
var forbidden = []string{
	module + "/devmodules",
	module + "/examples",
}

func isForbidden(pkg string) bool {
	for _, f := range forbidden {
		if pkg == f || strings.HasPrefix(pkg, f+"/") {
			return true
		}
	}
	return false
}

// TestAdapterImportsNoDevelopmentCode lists every package the adapter is
// built from (tests excluded: they may start the simulator) and fails on
// any that imports a development package.
func TestAdapterImportsNoDevelopmentCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps",
		"-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`,
		module+"/caddymodule").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg, imports := fields[0], fields[1:]
		if pkg == module+"/caddymodule" {
			seen++
		}
		for _, imp := range imports {
			if isForbidden(imp) {
				t.Errorf("%s imports the development package %s", pkg, imp)
			}
		}
	}
	if seen != 1 {
		t.Fatalf("go list did not list the adapter itself:\n%s", out)
	}
}

// TestDevelopmentPackagesAreForbidden lists the packages below devmodules
// and examples, the simulator's engine among them, and fails on any that
// the adapter would be allowed to import.
func TestDevelopmentPackagesAreForbidden(t *testing.T) {
	out, err := exec.Command("go", "list", module+"/devmodules/...", module+"/examples/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	simulator := false
	for line := range strings.Lines(string(out)) {
		pkg := strings.TrimSpace(line)
		if !isForbidden(pkg) {
			t.Errorf("the adapter may import the development package %s", pkg)
		}
		simulator = simulator || pkg == module+"/devmodules/ehsim"
	}
	if !simulator {
		t.Fatalf("go list did not list the simulator's engine:\n%s", out)
	}
}
