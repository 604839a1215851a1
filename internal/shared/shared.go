// Package shared gives tests the reference data kept in ../shared beside
// the repository (the OMA object registry and the interop capture
// vectors). The data is read in place, never copied into the project.
package shared

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/ddf"
)

// Root finds the shared folder: $LWM2MD_SHARED if set, else ../shared
// beside the module root.
func Root() (string, error) {
	if d := os.Getenv("LWM2MD_SHARED"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(filepath.Dir(dir), "shared")
			if _, err := os.Stat(d); err != nil {
				return "", fmt.Errorf("shared data not found at %s (set LWM2MD_SHARED): %w", d, err)
			}
			return d, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

// Dir returns a sub-folder of the shared data, skipping the test when it
// is missing.
func Dir(tb testing.TB, name string) string {
	tb.Helper()
	root, err := Root()
	if err != nil {
		tb.Skipf("skipping: %v", err)
	}
	d := filepath.Join(root, name)
	if _, err := os.Stat(d); err != nil {
		tb.Skipf("skipping: %s missing (set LWM2MD_SHARED to the shared folder): %v", d, err)
	}
	return d
}

var (
	regOnce sync.Once
	reg     *objects.Registry
	regErr  error
)

// Registry returns every definition in shared/lwm2m-registry, loaded once.
func Registry(tb testing.TB) *objects.Registry {
	tb.Helper()
	dir := Dir(tb, "lwm2m-registry")
	regOnce.Do(func() {
		reg = objects.NewRegistry()
		_, regErr = ddf.LoadInto(reg, dir)
	})
	if regErr != nil {
		tb.Fatal(regErr)
	}
	return reg
}

// Capture is one entry of shared/interop-vectors/index.json (the fields
// tests use; see that folder's README for all of them).
type Capture struct {
	ID                   string   `json:"id"`
	Peer                 string   `json:"peer"`
	LwM2MVersion         string   `json:"lwm2m_version_registered"`
	Name                 string   `json:"name"`
	Operation            string   `json:"operation"`
	Initiator            string   `json:"initiator"`
	Method               string   `json:"coap_method"`
	Path                 string   `json:"path"`
	URIQuery             []string `json:"uri_query"`
	RequestAccept        *int     `json:"request_accept"`
	RequestContentFormat *int     `json:"request_content_format"`
	RequestPayloadHex    string   `json:"request_payload_hex"`
	ResponseCode         string   `json:"response_code"`
	PayloadContentFormat *int     `json:"payload_content_format"`
	PayloadFile          *string  `json:"payload_file"`
	PayloadHex           string   `json:"payload_hex"`
	PayloadText          string   `json:"payload_text"`
	Note                 string   `json:"note"`
}

// Payload returns the captured payload bytes.
func (c Capture) Payload() []byte {
	b, _ := hex.DecodeString(c.PayloadHex)
	return b
}

// Format returns the payload's content format, or -1 when it has none.
func (c Capture) Format() int {
	if c.PayloadContentFormat == nil {
		return -1
	}
	return *c.PayloadContentFormat
}

// Captures returns every capture of shared/interop-vectors.
func Captures(tb testing.TB) []Capture {
	tb.Helper()
	dir := Dir(tb, "interop-vectors")
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var idx struct {
		Captures []Capture `json:"captures"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		tb.Fatalf("interop index: %v", err)
	}
	return idx.Captures
}

// CapturesIn returns the captures with a non-empty payload in format f.
func CapturesIn(tb testing.TB, f int) []Capture {
	var out []Capture
	for _, c := range Captures(tb) {
		if c.Format() == f && c.PayloadHex != "" {
			out = append(out, c)
		}
	}
	return out
}
