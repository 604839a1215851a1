package tlv

import (
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

// The benchmarks use a realistic Device object instance (/3/0): 19
// resources with the multiple resources 6, 7, 8 and 11, typed by the
// OMA registry.

func BenchmarkEncode(b *testing.B) {
	m := models(b)
	root := objects.MustParsePath("/3/0")
	in := deviceInstance()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Codec{}).Encode(root, in, m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	m := models(b)
	root := objects.MustParsePath("/3/0")
	data, err := Codec{}.Encode(root, deviceInstance(), m)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Codec{}).Decode(root, data, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnpack is the wire level alone, for comparison.
func BenchmarkUnpack(b *testing.B) {
	data, err := Codec{}.Encode(objects.MustParsePath("/3/0"), deviceInstance(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unpack(data); err != nil {
			b.Fatal(err)
		}
	}
}
