package cborvalue

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testModels has one resource of every type in object 9000, single (IDs
// 0-9, in allTypes order) and multiple (IDs 10-19).
type testModels map[uint16]*objects.ObjectDef

func (m testModels) Object(id uint16) *objects.ObjectDef { return m[id] }

var allTypes = []objects.Type{
	objects.TypeString, objects.TypeInteger, objects.TypeUnsigned, objects.TypeFloat, objects.TypeBoolean,
	objects.TypeOpaque, objects.TypeTime, objects.TypeObjlnk, objects.TypeCorelnk, objects.TypeNone,
}

func newTestModels() testModels {
	def := &objects.ObjectDef{ID: 9000, Name: "Test", Version: "1.0", Multiple: true}
	for i, t := range allTypes {
		def.Resources = append(def.Resources, objects.ResourceDef{ID: uint16(i), Type: t})
	}
	for i, t := range allTypes {
		def.Resources = append(def.Resources, objects.ResourceDef{ID: uint16(10 + i), Type: t, Multiple: true})
	}
	return testModels{9000: def}
}

func resourceFor(t objects.Type) uint16 {
	for i, at := range allTypes {
		if at == t {
			return uint16(i)
		}
	}
	panic(t)
}

func sample(t objects.Type) objects.Value {
	switch t {
	case objects.TypeString:
		return objects.StringValue("Open Mobile Alliance ✓")
	case objects.TypeInteger:
		return objects.IntegerValue(math.MinInt64)
	case objects.TypeUnsigned:
		return objects.UnsignedValue(math.MaxUint64)
	case objects.TypeFloat:
		return objects.FloatValue(50.083463000000002)
	case objects.TypeBoolean:
		return objects.BooleanValue(true)
	case objects.TypeOpaque:
		return objects.OpaqueValue([]byte{0, 0xfa, 0, 3})
	case objects.TypeTime:
		return objects.TimeSecondsValue(1795305992)
	case objects.TypeObjlnk:
		return objects.ObjlnkValue(objects.ObjLink{Object: 33606, Instance: 0})
	case objects.TypeCorelnk:
		return objects.CorelnkValue(`</3/0>;ver="1.1"`)
	}
	return objects.Value{}
}

func value(n objects.Node) objects.Value {
	switch n := n.(type) {
	case *objects.Resource:
		return n.Value
	case *objects.ResourceInstance:
		return n.Value
	}
	return objects.Value{}
}

func sameValue(a, b objects.Value) bool {
	if a.Type() == objects.TypeFloat && b.Type() == objects.TypeFloat && math.IsNaN(a.Float()) && math.IsNaN(b.Float()) {
		return true
	}
	return a.Equal(b)
}

func TestRoundTrip(t *testing.T) {
	m := newTestModels()
	var c Codec
	for i, typ := range allTypes {
		if typ == objects.TypeNone {
			continue
		}
		v := sample(typ)
		for _, tc := range []struct {
			root objects.Path
			node objects.Node
		}{
			{objects.NewPath(9000, 0, uint16(i)), &objects.Resource{ID: uint16(i), Value: v}},
			{objects.NewPath(9000, 0, uint16(10+i), 3), &objects.ResourceInstance{ID: 3, Value: v}},
		} {
			t.Run(typ.String()+tc.root.String(), func(t *testing.T) {
				b, err := c.Encode(tc.root, tc.node, m)
				if err != nil {
					t.Fatal(err)
				}
				n, err := c.Decode(tc.root, b, m)
				if err != nil {
					t.Fatalf("decode %x: %v", b, err)
				}
				if !objects.EqualNodes(n, tc.node) {
					t.Fatalf("%x decoded to %v, want %v", b, value(n), v)
				}
			})
		}
	}
}

// Without a model the CBOR major type decides the type; a Time travels
// tagged and comes back a Time, an Objlnk or Corelnk as a String.
func TestNoModel(t *testing.T) {
	var c Codec
	root := objects.MustParsePath("/77/0/1")
	tests := []struct {
		in, want objects.Value
	}{
		{objects.StringValue("x"), objects.StringValue("x")},
		{objects.IntegerValue(-5), objects.IntegerValue(-5)},
		{objects.IntegerValue(5), objects.IntegerValue(5)},
		{objects.UnsignedValue(5), objects.IntegerValue(5)},
		{objects.UnsignedValue(math.MaxUint64), objects.UnsignedValue(math.MaxUint64)},
		{objects.FloatValue(2), objects.FloatValue(2)},
		{objects.BooleanValue(false), objects.BooleanValue(false)},
		{objects.OpaqueValue([]byte{1}), objects.OpaqueValue([]byte{1})},
		{objects.TimeSecondsValue(7), objects.TimeSecondsValue(7)}, // tag 1 keeps it a Time
		{objects.ObjlnkValue(objects.ObjLink{Object: 3, Instance: 0}), objects.StringValue("3:0")},
	}
	for _, tt := range tests {
		b, err := c.Encode(root, &objects.Resource{ID: 1, Value: tt.in}, nil)
		if err != nil {
			t.Fatalf("%v: %v", tt.in, err)
		}
		n, err := c.Decode(root, b, nil)
		if err != nil || !value(n).Equal(tt.want) {
			t.Errorf("%v -> %x -> %v, %v; want %v", tt.in, b, value(n), err, tt.want)
		}
	}
}

type specVector struct {
	File  string `json:"file"`
	Path  string `json:"path"`
	Type  string `json:"type"`
	Value string `json:"value"`
	From  string `json:"from"`
	// Encoded is what the encoder writes back when it differs from the
	// file (hex): a Time goes out tagged.
	Encoded string `json:"encoded"`
}

// The LwM2M specifications have no application/cbor example, but every
// value in the LwM2M CBOR examples of Core 1.2 is a CBOR data item as this
// format carries it: testdata/spec-*.cbor are those items, each decoded at
// its path with the registry and encoded back to the same bytes.
func TestSpecVectors(t *testing.T) {
	reg := shared.Registry(t)
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
			n, err := c.Decode(root, data, reg)
			if err != nil {
				t.Fatal(err)
			}
			typ, _ := objects.ParseType(vec.Type)
			want, err := objects.ParseText(typ, vec.Value)
			if err != nil {
				t.Fatal(err)
			}
			if got := value(n); !got.Equal(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			want2 := data
			if vec.Encoded != "" {
				want2, _ = hex.DecodeString(vec.Encoded)
			}
			b, err := c.Encode(root, n, reg)
			if err != nil || !bytes.Equal(b, want2) {
				t.Fatalf("re-encoded %x, %v; want %x", b, err, want2)
			}
		})
	}
}

type ownVector struct {
	Name  string `json:"name"`
	Path  string `json:"path"` // in the test model (object 9000) unless it is a registry object
	Hex   string `json:"hex"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Vectors of our own for what the spec examples do not show: every float
// width, tags, indefinite lengths, non-preferred integer heads.
func TestOwnVectors(t *testing.T) {
	m := newTestModels()
	var vecs []ownVector
	readJSON(t, "testdata/own-vectors.json", &vecs)
	var c Codec
	for _, vec := range vecs {
		t.Run(vec.Name, func(t *testing.T) {
			data, err := hex.DecodeString(vec.Hex)
			if err != nil {
				t.Fatal(err)
			}
			root := objects.MustParsePath(vec.Path)
			n, err := c.Decode(root, data, m)
			if err != nil {
				t.Fatal(err)
			}
			typ, _ := objects.ParseType(vec.Type)
			want, err := objects.ParseText(typ, vec.Value)
			if err != nil {
				t.Fatal(err)
			}
			if got := value(n); !sameValue(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestGolden(t *testing.T) {
	m := newTestModels()
	var c Codec
	vals := []objects.Value{}
	for _, typ := range allTypes {
		if typ != objects.TypeNone {
			vals = append(vals, sample(typ))
		}
	}
	vals = append(vals,
		objects.FloatValue(0), objects.FloatValue(math.Copysign(0, -1)), objects.FloatValue(1), objects.FloatValue(1.5),
		objects.FloatValue(65504), objects.FloatValue(100000), objects.FloatValue(3.4028234663852886e38), objects.FloatValue(0.1),
		objects.FloatValue(math.Inf(-1)), objects.FloatValue(math.NaN()),
		objects.IntegerValue(0), objects.IntegerValue(23), objects.IntegerValue(24), objects.IntegerValue(-24), objects.IntegerValue(-25),
		objects.IntegerValue(255), objects.IntegerValue(256), objects.IntegerValue(65536), objects.IntegerValue(1<<32),
		objects.StringValue(""), objects.OpaqueValue(nil), objects.BooleanValue(false), objects.TimeSecondsValue(-1),
	)
	var out strings.Builder
	for _, v := range vals {
		id := resourceFor(v.Type())
		root := objects.NewPath(9000, 0, id)
		b, err := c.Encode(root, &objects.Resource{ID: id, Value: v}, m)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		fmt.Fprintf(&out, "%-12s %-28s %x\n", v.Type(), v.Text(), b)
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
		t.Fatalf("testdata/golden-encode.txt (%v):\n got:\n%s\nwant:\n%s", err, got, want)
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

// capturedItem is one CBOR value item a client produced, with the path it
// belongs to.
type capturedItem struct {
	id   string
	path objects.Path
	item []byte
}

// capturedItems pulls the value items out of the clients' SenML CBOR
// records (keys -2 bn, 0 n; values 2 v, 3 vs, 4 vb, 8 vd, "vlo") and out of
// Anjay's single-value LwM2M CBOR reads ({_ [o,i,r]: value}). No client was
// captured answering in application/cbor itself, but these items are CBOR
// values exactly as that format carries them.
func capturedItems(tb testing.TB) []capturedItem {
	var out []capturedItem
	for _, cp := range shared.CapturesIn(tb, int(objects.FormatSenMLCBOR)) {
		var recs []map[any]cbor.RawMessage
		if err := cbor.Unmarshal(cp.Payload(), &recs); err != nil {
			tb.Fatalf("%s: %v", cp.ID, err)
		}
		bn := ""
		for _, r := range recs {
			if raw, ok := r[int64(-2)]; ok {
				if err := cbor.Unmarshal(raw, &bn); err != nil {
					tb.Fatalf("%s: bn: %v", cp.ID, err)
				}
			}
			n := ""
			if raw, ok := r[uint64(0)]; ok {
				if err := cbor.Unmarshal(raw, &n); err != nil {
					tb.Fatalf("%s: n: %v", cp.ID, err)
				}
			}
			p, err := objects.ParsePath(bn + n)
			if err != nil || p.Len() < 3 {
				tb.Fatalf("%s: name %q: %v", cp.ID, bn+n, err)
			}
			for _, k := range []any{uint64(2), uint64(3), uint64(4), uint64(8), "vlo"} {
				if raw, ok := r[k]; ok {
					out = append(out, capturedItem{cp.ID, p, raw})
				}
			}
		}
	}
	for _, cp := range shared.CapturesIn(tb, int(objects.FormatLwM2MCBOR)) {
		p := objects.MustParsePath(cp.Path)
		data := cp.Payload()
		if p.Len() < 3 || (data[0] != 0xbf && data[0] != 0xa1) {
			continue
		}
		rest, err := cbor.UnmarshalFirst(data[1:], new(cbor.RawMessage)) // the key
		if err != nil {
			tb.Fatalf("%s: %v", cp.ID, err)
		}
		if data[0] == 0xbf {
			rest = rest[:len(rest)-1] // the break
		}
		if rest[0]>>5 == 5 { // a nested map: a multiple resource
			continue
		}
		out = append(out, capturedItem{cp.ID, p, rest})
	}
	return out
}

func TestInteropItems(t *testing.T) {
	reg := shared.Registry(t)
	var c Codec
	items := capturedItems(t)
	byType := map[objects.Type]int{}
	for _, it := range items {
		n, err := c.Decode(it.path, it.item, reg)
		if err != nil {
			t.Errorf("%s %s %x: %v", it.id, it.path, it.item, err)
			continue
		}
		v := value(n)
		if want := objects.TypeOf(reg, it.path); want != objects.TypeNone && v.Type() != want {
			t.Errorf("%s %s: %v, model says %v", it.id, it.path, v, want)
		}
		byType[v.Type()]++
		switch it.path.String() {
		case "/3/0/0":
			if s := v.Str(); s != "vec" && s != "Open Mobile Alliance" {
				t.Errorf("%s: manufacturer %q", it.id, s)
			}
		case "/3/0/13":
			if v.Seconds() < 1_700_000_000 {
				t.Errorf("%s: current time %v", it.id, v)
			}
		}
	}
	t.Logf("decoded %d CBOR value items from SenML CBOR and LwM2M CBOR captures: %v", len(items), byType)
	if len(items) < 100 {
		t.Errorf("only %d captured items", len(items))
	}
	for _, typ := range []objects.Type{objects.TypeString, objects.TypeInteger, objects.TypeFloat, objects.TypeBoolean, objects.TypeOpaque, objects.TypeTime, objects.TypeObjlnk} {
		if byType[typ] == 0 {
			t.Errorf("no captured %v value", typ)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	m := newTestModels()
	reg := shared.Registry(t)
	var c Codec
	tests := []struct {
		name, path string
		models     objects.Models
		hex        string
		want       error
	}{
		{"empty", "/9000/0/1", m, "", objects.ErrMalformed},
		{"truncated integer", "/9000/0/1", m, "1a0102", objects.ErrMalformed},
		{"truncated string", "/9000/0/0", m, "6461", objects.ErrMalformed},
		{"huge declared length", "/9000/0/5", m, "5bffffffffffffffff00", objects.ErrMalformed},
		{"huge text length", "/9000/0/0", m, "7a7fffffff61", objects.ErrMalformed},
		{"trailing bytes", "/9000/0/1", m, "0102", objects.ErrMalformed},
		{"two items", "/9000/0/0", m, "6161f5", objects.ErrMalformed},
		{"reserved additional info", "/9000/0/1", m, "1c", objects.ErrMalformed},
		{"unterminated indefinite bytes", "/9000/0/5", m, "5f4101", objects.ErrMalformed},
		{"indefinite integer", "/9000/0/1", m, "1f", objects.ErrMalformed},
		{"break alone", "/9000/0/1", m, "ff", objects.ErrMalformed},
		{"deep tags", "/9000/0/6", m, "c1c1c1c1c1c1c1c1c1c101", objects.ErrMalformed},
		{"invalid UTF-8", "/9000/0/0", m, "62c328", objects.ErrUTF8},
		{"invalid UTF-8 no model", "/77/0/0", nil, "61ff", objects.ErrUTF8},
		{"array", "/9000/0/1", m, "8101", objects.ErrType},
		{"map", "/9000/0/1", m, "a10102", objects.ErrType},
		{"null", "/9000/0/1", m, "f6", objects.ErrType},
		{"undefined", "/9000/0/0", m, "f7", objects.ErrType},
		{"simple value", "/9000/0/4", m, "f820", objects.ErrType},
		{"bignum tag", "/9000/0/1", m, "c249010000000000000000", objects.ErrType},
		{"tag 1 around text", "/9000/0/6", m, "c16161", objects.ErrMalformed}, // RFC 8949 §3.4.2: the library checks tag 1 content
		{"tag 0 bad date", "/9000/0/6", m, "c06161", objects.ErrType},
		{"tag around tag", "/9000/0/6", m, "c1c101", objects.ErrMalformed},
		{"unknown tag around tag", "/9000/0/1", m, "d825c101", objects.ErrType},
		{"tag 1 NaN", "/9000/0/6", m, "c1f97e00", objects.ErrRange},
		{"tag 1 huge", "/9000/0/6", m, "c11bffffffffffffffff", objects.ErrRange},
		{"negative below int64", "/9000/0/1", m, "3bffffffffffffffff", objects.ErrRange},
		{"unsigned above int64 for Integer", "/9000/0/1", m, "1bffffffffffffffff", objects.ErrRange},
		{"negative for Unsigned", "/9000/0/2", m, "20", objects.ErrRange},
		{"float with fraction for Integer", "/9000/0/1", m, "f93e00", objects.ErrType},
		{"text for Integer", "/9000/0/1", m, "6178", objects.ErrType},
		{"integer for Boolean", "/9000/0/4", m, "02", objects.ErrType},
		{"text for Objlnk", "/9000/0/7", m, "6133", objects.ErrType},
		{"boolean for String", "/9000/0/0", m, "f5", objects.ErrType},
		{"integer for Time by registry", "/3/0/13", reg, "6161", objects.ErrType},
		{"object", "/3", reg, "01", objects.ErrUnsupported},
		{"instance", "/3/0", reg, "01", objects.ErrUnsupported},
		{"multiple resource", "/3/0/6", reg, "01", objects.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			root := objects.MustParsePath(tt.path)
			n, err := c.Decode(root, data, tt.models)
			if err == nil {
				t.Fatalf("decoded %v, want an error", value(n))
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var de *objects.DecodeError
			if !errors.As(err, &de) || de.Path != root || de.Format != objects.FormatCBOR {
				t.Fatalf("error %#v is not a DecodeError for %s", err, root)
			}
			if !strings.Contains(err.Error(), root.String()) {
				t.Fatalf("error %q does not name %s", err, root)
			}
		})
	}
}

func TestTrailingOffset(t *testing.T) {
	var c Codec
	_, err := c.Decode(objects.MustParsePath("/77/0/1"), []byte{0x19, 0x01, 0x00, 0xff}, nil)
	var de *objects.DecodeError
	if !errors.As(err, &de) || de.Offset != 3 {
		t.Fatalf("error %v, want offset 3", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	m := newTestModels()
	var c Codec
	tests := []struct {
		name, path string
		node       objects.Node
		want       error
	}{
		{"instance", "/9000/0", &objects.Instance{ID: 0}, objects.ErrUnsupported},
		{"multiple node", "/9000/0/1", &objects.Resource{ID: 1, Multiple: true}, objects.ErrUnsupported},
		{"multiple by model", "/9000/0/11", &objects.Resource{ID: 11, Value: objects.IntegerValue(1)}, objects.ErrUnsupported},
		{"no value", "/9000/0/9", &objects.Resource{ID: 9}, objects.ErrType},
		{"wrong id", "/9000/0/1", &objects.Resource{ID: 2, Value: objects.IntegerValue(1)}, nil},
		{"wrong kind", "/9000/0/1", &objects.ResourceInstance{ID: 1, Value: objects.IntegerValue(1)}, nil},
		{"nil", "/9000/0/1", nil, nil},
		{"string for Integer", "/9000/0/1", &objects.Resource{ID: 1, Value: objects.StringValue("x")}, objects.ErrType},
		{"invalid UTF-8", "/9000/0/0", &objects.Resource{ID: 0, Value: objects.StringValue("\xff")}, objects.ErrUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := objects.MustParsePath(tt.path)
			b, err := c.Encode(root, tt.node, m)
			if err == nil {
				t.Fatalf("encoded %x, want an error", b)
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

var fuzzRoots = func() []objects.Path {
	var ps []objects.Path
	for i := range allTypes {
		ps = append(ps, objects.NewPath(9000, 0, uint16(i)), objects.NewPath(9000, 0, uint16(10+i), 1))
	}
	return append(ps, objects.MustParsePath("/77/0/1"))
}()

func FuzzDecode(f *testing.F) {
	var vecs []specVector
	if b, err := os.ReadFile("testdata/spec-vectors.json"); err == nil {
		_ = json.Unmarshal(b, &vecs)
	}
	for _, v := range vecs {
		if b, err := os.ReadFile(filepath.Join("testdata", v.File)); err == nil {
			f.Add(b, uint8(0))
		}
	}
	var own []ownVector
	if b, err := os.ReadFile("testdata/own-vectors.json"); err == nil {
		_ = json.Unmarshal(b, &own)
	}
	for i, v := range own {
		if b, err := hex.DecodeString(v.Hex); err == nil {
			f.Add(b, uint8(i))
		}
	}
	for _, cp := range shared.CapturesIn(f, int(objects.FormatCBOR)) { // none captured so far
		f.Add(cp.Payload(), uint8(0))
	}
	for i, it := range capturedItems(f) {
		f.Add(it.item, uint8(i))
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
			t.Fatalf("%x decoded to %v but does not encode: %v", data, value(n), err)
		}
		n2, err := c.Decode(root, b, m)
		if err != nil {
			t.Fatalf("%x -> %x does not decode: %v", data, b, err)
		}
		if !sameValue(value(n), value(n2)) {
			t.Fatalf("%x -> %v -> %x -> %v", data, value(n), b, value(n2))
		}
		// The encoding is canonical: encoding again gives the same bytes.
		b2, err := c.Encode(root, n2, m)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("%v encodes to %x then %x (%v)", value(n), b, b2, err)
		}
	})
}

type single struct {
	root objects.Path
	node objects.Node
}

// deviceValues are the single values of a realistic Device instance.
func deviceValues() []single {
	var out []single
	for _, r := range []struct {
		id uint16
		v  objects.Value
	}{
		{0, objects.StringValue("Open Mobile Alliance")}, {1, objects.StringValue("Lightweight M2M Client")},
		{2, objects.StringValue("345000123")}, {3, objects.StringValue("1.0")},
		{9, objects.IntegerValue(100)}, {10, objects.IntegerValue(15)}, {13, objects.TimeSecondsValue(1367491215)},
		{14, objects.StringValue("+02:00")}, {15, objects.StringValue("Europe/Berlin")}, {16, objects.StringValue("U")},
		{17, objects.StringValue("smart meter")}, {18, objects.StringValue("1.2")}, {19, objects.StringValue("2.1.7")},
		{20, objects.IntegerValue(1)}, {21, objects.IntegerValue(4096)},
	} {
		out = append(out, single{objects.NewPath(3, 0, r.id), &objects.Resource{ID: r.id, Value: r.v}})
	}
	for _, ri := range []struct {
		res, id uint16
		v       int64
	}{{6, 0, 1}, {6, 1, 5}, {7, 0, 3800}, {7, 1, 5000}, {8, 0, 125}, {8, 1, 900}, {11, 0, 0}} {
		out = append(out, single{objects.NewPath(3, 0, ri.res, ri.id), &objects.ResourceInstance{ID: ri.id, Value: objects.IntegerValue(ri.v)}})
	}
	return out
}

// BenchmarkEncode writes the 22 single values of a Device instance, one
// payload each (application/cbor carries one value).
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
