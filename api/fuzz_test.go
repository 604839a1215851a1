package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/objects/nodejson"
)

// FuzzCompositePaths checks that the Read-Composite body parser never
// panics, that its errors are 400 problems or nodejson errors, and that
// what it accepts is at least one non-root path.
func FuzzCompositePaths(f *testing.F) {
	for _, name := range []string{"composite-paths.json", "composite-records.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		paths, err := compositePaths(data)
		if err != nil {
			var p *Problem
			var je *nodejson.Error
			if !(errors.As(err, &p) && p.Status == 400) && !errors.As(err, &je) {
				t.Fatalf("error %v is %T", err, err)
			}
			return
		}
		if len(paths) == 0 {
			t.Fatal("no paths accepted without an error")
		}
		for _, p := range paths {
			if p.IsRoot() {
				t.Fatal("root path accepted")
			}
		}
	})
}

// FuzzAttrQuery checks the Write-Attributes input (query and JSON body)
// never panics and yields name[=value] items only.
func FuzzAttrQuery(f *testing.F) {
	f.Add("pmin=1&pmax=5", `{"gt":2.5,"st":null,"edge":true}`)
	f.Add("", `{"pmin":"10"}`)
	f.Fuzz(func(t *testing.T, query, body string) {
		r := httptest.NewRequest("PUT", "/x", strings.NewReader(body))
		r.URL.RawQuery = query
		q, err := attrQuery(r)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest && p.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("error %v is %T", err, err)
			}
			return
		}
		for _, item := range q {
			if item == "" {
				t.Fatal("empty attribute item")
			}
		}
	})
}
