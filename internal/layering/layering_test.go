// Package layering checks the import graph: the production adapter and
// everything it is built from stay free of development code.
package layering

import (
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

// TestAdapterImportsNoDevelopmentCode walks every package of this module
// the adapter is built from (tests excluded: they may start the
// simulator) and fails on any that imports a development package.
func TestAdapterImportsNoDevelopmentCode(t *testing.T) {
	graph := importGraph(t)
	adapter := module + "/caddymodule"
	if _, ok := graph[adapter]; !ok {
		t.Fatalf("the module's packages do not include the adapter: %v", graph)
	}
	deps := dependencies(graph, adapter)
	if len(deps) < 10 {
		t.Fatalf("the adapter is built from only %v", deps)
	}
	for _, pkg := range deps {
		for _, imp := range graph[pkg] {
			if isForbidden(imp) {
				t.Errorf("%s imports the development package %s", pkg, imp)
			}
		}
	}
}

// TestDevelopmentPackagesAreForbidden lists the packages below devmodules
// and examples, the simulator's engine among them, and fails on any that
// the adapter would be allowed to import.
func TestDevelopmentPackagesAreForbidden(t *testing.T) {
	simulator := false
	for pkg := range importGraph(t) {
		dev := strings.HasPrefix(pkg, module+"/devmodules") || strings.HasPrefix(pkg, module+"/examples")
		if dev && !isForbidden(pkg) {
			t.Errorf("the adapter may import the development package %s", pkg)
		}
		simulator = simulator || pkg == module+"/devmodules/ehsim"
	}
	if !simulator {
		t.Fatal("the module's packages do not include the simulator's engine")
	}
}
