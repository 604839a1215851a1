package senmlcbor

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

// Record labels and names, in hex, to write the cases below.
const (
	n309  = "00662f332f302f39"       // 0: "/3/0/9"     Integer
	n300  = "00662f332f302f30"       // 0: "/3/0/0"     String
	n600  = "00662f362f302f30"       // 0: "/6/0/0"     Float
	n604  = "00662f362f302f34"       // 0: "/6/0/4"     Opaque
	n3220 = "00692f332f302f32322f30" // 0: "/3/0/22/0"  Objlnk
)

// TestBadInput: every broken payload fails with a DecodeError that wraps
// the right sentinel and says where, and nothing panics.
func TestBadInput(t *testing.T) {
	reg := shared.Registry(t)
	var manyPairs strings.Builder
	manyPairs.WriteString("81b841" + n309)
	for k := 10; k < 74; k++ {
		fmt.Fprintf(&manyPairs, "18%02x01", k)
	}
	manyRecords := "9a00020001" + strings.Repeat("a0", 1<<17+1)
	cases := []struct {
		name   string
		root   string // "" decodes records
		models objects.Models
		hex    string
		want   error
		text   string // the message names this
	}{
		// structure
		{"empty", "/3/0", reg, "", objects.ErrMalformed, "empty payload"},
		{"map at the top", "/3/0", reg, "a1" + n309, objects.ErrMalformed, "array of maps"},
		{"array of integers", "", reg, "8101", objects.ErrMalformed, "array of maps"},
		{"truncated record", "", reg, "81a2" + n309, objects.ErrMalformed, "ends early"},
		{"truncated text", "", reg, "81a100662f33", objects.ErrMalformed, "ends early"},
		{"unterminated indefinite array", "", reg, "9fa2" + n309 + "0201", objects.ErrMalformed, "ends early"},
		{"unterminated indefinite map", "", reg, "81bf" + n309 + "0201", objects.ErrMalformed, "ends early"},
		{"break in a definite array", "", reg, "81ff", objects.ErrMalformed, "break"},
		{"break in a definite map", "", reg, "81a1ff", objects.ErrMalformed, "break"},
		{"break as a map value", "", reg, "9fbf00ffff", objects.ErrMalformed, "break"},
		{"odd indefinite map", "", reg, "9fbf" + n309 + "02ffff", objects.ErrMalformed, "break"},
		{"bad chunk in indefinite text", "", reg, "81a1007f01ff", objects.ErrMalformed, "indefinite-length"},
		{"reserved additional information", "", reg, "81a1" + "001c", objects.ErrMalformed, "additional information"},
		{"data after the pack", "", reg, "8000", objects.ErrMalformed, "extraneous"},
		{"duplicate label", "", reg, "81a3" + n309 + "0201" + "0202", objects.ErrMalformed, "duplicate"},
		{"duplicate name", "", reg, "81a3" + n309 + n309 + "0201", objects.ErrMalformed, "duplicate"},
		{"two value fields", "", reg, "81a3" + n309 + "0201" + "036131", objects.ErrMalformed, "more than one value"},
		{"tag", "", reg, "81a2" + n309 + "02c11a5e000000", objects.ErrMalformed, "tag"},
		{"self-described CBOR tag", "", reg, "d9d9f780", objects.ErrMalformed, "tag"},
		{"deep nesting", "", reg, "81a2" + n309 + "182a818181810101", objects.ErrMalformed, "nested level"},
		{"huge array length", "", reg, "9bffffffffffffffff", objects.ErrMalformed, "/"},
		{"huge text length", "", reg, "81a1007b000000010000000061", objects.ErrMalformed, "/"},
		{"huge byte string length", "", reg, "81a2" + n604 + "085a7fffffff00", objects.ErrMalformed, "/"},
		{"too many map pairs", "", reg, manyPairs.String(), objects.ErrMalformed, "key-value pairs"},
		{"too many records", "", reg, manyRecords, objects.ErrMalformed, "max number of elements"},
		{"null record", "", reg, "81f6", objects.ErrMalformed, "no name"},
		// strings
		{"invalid UTF-8 in vs", "", reg, "81a2" + n300 + "0361ff", objects.ErrUTF8, "/3/0/0"},
		{"invalid UTF-8 in a name", "", reg, "81a20063ff2f330201", objects.ErrUTF8, "UTF-8"},
		// field types
		{"NaN", "", reg, "81a2" + n600 + "02f97e00", objects.ErrRange, "/6/0/0"},
		{"infinity", "", reg, "81a2" + n600 + "02f97c00", objects.ErrRange, "/6/0/0"},
		{"text for v", "", reg, "81a2" + n309 + "026131", objects.ErrMalformed, "v is not a number"},
		{"null for v", "", reg, "81a2" + n309 + "02f6", objects.ErrMalformed, "v is not a number"},
		{"undefined for v", "", reg, "81a2" + n309 + "02f7", objects.ErrMalformed, "v is not a number"},
		{"simple value for v", "", reg, "81a2" + n309 + "02f0", objects.ErrMalformed, "v is not a number"},
		{"integer for vb", "", reg, "81a2" + n309 + "0401", objects.ErrMalformed, "vb is not a Boolean"},
		{"text for vd", "", reg, "81a2" + n604 + "086141", objects.ErrMalformed, "vd is not a byte string"},
		{"integer for vlo", "", reg, "81a2" + n3220 + "63766c6f01", objects.ErrMalformed, "vlo is not a text string"},
		{"integer for n", "", reg, "81a200010201", objects.ErrMalformed, "n is not a text string"},
		{"text for bt", "", reg, "81a3" + n309 + "0201" + "226131", objects.ErrMalformed, "bt is not a number"},
		{"bytes for bn", "", reg, "81a2214101" + "0201", objects.ErrMalformed, "bn is not a text string"},
		// values against the model
		{"integer out of range", "", reg, "81a2" + n309 + "021b8000000000000000", objects.ErrRange, "/3/0/9"},
		{"negative beyond 64 bits", "", reg, "81a2" + n309 + "023bffffffffffffffff", objects.ErrRange, "/3/0/9"},
		{"negative unsigned", "", senmltest.Models, "81a2006a2f33323736392f302f320220", objects.ErrRange, "/32769/0/2"},
		{"fraction for an integer", "", reg, "81a2" + n309 + "02f93e00", objects.ErrType, "/3/0/9"},
		{"text for an integer", "", reg, "81a2" + n309 + "036161", objects.ErrType, "/3/0/9"},
		{"bytes for a float", "", reg, "81a2" + n600 + "084101", objects.ErrType, "/6/0/0"},
		{"bad vlo", "", reg, "81a2" + n3220 + "63766c6f6131", objects.ErrType, "/3/0/22/0"},
		{"time before 1978", "", reg, "81a3" + n309 + "0201" + "063a77359400", objects.ErrRange, "before 1978"},
		// names
		{"no name", "", reg, "81a10201", objects.ErrMalformed, "no name"},
		{"not a path", "", reg, "81a2006474656d700201", objects.ErrMalformed, "temp"},
		{"value for an object", "", reg, "81a200622f330201", objects.ErrMalformed, "/3"},
		{"instance of a single resource", "", reg, "81a200682f332f302f392f300201", objects.ErrMalformed, "/3/0/9/0"},
		// versions and must-understand fields (RFC 8428 §4.4)
		{"newer version", "", reg, "81a3200b" + n309 + "0201", objects.ErrUnsupported, "version 11"},
		{"text version", "", reg, "81a3206131" + n309 + "0201", objects.ErrMalformed, "bver"},
		{"must-understand field", "", reg, "81a3" + n309 + "0201" + "64666f6f5f01", objects.ErrUnsupported, "foo_"},
		// nodes
		{"outside the requested path", "/3/0", reg, "81a200662f312f302f310201", objects.ErrMalformed, "/1/0/1"},
		{"no value", "/3/0/9", reg, "81a1" + n309, objects.ErrMalformed, "no value"},
		{"nothing for a resource", "/3/0/9", reg, "80", objects.ErrMalformed, "no value"},
		{"the root path", "/", reg, "80", objects.ErrUnsupported, "object path"},
	}
	c := testCodec()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			if tc.root == "" {
				var recs []objects.Record
				recs, err = c.DecodeRecords(data, tc.models)
				if err == nil {
					t.Fatalf("no error; decoded %v", recs)
				}
			} else {
				var n objects.Node
				n, err = c.Decode(objects.MustParsePath(tc.root), data, tc.models)
				if err == nil {
					t.Fatalf("no error; decoded %#v", n)
				}
			}
			var de *objects.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%T is not a *objects.DecodeError: %v", err, err)
			}
			if de.Format != objects.FormatSenMLCBOR {
				t.Errorf("format %v", de.Format)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q does not wrap %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
		})
	}
}
