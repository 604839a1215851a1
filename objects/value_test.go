package objects

import (
	"errors"
	"math"
	"testing"
)

func TestTextRoundTrip(t *testing.T) {
	vals := []Value{
		StringValue("lwm2md"), StringValue(""), IntegerValue(-42), IntegerValue(math.MaxInt64),
		UnsignedValue(math.MaxUint64), FloatValue(3.5), FloatValue(-0.000001), FloatValue(1e300),
		BooleanValue(true), BooleanValue(false), OpaqueValue([]byte{0, 1, 0xfe}),
		TimeSecondsValue(1700000000), ObjlnkValue(ObjLink{3, 0}), CorelnkValue("</3/0>"),
	}
	for _, v := range vals {
		t.Run(v.String(), func(t *testing.T) {
			w, err := ParseText(v.Type(), v.Text())
			if err != nil || !w.Equal(v) {
				t.Fatalf("%v -> %q -> %v, %v", v, v.Text(), w, err)
			}
		})
	}
}

func TestParseTextErrors(t *testing.T) {
	tests := []struct {
		t    Type
		in   string
		want error
	}{
		{TypeInteger, "1.5", ErrType},
		{TypeInteger, "99999999999999999999", ErrRange},
		{TypeUnsigned, "-1", ErrType},
		{TypeBoolean, "2", ErrType},
		{TypeObjlnk, "3", ErrType},
		{TypeString, "\xff", ErrUTF8},
		{TypeOpaque, "!!", ErrType},
	}
	for _, tt := range tests {
		if _, err := ParseText(tt.t, tt.in); !errors.Is(err, tt.want) {
			t.Errorf("ParseText(%v, %q) = %v, want %v", tt.t, tt.in, err, tt.want)
		}
	}
}

func TestConvert(t *testing.T) {
	tests := []struct {
		in   Value
		to   Type
		want Value
		err  error
	}{
		{FloatValue(42), TypeInteger, IntegerValue(42), nil},
		{FloatValue(42.5), TypeInteger, Value{}, ErrType},
		{FloatValue(-1), TypeUnsigned, Value{}, ErrRange},
		{FloatValue(1e30), TypeInteger, Value{}, ErrRange},
		{IntegerValue(7), TypeFloat, FloatValue(7), nil},
		{IntegerValue(1700000000), TypeTime, TimeSecondsValue(1700000000), nil},
		{StringValue("3:1"), TypeObjlnk, ObjlnkValue(ObjLink{3, 1}), nil},
		{StringValue("x"), TypeCorelnk, CorelnkValue("x"), nil},
		{UnsignedValue(math.MaxUint64), TypeInteger, Value{}, ErrRange},
		{OpaqueValue([]byte("hi")), TypeString, StringValue("hi"), nil},
		{BooleanValue(true), TypeTime, Value{}, ErrType},
	}
	for _, tt := range tests {
		got, err := tt.in.Convert(tt.to)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%v -> %v: err %v, want %v", tt.in, tt.to, err, tt.err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("%v -> %v = %v, %v; want %v", tt.in, tt.to, got, err, tt.want)
		}
	}
}

func TestDecodeBase64Alphabets(t *testing.T) {
	for _, s := range []string{"APoAAw", "APoAAw==", "IAAAAP8=", "IAAAAP8", "-_8", "+/8="} {
		if _, err := DecodeBase64(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestBuilderAndFlatten(t *testing.T) {
	b := NewBuilder(MustParsePath("/3/0"), nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Add(MustParsePath("/3/0/6/1"), IntegerValue(5)))
	must(b.Add(MustParsePath("/3/0/0"), StringValue("x")))
	must(b.Add(MustParsePath("/3/0/6/0"), IntegerValue(1)))
	if err := b.Add(MustParsePath("/4/0/0"), StringValue("y")); err == nil {
		t.Error("value outside the root accepted")
	}
	n, err := b.Node()
	must(err)
	dup := NewBuilder(MustParsePath("/3/0"), nil)
	must(dup.Add(MustParsePath("/3/0/0"), StringValue("x")))
	must(dup.Add(MustParsePath("/3/0/0"), StringValue("y")))
	if _, err := dup.Node(); !errors.Is(err, ErrMalformed) {
		t.Errorf("duplicate value: err = %v", err)
	}
	recs := Flatten(MustParsePath("/3/0"), n)
	want := []string{"/3/0/0", "/3/0/6/0", "/3/0/6/1"}
	if len(recs) != len(want) {
		t.Fatalf("records %v", recs)
	}
	for i := range want {
		if recs[i].Path.String() != want[i] {
			t.Errorf("record %d at %s, want %s", i, recs[i].Path, want[i])
		}
	}
}

func TestRegistryLookup(t *testing.T) {
	r := NewRegistry()
	for _, v := range []string{"1.0", "1.2", "1.1"} {
		if err := r.Add(&ObjectDef{ID: 3, Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]string{"": "1.0", "1.0": "1.0", "1.1": "1.1", "\"1.1\"": "1.1", "1.3": "1.2", "2.0": "1.2", "0.9": "1.0"}
	for ask, want := range cases {
		if got := r.Lookup(3, ask); got == nil || got.Version != want {
			t.Errorf("Lookup(3, %q) = %v, want %s", ask, got, want)
		}
	}
	if r.Object(3).Version != "1.2" || r.Lookup(4, "1.0") != nil {
		t.Error("Object/Lookup of unknown")
	}
	m := r.ForVersions(map[uint16]string{3: "1.1"})
	if m.Object(3).Version != "1.1" {
		t.Error("ForVersions")
	}
}

func TestBuilderLargePayload(t *testing.T) {
	b := NewBuilder(NewPath(3), nil)
	for i := 0; i < 200; i++ {
		for r := 0; r < 300; r++ {
			if err := b.Add(NewPath(3, uint16(i), uint16(r)), IntegerValue(int64(r))); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := b.Node()
	if err != nil {
		t.Fatal(err)
	}
	if recs := Flatten(NewPath(3), n); len(recs) != 60000 || recs[len(recs)-1].Path != NewPath(3, 199, 299) {
		t.Fatalf("%d records", len(recs))
	}
}

func BenchmarkBuilder100(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		bl := NewBuilder(NewPath(3, 0), nil)
		for r := 0; r < 100; r++ {
			_ = bl.Add(NewPath(3, 0, uint16(r)), IntegerValue(int64(r)))
		}
		if _, err := bl.Node(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBuildNodeShapes(t *testing.T) {
	def := &ObjectDef{ID: 9, Resources: []ResourceDef{{ID: 0, Type: TypeInteger}, {ID: 1, Multiple: true, Type: TypeInteger}}}
	m := staticModels{def}
	tests := []struct {
		name string
		root string
		recs []Record
		m    Models
		want error // nil: builds
	}{
		{"empty instance", "/9", []Record{{Path: NewPath(9, 1)}}, nil, nil},
		{"empty multiple by model", "/9/0/1", nil, m, nil},
		{"empty single by model", "/9/0/0", nil, m, ErrMalformed},
		{"instance of a single resource", "/9/0", []Record{{Path: NewPath(9, 0, 0, 1), Value: IntegerValue(1)}}, m, ErrType},
		{"value for a multiple resource", "/9/0", []Record{{Path: NewPath(9, 0, 1), Value: IntegerValue(1)}}, m, ErrType},
		{"empty marker on a single resource", "/9/0", []Record{{Path: NewPath(9, 0, 0)}}, m, ErrType},
		{"outside the root", "/9/0", []Record{{Path: NewPath(9, 1, 0), Value: IntegerValue(1)}}, nil, ErrMalformed},
		{"value at an instance path", "/9", []Record{{Path: NewPath(9, 1), Value: IntegerValue(1)}}, nil, ErrMalformed},
		{"duplicate instance", "/9/0/1", []Record{{Path: NewPath(9, 0, 1, 1), Value: IntegerValue(1)}, {Path: NewPath(9, 0, 1, 1), Value: IntegerValue(2)}}, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BuildNode(MustParsePath(tt.root), tt.recs, tt.m)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var be *BuildError
			if err != nil && !errors.As(err, &be) {
				t.Fatalf("err %T is not a *BuildError", err)
			}
		})
	}
}

type staticModels []*ObjectDef

func (s staticModels) Object(id uint16) *ObjectDef {
	for _, d := range s {
		if d.ID == id {
			return d
		}
	}
	return nil
}

func TestNodesFromRecords(t *testing.T) {
	roots := []Path{MustParsePath("/3/0/0"), MustParsePath("/1/0"), MustParsePath("/5/0")}
	recs := []Record{
		{Path: MustParsePath("/1/0/1"), Value: IntegerValue(60)},
		{Path: MustParsePath("/3/0/0"), Value: StringValue("lwm2md")},
	}
	nodes, err := NodesFromRecords(roots, recs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[MustParsePath("/5/0")] != nil {
		t.Fatalf("nodes = %v, want /3/0/0 and /1/0 only", nodes)
	}
	if in, ok := nodes[MustParsePath("/1/0")].(*Instance); !ok || in.Resource(1) == nil {
		t.Fatalf("/1/0 = %#v", nodes[MustParsePath("/1/0")])
	}
	if _, err := NodesFromRecords(roots, []Record{{Path: MustParsePath("/4/0/0"), Value: IntegerValue(1)}}, nil); err == nil {
		t.Error("a record outside every root was accepted")
	}
}
