package web

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestIndex(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/", "/index.html"} {
		t.Run(p, func(t *testing.T) {
			w := get(t, h, "GET", p, nil)
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			hd := w.Header()
			if got := hd.Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
			if got := hd.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q", got)
			}
			if !strings.Contains(hd.Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("Content-Security-Policy %q", hd.Get("Content-Security-Policy"))
			}
			if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("ETag") == "" {
				t.Errorf("headers %v", hd)
			}
			body := w.Body.String()
			if strings.Contains(body, assetsPlaceholder) {
				t.Error("placeholder left in the page")
			}
			want := `src="assets/` + Version() + `/app.js"`
			if !strings.Contains(body, want) {
				t.Errorf("page does not load %s", want)
			}
		})
	}
}

// Every file the page names, and every module those import, is served
// with its content type and the immutable cache header.
func TestAssetsReferencedAreServed(t *testing.T) {
	h := Handler()
	page := get(t, h, "GET", "/", nil).Body.String()
	refs := regexp.MustCompile(`(?:src|href)="(assets/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("page names %d assets", len(refs))
	}
	seen := map[string]bool{}
	var queue []string
	for _, m := range refs {
		queue = append(queue, "/"+m[1])
	}
	imports := regexp.MustCompile(`(?m)^import .* from '\./([a-z]+\.js)';$`)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		t.Run(p, func(t *testing.T) {
			w := get(t, h, "GET", p, nil)
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			if got := w.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control %q", got)
			}
			want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
			ext := p[strings.LastIndex(p, "."):]
			if got := w.Header().Get("Content-Type"); got != want[ext] {
				t.Errorf("Content-Type %q, want %q", got, want[ext])
			}
			if ext == ".js" {
				for _, m := range imports.FindAllStringSubmatch(w.Body.String(), -1) {
					queue = append(queue, p[:strings.LastIndex(p, "/")+1]+m[1])
				}
			}
		})
	}
	if !seen["/assets/"+Version()+"/device.js"] {
		t.Errorf("device.js not reached through the imports: %v", seen)
	}
}

func TestConditionalAndErrors(t *testing.T) {
	h := Handler()
	first := get(t, h, "GET", "/assets/"+Version()+"/app.js", nil)
	etag := first.Header().Get("ETag")
	tests := []struct {
		name, method, target string
		hdr                  map[string]string
		code                 int
		body                 string // a part of the body, "" to skip
	}{
		{"etag match", "GET", "/assets/" + Version() + "/app.js", map[string]string{"If-None-Match": etag}, 304, ""},
		{"etag other", "GET", "/assets/" + Version() + "/app.js", map[string]string{"If-None-Match": `"x"`}, 200, "import"},
		{"head", "HEAD", "/", nil, 200, ""},
		{"old version", "GET", "/assets/000000000000/app.js", nil, 404, "reload the page"},
		{"unknown asset", "GET", "/assets/" + Version() + "/nope.js", nil, 404, "not found"},
		{"no version", "GET", "/assets/app.js", nil, 404, "not found"},
		{"traversal", "GET", "/assets/" + Version() + "/../web.go", nil, 404, "not found"},
		{"other path", "GET", "/clients", nil, 404, "not found"},
		{"post", "POST", "/", nil, 405, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, h, tt.method, tt.target, tt.hdr)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d", w.Code, tt.code)
			}
			if tt.body != "" && !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("body %q lacks %q", w.Body.String(), tt.body)
			}
			if tt.code == 405 && w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
			if tt.method == "HEAD" && w.Body.Len() != 0 {
				t.Errorf("HEAD with a body of %d bytes", w.Body.Len())
			}
		})
	}
}

func TestNewHandlerRefusesBrokenTrees(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"no index", fstest.MapFS{"static/app.js": {Data: []byte("x")}}, "index.html: missing"},
		{"unknown type", fstest.MapFS{"static/index.html": {Data: []byte("x")}, "static/a.exe": {Data: []byte("x")}}, "no content type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newHandler(tt.fs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// The version changes with any file's content, so a new binary's page
// never loads an old cached script.
func TestVersionFollowsContent(t *testing.T) {
	a := fstest.MapFS{"static/index.html": {Data: []byte(`<script src="{{ASSETS}}/a.js">`)}, "static/a.js": {Data: []byte("1")}}
	b := fstest.MapFS{"static/index.html": {Data: []byte(`<script src="{{ASSETS}}/a.js">`)}, "static/a.js": {Data: []byte("2")}}
	ha, err := newHandler(a)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := newHandler(b)
	if err != nil {
		t.Fatal(err)
	}
	if ha.version == hb.version {
		t.Fatalf("same version %s for different content", ha.version)
	}
	if !strings.Contains(string(ha.index.body), "assets/"+ha.version+"/a.js") {
		t.Errorf("index %q", ha.index.body)
	}
}
