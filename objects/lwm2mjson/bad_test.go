package lwm2mjson

import (
	"errors"
	"strconv"
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
		data string
		want error
		path string // the path the error must name
	}{
		// Structure.
		{"empty", "/3/0", "", objects.ErrMalformed, "/3/0"},
		{"white space only", "/3/0", " \n", objects.ErrMalformed, "/3/0"},
		{"array", "/3/0", `[{"bn":"/3/0/","e":[]}]`, objects.ErrMalformed, "/3/0"},
		{"not JSON", "/3/0", `bn=/3/0`, objects.ErrMalformed, "/3/0"},
		{"truncated object", "/3/0", `{"bn":"/3/0/","e":[{"n":"0","sv":"x"}`, objects.ErrMalformed, "/3/0"},
		{"truncated string", "/3/0", `{"bn":"/3/0/","e":[{"n":"0","sv":"x`, objects.ErrMalformed, "/3/0"},
		{"truncated number", "/3/0", `{"bn":"/3/0/","e":[{"n":"9","v":-`, objects.ErrMalformed, "/3/0"},
		{"trailing data", "/3/0", `{"bn":"/3/0/","e":[]}{}`, objects.ErrMalformed, "/3/0"},
		{"trailing comma", "/3/0", `{"bn":"/3/0/","e":[{"n":"0","sv":"x"},]}`, objects.ErrMalformed, "/3/0"},
		{"missing colon", "/3/0", `{"bn" "/3/0/","e":[]}`, objects.ErrMalformed, "/3/0"},
		{"no e", "/3/0", `{"bn":"/3/0/"}`, objects.ErrMalformed, "/3/0"},
		{"e not an array", "/3/0", `{"bn":"/3/0/","e":{"n":"0"}}`, objects.ErrMalformed, "/3/0"},
		{"entry not an object", "/3/0", `{"bn":"/3/0/","e":["x"]}`, objects.ErrMalformed, "/3/0"},
		{"duplicate key at the top", "/3/0", `{"bn":"/3/0/","bn":"/1/0/","e":[]}`, objects.ErrMalformed, "/3/0"},
		{"duplicate e", "/3/0", `{"bn":"/3/0/","e":[],"e":[]}`, objects.ErrMalformed, "/3/0"},
		{"duplicate key in an entry", "/3/0", `{"bn":"/3/0/","e":[{"n":"0","n":"1","sv":"x"}]}`, objects.ErrMalformed, "/3/0"},
		{"duplicate unknown key", "/3/0", `{"bn":"/3/0/","x":1,"x":2,"e":[]}`, objects.ErrMalformed, "/3/0"},
		{"two values", "/3/0", `{"bn":"/3/0/","e":[{"n":"0","sv":"x","v":1}]}`, objects.ErrMalformed, "/3/0"},
		{"no value", "/3/0", `{"bn":"/3/0/","e":[{"n":"0"}]}`, objects.ErrMalformed, "/3/0/0"},
		{"bn not a string", "/3/0", `{"bn":3,"e":[]}`, objects.ErrMalformed, "/3/0"},
		{"n not a string", "/3/0", `{"bn":"/3/0/","e":[{"n":0,"sv":"x"}]}`, objects.ErrMalformed, "/3/0"},
		{"n null", "/3/0", `{"bn":"/3/0/","e":[{"n":null,"sv":"x"}]}`, objects.ErrMalformed, "/3/0"},
		{"unknown key holds an object", "/3/0", `{"bn":"/3/0/","x":{"y":1},"e":[]}`, objects.ErrMalformed, "/3/0"},
		{"deep nesting", "/3/0", `{"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`, objects.ErrMalformed, "/3/0"},
		{"deep nesting in e", "/3/0", `{"e":` + strings.Repeat("[", 100000), objects.ErrMalformed, "/3/0"},
		{"control character", "/3/0", "{\"bn\":\"/3/0/\",\"e\":[{\"n\":\"0\",\"sv\":\"a\x01\"}]}", objects.ErrMalformed, "/3/0"},
		{"bad escape", "/3/0", `{"bn":"/3/0/","e":[{"n":"0","sv":"\q"}]}`, objects.ErrMalformed, "/3/0"},
		{"short unicode escape", "/3/0", `{"bn":"/3/0/","e":[{"n":"0","sv":"\u12"}]}`, objects.ErrMalformed, "/3/0"},
		{"leading zero", "/3/0", `{"bn":"/3/0/","e":[{"n":"9","v":01}]}`, objects.ErrMalformed, "/3/0"},
		{"bare fraction", "/3/0", `{"bn":"/3/0/","e":[{"n":"9","v":1.}]}`, objects.ErrMalformed, "/3/0"},
		{"plus sign", "/3/0", `{"bn":"/3/0/","e":[{"n":"9","v":+1}]}`, objects.ErrType, "/3/0"},
		{"NaN", "/3/0", `{"bn":"/3/0/","e":[{"n":"9","v":NaN}]}`, objects.ErrType, "/3/0"},
		{"time not a number", "/3/0", `{"bn":"/3/0/","bt":"soon","e":[]}`, objects.ErrMalformed, "/3/0"},
		// UTF-8.
		{"invalid UTF-8 in a string", "/3/0", "{\"bn\":\"/3/0/\",\"e\":[{\"n\":\"0\",\"sv\":\"\xff\xfe\"}]}", objects.ErrUTF8, "/3/0"},
		{"invalid UTF-8 in a key", "/3/0", "{\"\xc3\":1,\"e\":[]}", objects.ErrUTF8, "/3/0"},
		{"lone high surrogate", "/3/0", `{"bn":"/3/0/","e":[{"n":"0","sv":"\ud83d"}]}`, objects.ErrUTF8, "/3/0"},
		{"lone low surrogate", "/3/0", `{"bn":"/3/0/","e":[{"n":"0","sv":"\ude00x"}]}`, objects.ErrUTF8, "/3/0"},
		{"surrogate pair broken", "/3/0", `{"bn":"/3/0/","e":[{"n":"0","sv":"\ud83d\u0041"}]}`, objects.ErrUTF8, "/3/0"},
		// Paths.
		{"outside the root", "/3/0", `{"bn":"/3/1/","e":[{"n":"0","sv":"x"}]}`, objects.ErrMalformed, "/3/1/0"},
		{"other object", "/3/0/0", `{"bn":"/1/0/","e":[{"n":"0","v":1}]}`, objects.ErrMalformed, "/1/0/0"},
		{"sibling resource", "/3/0/0", `{"bn":"/3/0/","e":[{"n":"0","sv":"x"},{"n":"1","sv":"y"}]}`, objects.ErrMalformed, "/3/0/1"},
		{"bad segment", "/3/0", `{"bn":"/3/0/","e":[{"n":"x","sv":"x"}]}`, objects.ErrMalformed, "/3/0"},
		{"ID too big", "/3/0", `{"bn":"/3/0/","e":[{"n":"65536","sv":"x"}]}`, objects.ErrMalformed, "/3/0"},
		{"too deep", "/3/0", `{"bn":"/3/0/","e":[{"n":"6/0/1","v":1}]}`, objects.ErrMalformed, "/3/0"},
		{"empty segment", "/3/0", `{"bn":"/3/0/","e":[{"n":"/0","sv":"x"}]}`, objects.ErrMalformed, "/3/0"},
		{"value at an instance", "/3/0", `{"bn":"/3/0","e":[{"sv":"x"}]}`, objects.ErrMalformed, "/3/0"},
		{"bad base name", "/3/0", `{"bn":"/3/x/","e":[{"n":"0","sv":"x"}]}`, objects.ErrMalformed, "/3/0"},
		{"no value for a resource read", "/3/0/0", `{"bn":"/3/0/","e":[]}`, objects.ErrMalformed, "/3/0/0"},
		{"value given twice", "/3/0", `{"bn":"/3/0/","e":[{"n":"0","sv":"x"},{"n":"0","sv":"y"}]}`, objects.ErrMalformed, "/3/0/0"},
		{"same time twice", "/3/0", `{"bn":"/3/0/","bt":5,"e":[{"n":"0","sv":"x"},{"n":"0","sv":"y"}]}`, objects.ErrMalformed, "/3/0/0"},
		{"root request", "/", `{"bn":"/3/0/","e":[]}`, objects.ErrUnsupported, "/"},
		// Values against the model.
		{"string for an integer", "/3/0/9", `{"bn":"/3/0/","e":[{"n":"9","sv":"full"}]}`, objects.ErrType, "/3/0/9"},
		{"number for a string", "/3/0/0", `{"bn":"/3/0/","e":[{"n":"0","v":1}]}`, objects.ErrType, "/3/0/0"},
		{"fraction for an integer", "/3/0/9", `{"bn":"/3/0/","e":[{"n":"9","v":99.5}]}`, objects.ErrType, "/3/0/9"},
		{"boolean for a time", "/3/0/13", `{"bn":"/3/0/","e":[{"n":"13","bv":true}]}`, objects.ErrType, "/3/0/13"},
		{"2 for a boolean", "/1/0/6", `{"bn":"/1/0/","e":[{"n":"6","v":2}]}`, objects.ErrType, "/1/0/6"},
		{"bv not a boolean", "/1/0/6", `{"bn":"/1/0/","e":[{"n":"6","bv":1}]}`, objects.ErrType, "/1/0/6"},
		{"sv not a string", "/3/0/0", `{"bn":"/3/0/","e":[{"n":"0","sv":1}]}`, objects.ErrType, "/3/0/0"},
		{"v a string that is no number", "/3/0/9", `{"bn":"/3/0/","e":[{"n":"9","v":"ten"}]}`, objects.ErrType, "/3/0/9"},
		{"bad object link", "/3/0/22/0", `{"bn":"/3/0/22/","e":[{"n":"0","ov":"3:x"}]}`, objects.ErrType, "/3/0/22/0"},
		{"object link out of range", "/3/0/22/0", `{"bn":"/3/0/22/","e":[{"n":"0","ov":"70000:0"}]}`, objects.ErrType, "/3/0/22/0"},
		{"object link for a string", "/3/0/0", `{"bn":"/3/0/","e":[{"n":"0","ov":"1:0"}]}`, objects.ErrType, "/3/0/0"},
		{"opaque not base64", "/5/0/0", `{"bn":"/5/0/","e":[{"n":"0","sv":"!!!"}]}`, objects.ErrType, "/5/0/0"},
		{"integer beyond int64", "/3/0/9", `{"bn":"/3/0/","e":[{"n":"9","v":9223372036854775808}]}`, objects.ErrRange, "/3/0/9"},
		{"integer beyond uint64", "/3/0/9", `{"bn":"/3/0/","e":[{"n":"9","v":18446744073709551616}]}`, objects.ErrRange, "/3/0/9"},
		{"float overflow", "/6/0/0", `{"bn":"/6/0/","e":[{"n":"0","v":1e400}]}`, objects.ErrRange, "/6/0/0"},
		{"time overflow", "/3/0", `{"bn":"/3/0/","bt":1e999,"e":[]}`, objects.ErrRange, "/3/0"},
		{"multiple resource given one value", "/3/0", `{"bn":"/3/0/","e":[{"n":"6","v":1}]}`, objects.ErrType, "/3/0/6"},
		{"single resource given an instance", "/3/0", `{"bn":"/3/0/","e":[{"n":"0/1","sv":"x"}]}`, objects.ErrType, "/3/0/0/1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := codec.Decode(objects.MustParsePath(tc.root), []byte(tc.data), reg)
			if err == nil {
				t.Fatalf("decoded %+v, want an error", n)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q is not %q", err, tc.want)
			}
			de := decodeErrorOf(t, err)
			if de.Path.String() != tc.path || de.Format != objects.FormatJSON {
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
		{"relative name without a root", `{"e":[{"n":"0","v":1}]}`, objects.ErrMalformed},
		{"value at an object", `{"bn":"/3","e":[{"v":1}]}`, objects.ErrMalformed},
		{"root path", `{"bn":"/","e":[{"n":""}]}`, objects.ErrMalformed},
		{"time overflow", `{"bn":"/3/0/0","bt":1e308,"e":[{"v":1,"t":1e308}]}`, objects.ErrRange},
	}
	for _, tc := range tests {
		if recs, err := codec.DecodeRecords([]byte(tc.data), nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: DecodeRecords = %v, %v; want %v", tc.name, recs, err, tc.want)
		}
	}
}

// TestHugeInstance: 65536 resources in one instance, in reverse order,
// decode in linear-logarithmic time (a builder that searched the
// instance for every value took 13 s for this).
func TestHugeInstance(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"bn":"/9999/0/","e":[`)
	for i := 65535; i >= 0; i-- {
		b.WriteString(`{"n":"` + strconv.Itoa(i) + `","v":1}`)
		if i > 0 {
			b.WriteByte(',')
		}
	}
	b.WriteString(`]}`)
	start := time.Now()
	n, err := codec.Decode(objects.MustParsePath("/9999/0"), []byte(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if in := n.(*objects.Instance); len(in.Resources) != 65536 || in.Resources[65535].ID != 65535 {
		t.Errorf("got %d resources", len(in.Resources))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}
