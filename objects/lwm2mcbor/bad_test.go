package lwm2mcbor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// TestBadInput: every malformed or ill-typed payload fails with a
// *objects.DecodeError of the right kind that names a path, never a
// panic.
func TestBadInput(t *testing.T) {
	reg := shared.Registry(t)
	tests := []struct {
		name string
		root string
		data string // hex, spaces ignored
		want error
		path string // the path the error must name
	}{
		// Well-formedness (checked by fxamacker/cbor).
		{"empty", "/3/0", "", objects.ErrMalformed, "/3/0"},
		{"truncated map", "/3/0", "a2 820300 a1 09 1864", objects.ErrMalformed, "/3/0"},
		{"truncated head", "/3/0/9", "a1 83030009 19", objects.ErrMalformed, "/3/0/9"},
		{"truncated string", "/3/0/0", "a1 83030000 63 7665", objects.ErrMalformed, "/3/0/0"},
		{"unterminated indefinite map", "/3/0/9", "bf 83030009 1864", objects.ErrMalformed, "/3/0/9"},
		{"unterminated indefinite key", "/3/0/9", "a1 9f030009", objects.ErrMalformed, "/3/0/9"},
		{"unterminated indefinite string", "/3/0/0", "a1 83030000 7f 6176", objects.ErrMalformed, "/3/0/0"},
		{"break in a definite map", "/3/0/9", "a1 ff 1864", objects.ErrMalformed, "/3/0/9"},
		{"break as a value", "/3/0/9", "bf 83030009 ff ff", objects.ErrMalformed, "/3/0/9"},
		{"break at the top", "/3/0", "ff", objects.ErrMalformed, "/3/0"},
		{"odd indefinite map", "/3/0/9", "bf 83030009 1864 04 ff", objects.ErrMalformed, "/3/0/9"},
		{"bad chunk type", "/3/0/0", "a1 83030000 7f 4176 ff", objects.ErrMalformed, "/3/0/0"},
		{"reserved head", "/3/0/9", "a1 83030009 1c", objects.ErrMalformed, "/3/0/9"},
		{"trailing bytes", "/3/0/9", "a1 83030009 1864 00", objects.ErrMalformed, "/3/0/9"},
		{"huge string length", "/3/0/0", "a1 83030000 7b7fffffffffffffff 76", objects.ErrMalformed, "/3/0/0"},
		{"huge map length", "/3/0", "bb00000000ffffffff 00", objects.ErrMalformed, "/3/0"},
		{"huge array length", "/3/0", "a1 9b00000000ffffffff", objects.ErrMalformed, "/3/0"},
		{"deep arrays", "/3/0", "a1 820300 " + strings.Repeat("81", 10000) + "00", objects.ErrMalformed, "/3/0"},
		{"deep maps", "/3/0", strings.Repeat("a100", 10000) + "00", objects.ErrMalformed, "/3/0"},
		{"deep tags", "/3/0/9", "a1 83030009 " + strings.Repeat("c1", 10000) + "00", objects.ErrMalformed, "/3/0/9"},
		// Structure.
		{"top level integer", "/3/0", "00", objects.ErrMalformed, "/3/0"},
		{"top level array", "/3/0", "84 01020304", objects.ErrMalformed, "/3/0"},
		{"duplicate key", "/3/0", "a1 820300 a2 09 1864 09 1865", objects.ErrMalformed, "/3/0/9"},
		{"duplicate key, indefinite", "/3/0", "bf 820300 bf 09 1864 09 1865 ff ff", objects.ErrMalformed, "/3/0/9"},
		{"duplicate array key", "/3/0", "a2 820300 a1 09 1864 820300 a1 0a 0f", objects.ErrMalformed, "/3/0"},
		{"duplicate key, other spelling", "/3/0", "a2 820300 a1 09 1864 82 1803 00 a1 0a 0f", objects.ErrMalformed, "/3/0"},
		{"one path twice through split keys", "/3/0", "a2 820300 a1 09 1864 83030009 1865", objects.ErrMalformed, "/3/0/9"},
		{"value above other paths", "/3/0", "a2 83030006 01 84030006 00 02", objects.ErrMalformed, "/3/0/6/0"},
		{"key too big", "/3/0", "a1 820300 a1 1a00010000 05", objects.ErrMalformed, "/3/0"},
		{"key too big in an array", "/3/0", "a1 83 03 00 1a00010000 05", objects.ErrMalformed, "/"},
		{"negative key", "/3/0", "a1 820300 a1 20 05", objects.ErrMalformed, "/3/0"},
		{"text key", "/3/0", "a1 03 a1 6130 a1 09 05", objects.ErrMalformed, "/3"},
		{"gateway prefix key", "/3/0", "a1 84 6464657631 03 00 09 05", objects.ErrMalformed, "/"},
		{"float key", "/3/0", "a1 f94200 a1 09 05", objects.ErrMalformed, "/"},
		{"empty array key", "/3/0", "a1 03 a1 80 a1 09 05", objects.ErrMalformed, "/3"},
		{"nested array key", "/3/0", "a1 82 03 81 00 a1 09 05", objects.ErrMalformed, "/"},
		{"five IDs in a key", "/3/0", "a1 85 0300090001 05", objects.ErrMalformed, "/"},
		{"five IDs, indefinite key", "/3/0", "a1 9f 0300090001 ff 05", objects.ErrMalformed, "/"},
		{"path deeper than 4", "/3/0", "a1 820300 a1 0b a1 00 a1 00 05", objects.ErrMalformed, "/3/0/11/0"},
		{"array keys too deep", "/3/0", "a1 820300 a1 82 0b00 a1 00 05", objects.ErrMalformed, "/3/0/11/0"},
		{"map at a resource instance", "/3/0", "a1 840300 0b00 a0", objects.ErrMalformed, "/3/0/11/0"},
		{"value at an instance", "/3/0", "a1 820300 05", objects.ErrMalformed, "/3/0"},
		{"value at an object", "/3", "a1 03 05", objects.ErrMalformed, "/3"},
		{"array as a value", "/3/0", "a1 820300 a1 09 81 05", objects.ErrMalformed, "/3/0/9"},
		{"map in an array value", "/3/0", "a1 03 a1 00 a1 09 81 a1 00 01", objects.ErrMalformed, "/3/0/9"},
		{"root request", "/", "a1 03 a0", objects.ErrUnsupported, "/"},
		// Paths outside the request.
		{"other instance", "/3/0", "a1 820301 a1 09 1864", objects.ErrMalformed, "/3/1/9"},
		{"other object", "/3/0/9", "a1 83010001 1864", objects.ErrMalformed, "/1/0/1"},
		{"sibling resource", "/3/0/9", "a1 820300 a2 09 1864 0a 0f", objects.ErrMalformed, "/3/0/10"},
		{"empty map above the request", "/3/0", "a1 03 a0", objects.ErrMalformed, "/3"},
		{"no value for a resource read", "/3/0/9", "a1 820300 a0", objects.ErrMalformed, "/3/0"},
		{"no value for a resource read, empty map", "/3/0/9", "a0", objects.ErrMalformed, "/3/0/9"},
		// Values.
		{"invalid UTF-8", "/3/0/0", "a1 83030000 62 c328", objects.ErrUTF8, "/3/0/0"},
		{"invalid UTF-8 across chunks", "/3/0/0", "a1 83030000 7f 61c3 6128 ff", objects.ErrUTF8, "/3/0/0"},
		{"null", "/3/0/9", "a1 83030009 f6", objects.ErrType, "/3/0/9"},
		{"undefined", "/3/0/9", "a1 83030009 f7", objects.ErrType, "/3/0/9"},
		{"simple value", "/3/0/9", "a1 83030009 f0", objects.ErrType, "/3/0/9"},
		{"unknown tag", "/3/0/0", "a1 83030000 d82550 00000000000000000000000000000000", objects.ErrType, "/3/0/0"},
		{"bignum", "/3/0/9", "a1 83030009 c2 49 010000000000000000", objects.ErrType, "/3/0/9"},
		{"tag 1 around text", "/3/0/13", "a1 8303000d c1 6131", objects.ErrType, "/3/0/13"},
		{"bad decimal fraction", "/6/0/0", "a1 83060000 c4 83 01 02 03", objects.ErrType, "/6/0/0"},
		{"decimal fraction overflow", "/6/0/0", "a1 83060000 c4 82 1a00100000 01", objects.ErrRange, "/6/0/0"},
		{"negative below -2^63", "/3/0/9", "a1 83030009 3b8000000000000000", objects.ErrRange, "/3/0/9"},
		{"unsigned beyond int64 for an integer", "/3/0/9", "a1 83030009 1b8000000000000000", objects.ErrRange, "/3/0/9"},
		{"negative for an unsigned", "/1/0/19", "a1 83010013 20", objects.ErrRange, "/1/0/19"},
		{"text for an integer", "/3/0/9", "a1 83030009 63 616263", objects.ErrType, "/3/0/9"},
		{"integer for a string", "/3/0/0", "a1 83030000 01", objects.ErrType, "/3/0/0"},
		{"boolean for a time", "/3/0/13", "a1 8303000d f5", objects.ErrType, "/3/0/13"},
		{"fraction for an integer", "/3/0/9", "a1 83030009 f93e00", objects.ErrType, "/3/0/9"},
		{"2 for a boolean", "/1/0/6", "a1 83010006 02", objects.ErrType, "/1/0/6"},
		{"bad object link text", "/3/0/22/0", "a1 8403001600 63 333a78", objects.ErrType, "/3/0/22/0"},
		{"bytes that are not UTF-8 for a string", "/3/0/0", "a1 83030000 41 ff", objects.ErrType, "/3/0/0"},
		{"multiple resource given one value", "/3/0", "a1 820300 a1 06 01", objects.ErrType, "/3/0/6"},
		{"single resource given an instance", "/3/0", "a1 820300 a1 00 a1 01 6178", objects.ErrType, "/3/0/0/1"},
		{"single resource as an empty map", "/3/0", "a1 820300 a1 00 a0", objects.ErrType, "/3/0/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := codec.Decode(objects.MustParsePath(tc.root), mustHex(t, tc.data), reg)
			if err == nil {
				t.Fatalf("decoded %+v, want an error", n)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q is not %q", err, tc.want)
			}
			de := decodeErrorOf(t, err)
			if de.Path.String() != tc.path || de.Format != objects.FormatLwM2MCBOR {
				t.Errorf("error %q names %s (%v), want %s", err, de.Path, de.Format, tc.path)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("message %q does not name %s", err, tc.path)
			}
		})
	}
}

func TestBadRecords(t *testing.T) {
	tests := []struct {
		name string
		data string
		want error
	}{
		{"value at an instance", "a1 820300 05", objects.ErrMalformed},
		{"two values", "a2 83030000 01 820300 a1 00 02", objects.ErrMalformed},
		{"not a map", "80", objects.ErrMalformed},
	}
	for _, tc := range tests {
		if recs, err := codec.DecodeRecords(mustHex(t, tc.data), nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: DecodeRecords = %v, %v; want %v", tc.name, recs, err, tc.want)
		}
	}
}

// TestHugeInstance: 65536 resources in one instance, in reverse order,
// decode in linear-logarithmic time.
func TestHugeInstance(t *testing.T) {
	b := []byte{0xa1, 0x82, 0x19, 0x27, 0x0f, 0x00, 0xb9, 0xff, 0xff} // {[9999, 0]: map(65535)
	for i := 65535; i >= 1; i-- {
		b = appendHead(b, majUint, uint64(i))
		b = append(b, 0x01)
	}
	start := time.Now()
	n, err := codec.Decode(objects.MustParsePath("/9999/0"), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if in := n.(*objects.Instance); len(in.Resources) != 65535 || in.Resources[0].ID != 1 {
		t.Errorf("got %d resources", len(in.Resources))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}
