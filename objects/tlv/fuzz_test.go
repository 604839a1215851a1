package tlv

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

// fuzzSeed is a payload and the path it was read at.
type fuzzSeed struct {
	data []byte
	root objects.Path
}

// fuzzSeeds gathers the spec vectors, the golden files and every TLV
// payload of the interop captures.
func fuzzSeeds(f *testing.F) []fuzzSeed {
	var seeds []fuzzSeed
	for _, sv := range specVectors {
		b, err := os.ReadFile(filepath.Join("testdata", sv.file))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, fuzzSeed{b, objects.MustParsePath(sv.root)})
	}
	for _, g := range goldens() {
		b, err := os.ReadFile(filepath.Join("testdata", "golden", g.name+".tlv"))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, fuzzSeed{b, objects.MustParsePath(g.root)})
	}
	for _, v := range interopVectors(f) {
		seeds = append(seeds, fuzzSeed{v.data, objects.MustParsePath(v.path)})
	}
	return seeds
}

// fuzzRoot builds the request path from the fuzzer's integers: depth
// picks how many of the IDs are used (1 to 4).
func fuzzRoot(depth uint8, o, i, r, ri uint16) objects.Path {
	return objects.NewPath([]uint16{o, i, r, ri}[:1+depth%4]...)
}

func seedArgs(s fuzzSeed) (uint8, uint16, uint16, uint16, uint16) {
	ids := append(s.root.IDs(), 0, 0, 0)
	return uint8(s.root.Len() - 1), ids[0], ids[1], ids[2], ids[3]
}

// FuzzDecode checks that Codec.Decode never panics, that every error is
// a *objects.DecodeError, and that whatever decodes re-encodes, decodes
// again to the same node and re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	m := models(f)
	for _, s := range fuzzSeeds(f) {
		d, o, i, r, ri := seedArgs(s)
		f.Add(s.data, d, o, i, r, ri, true)
		f.Add(s.data, d, o, i, r, ri, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, depth uint8, o, i, r, ri uint16, typed bool) {
		root := fuzzRoot(depth, o, i, r, ri)
		var mm objects.Models
		if typed {
			mm = m
		}
		n, err := Codec{}.Decode(root, data, mm)
		if err != nil {
			var de *objects.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T) is not a DecodeError", err, err)
			}
			return
		}
		out, err := Codec{}.Encode(root, n, mm)
		if err != nil {
			t.Fatalf("decoded node does not encode: %v\n%s", err, dump(root, n))
		}
		n2, err := Codec{}.Decode(root, out, mm)
		if err != nil {
			t.Fatalf("re-encoded payload does not decode: %v\n% x", err, out)
		}
		if !sameNodes(n, n2) {
			t.Fatalf("round trip changed the node:\n%s\n%s", dump(root, n), dump(root, n2))
		}
		out2, err := Codec{}.Encode(root, n2, mm)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not stable: %v\n% x\n% x", err, out, out2)
		}
	})
}

// FuzzUnpack checks the wire level: Unpack never panics, and what it
// accepts packs, unpacks to the same entries and packs to the same bytes.
func FuzzUnpack(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Unpack(data)
		if err != nil {
			if !errors.Is(err, objects.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		b, err := Pack(entries)
		if err != nil {
			t.Fatalf("unpacked entries do not pack: %v", err)
		}
		if len(b) > len(data) {
			t.Fatalf("canonical form is longer than the input: %d > %d", len(b), len(data))
		}
		again, err := Unpack(b)
		if err != nil || !equalEntries(entries, again) {
			t.Fatalf("pack/unpack changed the entries: %v", err)
		}
		if b2, _ := Pack(again); !bytes.Equal(b, b2) {
			t.Fatalf("packing is not stable:\n% x\n% x", b, b2)
		}
	})
}
