package web

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestModules runs testdata/units.mjs with node against the embedded ES
// modules: the event-stream parser, the Write editor's value checks and
// the flattening of JSON nodes.
func TestModules(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the module tests need Node.js 20 or newer (apt-get install nodejs)")
	}
	dir := t.TempDir()
	// The modules are plain .js files; a package.json of type module
	// makes node load them as ES modules, as the browser does.
	files := map[string][]byte{"package.json": []byte(`{"type":"module"}`)}
	err = fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		b, err := fs.ReadFile(static, p)
		files[filepath.Base(p)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "units.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	files["units.mjs"] = script
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "units.mjs")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("node units.mjs: %v\n%s", err, out)
	}
}
