package nodejson

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
)

var p = objects.MustParsePath

func TestMarshal(t *testing.T) {
	multi := objects.NewMultiple(7, map[uint16]objects.Value{0: objects.IntegerValue(3800), 1: objects.IntegerValue(5000)})
	empty := objects.Resource{ID: 11, Multiple: true}
	tests := []struct {
		name string
		path string
		node objects.Node
		want string
	}{
		{"string", "/3/0/0", ptr(objects.NewSingle(0, objects.StringValue("lwm2md <x>"))), `{"path":"/3/0/0","type":"string","value":"lwm2md <x>"}`},
		{"integer", "/3/0/9", ptr(objects.NewSingle(9, objects.IntegerValue(-5))), `{"path":"/3/0/9","type":"integer","value":-5}`},
		{"unsigned max", "/9/0/0", ptr(objects.NewSingle(0, objects.UnsignedValue(math.MaxUint64))), `{"path":"/9/0/0","type":"unsigned","value":18446744073709551615}`},
		{"float", "/3303/0/5700", ptr(objects.NewSingle(5700, objects.FloatValue(21.5))), `{"path":"/3303/0/5700","type":"float","value":21.5}`},
		{"float NaN", "/3303/0/5700", ptr(objects.NewSingle(5700, objects.FloatValue(math.NaN()))), `{"path":"/3303/0/5700","type":"float","value":"NaN"}`},
		{"float -Inf", "/3303/0/5700", ptr(objects.NewSingle(5700, objects.FloatValue(math.Inf(-1)))), `{"path":"/3303/0/5700","type":"float","value":"-Infinity"}`},
		{"boolean", "/1/0/6", ptr(objects.NewSingle(6, objects.BooleanValue(true))), `{"path":"/1/0/6","type":"boolean","value":true}`},
		{"opaque base64", "/5/0/0", ptr(objects.NewSingle(0, objects.OpaqueValue([]byte{0, 1, 2, 0xff}))), `{"path":"/5/0/0","type":"opaque","value":"AAEC/w=="}`},
		{"time seconds", "/3/0/13", ptr(objects.NewSingle(13, objects.TimeSecondsValue(1700000000))), `{"path":"/3/0/13","type":"time","value":1700000000}`},
		{"objlnk", "/2/0/0", ptr(objects.NewSingle(0, objects.ObjlnkValue(objects.ObjLink{Object: 3, Instance: 0}))), `{"path":"/2/0/0","type":"objlnk","value":"3:0"}`},
		{"multiple", "/3/0/7", &multi, `{"path":"/3/0/7","type":"integer","instances":[{"path":"/3/0/7/0","value":3800},{"path":"/3/0/7/1","value":5000}]}`},
		{"empty multiple", "/3/0/11", &empty, `{"path":"/3/0/11","instances":[]}`},
		{"resource instance", "/3/0/7/1", &objects.ResourceInstance{ID: 1, Value: objects.IntegerValue(5000)}, `{"path":"/3/0/7/1","type":"integer","value":5000}`},
		{"instance", "/3/0", &objects.Instance{ID: 0, Resources: []objects.Resource{objects.NewSingle(0, objects.StringValue("a")), multi}},
			`{"path":"/3/0","resources":[{"path":"/3/0/0","type":"string","value":"a"},{"path":"/3/0/7","type":"integer","instances":[{"path":"/3/0/7/0","value":3800},{"path":"/3/0/7/1","value":5000}]}]}`},
		{"object", "/1", &objects.Object{ID: 1, Instances: []objects.Instance{{ID: 0, Resources: []objects.Resource{objects.NewSingle(0, objects.IntegerValue(101))}}}},
			`{"path":"/1","instances":[{"path":"/1/0","resources":[{"path":"/1/0/0","type":"integer","value":101}]}]}`},
		{"empty instance", "/3/0", &objects.Instance{}, `{"path":"/3/0","resources":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Marshal(p(tc.path), tc.node)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		path string
		node objects.Node
	}{
		{"depth mismatch", "/3/0", ptr(objects.NewSingle(0, objects.StringValue("x")))},
		{"id mismatch", "/3/0/1", ptr(objects.NewSingle(0, objects.StringValue("x")))},
		{"invalid UTF-8", "/3/0/0", ptr(objects.NewSingle(0, objects.StringValue("\xff")))},
		{"root", "/", &objects.Object{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := Marshal(p(tc.path), tc.node); err == nil {
				t.Fatalf("Marshal = %s, want an error", b)
			}
		})
	}
}

func TestUnmarshal(t *testing.T) {
	m := builtin.Registry()
	tests := []struct {
		name   string
		path   string
		models objects.Models
		in     string
		want   objects.Node
	}{
		{"string, path left out", "/3/0/0", m, `{"value":"lwm2md"}`, ptr(objects.NewSingle(0, objects.StringValue("lwm2md")))},
		{"model type wins over JSON kind", "/3/0/9", m, `{"value":100}`, ptr(objects.NewSingle(9, objects.IntegerValue(100)))},
		{"integral float for integer", "/3/0/9", m, `{"value":1e2}`, ptr(objects.NewSingle(9, objects.IntegerValue(100)))},
		{"time as seconds", "/3/0/13", m, `{"type":"time","value":1700000000}`, ptr(objects.NewSingle(13, objects.TimeSecondsValue(1700000000)))},
		{"time as RFC 3339", "/3/0/13", m, `{"value":"2023-11-14T22:13:20Z"}`, ptr(objects.NewSingle(13, objects.TimeSecondsValue(1700000000)))},
		{"float from integer", "/3303/0/5700", m, `{"value":21}`, ptr(objects.NewSingle(5700, objects.FloatValue(21)))},
		{"float Infinity", "/3303/0/5700", m, `{"value":"Infinity"}`, ptr(objects.NewSingle(5700, objects.FloatValue(math.Inf(1))))},
		{"opaque url-safe base64", "/5/0/0", m, `{"value":"AAEC_w"}`, ptr(objects.NewSingle(0, objects.OpaqueValue([]byte{0, 1, 2, 0xff})))},
		{"objlnk", "/10241/0/2", nil, `{"type":"objlnk","value":"3:0"}`, ptr(objects.NewSingle(2, objects.ObjlnkValue(objects.ObjLink{Object: 3})))},
		{"DDF type spelling", "/10241/0/0", nil, `{"type":"Unsigned Integer","value":18446744073709551615}`, ptr(objects.NewSingle(0, objects.UnsignedValue(math.MaxUint64)))},
		{"large integer as string", "/10241/0/0", nil, `{"type":"integer","value":"9223372036854775807"}`, ptr(objects.NewSingle(0, objects.IntegerValue(math.MaxInt64)))},
		{"inferred without model", "/10241/0/1", nil, `{"value":2.5}`, ptr(objects.NewSingle(1, objects.FloatValue(2.5)))},
		{"inferred integer without model", "/10241/0/1", nil, `{"value":7}`, ptr(objects.NewSingle(1, objects.IntegerValue(7)))},
		{"multiple by id, sorted", "/3/0/7", m, `{"instances":[{"id":1,"value":5000},{"id":0,"value":3800}]}`,
			ptr(objects.NewMultiple(7, map[uint16]objects.Value{0: objects.IntegerValue(3800), 1: objects.IntegerValue(5000)}))},
		{"empty multiple", "/3/0/11", m, `{"instances":[]}`, &objects.Resource{ID: 11, Multiple: true, Instances: []objects.ResourceInstance{}}},
		{"resource instance", "/3/0/7/1", m, `{"path":"/3/0/7/1","value":5000}`, &objects.ResourceInstance{ID: 1, Value: objects.IntegerValue(5000)}},
		{"instance", "/1/0", m, `{"resources":[{"path":"/1/0/1","value":300},{"id":0,"value":101}]}`,
			&objects.Instance{ID: 0, Resources: []objects.Resource{objects.NewSingle(0, objects.IntegerValue(101)), objects.NewSingle(1, objects.IntegerValue(300))}}},
		{"object", "/1", m, `{"instances":[{"id":0,"resources":[{"id":6,"value":false}]}]}`,
			&objects.Object{ID: 1, Instances: []objects.Instance{{ID: 0, Resources: []objects.Resource{objects.NewSingle(6, objects.BooleanValue(false))}}}}},
		{"executable without value", "/3/0/4", m, `{}`, ptr(objects.NewSingle(4, objects.Value{}))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Unmarshal([]byte(tc.in), p(tc.path), tc.models)
			if err != nil {
				t.Fatal(err)
			}
			if !objects.EqualNodes(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestUnmarshalErrors(t *testing.T) {
	m := builtin.Registry()
	tests := []struct {
		name  string
		path  string
		in    string
		kind  error
		field string // expected in the message
	}{
		{"string for integer", "/3/0/9", `{"value":"x"}`, objects.ErrType, "/3/0/9: value"},
		{"fraction for integer", "/3/0/9", `{"value":1.5}`, objects.ErrType, "value"},
		{"out of range", "/3/0/9", `{"value":101}`, objects.ErrRange, `outside the range "0..100"`},
		{"negative battery", "/3/0/9", `{"value":-1}`, objects.ErrRange, "value"},
		{"string too long", "/0/0/0", `{"value":"` + strings.Repeat("a", 256) + `"}`, objects.ErrRange, "length in bytes 256"},
		{"opaque wrong length", "/0/0/7", `{"value":"AAE="}`, objects.ErrRange, "6 bytes"},
		{"integer overflow", "/3/0/9", `{"value":9223372036854775808}`, objects.ErrRange, "signed 64-bit"},
		{"declared type disagrees", "/3/0/9", `{"type":"string","value":"5"}`, objects.ErrType, "/3/0/9: type"},
		{"unknown type", "/3/0/9", `{"type":"decimal","value":5}`, objects.ErrMalformed, "type"},
		{"single given instances", "/3/0/0", `{"instances":[]}`, objects.ErrType, "is single"},
		{"multiple given value", "/3/0/7", `{"value":5}`, objects.ErrType, "is multiple"},
		{"missing value", "/3/0/0", `{}`, objects.ErrMalformed, "value: missing"},
		{"value on executable", "/3/0/4", `{"value":"x"}`, objects.ErrType, "executable"},
		{"path disagrees", "/3/0/0", `{"path":"/3/0/1","value":"x"}`, objects.ErrMalformed, "path"},
		{"child outside parent", "/3/0", `{"resources":[{"path":"/4/0/0","value":1}]}`, objects.ErrMalformed, "[0].path"},
		{"child without id", "/3/0", `{"resources":[{"value":1}]}`, objects.ErrMalformed, "path or an id"},
		{"duplicate resource", "/3/0", `{"resources":[{"id":0,"value":"a"},{"id":0,"value":"b"}]}`, objects.ErrMalformed, "twice"},
		{"unknown field", "/3/0/0", `{"valu":"x"}`, objects.ErrMalformed, "valu"},
		{"trailing data", "/3/0/0", `{"value":"x"} {}`, objects.ErrMalformed, "after"},
		{"invalid UTF-8", "/3/0/0", "{\"value\":\"\xff\"}", objects.ErrUTF8, "UTF-8"},
		{"lone surrogate", "/3/0/0", `{"value":"\ud800"}`, objects.ErrUTF8, "value"},
		{"empty body", "/3/0/0", ``, objects.ErrMalformed, "empty"},
		{"array for string", "/3/0/0", `{"value":[1]}`, objects.ErrType, "array"},
		{"instance with value", "/3/0", `{"value":1}`, objects.ErrMalformed, "no value"},
		{"object without instances", "/3", `{}`, objects.ErrMalformed, "instances"},
		{"boolean as number", "/1/0/6", `{"value":1}`, objects.ErrType, "value"},
		{"root path", "/", `{}`, objects.ErrMalformed, "path"},
		{"bad id type", "/3/0", `{"resources":[{"id":"x"}]}`, objects.ErrMalformed, "id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Unmarshal([]byte(tc.in), p(tc.path), m)
			if err == nil {
				t.Fatalf("Unmarshal = %#v, want an error", n)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, not *Error", err, err)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v does not wrap %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %q", err, tc.field)
			}
		})
	}
}

func TestRecords(t *testing.T) {
	recs := []objects.Record{
		{Path: p("/3303/0/5700"), Value: objects.FloatValue(21.5), Time: 1700000000.5},
		{Path: p("/3/0")},
		{Path: p("/3/0/7/0"), Value: objects.IntegerValue(3800)},
	}
	b, err := MarshalRecords(recs)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"path":"/3303/0/5700","type":"float","value":21.5,"time":1700000000.5},{"path":"/3/0"},{"path":"/3/0/7/0","type":"integer","value":3800}]`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	got, err := UnmarshalRecords(b, builtin.Registry())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("got %d records", len(got))
	}
	for i := range recs {
		if got[i].Path != recs[i].Path || !got[i].Value.Equal(recs[i].Value) && !recs[i].Value.IsNone() || got[i].Time != recs[i].Time {
			t.Errorf("record %d: got %+v, want %+v", i, got[i], recs[i])
		}
	}
}

func TestRecordErrors(t *testing.T) {
	tests := []struct {
		name, in string
		kind     error
	}{
		{"not an array", `{"path":"/3/0/0"}`, objects.ErrMalformed},
		{"no path", `[{"value":1}]`, objects.ErrMalformed},
		{"value on instance", `[{"path":"/3/0","value":1}]`, objects.ErrMalformed},
		{"value on multiple resource", `[{"path":"/3/0/7","value":1}]`, objects.ErrType},
		{"instance of single", `[{"path":"/3/0/0/1","value":"x"}]`, objects.ErrType},
		{"nested", `[{"path":"/3/0","resources":[]}]`, objects.ErrMalformed},
		{"type without value", `[{"path":"/3/0/0","type":"string"}]`, objects.ErrMalformed},
		{"range", `[{"path":"/3/0/9","value":200}]`, objects.ErrRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := UnmarshalRecords([]byte(tc.in), builtin.Registry())
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, not *Error", err, err)
			}
		})
	}
}

// TestRoundTripBuiltin writes an instance of every built-in object
// version, with an in-range value for every resource that has one, and
// reads it back against that version's model.
func TestRoundTripBuiltin(t *testing.T) {
	for _, def := range builtin.Defs() {
		t.Run(def.Name+"/"+def.Version, func(t *testing.T) {
			in := sampleInstance(t, def)
			root := objects.NewPath(def.ID, 0)
			b, err := Marshal(root, in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(b, root, single{def})
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if !objects.EqualNodes(got, in) {
				t.Fatalf("round trip changed the node:\n%s", b)
			}
			obj := &objects.Object{ID: def.ID, Instances: []objects.Instance{*in}}
			b, err = Marshal(objects.NewPath(def.ID), obj)
			if err != nil {
				t.Fatal(err)
			}
			got, err = Unmarshal(b, objects.NewPath(def.ID), single{def})
			if err != nil || !objects.EqualNodes(got, obj) {
				t.Fatalf("object round trip: %v\n%s", err, b)
			}
		})
	}
}

// TestTestdata reads every seed file and checks it survives a round trip.
func TestTestdata(t *testing.T) {
	for name, path := range seedPaths {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			if path == "" {
				recs, err := UnmarshalRecords(data, builtin.Registry())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := MarshalRecords(recs); err != nil {
					t.Fatal(err)
				}
				return
			}
			n, err := Unmarshal(data, p(path), builtin.Registry())
			if err != nil {
				t.Fatal(err)
			}
			b, err := Marshal(p(path), n)
			if err != nil {
				t.Fatal(err)
			}
			if n2, err := Unmarshal(b, p(path), builtin.Registry()); err != nil || !objects.EqualNodes(n, n2) {
				t.Fatalf("round trip: %v\n%s", err, b)
			}
		})
	}
}

// seedPaths maps each testdata file to its root ("" for records).
var seedPaths = map[string]string{"device.json": "/3/0", "server-object.json": "/1", "records.json": ""}

type single struct{ def *objects.ObjectDef }

func (s single) Object(id uint16) *objects.ObjectDef {
	if id == s.def.ID {
		return s.def
	}
	return nil
}

func sampleInstance(t *testing.T, def *objects.ObjectDef) *objects.Instance {
	in := &objects.Instance{ID: 0}
	for _, rd := range def.Resources {
		if rd.Type == objects.TypeNone {
			continue
		}
		v := sampleValue(t, &rd)
		if rd.Multiple {
			in.Resources = append(in.Resources, objects.NewMultiple(rd.ID, map[uint16]objects.Value{0: v, 3: v}))
		} else {
			in.Resources = append(in.Resources, objects.NewSingle(rd.ID, v))
		}
	}
	return in
}

// sampleValue picks a value of the resource's type inside its range.
func sampleValue(t *testing.T, rd *objects.ResourceDef) objects.Value {
	lo := 1.0
	if spans, _, ok := parseRange(rd.Range); ok {
		lo = spans[len(spans)-1].hi
	}
	var v objects.Value
	switch rd.Type {
	case objects.TypeString, objects.TypeCorelnk:
		v, _ = objects.ParseText(rd.Type, strings.Repeat("é", int(lo)/2)+strings.Repeat("x", int(lo)%2))
	case objects.TypeOpaque:
		v = objects.OpaqueValue(make([]byte, int(lo)))
	case objects.TypeInteger:
		v = objects.IntegerValue(int64(lo))
	case objects.TypeUnsigned:
		v = objects.UnsignedValue(uint64(lo))
	case objects.TypeFloat:
		v = objects.FloatValue(lo)
	case objects.TypeTime:
		v = objects.TimeSecondsValue(1700000000)
	case objects.TypeBoolean:
		v = objects.BooleanValue(true)
	case objects.TypeObjlnk:
		v = objects.ObjlnkValue(objects.ObjLink{Object: 3, Instance: 0})
	}
	if err := checkRange(rd, v); err != nil {
		t.Fatalf("sample for %s: %v", rd.Name, err)
	}
	return v
}

func ptr(r objects.Resource) *objects.Resource { return &r }
