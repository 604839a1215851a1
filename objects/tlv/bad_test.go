package tlv

import (
	"errors"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

func TestDecodeBadInput(t *testing.T) {
	tests := []struct {
		name string
		root string
		data []byte
		want error
		path string // the path the error must name
	}{
		// Framing.
		{"truncated header", "/60000/0", []byte{0xc1}, objects.ErrMalformed, "/60000/0"},
		{"truncated value", "/60000/0", []byte{0xc1, 0x01, 0x05, 0xc4, 0x02, 0x00}, objects.ErrMalformed, "/60000/0/2"},
		{"truncated 16-bit ID", "/60000/0", []byte{0xe1, 0x16}, objects.ErrMalformed, "/60000/0"},
		{"truncated length field", "/60000/0", []byte{0xd8, 0x01, 0x00}, objects.ErrMalformed, "/60000/0"},
		{"huge declared length", "/60000/0", []byte{0xd8, 0x01, 0xff, 0xff, 0xff, 0x00}, objects.ErrMalformed, "/60000/0/1"},
		{"huge length inside an instance", "/60000", []byte{0x08, 0x00, 0x06, 0xd8, 0x01, 0xff, 0xff, 0xff, 0x00}, objects.ErrMalformed, "/60000/0/1"},
		{"child overruns its multiple resource", "/60000/0/11", []byte{0x83, 0x0b, 0x42, 0x00, 0x01, 0x02}, objects.ErrMalformed, "/60000/0/11/0"},
		{"instance nested in instance", "/60000", []byte{0x02, 0x00, 0x00, 0x01}, objects.ErrMalformed, "/60000/0"},
		{"resource instance directly in instance", "/60000", []byte{0x03, 0x00, 0x41, 0x00, 0x01}, objects.ErrMalformed, "/60000/0"},
		{"resource in multiple resource", "/60000/0", []byte{0x83, 0x0b, 0xc1, 0x00, 0x01}, objects.ErrMalformed, "/60000/0/11"},
		// Shapes.
		{"root path", "/", []byte{0xc1, 0x00, 0x01}, objects.ErrUnsupported, "/"},
		{"resource instance at object level", "/60000", []byte{0x41, 0x00, 0x01}, objects.ErrMalformed, "/60000/0"},
		{"object instances mixed with resources", "/60000", []byte{0x00, 0x00, 0xc1, 0x01, 0x05}, objects.ErrMalformed, "/60000"},
		{"resources then an object instance", "/60000", []byte{0xc1, 0x01, 0x05, 0x00, 0x01}, objects.ErrMalformed, "/60000/0"},
		{"instance wrapper with another ID", "/60000/0", []byte{0x03, 0x01, 0xc1, 0x01, 0x05}, objects.ErrMalformed, "/60000/1"},
		{"two instance wrappers", "/60000/0", []byte{0x00, 0x00, 0x00, 0x01}, objects.ErrMalformed, "/60000/0"},
		{"resource instance at instance level", "/60000/0", []byte{0x41, 0x00, 0x01}, objects.ErrMalformed, "/60000/0"},
		{"duplicate instance", "/60000", []byte{0x00, 0x01, 0x00, 0x01}, objects.ErrMalformed, "/60000/1"},
		{"duplicate resource", "/60000/0", []byte{0xc1, 0x01, 0x05, 0xc1, 0x01, 0x06}, objects.ErrMalformed, "/60000/0/1"},
		{"duplicate resource instance", "/60000/0/11", []byte{0x41, 0x00, 0x01, 0x41, 0x00, 0x02}, objects.ErrMalformed, "/60000/0/11/0"},
		{"resource outside the requested path", "/60000/0/1", []byte{0xc1, 0x02, 0x05}, objects.ErrMalformed, "/60000/0/2"},
		{"two resources at a resource path", "/60000/0/1", []byte{0xc1, 0x01, 0x05, 0xc1, 0x01, 0x05}, objects.ErrMalformed, "/60000/0/1"},
		{"instance at a resource path", "/60000/0/1", []byte{0x03, 0x00, 0xc1, 0x01, 0x05}, objects.ErrMalformed, "/60000/0/1"},
		{"empty payload for a single resource", "/60000/0/1", nil, objects.ErrMalformed, "/60000/0/1"},
		{"resource instance outside the requested path", "/60000/0/11/0", []byte{0x41, 0x01, 0x05}, objects.ErrMalformed, "/60000/0/11/1"},
		{"wrapped resource instance outside the requested path", "/60000/0/11/0", []byte{0x83, 0x0b, 0x41, 0x01, 0x05}, objects.ErrMalformed, "/60000/0/11/1"},
		{"two resource instances at a resource-instance path", "/60000/0/11/0", []byte{0x41, 0x00, 0x05, 0x41, 0x01, 0x05}, objects.ErrMalformed, "/60000/0/11/0"},
		{"resource at a resource-instance path", "/60000/0/11/0", []byte{0xc1, 0x00, 0x05}, objects.ErrMalformed, "/60000/0/11/0"},
		{"empty payload at a resource-instance path", "/60000/0/11/0", nil, objects.ErrMalformed, "/60000/0/11/0"},
		// Against the model.
		{"single value for a multiple resource", "/60000/0/11", []byte{0xc1, 0x0b, 0x05}, objects.ErrType, "/60000/0/11"},
		{"multiple resource for a single one", "/60000/0/1", []byte{0x83, 0x01, 0x41, 0x00, 0x05}, objects.ErrType, "/60000/0/1"},
		{"bare instances for a single resource", "/60000/0/1", []byte{0x41, 0x00, 0x05}, objects.ErrType, "/60000/0/1"},
		{"resource instance of a single resource", "/60000/0/1/0", []byte{0x41, 0x00, 0x05}, objects.ErrType, "/60000/0/1/0"},
		{"multiple resource for a single one in an instance", "/60000/0", []byte{0x80, 0x04}, objects.ErrType, "/60000/0/4"},
		// Values.
		{"3-byte integer", "/60000/0/1", []byte{0xc3, 0x01, 0, 0, 1}, objects.ErrType, "/60000/0/1"},
		{"empty integer", "/60000/0/1", []byte{0xc0, 0x01}, objects.ErrType, "/60000/0/1"},
		{"9-byte integer", "/60000/0/1", []byte{0xc8, 0x01, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 1}, objects.ErrRange, "/60000/0/1"},
		{"16-byte unsigned", "/60000/0/2", append([]byte{0xc8, 0x02, 0x10}, make([]byte, 16)...), objects.ErrRange, "/60000/0/2"},
		{"5-byte unsigned", "/60000/0/2", []byte{0xc5, 0x02, 1, 2, 3, 4, 5}, objects.ErrType, "/60000/0/2"},
		{"5-byte float", "/60000/0/3", []byte{0xc5, 0x03, 0, 0, 0, 0, 0}, objects.ErrType, "/60000/0/3"},
		{"2-byte float", "/60000/0/3", []byte{0xc2, 0x03, 0x3c, 0x00}, objects.ErrType, "/60000/0/3"},
		{"boolean 2", "/60000/0/4", []byte{0xc1, 0x04, 0x02}, objects.ErrType, "/60000/0/4"},
		{"2-byte boolean", "/60000/0/4", []byte{0xc2, 0x04, 0x00, 0x01}, objects.ErrType, "/60000/0/4"},
		{"empty boolean", "/60000/0/4", []byte{0xc0, 0x04}, objects.ErrType, "/60000/0/4"},
		{"3-byte time", "/60000/0/6", []byte{0xc3, 0x06, 1, 2, 3}, objects.ErrType, "/60000/0/6"},
		{"2-byte objlnk", "/60000/0/7", []byte{0xc2, 0x07, 0, 3}, objects.ErrType, "/60000/0/7"},
		{"invalid UTF-8 string", "/60000/0/0", []byte{0xc2, 0x00, 0xc3, 0x28}, objects.ErrUTF8, "/60000/0/0"},
		{"invalid UTF-8 corelnk", "/60000/0/8", []byte{0xc1, 0x08, 0xff}, objects.ErrUTF8, "/60000/0/8"},
		{"invalid UTF-8 in a resource instance", "/60000/0/10", []byte{0x83, 0x0a, 0x41, 0x07, 0xfe}, objects.ErrUTF8, "/60000/0/10/7"},
		{"bad value deep in an object", "/60000", []byte{0x08, 0x00, 0x06, 0x84, 0x0e, 0x41, 0x00, 0x02, 0x00}, objects.ErrMalformed, "/60000/0/14"},
		{"bad boolean deep in an object", "/60000", []byte{0x05, 0x00, 0x83, 0x0e, 0x41, 0x00, 0x02}, objects.ErrType, "/60000/0/14/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Codec{}.Decode(objects.MustParsePath(tt.root), tt.data, localModels)
			if err == nil {
				t.Fatalf("no error; decoded\n%s", dump(objects.MustParsePath(tt.root), n))
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var de *objects.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%v is not a *objects.DecodeError", err)
			}
			if de.Path.String() != tt.path || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("error %q names %s, want %s", err, de.Path, tt.path)
			}
			if de.Format != objects.FormatTLV {
				t.Errorf("format %v", de.Format)
			}
		})
	}
}

// Deep nesting cannot be expressed beyond three levels, and huge
// declared lengths are checked before anything is allocated.
func TestDecodeHostileSizes(t *testing.T) {
	// Many nested instance TLVs (each claiming the rest of the payload).
	var deep []byte
	for i := 0; i < 1000; i++ {
		deep = append(deep, 0x18, 0x00, 0xff, 0xff, 0xff)
	}
	if _, err := (Codec{}).Decode(objects.MustParsePath("/1"), deep, nil); !errors.Is(err, objects.ErrMalformed) {
		t.Fatalf("deep: %v", err)
	}
	nested := []byte{0x00, 0x00}
	for i := 0; i < 100; i++ {
		nested = append([]byte{0x08, 0x00, byte(len(nested))}, nested...)
		if len(nested) > 250 {
			break
		}
	}
	if _, err := Unpack(nested); !errors.Is(err, objects.ErrMalformed) {
		t.Fatalf("nested instances: %v", err)
	}
	// A long run of minimal TLVs is fine, just big.
	many := make([]byte, 0, 3*20000)
	for i := 0; i < 20000; i++ {
		many = append(many, 0x61, byte(i>>8), byte(i), 0)
	}
	n, err := Codec{}.Decode(objects.MustParsePath("/9999/0/0"), many, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(n.(*objects.Resource).Instances); got != 20000 {
		t.Fatalf("%d instances", got)
	}
}
