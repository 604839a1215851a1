package text

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testModels is a small model with one resource of every type, single
// (IDs 0-9) and multiple (IDs 10-19), in object 9000.
type testModels map[uint16]*objects.ObjectDef

func (m testModels) Object(id uint16) *objects.ObjectDef { return m[id] }

var allTypes = []objects.Type{
	objects.TypeString, objects.TypeInteger, objects.TypeUnsigned, objects.TypeFloat, objects.TypeBoolean,
	objects.TypeOpaque, objects.TypeTime, objects.TypeObjlnk, objects.TypeCorelnk, objects.TypeNone,
}

func newTestModels() testModels {
	def := &objects.ObjectDef{ID: 9000, Name: "Test", Version: "1.0", Multiple: true}
	for i, t := range allTypes {
		def.Resources = append(def.Resources, objects.ResourceDef{ID: uint16(i), Type: t, Operations: objects.OpRead | objects.OpWrite})
	}
	for i, t := range allTypes {
		def.Resources = append(def.Resources, objects.ResourceDef{ID: uint16(10 + i), Type: t, Multiple: true, Operations: objects.OpRead | objects.OpWrite})
	}
	return testModels{9000: def}
}

// sample returns a value of type t.
func sample(t objects.Type) objects.Value {
	switch t {
	case objects.TypeString:
		return objects.StringValue("Open Mobile Alliance ✓")
	case objects.TypeInteger:
		return objects.IntegerValue(-9223372036854775808)
	case objects.TypeUnsigned:
		return objects.UnsignedValue(math.MaxUint64)
	case objects.TypeFloat:
		return objects.FloatValue(-42.25)
	case objects.TypeBoolean:
		return objects.BooleanValue(true)
	case objects.TypeOpaque:
		return objects.OpaqueValue([]byte{0, 0xfa, 0xff, 'a'})
	case objects.TypeTime:
		return objects.TimeSecondsValue(1367491215)
	case objects.TypeObjlnk:
		return objects.ObjlnkValue(objects.ObjLink{Object: 33606, Instance: 0})
	case objects.TypeCorelnk:
		return objects.CorelnkValue(`</3/0>;ver="1.1"`)
	}
	return objects.Value{}
}

// sameValue is Value.Equal that also takes two NaNs as equal.
func sameValue(a, b objects.Value) bool {
	if a.Type() == objects.TypeFloat && b.Type() == objects.TypeFloat && math.IsNaN(a.Float()) && math.IsNaN(b.Float()) {
		return true
	}
	return a.Equal(b)
}

func nodeValue_(n objects.Node) objects.Value {
	switch n := n.(type) {
	case *objects.Resource:
		return n.Value
	case *objects.ResourceInstance:
		return n.Value
	}
	return objects.Value{}
}

func TestRoundTrip(t *testing.T) {
	m := newTestModels()
	var c Codec
	for i, typ := range allTypes {
		if typ == objects.TypeNone {
			continue
		}
		v := sample(typ)
		cases := []struct {
			root objects.Path
			node objects.Node
		}{
			{objects.NewPath(9000, 1, uint16(i)), &objects.Resource{ID: uint16(i), Value: v}},
			{objects.NewPath(9000, 1, uint16(10+i), 7), &objects.ResourceInstance{ID: 7, Value: v}},
		}
		for _, tc := range cases {
			t.Run(typ.String()+tc.root.String(), func(t *testing.T) {
				b, err := c.Encode(tc.root, tc.node, m)
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.Decode(tc.root, b, m)
				if err != nil {
					t.Fatalf("decode %q: %v", b, err)
				}
				if !objects.EqualNodes(got, tc.node) {
					t.Fatalf("%q decoded to %v, want %v", b, nodeValue_(got), v)
				}
			})
		}
	}
}

// Without a model every value travels as its text and comes back a String.
func TestNoModel(t *testing.T) {
	var c Codec
	root := objects.MustParsePath("/3/0/9")
	b, err := c.Encode(root, &objects.Resource{ID: 9, Value: objects.IntegerValue(95)}, nil)
	if err != nil || string(b) != "95" {
		t.Fatalf("encode = %q, %v", b, err)
	}
	n, err := c.Decode(root, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := nodeValue_(n); !v.Equal(objects.StringValue("95")) {
		t.Fatalf("decoded %v, want String(95)", v)
	}
}

func TestEncodeConvertsToModelType(t *testing.T) {
	m := newTestModels()
	var c Codec
	tests := []struct {
		res  uint16
		in   objects.Value
		want string
	}{
		{1, objects.StringValue("12"), "12"},
		{1, objects.FloatValue(3), "3"},
		{3, objects.IntegerValue(7), "7"},
		{4, objects.IntegerValue(1), "1"},
		{6, objects.IntegerValue(1700000000), "1700000000"},
		{7, objects.StringValue("3:0"), "3:0"},
		{5, objects.StringValue("AAEC"), "AAEC"},
	}
	for _, tt := range tests {
		root := objects.NewPath(9000, 0, tt.res)
		b, err := c.Encode(root, &objects.Resource{ID: tt.res, Value: tt.in}, m)
		if err != nil || string(b) != tt.want {
			t.Errorf("%s %v: %q, %v; want %q", root, tt.in, b, err, tt.want)
		}
	}
}

func TestOpaqueBase64Input(t *testing.T) {
	m := newTestModels()
	var c Codec
	root := objects.NewPath(9000, 0, 5)
	want := []byte{0, 0xfa, 0x00, 0x03}
	for _, in := range []string{"APoAAw==", "APoAAw", "APoAAw\r\n", "AP oA\nAw=="} {
		n, err := c.Decode(root, []byte(in), m)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if v := nodeValue_(n); !bytes.Equal(v.Bytes(), want) {
			t.Errorf("%q: %x", in, v.Bytes())
		}
	}
}

type specVector struct {
	File  string `json:"file"`
	Path  string `json:"path"`
	Type  string `json:"type"`
	Value string `json:"value"` // the expected value in its text form
	From  string `json:"from"`
}

// The spec vectors are the text/plain examples of the LwM2M Core
// specifications (the GET /3/0/0 example, the Text Format column of the
// Data Type Mapping table) and the values of their example client; see
// testdata/spec-vectors.json.
func TestSpecVectors(t *testing.T) {
	reg := shared.Registry(t)
	test := newTestModels()
	var vecs []specVector
	readJSON(t, "testdata/spec-vectors.json", &vecs)
	var c Codec
	for _, vec := range vecs {
		t.Run(vec.File, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", vec.File))
			if err != nil {
				t.Fatal(err)
			}
			root := objects.MustParsePath(vec.Path)
			var m objects.Models = reg
			if root.Object() == 9000 { // the Appendix C examples name no resource
				m = test
			}
			n, err := c.Decode(root, data, m)
			if err != nil {
				t.Fatal(err)
			}
			typ, err := objects.ParseType(vec.Type)
			if err != nil {
				t.Fatal(err)
			}
			want, err := objects.ParseText(typ, vec.Value)
			if err != nil {
				t.Fatal(err)
			}
			if got := nodeValue_(n); !got.Equal(want) {
				t.Fatalf("%s (%s): got %v, want %v", vec.Path, vec.From, got, want)
			}
			if objects.NodeDepth(n) != root.Len() || objects.NodeID(n) != root.ID(root.Len()-1) {
				t.Fatalf("node %T id %d for %s", n, objects.NodeID(n), root)
			}
			// The encoder writes the spec's bytes back.
			b, err := c.Encode(root, n, m)
			if err != nil || !bytes.Equal(b, data) {
				t.Fatalf("re-encoded %q, %v; want %q", b, err, data)
			}
		})
	}
}

// TestGolden pins the encoder's output for every type; run with -update
// after a deliberate change.
func TestGolden(t *testing.T) {
	m := newTestModels()
	var c Codec
	var out strings.Builder
	extra := []objects.Value{
		objects.FloatValue(0), objects.FloatValue(math.Copysign(0, -1)), objects.FloatValue(1e-7), objects.FloatValue(1e21),
		objects.FloatValue(123456.789), objects.FloatValue(math.Inf(1)), objects.FloatValue(math.NaN()),
		objects.StringValue(""), objects.StringValue("line\nbreak"), objects.OpaqueValue(nil), objects.BooleanValue(false),
		objects.IntegerValue(0), objects.TimeSecondsValue(-1),
	}
	vals := []objects.Value{}
	for _, typ := range allTypes {
		if typ != objects.TypeNone {
			vals = append(vals, sample(typ))
		}
	}
	vals = append(vals, extra...)
	for _, v := range vals {
		id := resourceFor(v.Type())
		root := objects.NewPath(9000, 0, id)
		b, err := c.Encode(root, &objects.Resource{ID: id, Value: v}, m)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		fmt.Fprintf(&out, "%s\t%s\t%s\n", root, v.Type(), strconv.Quote(string(b)))
	}
	golden(t, "testdata/golden-encode.txt", []byte(out.String()))
}

func resourceFor(t objects.Type) uint16 {
	for i, at := range allTypes {
		if at == t {
			return uint16(i)
		}
	}
	panic(t)
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the encoder's output:\n got:\n%s\nwant:\n%s", file, got, want)
	}
}

func readJSON(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// Every text/plain payload the two clients sent decodes at its request
// path with the OMA registry as model.
func TestInterop(t *testing.T) {
	reg := shared.Registry(t)
	var c Codec
	caps := shared.CapturesIn(t, int(objects.FormatText))
	byID := map[string]objects.Value{}
	for _, cp := range caps {
		root, err := objects.ParsePath(cp.Path)
		if err != nil {
			t.Fatalf("%s: %v", cp.ID, err)
		}
		n, err := c.Decode(root, cp.Payload(), reg)
		if err != nil {
			t.Errorf("%s: %v", cp.ID, err)
			continue
		}
		v := nodeValue_(n)
		if want := objects.TypeOf(reg, root); v.Type() != want {
			t.Errorf("%s: decoded %v, model says %v", cp.ID, v, want)
		}
		byID[cp.ID] = v
	}
	t.Logf("decoded %d text/plain payloads", len(byID))
	if len(byID) < 100 {
		t.Errorf("only %d text/plain vectors decoded, the README lists 103", len(byID))
	}
	spot := map[string]objects.Value{
		"wakaama-1.1/009-read-3_0_0-text":                   objects.StringValue("Open Mobile Alliance"),
		"anjay-1.2/009-read-3_0_0-text":                     objects.StringValue("vec"),
		"wakaama-1.1/016-read-3_0_9-text":                   objects.IntegerValue(100),
		"anjay-1.1/037-read-3_0_6_0-text":                   objects.IntegerValue(0),
		"anjay-1.0/042-read-3_0_6_0-default":                objects.IntegerValue(0),
		"wakaama-1.1/023-read-3_0_13-text":                  objects.TimeSecondsValue(3162797181),
		"anjay-1.2/023-read-3_0_13-text":                    objects.TimeSecondsValue(1795305987),
		"anjay-1.0/076-read-3_0_15-text-before-write":       objects.StringValue("Europe/Warsaw"),
		"wakaama-1.1/090-read-3_0_14-text-after-write-text": objects.StringValue("+06:00"),
	}
	for id, want := range spot {
		if got, ok := byID[id]; !ok || !got.Equal(want) {
			t.Errorf("%s: got %v, want %v", id, got, want)
		}
	}

	// The text/plain writes the capture tool sent are what this encoder
	// writes for the same value.
	writes := 0
	for _, cp := range shared.Captures(t) {
		if cp.RequestContentFormat == nil || *cp.RequestContentFormat != int(objects.FormatText) || cp.RequestPayloadHex == "" {
			continue
		}
		root := objects.MustParsePath(cp.Path)
		sent := mustHex(t, cp.RequestPayloadHex)
		n, err := c.Decode(root, sent, reg)
		if err != nil {
			t.Errorf("%s request: %v", cp.ID, err)
			continue
		}
		b, err := c.Encode(root, n, reg)
		if err != nil || !bytes.Equal(b, sent) {
			t.Errorf("%s: encoded %q, %v; the write sent %q", cp.ID, b, err, sent)
		}
		writes++
	}
	t.Logf("re-encoded %d text/plain write requests byte for byte", writes)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatal(err)
		}
		b[i] = byte(v)
	}
	return b
}

func TestDecodeErrors(t *testing.T) {
	m := newTestModels()
	reg := shared.Registry(t)
	var c Codec
	tests := []struct {
		name   string
		path   string
		models objects.Models
		in     string
		want   error
	}{
		{"invalid UTF-8", "/9000/0/0", m, "ab\xffcd", objects.ErrUTF8},
		{"invalid UTF-8 no model", "/3/0/0", nil, "\xc3", objects.ErrUTF8},
		{"invalid UTF-8 in a number", "/9000/0/1", m, "1\x80", objects.ErrUTF8},
		{"not an integer", "/9000/0/1", m, "12abc", objects.ErrType},
		{"float for integer", "/9000/0/1", m, "1.5", objects.ErrType},
		{"integer out of range", "/9000/0/1", m, "9223372036854775808", objects.ErrRange},
		{"negative unsigned", "/9000/0/2", m, "-1", objects.ErrType},
		{"unsigned out of range", "/9000/0/2", m, "18446744073709551616", objects.ErrRange},
		{"float overflow", "/9000/0/3", m, "1e400", objects.ErrRange},
		{"boolean 2", "/9000/0/4", m, "2", objects.ErrType},
		{"empty boolean", "/9000/0/4", m, "", objects.ErrType},
		{"opaque not base64", "/9000/0/5", m, "!!!!", objects.ErrType},
		{"time with fraction", "/9000/0/6", m, "1.5", objects.ErrType},
		{"objlnk out of range", "/9000/0/7", m, "1:65536", objects.ErrType},
		{"objlnk without colon", "/9000/0/7", m, "3", objects.ErrType},
		{"huge number", "/9000/0/1", m, strings.Repeat("9", 100000), objects.ErrType},
		{"empty integer", "/3/0/9", reg, "", objects.ErrType},
		{"string for time", "/3/0/13", reg, "yesterday", objects.ErrType},
		{"object", "/3", reg, "x", objects.ErrUnsupported},
		{"instance", "/3/0", reg, "x", objects.ErrUnsupported},
		{"root", "/", reg, "x", objects.ErrUnsupported},
		{"multiple resource", "/3/0/6", reg, "1", objects.ErrUnsupported},
		{"multiple resource test model", "/9000/0/11", m, "1", objects.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := objects.MustParsePath(tt.path)
			n, err := c.Decode(root, []byte(tt.in), tt.models)
			if err == nil {
				t.Fatalf("decoded %v, want an error", nodeValue_(n))
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var de *objects.DecodeError
			if !errors.As(err, &de) || de.Path != root || de.Format != objects.FormatText {
				t.Fatalf("error %#v is not a DecodeError for %s", err, root)
			}
			if !strings.Contains(err.Error(), root.String()) {
				t.Fatalf("error %q does not name %s", err, root)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("error message is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	m := newTestModels()
	var c Codec
	tests := []struct {
		name string
		path string
		node objects.Node
		want error // nil: any error
	}{
		{"instance", "/9000/0", &objects.Instance{ID: 0}, objects.ErrUnsupported},
		{"object", "/9000", &objects.Object{ID: 9000}, objects.ErrUnsupported},
		{"multiple resource node", "/9000/0/1", &objects.Resource{ID: 1, Multiple: true}, objects.ErrUnsupported},
		{"multiple resource by model", "/9000/0/11", &objects.Resource{ID: 11, Value: objects.IntegerValue(1)}, objects.ErrUnsupported},
		{"wrong resource id", "/9000/0/1", &objects.Resource{ID: 2, Value: objects.IntegerValue(1)}, nil},
		{"wrong instance id", "/9000/0/11/3", &objects.ResourceInstance{ID: 4, Value: objects.IntegerValue(1)}, nil},
		{"instance node for resource path", "/9000/0/1", &objects.ResourceInstance{ID: 1, Value: objects.IntegerValue(1)}, nil},
		{"resource node for instance path", "/9000/0/11/1", &objects.Resource{ID: 11, Value: objects.IntegerValue(1)}, nil},
		{"nil node", "/9000/0/1", nil, nil},
		{"nil resource", "/9000/0/1", (*objects.Resource)(nil), nil},
		{"no value", "/9000/0/9", &objects.Resource{ID: 9}, objects.ErrType},
		{"string for integer", "/9000/0/1", &objects.Resource{ID: 1, Value: objects.StringValue("many")}, objects.ErrType},
		{"float for integer", "/9000/0/1", &objects.Resource{ID: 1, Value: objects.FloatValue(1.5)}, objects.ErrType},
		{"negative for unsigned", "/9000/0/2", &objects.Resource{ID: 2, Value: objects.IntegerValue(-1)}, objects.ErrRange},
		{"invalid UTF-8", "/9000/0/0", &objects.Resource{ID: 0, Value: objects.StringValue("\xff")}, objects.ErrUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := objects.MustParsePath(tt.path)
			b, err := c.Encode(root, tt.node, m)
			if err == nil {
				t.Fatalf("encoded %q, want an error", b)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), root.String()) {
				t.Fatalf("error %q does not name %s", err, root)
			}
		})
	}
}

// fuzzRoots are the paths FuzzDecode tries: every type of the test model,
// single and as a resource instance, plus two registry paths and a path
// without a model.
var fuzzRoots = func() []objects.Path {
	var ps []objects.Path
	for i := range allTypes {
		ps = append(ps, objects.NewPath(9000, 0, uint16(i)), objects.NewPath(9000, 0, uint16(10+i), 1))
	}
	return append(ps, objects.MustParsePath("/3/0/13"), objects.MustParsePath("/3/0/6/0"), objects.MustParsePath("/77/0/1"))
}()

func FuzzDecode(f *testing.F) {
	var vecs []specVector
	if b, err := os.ReadFile("testdata/spec-vectors.json"); err == nil {
		_ = json.Unmarshal(b, &vecs)
	}
	for _, vec := range vecs {
		if b, err := os.ReadFile(filepath.Join("testdata", vec.File)); err == nil {
			f.Add(b, uint8(0))
		}
	}
	for _, cp := range shared.CapturesIn(f, int(objects.FormatText)) {
		f.Add(cp.Payload(), uint8(len(cp.Payload())))
	}
	for _, s := range []string{"", "1", "-0", "0x1p-2", "NaN", "-Inf", "1e308", "3:0", "AAEC", "true", " 42 ", "\xff"} {
		f.Add([]byte(s), uint8(len(s)*7))
	}
	m := newTestModels()
	var c Codec
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		root := fuzzRoots[int(which)%len(fuzzRoots)]
		n, err := c.Decode(root, data, m)
		if err != nil {
			var de *objects.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a DecodeError", err)
			}
			return
		}
		b, err := c.Encode(root, n, m)
		if err != nil {
			t.Fatalf("%q decoded to %v but does not encode: %v", data, nodeValue_(n), err)
		}
		n2, err := c.Decode(root, b, m)
		if err != nil {
			t.Fatalf("%q -> %q does not decode: %v", data, b, err)
		}
		if !sameValue(nodeValue_(n), nodeValue_(n2)) || objects.NodeID(n) != objects.NodeID(n2) {
			t.Fatalf("%q -> %v -> %q -> %v", data, nodeValue_(n), b, nodeValue_(n2))
		}
	})
}

// deviceValues are the single values of a realistic Device instance
// (/3/0): what a server reads one by one from a client that only speaks
// text/plain.
func deviceValues() []struct {
	root objects.Path
	node objects.Node
} {
	res := []struct {
		id uint16
		v  objects.Value
	}{
		{0, objects.StringValue("Open Mobile Alliance")}, {1, objects.StringValue("Lightweight M2M Client")},
		{2, objects.StringValue("345000123")}, {3, objects.StringValue("1.0")},
		{9, objects.IntegerValue(100)}, {10, objects.IntegerValue(15)}, {13, objects.TimeSecondsValue(1367491215)},
		{14, objects.StringValue("+02:00")}, {15, objects.StringValue("Europe/Berlin")}, {16, objects.StringValue("U")},
		{17, objects.StringValue("smart meter")}, {18, objects.StringValue("1.2")}, {19, objects.StringValue("2.1.7")},
		{20, objects.IntegerValue(1)}, {21, objects.IntegerValue(4096)},
	}
	var out []struct {
		root objects.Path
		node objects.Node
	}
	for _, r := range res {
		out = append(out, struct {
			root objects.Path
			node objects.Node
		}{objects.NewPath(3, 0, r.id), &objects.Resource{ID: r.id, Value: r.v}})
	}
	for _, ri := range []struct {
		res, id uint16
		v       int64
	}{{6, 0, 1}, {6, 1, 5}, {7, 0, 3800}, {7, 1, 5000}, {8, 0, 125}, {8, 1, 900}, {11, 0, 0}} {
		out = append(out, struct {
			root objects.Path
			node objects.Node
		}{objects.NewPath(3, 0, ri.res, ri.id), &objects.ResourceInstance{ID: ri.id, Value: objects.IntegerValue(ri.v)}})
	}
	return out
}

// BenchmarkEncode writes every value of a Device instance (15 resources
// and the 7 instances of resources 6, 7, 8 and 11), one payload each:
// text/plain cannot carry the instance in one payload.
func BenchmarkEncode(b *testing.B) {
	reg := shared.Registry(b)
	vals := deviceValues()
	var c Codec
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for _, v := range vals {
			if _, err := c.Encode(v.root, v.node, reg); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	reg := shared.Registry(b)
	vals := deviceValues()
	var c Codec
	payloads := make([][]byte, len(vals))
	for i, v := range vals {
		p, err := c.Encode(v.root, v.node, reg)
		if err != nil {
			b.Fatal(err)
		}
		payloads[i] = p
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, v := range vals {
			if _, err := c.Decode(v.root, payloads[k], reg); err != nil {
				b.Fatal(err)
			}
		}
	}
}
