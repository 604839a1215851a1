package senmljson

import (
	"errors"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

// TestBadInput: every broken payload fails with a DecodeError that wraps
// the right sentinel and says where, and nothing panics.
func TestBadInput(t *testing.T) {
	reg := shared.Registry(t)
	deep := `[{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `,"n":"/3/0/9","v":1}]`
	many := "[" + strings.Repeat(`{"n":"/3/0/9"},`, 1<<17) + `{"n":"/3/0/9"}]`
	cases := []struct {
		name    string
		root    string // "" decodes records
		models  objects.Models
		payload string
		want    error
		text    string // the message names this
	}{
		// structure
		{"empty", "/3/0", reg, ``, objects.ErrMalformed, "empty payload"},
		{"object at the top", "/3/0", reg, `{"n":"/3/0/0","vs":"a"}`, objects.ErrMalformed, "JSON array"},
		{"array of arrays", "", reg, `[[1]]`, objects.ErrMalformed, "record"},
		{"unterminated array", "", reg, `[{"n":"/3/0/0","vs":"a"}`, objects.ErrMalformed, "ends"},
		{"truncated string", "", reg, `[{"n":"/3/0/0","vs":"ab`, objects.ErrMalformed, "does not end"},
		{"truncated after a comma", "", reg, `[{"n":"/3/0/0"},`, objects.ErrMalformed, "ends"},
		{"truncated in a record", "", reg, `[{"n":"/3/0/0",`, objects.ErrMalformed, "ends"},
		{"trailing comma", "", reg, `[{"n":"/3/0/9","v":1},]`, objects.ErrMalformed, "record"},
		{"data after the pack", "", reg, `[]x`, objects.ErrMalformed, "after the end"},
		{"two packs", "", reg, `[][]`, objects.ErrMalformed, "after the end"},
		{"missing colon", "", reg, `[{"n" "/3/0/9"}]`, objects.ErrMalformed, `":"`},
		{"unquoted key", "", reg, `[{n:"/3/0/9"}]`, objects.ErrMalformed, "field name"},
		{"duplicate field", "", reg, `[{"n":"/3/0/9","v":1,"v":2}]`, objects.ErrMalformed, `"v" given twice`},
		{"duplicate unknown field", "", reg, `[{"x":1,"x":2,"n":"/3/0/9","v":1}]`, objects.ErrMalformed, `"x" given twice`},
		{"two value fields", "", reg, `[{"n":"/3/0/9","v":1,"vs":"1"}]`, objects.ErrMalformed, "more than one value"},
		{"deep nesting", "", reg, deep, objects.ErrMalformed, "nested deeper"},
		{"too many records", "", reg, many, objects.ErrMalformed, "more than 131072 records"},
		// strings
		{"invalid UTF-8", "", reg, "[{\"n\":\"/3/0/0\",\"vs\":\"\xff\"}]", objects.ErrUTF8, "UTF-8"},
		{"invalid UTF-8 after an escape", "", reg, "[{\"n\":\"/3/0/0\",\"vs\":\"\\n\xc3\"}]", objects.ErrUTF8, "UTF-8"},
		{"lone surrogate", "", reg, `[{"n":"/3/0/0","vs":"\ud800"}]`, objects.ErrUTF8, "surrogate"},
		{"reversed surrogates", "", reg, `[{"n":"/3/0/0","vs":"\udc00\ud800"}]`, objects.ErrUTF8, "surrogate"},
		{"control character", "", reg, "[{\"n\":\"/3/0/0\",\"vs\":\"a\nb\"}]", objects.ErrMalformed, "control character"},
		{"unknown escape", "", reg, `[{"n":"/3/0/0","vs":"\x41"}]`, objects.ErrMalformed, "escape"},
		{"short \\u", "", reg, `[{"n":"/3/0/0","vs":"\u12"}]`, objects.ErrMalformed, "hex digits"},
		// numbers
		{"leading zero", "", reg, `[{"n":"/3/0/9","v":01}]`, objects.ErrMalformed, `","`},
		{"no digits after the point", "", reg, `[{"n":"/3/0/9","v":1.}]`, objects.ErrMalformed, "decimal point"},
		{"no digits in the exponent", "", reg, `[{"n":"/3/0/9","v":1e}]`, objects.ErrMalformed, "exponent"},
		{"plus sign", "", reg, `[{"n":"/3/0/9","v":+1}]`, objects.ErrMalformed, "not a number"},
		{"NaN", "", reg, `[{"n":"/6/0/0","v":NaN}]`, objects.ErrMalformed, "not a number"},
		{"huge exponent", "", reg, `[{"n":"/6/0/0","v":1e400}]`, objects.ErrRange, "out of range"},
		{"huge time", "", reg, `[{"n":"/6/0/0","v":1,"t":-1e999}]`, objects.ErrRange, "out of range"},
		{"string for v", "", reg, `[{"n":"/3/0/9","v":"1"}]`, objects.ErrMalformed, "v is not a number"},
		{"null for v", "", reg, `[{"n":"/3/0/9","v":null}]`, objects.ErrMalformed, "v is not a number"},
		{"number for vs", "", reg, `[{"n":"/3/0/0","vs":1}]`, objects.ErrMalformed, "vs is not a string"},
		{"string for vb", "", reg, `[{"n":"/1/0/6","vb":"true"}]`, objects.ErrMalformed, "vb is not true or false"},
		{"number for bn", "", reg, `[{"bn":3,"v":1}]`, objects.ErrMalformed, "bn is not a string"},
		{"string for t", "", reg, `[{"n":"/3/0/9","v":1,"t":"1"}]`, objects.ErrMalformed, "t is not a number"},
		// values against the model
		{"integer out of range", "", reg, `[{"n":"/3/0/9","v":9223372036854775808}]`, objects.ErrRange, "/3/0/9"},
		{"negative unsigned", "", senmltest.Models, `[{"n":"/32769/0/2","v":-1}]`, objects.ErrRange, "/32769/0/2"},
		{"fraction for an integer", "", reg, `[{"n":"/3/0/9","v":1.5}]`, objects.ErrType, "/3/0/9"},
		{"text for an integer", "", reg, `[{"n":"/3/0/9","vs":"abc"}]`, objects.ErrType, "/3/0/9"},
		{"boolean for a string", "", reg, `[{"n":"/3/0/0","vb":true}]`, objects.ErrType, "/3/0/0"},
		{"number for a string", "", reg, `[{"n":"/3/0/0","v":1}]`, objects.ErrType, "/3/0/0"},
		{"opaque for a float", "", reg, `[{"n":"/6/0/0","vd":"AQ"}]`, objects.ErrType, "/6/0/0"},
		{"vd not base64", "", reg, `[{"n":"/6/0/4","vd":"!!"}]`, objects.ErrType, "/6/0/4"},
		{"vlo without a colon", "", reg, `[{"n":"/3/0/22/0","vlo":"1"}]`, objects.ErrType, "/3/0/22/0"},
		{"vlo out of range", "", reg, `[{"n":"/3/0/22/0","vlo":"70000:1"}]`, objects.ErrType, "/3/0/22/0"},
		{"2 for a boolean", "", reg, `[{"n":"/1/0/6","v":2}]`, objects.ErrType, "/1/0/6"},
		{"base value makes a fraction", "", reg, `[{"bv":0.5,"n":"/3/0/9","v":1}]`, objects.ErrType, "/3/0/9"},
		{"time before 1978", "", reg, `[{"n":"/3/0/9","v":1,"t":-2e9}]`, objects.ErrRange, "before 1978"},
		{"infinite time", "", reg, `[{"bt":1e308,"n":"/3/0/9","v":1,"t":1e308}]`, objects.ErrRange, "finite"},
		// names
		{"no name", "", reg, `[{"v":1}]`, objects.ErrMalformed, "no name"},
		{"not a path", "", reg, `[{"n":"urn:dev:ow:10e2073a01080063","v":1}]`, objects.ErrMalformed, "urn:dev:ow"},
		{"leading zero in a path", "", reg, `[{"n":"/3/00/1","v":1}]`, objects.ErrMalformed, "/3/00/1"},
		{"double slash from bn and n", "", reg, `[{"bn":"/3/0/","n":"/0","vs":"a"}]`, objects.ErrMalformed, "/3/0//0"},
		{"relative name without bn", "", reg, `[{"n":"3/0/0","vs":"a"}]`, objects.ErrMalformed, "3/0/0"},
		{"too deep", "", reg, `[{"n":"/3/0/6/0/1","v":1}]`, objects.ErrMalformed, "/3/0/6/0/1"},
		{"ID too big", "", reg, `[{"n":"/3/0/65536","v":1}]`, objects.ErrMalformed, "/3/0/65536"},
		{"the root", "", reg, `[{"n":"/","v":1}]`, objects.ErrMalformed, "names no object"},
		{"value for an instance", "", reg, `[{"n":"/3/0","v":1}]`, objects.ErrMalformed, "/3/0"},
		// versions and must-understand fields (RFC 8428 §4.4)
		{"newer version", "", reg, `[{"bver":11,"n":"/3/0/9","v":1}]`, objects.ErrUnsupported, "version 11"},
		{"version zero", "", reg, `[{"bver":0,"n":"/3/0/9","v":1}]`, objects.ErrMalformed, "bver"},
		{"fractional version", "", reg, `[{"bver":1.5,"n":"/3/0/9","v":1}]`, objects.ErrMalformed, "bver"},
		{"must-understand field", "", reg, `[{"n":"/3/0/9","v":1,"foo_":1}]`, objects.ErrUnsupported, "foo_"},
		// nodes
		{"outside the requested path", "/3/0", reg, `[{"n":"/1/0/1","v":1}]`, objects.ErrMalformed, "/1/0/1"},
		{"sibling of the requested resource", "/3/0/9", reg, `[{"n":"/3/0/10","v":1}]`, objects.ErrMalformed, "/3/0/10"},
		{"no value", "/3/0/9", reg, `[{"n":"/3/0/9"}]`, objects.ErrMalformed, "no value"},
		{"value twice", "/3/0", reg, `[{"n":"/3/0/9","v":1},{"n":"/3/0/9","v":2}]`, objects.ErrMalformed, "twice"},
		{"instance of a single resource", "/3/0", reg, `[{"n":"/3/0/9/0","v":1}]`, objects.ErrMalformed, "/3/0/9/0"},
		{"single value for a multiple resource", "/3/0", reg, `[{"n":"/3/0/6","v":1}]`, objects.ErrMalformed, "/3/0/6"},
		{"nothing for a resource", "/3/0/9", reg, `[]`, objects.ErrMalformed, "no value"},
		{"nothing for a resource instance", "/3/0/6/0", reg, `[]`, objects.ErrMalformed, "no value"},
		{"another resource instance", "/3/0/6/0", reg, `[{"n":"/3/0/6/1","v":1}]`, objects.ErrMalformed, "/3/0/6/1"},
		{"the root path", "/", reg, `[]`, objects.ErrUnsupported, "object path"},
	}
	c := testCodec()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.root == "" {
				var recs []objects.Record
				recs, err = c.DecodeRecords([]byte(tc.payload), tc.models)
				if err == nil {
					t.Fatalf("no error; decoded %v", recs)
				}
			} else {
				var n objects.Node
				n, err = c.Decode(objects.MustParsePath(tc.root), []byte(tc.payload), tc.models)
				if err == nil {
					t.Fatalf("no error; decoded %#v", n)
				}
			}
			var de *objects.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%T is not a *objects.DecodeError: %v", err, err)
			}
			if de.Format != objects.FormatSenMLJSON {
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
