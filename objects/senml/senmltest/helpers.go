package senmltest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// Update rewrites the golden files in testdata/ (go test -update).
var Update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// ValueAt finds the value at p inside node n, which lives at root.
func ValueAt(t *testing.T, root objects.Path, n objects.Node, p string) objects.Value {
	t.Helper()
	want := objects.MustParsePath(p)
	for _, r := range objects.Flatten(root, n) {
		if r.Path == want {
			return r.Value
		}
	}
	t.Fatalf("no value at %s", p)
	return objects.Value{}
}

// RecordAt finds the record at p.
func RecordAt(t *testing.T, recs []objects.Record, p string) objects.Record {
	t.Helper()
	want := objects.MustParsePath(p)
	for _, r := range recs {
		if r.Path == want {
			return r
		}
	}
	t.Fatalf("no record at %s", p)
	return objects.Record{}
}

// CheckValue reports a value that differs from the one wanted.
func CheckValue(t *testing.T, name string, got, want objects.Value) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// Golden compares got with testdata/name, or rewrites it with -update.
func Golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *Update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the encoder output:\n got: %s\nwant: %s", name, got, want)
	}
}

// ReadTestdata reads testdata/name.
func ReadTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Capture returns the interop capture with that ID.
func Capture(t *testing.T, id string) shared.Capture {
	t.Helper()
	for _, c := range shared.Captures(t) {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no capture %s", id)
	return shared.Capture{}
}

// Interop decodes every payload in format f that Wakaama and Anjay sent
// (reads, observations, Send) and every one lwm2md's capture tool wrote
// to them, with the OMA registry as the model, and re-encodes each.
func Interop(t *testing.T, c Codec, f objects.Format) {
	reg := shared.Registry(t)
	var nodes, sends, writes int
	for _, cp := range shared.CapturesIn(t, int(f)) {
		t.Run(cp.ID, func(t *testing.T) {
			if cp.Operation == "send" {
				recs, err := c.DecodeRecords(cp.Payload(), reg)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) == 0 {
					t.Fatal("no records")
				}
				RecordsRoundTrip(t, c, recs, reg)
				sends++
				return
			}
			root := objects.MustParsePath(cp.Path)
			n, err := c.Decode(root, cp.Payload(), reg)
			if err != nil {
				t.Fatalf("%v\npayload: %q", err, cp.Payload())
			}
			NodeRoundTrip(t, c, root, n, reg)
			// Observations carry bt: the records keep it.
			recs, err := c.DecodeRecords(cp.Payload(), reg)
			if err != nil {
				t.Fatalf("records: %v", err)
			}
			RecordsRoundTrip(t, c, recs, reg)
			nodes++
		})
	}
	for _, cp := range shared.Captures(t) {
		if cp.RequestContentFormat == nil || *cp.RequestContentFormat != int(f) || cp.RequestPayloadHex == "" {
			continue
		}
		t.Run(cp.ID+"/request", func(t *testing.T) {
			data, err := hex.DecodeString(cp.RequestPayloadHex)
			if err != nil {
				t.Fatal(err)
			}
			root := objects.MustParsePath(cp.Path)
			n, err := c.Decode(root, data, reg)
			if err != nil {
				t.Fatal(err)
			}
			if r, ok := n.(*objects.Resource); !ok || r.Value.Type() != objects.TypeString {
				t.Errorf("decoded %#v, want a String resource", n)
			}
			writes++
		})
	}
	t.Logf("decoded %d read/observe payloads, %d Send payloads, %d write requests", nodes, sends, writes)
	if nodes == 0 || sends == 0 || writes == 0 {
		t.Error("some kind of capture was not found")
	}
}

// BenchEncode and BenchDecode measure a codec on the Device instance and
// on 100 records.
func BenchEncode(b *testing.B, c Codec) {
	b.Run("device", func(b *testing.B) {
		root, n := objects.NewPath(3, 0), Device()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Encode(root, n, DeviceModel); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("records100", func(b *testing.B) {
		recs := Records100()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.EncodeRecords(recs, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchDecode(b *testing.B, c Codec) {
	b.Run("device", func(b *testing.B) {
		root := objects.NewPath(3, 0)
		data, err := c.Encode(root, Device(), DeviceModel)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Decode(root, data, DeviceModel); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("records100", func(b *testing.B) {
		data, err := c.EncodeRecords(Records100(), nil)
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

// FuzzSeeds adds the fuzz seeds both SenML codecs share: the testdata
// vectors (file name + ext), every capture in format f and every write
// request sent in it, each with the path it answers.
func FuzzSeeds(fz *testing.F, ext string, f objects.Format) {
	for _, v := range Vectors() {
		root := v.Root
		if root == "" {
			root = "/3/0"
		}
		fz.Add(ReadTestdata(fz, v.Name+ext), root)
	}
	for _, cp := range shared.CapturesIn(fz, int(f)) {
		root := cp.Path
		if cp.Operation == "send" {
			root = "/3"
		}
		fz.Add(cp.Payload(), root)
	}
	for _, cp := range shared.Captures(fz) {
		if cp.RequestContentFormat != nil && *cp.RequestContentFormat == int(f) && cp.RequestPayloadHex != "" {
			b, err := hex.DecodeString(cp.RequestPayloadHex)
			if err != nil {
				fz.Fatal(err)
			}
			fz.Add(b, cp.Path)
		}
	}
}

// FuzzNodes checks that Decode never panics, fails only with a
// DecodeError, and that whatever it decodes encodes and decodes again to
// an equal node.
func FuzzNodes(fz *testing.F, c Codec) {
	reg := shared.Registry(fz)
	fz.Fuzz(func(t *testing.T, data []byte, root string) {
		p, err := objects.ParsePath(root)
		if err != nil {
			return
		}
		n, err := c.Decode(p, data, reg)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		NodeRoundTrip(t, c, p, n, reg)
	})
}

// FuzzRecords is FuzzNodes for DecodeRecords, with and without a model.
func FuzzRecords(fz *testing.F, c Codec) {
	reg := shared.Registry(fz)
	fz.Fuzz(func(t *testing.T, data []byte, model string) {
		var m objects.Models = reg
		if len(model)%2 == 1 {
			m = nil
		}
		recs, err := c.DecodeRecords(data, m)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		RecordsRoundTrip(t, c, recs, m)
	})
}

func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *objects.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("%T is not a *objects.DecodeError: %v", err, err)
	}
}
