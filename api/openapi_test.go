package api

import (
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

var update = flag.Bool("update", false, "rewrite testdata/openapi.json")

// TestOpenAPIGolden keeps the OpenAPI document true: its operations are
// exactly the routes chi serves, and the document is the golden file
// (go test ./api -run OpenAPI -update rewrites it after a reviewed change).
func TestOpenAPIGolden(t *testing.T) {
	e := newEnv(t, nil, nil)
	r := e.expect(200, "GET", "/api/v1/openapi.json", nil, "")
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+Prefix+p)
		}
	}
	var served []string
	root := e.api.Handler().(*chi.Mux)
	err := chi.Walk(root, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, Prefix+"/") {
			served = append(served, method+" "+route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("documented:\n%s\n\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}

	var pretty map[string]any
	_ = json.Unmarshal(r.body, &pretty)
	got, _ := json.MarshalIndent(pretty, "", "  ")
	got = append(got, '\n')
	golden := filepath.Join("testdata", "openapi.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./api -run OpenAPI -update)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("the OpenAPI document differs from %s; review the change and run go test ./api -run OpenAPI -update", golden)
	}
}
