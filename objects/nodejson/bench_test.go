package nodejson

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
)

func benchDevice(b *testing.B) ([]byte, objects.Node) {
	data, err := os.ReadFile(filepath.Join("testdata", "device.json"))
	if err != nil {
		b.Fatal(err)
	}
	n, err := Unmarshal(data, p("/3/0"), builtin.Registry())
	if err != nil {
		b.Fatal(err)
	}
	return data, n
}

func BenchmarkMarshalDevice(b *testing.B) {
	_, n := benchDevice(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(p("/3/0"), n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalDevice(b *testing.B) {
	data, _ := benchDevice(b)
	m := builtin.Registry()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(data, p("/3/0"), m); err != nil {
			b.Fatal(err)
		}
	}
}
