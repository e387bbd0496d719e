package layering

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// importGraph reads the module's non-test packages from their source
// files: each package's import path and what it imports, for this
// platform's build constraints. It reads the files itself rather than
// asking `go list`, so that `go test` sees them as the test's inputs and
// runs it again when one of them changes (a cached pass after an import
// was added would otherwise hide the new edge).
func importGraph(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root is not two folders up: %v", err)
	}
	graph := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		if path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module (a helper's worktree)
			}
		}
		pkg, err := build.Default.ImportDir(path, 0)
		if _, none := err.(*build.NoGoError); none {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		importPath := module
		if rel != "." {
			importPath += "/" + filepath.ToSlash(rel)
		}
		graph[importPath] = pkg.Imports
		return nil
	})
	if err != nil {
		t.Fatalf("reading the module's packages: %v", err)
	}
	return graph
}

// dependencies is pkg and every package of this module it is built from.
func dependencies(graph map[string][]string, pkg string) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		for _, imp := range graph[p] {
			if _, ours := graph[imp]; ours {
				visit(imp)
			}
		}
	}
	visit(pkg)
	deps := make([]string, 0, len(seen))
	for p := range seen {
		deps = append(deps, p)
	}
	slices.Sort(deps)
	return deps
}
