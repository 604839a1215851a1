package lwm2mcbor

import (
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// benchDevice is a realistic /3/0: the spec's Device instance plus the
// other resources a client usually reports (19 resources, 3 multiple).
func benchDevice() *objects.Instance {
	in := deviceInstance()
	in.Resources = append(in.Resources,
		objects.NewSingle(15, objects.StringValue("Europe/Berlin")),
		objects.NewSingle(17, objects.StringValue("Demo")),
		objects.NewSingle(18, objects.StringValue("1.0")),
		objects.NewSingle(19, objects.StringValue("1.0.7")),
		objects.NewSingle(20, objects.IntegerValue(0)),
		objects.NewSingle(21, objects.IntegerValue(8192)),
	)
	objects.SortNode(in)
	return in
}

// bench100 is 100 records of mixed types across 12 instances of the
// test object, as a Read-Composite response carries them.
func bench100() []objects.Record {
	recs := make([]objects.Record, 0, 100)
	for i := 0; i < 100; i++ {
		typ := i % 9
		v := samples[allTypes[typ]][1%len(samples[allTypes[typ]])]
		recs = append(recs, objects.Record{Path: objects.NewPath(1000, uint16(i/9), uint16(typ)), Value: v})
	}
	return recs
}

func BenchmarkEncode(b *testing.B) {
	reg, root, in := shared.Registry(b), objects.MustParsePath("/3/0"), benchDevice()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := codec.Encode(root, in, reg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	reg, root := shared.Registry(b), objects.MustParsePath("/3/0")
	data, err := codec.Encode(root, benchDevice(), reg)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := codec.Decode(root, data, reg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAnjay decodes Anjay's indefinite-length read of /3/0.
func BenchmarkDecodeAnjay(b *testing.B) {
	reg, root := shared.Registry(b), objects.MustParsePath("/3/0")
	var data []byte
	for _, c := range shared.CapturesIn(b, int(objects.FormatLwM2MCBOR)) {
		if c.Path == "/3/0" {
			data = c.Payload()
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := codec.Decode(root, data, reg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeRecords100(b *testing.B) {
	recs := bench100()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := codec.EncodeRecords(recs, testModels); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRecords100(b *testing.B) {
	data, err := codec.EncodeRecords(bench100(), testModels)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := codec.DecodeRecords(data, testModels); err != nil {
			b.Fatal(err)
		}
	}
}
