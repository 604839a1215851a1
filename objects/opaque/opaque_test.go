package opaque

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func value(n objects.Node) objects.Value {
	switch n := n.(type) {
	case *objects.Resource:
		return n.Value
	case *objects.ResourceInstance:
		return n.Value
	}
	return objects.Value{}
}

func TestRoundTrip(t *testing.T) {
	reg := shared.Registry(t)
	var c Codec
	blobs := [][]byte{nil, {0}, {0xff, 0xfe, 0, 1}, bytes.Repeat([]byte{0xa5}, 4096)}
	for _, b := range blobs {
		v := objects.OpaqueValue(b)
		cases := []struct {
			root objects.Path
			node objects.Node
			m    objects.Models
		}{
			{objects.MustParsePath("/5/0/0"), &objects.Resource{ID: 0, Value: v}, reg},              // Firmware Update Package
			{objects.MustParsePath("/0/1/3"), &objects.Resource{ID: 3, Value: v}, reg},              // Security Public Key
			{objects.MustParsePath("/9999/0/1/2"), &objects.ResourceInstance{ID: 2, Value: v}, nil}, // no model
			{objects.MustParsePath("/9999/0/1"), &objects.Resource{ID: 1, Value: v}, nil},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", tc.root, len(b)), func(t *testing.T) {
				p, err := c.Encode(tc.root, tc.node, tc.m)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(p, b) {
					t.Fatalf("encoded %x, want the bytes as they are", p)
				}
				n, err := c.Decode(tc.root, p, tc.m)
				if err != nil {
					t.Fatal(err)
				}
				if !objects.EqualNodes(n, tc.node) {
					t.Fatalf("decoded %v", value(n))
				}
			})
		}
	}
}

// Decode copies: a caller reusing its receive buffer must not change a
// decoded value.
func TestDecodeCopies(t *testing.T) {
	var c Codec
	buf := []byte{1, 2, 3}
	n, err := c.Decode(objects.MustParsePath("/5/0/0"), buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf[0] = 9
	if got := value(n).Bytes(); got[0] != 1 {
		t.Fatalf("decoded value shares the payload buffer: %x", got)
	}
}

type vector struct {
	File string `json:"file"`
	Path string `json:"path"`
	Hex  string `json:"hex"`
	From string `json:"from"`
}

// The LwM2M specifications give no octet-stream bytes (Core 1.1 §7.4.2 only
// says the payload is the value's bytes as they are), so testdata holds
// vectors of our own: see testdata/vectors.json.
func TestVectors(t *testing.T) {
	reg := shared.Registry(t)
	var vecs []vector
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vecs); err != nil {
		t.Fatal(err)
	}
	var c Codec
	for _, vec := range vecs {
		t.Run(vec.File, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", vec.File))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := hex.DecodeString(vec.Hex)
			root := objects.MustParsePath(vec.Path)
			n, err := c.Decode(root, data, reg)
			if err != nil {
				t.Fatal(err)
			}
			if got := value(n); got.Type() != objects.TypeOpaque || !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("decoded %v, want %x", got, want)
			}
		})
	}
}

func TestGolden(t *testing.T) {
	var c Codec
	var out strings.Builder
	for _, b := range [][]byte{nil, []byte("lwm2md"), {0, 0xff, 0x80, 0x7f}} {
		root := objects.MustParsePath("/5/0/0")
		p, err := c.Encode(root, &objects.Resource{ID: 0, Value: objects.OpaqueValue(b)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s\t%x\n", root, p)
	}
	got := []byte(out.String())
	if *update {
		if err := os.WriteFile("testdata/golden-encode.txt", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("testdata/golden-encode.txt")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("golden-encode.txt: %v\n got:\n%s\nwant:\n%s", err, got, want)
	}
}

// No client was captured answering in octet-stream, but both sent the
// Opaque resource /6/0/4 (Location Velocity) in SenML JSON "vd": its bytes
// read back through this codec unchanged.
func TestInteropVelocity(t *testing.T) {
	reg := shared.Registry(t)
	var c Codec
	root := objects.MustParsePath("/6/0/4")
	seen := 0
	for _, cp := range shared.CapturesIn(t, int(objects.FormatSenMLJSON)) {
		if cp.Path != "/6/0" {
			continue
		}
		var recs []map[string]any
		if err := json.Unmarshal([]byte(cp.PayloadText), &recs); err != nil {
			t.Fatalf("%s: %v", cp.ID, err)
		}
		for _, r := range recs {
			name, _ := r["n"].(string)
			vd, ok := r["vd"].(string)
			if !ok || !strings.HasSuffix(name, "4") {
				continue
			}
			raw, err := objects.DecodeBase64(vd)
			if err != nil {
				t.Fatalf("%s: vd %q: %v", cp.ID, vd, err)
			}
			n, err := c.Decode(root, raw, reg)
			if err != nil {
				t.Fatalf("%s: %v", cp.ID, err)
			}
			p, err := c.Encode(root, n, reg)
			if err != nil || !bytes.Equal(p, raw) {
				t.Fatalf("%s: %x, %v; want %x", cp.ID, p, err, raw)
			}
			seen++
		}
	}
	t.Logf("%d Velocity values from SenML JSON captures went through octet-stream", seen)
	if seen == 0 {
		t.Skip("no /6/0/4 value in the SenML JSON captures")
	}
}

func TestErrors(t *testing.T) {
	reg := shared.Registry(t)
	var c Codec
	dec := []struct {
		name string
		path string
		want error
	}{
		{"string resource", "/3/0/0", objects.ErrUnsupported},
		{"integer resource instance", "/3/0/6/0", objects.ErrUnsupported},
		{"multiple resource", "/3/0/6", objects.ErrUnsupported},
		{"instance", "/5/0", objects.ErrUnsupported},
		{"object", "/5", objects.ErrUnsupported},
		{"root", "/", objects.ErrUnsupported},
	}
	for _, tt := range dec {
		t.Run("decode "+tt.name, func(t *testing.T) {
			root := objects.MustParsePath(tt.path)
			_, err := c.Decode(root, []byte{1, 2}, reg)
			var de *objects.DecodeError
			if !errors.Is(err, tt.want) || !errors.As(err, &de) || de.Path != root {
				t.Fatalf("error %v, want a DecodeError wrapping %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), root.String()) {
				t.Fatalf("error %q does not name %s", err, root)
			}
		})
	}
	enc := []struct {
		name string
		path string
		node objects.Node
		want error
	}{
		{"string value", "/9999/0/1", &objects.Resource{ID: 1, Value: objects.StringValue("x")}, objects.ErrUnsupported},
		{"no value", "/9999/0/1", &objects.Resource{ID: 1}, objects.ErrUnsupported},
		{"string resource", "/3/0/0", &objects.Resource{ID: 0, Value: objects.OpaqueValue([]byte("x"))}, objects.ErrUnsupported},
		{"multiple node", "/9999/0/1", &objects.Resource{ID: 1, Multiple: true}, objects.ErrUnsupported},
		{"instance", "/5/0", &objects.Instance{ID: 0}, objects.ErrUnsupported},
		{"wrong id", "/5/0/0", &objects.Resource{ID: 1, Value: objects.OpaqueValue(nil)}, nil},
		{"wrong kind", "/5/0/0", &objects.ResourceInstance{ID: 0, Value: objects.OpaqueValue(nil)}, nil},
		{"nil", "/5/0/0", nil, nil},
	}
	for _, tt := range enc {
		t.Run("encode "+tt.name, func(t *testing.T) {
			root := objects.MustParsePath(tt.path)
			_, err := c.Encode(root, tt.node, reg)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), root.String()) {
				t.Fatalf("error %q does not name %s", err, root)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	if b, err := os.ReadFile("testdata/vectors.json"); err == nil {
		var vecs []vector
		_ = json.Unmarshal(b, &vecs)
		for _, v := range vecs {
			if d, err := os.ReadFile(filepath.Join("testdata", v.File)); err == nil {
				f.Add(d, false)
			}
		}
	}
	for _, cp := range shared.CapturesIn(f, int(objects.FormatOpaque)) { // none captured so far
		f.Add(cp.Payload(), true)
	}
	f.Add([]byte(base64.StdEncoding.EncodeToString([]byte("seed"))), true)
	var c Codec
	f.Fuzz(func(t *testing.T, data []byte, instance bool) {
		root := objects.MustParsePath("/5/0/0")
		if instance {
			root = objects.MustParsePath("/9999/1/2/3")
		}
		n, err := c.Decode(root, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Encode(root, n, nil)
		if err != nil || !bytes.Equal(p, data) {
			t.Fatalf("%x -> %x, %v", data, p, err)
		}
	})
}

// A firmware block as Block1 carries it (1 KiB), and a 16-byte key.
func BenchmarkEncode(b *testing.B) {
	var c Codec
	root := objects.MustParsePath("/5/0/0")
	node := &objects.Resource{ID: 0, Value: objects.OpaqueValue(bytes.Repeat([]byte{0x5a}, 1024))}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := c.Encode(root, node, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	var c Codec
	root := objects.MustParsePath("/5/0/0")
	data := bytes.Repeat([]byte{0x5a}, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := c.Decode(root, data, nil); err != nil {
			b.Fatal(err)
		}
	}
}
