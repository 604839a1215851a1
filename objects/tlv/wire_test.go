package tlv

import (
	"bytes"
	"errors"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

// equalEntries compares entry trees, taking nil and empty as equal.
func equalEntries(a, b []Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Kind != b[i].Kind || a[i].ID != b[i].ID || !bytes.Equal(a[i].Value, b[i].Value) || !equalEntries(a[i].Children, b[i].Children) {
			return false
		}
	}
	return true
}

func TestPackHeaderForms(t *testing.T) {
	tests := []struct {
		name   string
		e      Entry
		header []byte
	}{
		{"length in type, 8-bit ID", Entry{Kind: Resource, ID: 5, Value: make([]byte, 7)}, []byte{0xc7, 0x05}},
		{"empty value", Entry{Kind: Resource, ID: 0, Value: nil}, []byte{0xc0, 0x00}},
		{"8-bit length", Entry{Kind: ResourceInstance, ID: 255, Value: make([]byte, 8)}, []byte{0x48, 0xff, 0x08}},
		{"8-bit length max", Entry{Kind: Resource, ID: 1, Value: make([]byte, 255)}, []byte{0xc8, 0x01, 0xff}},
		{"16-bit length", Entry{Kind: Resource, ID: 1, Value: make([]byte, 256)}, []byte{0xd0, 0x01, 0x01, 0x00}},
		{"16-bit length max", Entry{Kind: Resource, ID: 1, Value: make([]byte, 65535)}, []byte{0xd0, 0x01, 0xff, 0xff}},
		{"24-bit length", Entry{Kind: Resource, ID: 1, Value: make([]byte, 65536)}, []byte{0xd8, 0x01, 0x01, 0x00, 0x00}},
		{"16-bit ID", Entry{Kind: Resource, ID: 256, Value: []byte{1}}, []byte{0xe1, 0x01, 0x00}},
		{"16-bit ID and 16-bit length", Entry{Kind: Resource, ID: 5700, Value: make([]byte, 300)}, []byte{0xf0, 0x16, 0x44, 0x01, 0x2c}},
		{"max ID", Entry{Kind: ResourceInstance, ID: 65535, Value: []byte{1}}, []byte{0x61, 0xff, 0xff}},
		{"object instance", Entry{Kind: ObjectInstance, ID: 1, Children: []Entry{{Kind: Resource, ID: 0, Value: []byte{9}}}}, []byte{0x03, 0x01}},
		{"empty multiple resource", Entry{Kind: MultipleResource, ID: 6}, []byte{0x80, 0x06}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Pack([]Entry{tt.e})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, tt.header) {
				t.Fatalf("header % x, want % x", b[:min(len(b), 6)], tt.header)
			}
			got, err := Unpack(b)
			if err != nil {
				t.Fatal(err)
			}
			if !equalEntries(got, []Entry{tt.e}) {
				t.Fatalf("round trip: got %+v", got)
			}
			if b2, _ := AppendPack([]byte{0xaa}, []Entry{tt.e}); !bytes.Equal(b2[1:], b) || b2[0] != 0xaa {
				t.Fatal("AppendPack differs from Pack")
			}
		})
	}
}

func TestPackErrors(t *testing.T) {
	tests := []struct {
		name string
		e    []Entry
	}{
		{"resource with children", []Entry{{Kind: Resource, ID: 1, Children: []Entry{{Kind: ResourceInstance}}}}},
		{"instance with value", []Entry{{Kind: ObjectInstance, ID: 1, Value: []byte{1}}}},
		{"instance in instance", []Entry{{Kind: ObjectInstance, Children: []Entry{{Kind: ObjectInstance}}}}},
		{"resource instance in instance", []Entry{{Kind: ObjectInstance, Children: []Entry{{Kind: ResourceInstance}}}}},
		{"resource in multiple resource", []Entry{{Kind: MultipleResource, Children: []Entry{{Kind: Resource}}}}},
		{"bad kind", []Entry{{Kind: 4}}},
		{"value too long", []Entry{{Kind: Resource, Value: make([]byte, MaxValueLen+1)}}},
		{"children too long", []Entry{{Kind: MultipleResource, Children: []Entry{
			{Kind: ResourceInstance, ID: 0, Value: make([]byte, MaxValueLen/2)},
			{Kind: ResourceInstance, ID: 1, Value: make([]byte, MaxValueLen/2)}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Pack(tt.e); !errors.Is(err, errPack) {
				t.Fatalf("got %v, want a pack error", err)
			}
			if b, err := AppendPack([]byte{1}, tt.e); err == nil || len(b) != 1 {
				t.Fatalf("AppendPack: %v, % x", err, b)
			}
		})
	}
}

func TestUnpackErrors(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		offset int
	}{
		{"header truncated after type", []byte{0xc1}, 0},
		{"16-bit ID truncated", []byte{0xe1, 0x01}, 0},
		{"length field truncated", []byte{0xd0, 0x01, 0x01}, 0},
		{"value truncated", []byte{0xc4, 0x01, 0, 0}, 0},
		{"second TLV truncated", []byte{0xc1, 0x01, 0x00, 0xc2, 0x02, 0x00}, 3},
		{"24-bit length past the end", []byte{0xd8, 0x01, 0xff, 0xff, 0xff, 0}, 0},
		{"child overruns its parent", []byte{0x82, 0x06, 0x41, 0x00, 0x01}, 2},
		{"instance in instance", []byte{0x02, 0x00, 0x00, 0x01}, 2},
		{"resource instance in instance", []byte{0x03, 0x00, 0x41, 0x00, 0x01}, 2},
		{"resource in multiple resource", []byte{0x83, 0x06, 0xc1, 0x00, 0x01}, 2},
		{"instance in multiple resource", []byte{0x82, 0x06, 0x00, 0x00}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Unpack(tt.data)
			var de *objects.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, objects.ErrMalformed) {
				t.Fatalf("got %v, want a DecodeError wrapping ErrMalformed", err)
			}
			if de.Offset != tt.offset {
				t.Errorf("offset %d, want %d (%v)", de.Offset, tt.offset, err)
			}
		})
	}
}

func TestUnpackNested(t *testing.T) {
	data := []byte{0x08, 0x00, 0x06, 0x84, 0x06, 0x42, 0x00, 0x0e, 0xd8, 0xc0, 0x01, 0x00, 0x01}
	want := []Entry{
		{Kind: ObjectInstance, ID: 0, Children: []Entry{
			{Kind: MultipleResource, ID: 6, Children: []Entry{{Kind: ResourceInstance, ID: 0, Value: []byte{0x0e, 0xd8}}}},
		}},
		{Kind: Resource, ID: 1, Value: nil},
		{Kind: ObjectInstance, ID: 1},
	}
	got, err := Unpack(data)
	if err != nil {
		t.Fatal(err)
	}
	if !equalEntries(got, want) {
		t.Fatalf("got %+v", got)
	}
	if b, err := Pack(got); err != nil || !bytes.Equal(b, []byte{0x06, 0x00, 0x84, 0x06, 0x42, 0x00, 0x0e, 0xd8, 0xc0, 0x01, 0x00, 0x01}) {
		t.Fatalf("Pack gives % x, %v", b, err)
	}
	// Values are capped: appending to one must not overwrite the next TLV.
	v := got[0].Children[0].Children[0].Value
	_ = append(v, 0xff)
	if data[9] != 0xc0 {
		t.Fatal("append to a value overwrote the payload")
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{ObjectInstance: "object instance", ResourceInstance: "resource instance", MultipleResource: "multiple resource", Resource: "resource"} {
		if k.String() != want {
			t.Errorf("%d: %q", k, k.String())
		}
	}
}
