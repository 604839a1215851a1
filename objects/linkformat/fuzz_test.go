package linkformat

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// seeds adds the testdata payloads and the captured link-format payloads.
func seeds(f *testing.F) [][]byte {
	var out [][]byte
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		if strings.HasPrefix(filepath.Base(file), "golden") {
			continue
		}
		if b, err := os.ReadFile(file); err == nil {
			out = append(out, b)
		}
	}
	for _, c := range shared.CapturesIn(f, int(objects.FormatLinkFormat)) {
		out = append(out, c.Payload())
	}
	return out
}

func checkDecodeError(t *testing.T, err error) {
	var de *objects.DecodeError
	if !errors.As(err, &de) || de.Format != objects.FormatLinkFormat {
		t.Fatalf("error %v is not a link-format DecodeError", err)
	}
	if de.Offset < -1 {
		t.Fatalf("error %v has offset %d", err, de.Offset)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ls, err := Parse(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		enc := Encode(ls)
		back, err := Parse(enc)
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", data, enc, err)
		}
		if !sameLinks(back, ls) {
			t.Fatalf("%q -> %#v -> %q -> %#v", data, ls, enc, back)
		}
		if enc2 := Encode(back); !bytes.Equal(enc, enc2) {
			t.Fatalf("Encode is not stable: %q then %q", enc, enc2)
		}
	})
}

func FuzzParseRegistration(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRegistration(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		enc := EncodeRegistration(r)
		back, err := ParseRegistration(enc)
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", data, enc, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("%q -> %+v -> %q -> %+v", data, r, enc, back)
		}
	})
}

func FuzzParseDiscover(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s, "/")
		f.Add(s, "/3")
	}
	f.Fuzz(func(t *testing.T, data []byte, rootText string) {
		root, err := objects.ParsePath(rootText)
		if err != nil {
			return
		}
		ls, err := ParseDiscover(root, data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		enc := EncodeDiscover(ls)
		back, err := ParseDiscover(root, enc)
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", data, enc, err)
		}
		if !sameDiscover(back, ls) {
			t.Fatalf("%q -> %+v -> %q -> %+v", data, ls, enc, back)
		}
	})
}

// sameDiscover compares links ignoring the Quoted flag of other params.
func sameDiscover(a, b []DiscoverLink) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path || !sameAttributes(a[i].Attributes, b[i].Attributes) ||
			!sameLinks([]Link{{Params: a[i].Other}}, []Link{{Params: b[i].Other}}) {
			return false
		}
	}
	return true
}

func sameAttributes(a, b Attributes) bool {
	if math.IsNaN(a.GT) || math.IsNaN(a.LT) || math.IsNaN(a.ST) {
		return false // never produced by the parser
	}
	return reflect.DeepEqual(a, b)
}

// FuzzParseAttributes feeds the same text as a Write-Attributes query
// ("pmin=1&gt=2") and as the parameters of a link.
func FuzzParseAttributes(f *testing.F) {
	for _, s := range []string{
		"pmin=10&pmax=60", "gt=5.5&lt=-3&st=0.5", "st", "pmin&pmax=0", "epmin=1&epmax=30", "edge=1&con=0&hqmax=10",
		"dim=255&ssid=65534&ver=2.2&lwm2m=1.1", "uri=coaps://a.example.com", "lt=1&st=2&gt=5.0001", "gt=1e3", "ver=2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var q []string
		if s != "" {
			q = strings.Split(s, "&")
		}
		a, err := ParseQuery(q)
		if err == nil {
			if err := a.Validate(); err != nil {
				t.Fatalf("%q parsed to %+v, which does not validate: %v", s, a, err)
			}
			back, err := ParseQuery(a.Query())
			if err != nil || !sameAttributes(back, a) {
				t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, a, a.Query(), back, err)
			}
		} else if !errors.Is(err, ErrAttribute) {
			t.Fatalf("%q: error %v does not wrap ErrAttribute", s, err)
		}

		ls, err := Parse([]byte("</3/0/7>;" + strings.ReplaceAll(s, "&", ";")))
		if err != nil || len(ls) != 1 {
			return
		}
		a, err = ParseAttributes(ls[0].Params)
		if err != nil {
			if !errors.Is(err, ErrAttribute) {
				t.Fatalf("%q: error %v does not wrap ErrAttribute", s, err)
			}
			return
		}
		back, err := Parse(Encode([]Link{{Target: "/3/0/7", Params: a.Params()}}))
		if err != nil {
			t.Fatal(err)
		}
		a2, err := ParseAttributes(back[0].Params)
		if err != nil || !sameAttributes(a2, a) {
			t.Fatalf("%q -> %+v -> %+v, %v", s, a, a2, err)
		}
	})
}

// anjayDiscover is Anjay's Discover /3/0 answer, a realistic Device
// instance (22 resources, 5 of them multiple).
func anjayDiscover(b *testing.B) []byte {
	for _, c := range shared.CapturesIn(b, int(objects.FormatLinkFormat)) {
		if c.ID == "anjay-1.2/065-discover-3_0" {
			return c.Payload()
		}
	}
	b.Skip("capture anjay-1.2/065-discover-3_0 missing")
	return nil
}

// discover100 is a Discover answer of 100 resources with attributes.
func discover100() []byte {
	var ls []DiscoverLink
	ls = append(ls, DiscoverLink{Path: objects.MustParsePath("/3303/0"), Attributes: Attributes{Set: AttrPMin | AttrPMax, PMin: 10, PMax: 60}})
	for i := 0; i < 100; i++ {
		a := Attributes{}
		if i%3 == 0 {
			a = Attributes{Set: AttrDim | AttrGT | AttrLT, Dim: 4, GT: 50, LT: 42.2}
		}
		ls = append(ls, DiscoverLink{Path: objects.NewPath(3303, 0, uint16(5700+i)), Attributes: a})
	}
	return EncodeDiscover(ls)
}

func BenchmarkParse(b *testing.B) {
	data := anjayDiscover(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name string
		root objects.Path
		data []byte
	}{
		{"device", objects.MustParsePath("/3/0"), anjayDiscover(b)},
		{"100-resources", objects.MustParsePath("/3303/0"), discover100()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for i := 0; i < b.N; i++ {
				if _, err := ParseDiscover(bc.root, bc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, bc := range []struct {
		name string
		root objects.Path
		data []byte
	}{
		{"device", objects.MustParsePath("/3/0"), anjayDiscover(b)},
		{"100-resources", objects.MustParsePath("/3303/0"), discover100()},
	} {
		ls, err := ParseDiscover(bc.root, bc.data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				EncodeDiscover(ls)
			}
		})
	}
}

func BenchmarkRegistration(b *testing.B) {
	var data []byte
	for _, c := range shared.CapturesIn(b, int(objects.FormatLinkFormat)) {
		if c.ID == "anjay-1.2/001-register" {
			data = c.Payload()
		}
	}
	r, err := ParseRegistration(data)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ParseRegistration(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			EncodeRegistration(r)
		}
	})
}

func BenchmarkQuery(b *testing.B) {
	q := []string{"pmin=10", "pmax=60", "gt=50", "lt=42.2", "st=0.5"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		a, err := ParseQuery(q)
		if err != nil {
			b.Fatal(err)
		}
		_ = a.Query()
	}
}
