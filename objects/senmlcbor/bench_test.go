package senmlcbor

import (
	"testing"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

func BenchmarkEncode(b *testing.B) {
	c := testCodec()
	b.Run("device", func(b *testing.B) {
		root, n := objects.NewPath(3, 0), senmltest.Device()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Encode(root, n, senmltest.DeviceModel); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("records100", func(b *testing.B) {
		recs := senmltest.Records100()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.EncodeRecords(recs, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	c := testCodec()
	b.Run("device", func(b *testing.B) {
		root := objects.NewPath(3, 0)
		data, err := c.Encode(root, senmltest.Device(), senmltest.DeviceModel)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Decode(root, data, senmltest.DeviceModel); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("records100", func(b *testing.B) {
		data, err := c.EncodeRecords(senmltest.Records100(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.DecodeRecords(data, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
