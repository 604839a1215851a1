// Package web is lwm2md's web object browser: plain HTML, CSS and ES
// modules (no framework, no build step) embedded in the binary with
// go:embed, and the http.Handler that serves them. The REST API (package
// api) mounts Handler at "/"; the pages talk to the API under api/v1
// relative to the page, so the browser also works behind a path prefix.
//
// Caching: the page (index.html) is revalidated on every load (no-cache
// with a strong ETag); it names its scripts and styles under
// assets/{version}/, where version is a digest of every embedded file, so
// those are immutable and cached for a year. A new binary has a new
// version and the browser fetches the new files.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

//go:embed static
var static embed.FS

// assetsPlaceholder is replaced in index.html by the versioned assets
// directory ("assets/3f9a0c1d2e4b").
const assetsPlaceholder = "{{ASSETS}}"

// contentTypes are written here rather than taken from mime.TypeByExtension,
// whose answer depends on the host's /etc/mime.types. Module scripts must
// be served with a JavaScript MIME type (HTML Living Standard, "fetch a
// single module script"), or the browser refuses them.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

// The page's Content-Security-Policy: scripts, styles and fetches from this
// origin only, no inline code, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'self'; form-action 'none'; frame-ancestors 'none'"

type file struct {
	name  string
	body  []byte
	ctype string
	etag  string
}

type handler struct {
	version string
	index   file
	assets  map[string]file // by name, without the assets/{version}/ prefix
}

// Handler serves the web object browser: the page at "/" (and
// "/index.html") and its files at "/assets/{version}/{name}". Anything else
// is 404; methods other than GET and HEAD are 405.
func Handler() http.Handler { return embedded() }

// Version is the digest that names the current assets directory.
func Version() string { return embedded().version }

// embedded builds the handler of the compiled-in files once.
var embedded = sync.OnceValue(func() *handler {
	h, err := newHandler(static)
	if err != nil {
		// The files are compiled in: an error here is a broken build,
		// which the package's tests catch.
		panic(err)
	}
	return h
})

func newHandler(fsys fs.FS) (*handler, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(fsys, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files[strings.TrimPrefix(p, "static/")] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: static: %w", err)
	}
	idx, ok := files["index.html"]
	if !ok {
		return nil, fmt.Errorf("web: static/index.html: missing")
	}
	h := &handler{version: digest(files), assets: map[string]file{}}
	for name, body := range files {
		ctype, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil, fmt.Errorf("web: static/%s: no content type for %q", name, path.Ext(name))
		}
		if name == "index.html" {
			continue
		}
		h.assets[name] = newFile(name, body, ctype)
	}
	page := bytes.ReplaceAll(idx, []byte(assetsPlaceholder), []byte("assets/"+h.version))
	h.index = newFile("index.html", page, contentTypes[".html"])
	return h, nil
}

// digest is a short SHA-256 over every file's name and content, in name
// order: the assets version.
func digest(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	sum := sha256.New()
	for _, n := range names {
		fmt.Fprintf(sum, "%s\x00%d\x00", n, len(files[n]))
		sum.Write(files[n])
	}
	return hex.EncodeToString(sum.Sum(nil))[:12]
}

func newFile(name string, body []byte, ctype string) file {
	sum := sha256.Sum256(body)
	return file{name: name, body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "web: "+r.URL.Path+": method "+r.Method+" not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	p := r.URL.Path
	switch {
	case p == "" || p == "/" || p == "/index.html":
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Cache-Control", "no-cache")
		serve(w, r, h.index)
		return
	case strings.HasPrefix(p, "/assets/"):
		version, name, ok := strings.Cut(strings.TrimPrefix(p, "/assets/"), "/")
		f, found := h.assets[name]
		if ok && found && version == h.version {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			serve(w, r, f)
			return
		}
		if ok && found {
			// A page of an older binary asking for its files: they are
			// gone, and serving the new ones under the old name could
			// mix versions. Reloading the page fixes it.
			http.Error(w, "web: "+p+": assets version "+version+" is not served (current: "+h.version+"); reload the page", http.StatusNotFound)
			return
		}
	}
	http.Error(w, "web: "+p+": not found", http.StatusNotFound)
}

// serve writes f with its ETag; http.ServeContent answers If-None-Match
// with 304 (RFC 9110 §13.1.2), HEAD and Range requests.
func serve(w http.ResponseWriter, r *http.Request, f file) {
	w.Header().Set("Content-Type", f.ctype)
	w.Header().Set("ETag", f.etag)
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}
