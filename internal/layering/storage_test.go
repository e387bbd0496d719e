package layering

import (
	"slices"
	"strings"
	"testing"
)

// engines are the store engines: the only packages that know a database.
var engines = []string{module + "/caddymodule/store", module + "/caddymodule/pgstore"}

// wiring may open an engine: the adapter, which hands it to the services,
// and the benchmark, which seeds millions of accounts straight into one.
var wiring = []string{module + "/caddymodule", module + "/bench"}

// services are the domain packages: they define the storage they need and
// know neither an engine nor Caddy.
var services = []string{"account", "org", "session", "eherkenning", "token", "storage", "contract", "mail", "portal", "privacy"}

// TestOnlyTheWiringKnowsTheEngine checks the storage seam on the import
// graph of every non-test package: badger (and any database driver) only
// in an engine, an engine only in the wiring, Caddy in no service.
func TestOnlyTheWiringKnowsTheEngine(t *testing.T) {
	graph := importGraph(t)
	checked := 0
	for pkg, imports := range graph {
		checked++
		service := slices.ContainsFunc(services, func(s string) bool {
			p := module + "/caddymodule/" + s
			return pkg == p || strings.HasPrefix(pkg, p+"/")
		})
		for _, imp := range imports {
			switch {
			case isDatabase(imp) && !slices.Contains(engines, pkg):
				t.Errorf("%s imports the database package %s; only an engine may", pkg, imp)
			case slices.Contains(engines, imp) && !slices.Contains(wiring, pkg):
				t.Errorf("%s imports the engine %s; services define the storage they need, the adapter wires an engine to them", pkg, imp)
			case service && strings.HasPrefix(imp, "github.com/caddyserver/"):
				t.Errorf("the service %s imports Caddy (%s)", pkg, imp)
			}
		}
	}
	if checked < len(services)+len(engines) {
		t.Fatalf("the module has only %d packages: %v", checked, graph)
	}
}

func isDatabase(pkg string) bool {
	for _, db := range []string{"github.com/dgraph-io/badger", "github.com/jackc/pgx", "database/sql"} {
		if pkg == db || strings.HasPrefix(pkg, db+"/") {
			return true
		}
	}
	return false
}
