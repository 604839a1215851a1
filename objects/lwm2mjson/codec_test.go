package lwm2mjson

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

var fixedNow = time.Unix(1795305992, 500_000_000)

var codec = Codec{Now: func() time.Time { return fixedNow }}

func roundTrip(t *testing.T, root objects.Path, n objects.Node, m objects.Models) objects.Node {
	t.Helper()
	b, err := codec.Encode(root, n, m)
	if err != nil {
		t.Fatalf("Encode(%s): %v", root, err)
	}
	got, err := codec.Decode(root, b, m)
	if err != nil {
		t.Fatalf("Decode(%s, %s): %v", root, b, err)
	}
	if !objects.EqualNodes(n, got) {
		t.Fatalf("round trip of %s through %s:\n got %+v\nwant %+v", root, b, got, n)
	}
	return got
}

func TestRoundTripNodeKinds(t *testing.T) {
	in0, in1 := fullInstance(0), fullInstance(7)
	obj := &objects.Object{ID: 1000, Instances: []objects.Instance{in0, in1}}
	tests := []struct {
		name string
		root string
		node objects.Node
	}{
		{"object", "/1000", obj},
		{"instance", "/1000/7", &in1},
		{"empty object", "/1000", &objects.Object{ID: 1000}},
		{"empty instance", "/1000/3", &objects.Instance{ID: 3}},
		{"single resource", "/1000/0/3", &objects.Resource{ID: 3, Value: objects.FloatValue(2.5)}},
		{"multiple resource", "/1000/0/11", &in0.Resources[10]},
		{"empty multiple resource", "/1000/0/12", &objects.Resource{ID: 12, Multiple: true}},
		{"resource instance", "/1000/0/11/7", &objects.ResourceInstance{ID: 7, Value: objects.IntegerValue(-1)}},
		{"device instance", "/3/0", deviceInstance()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := objects.Models(testModels)
			if tc.root[1] == '3' {
				m = shared.Registry(t)
			}
			got := roundTrip(t, objects.MustParsePath(tc.root), tc.node, m)
			if objects.NodeDepth(got) != objects.MustParsePath(tc.root).Len() {
				t.Errorf("decoded a %T", got)
			}
		})
	}
}

// TestRoundTripEveryType writes each sample as a single resource and as
// a resource instance, with the model, and checks the wire form.
func TestRoundTripEveryType(t *testing.T) {
	for i, typ := range allTypes {
		for k, v := range samples[typ] {
			t.Run(fmt.Sprintf("%v/%d", typ, k), func(t *testing.T) {
				single := objects.NewPath(1000, 0, uint16(i))
				roundTrip(t, single, &objects.Resource{ID: uint16(i), Value: v}, testModels)
				inst := objects.NewPath(1000, 0, uint16(10+i), 4)
				roundTrip(t, inst, &objects.ResourceInstance{ID: 4, Value: v}, testModels)
			})
		}
	}
}

func TestEncodeWireForm(t *testing.T) {
	tests := []struct {
		root string
		node objects.Node
		want string
	}{
		{"/3/0/0", &objects.Resource{ID: 0, Value: objects.StringValue("x")}, `{"bn":"/3/0/","e":[{"n":"0","sv":"x"}]}`},
		{"/3/0/6", &objects.Resource{ID: 6, Multiple: true, Instances: []objects.ResourceInstance{{ID: 0, Value: objects.IntegerValue(1)}}}, `{"bn":"/3/0/6/","e":[{"n":"0","v":1}]}`},
		{"/3/0/6/0", &objects.ResourceInstance{ID: 0, Value: objects.IntegerValue(1)}, `{"bn":"/3/0/6/","e":[{"n":"0","v":1}]}`},
		{"/6/0/2", &objects.Resource{ID: 2, Value: objects.FloatValue(8495)}, `{"bn":"/6/0/","e":[{"n":"2","v":8495.0}]}`},
		{"/6/0/2", &objects.Resource{ID: 2, Value: objects.FloatValue(1e300)}, `{"bn":"/6/0/","e":[{"n":"2","v":1e+300}]}`},
		{"/6/0/4", &objects.Resource{ID: 4, Value: objects.OpaqueValue([]byte{0x20, 0, 0, 0, 0xff})}, `{"bn":"/6/0/","e":[{"n":"4","sv":"IAAAAP8="}]}`},
		{"/3/0/22/0", &objects.ResourceInstance{ID: 0, Value: objects.ObjlnkValue(objects.ObjLink{Object: 33606})}, `{"bn":"/3/0/22/","e":[{"n":"0","ov":"33606:0"}]}`},
		{"/1/0/6", &objects.Resource{ID: 6, Value: objects.BooleanValue(false)}, `{"bn":"/1/0/","e":[{"n":"6","bv":false}]}`},
		{"/1/0", &objects.Instance{ID: 0}, `{"bn":"/1/0/","e":[]}`},
		{"/3/0/0", &objects.Resource{ID: 0, Value: objects.StringValue("a\"\\\x00\n")}, `{"bn":"/3/0/","e":[{"n":"0","sv":"a\"\\\u0000\n"}]}`},
	}
	for _, tc := range tests {
		got, err := codec.Encode(objects.MustParsePath(tc.root), tc.node, nil)
		if err != nil || string(got) != tc.want {
			t.Errorf("Encode(%s) = %s, %v; want %s", tc.root, got, err, tc.want)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		root string
		node objects.Node
	}{
		{"wrong kind", "/3/0", &objects.Resource{ID: 0}},
		{"wrong ID", "/3/0", &objects.Instance{ID: 1}},
		{"nil node", "/3/0", (*objects.Instance)(nil)},
		{"root path", "/", &objects.Object{ID: 3}},
		{"no value", "/3/0/0", &objects.Resource{ID: 0}},
		{"NaN", "/6/0/0", &objects.Resource{ID: 0, Value: objects.FloatValue(math.NaN())}},
		{"Inf", "/6/0/0", &objects.Resource{ID: 0, Value: objects.FloatValue(math.Inf(-1))}},
		{"invalid UTF-8", "/3/0/0", &objects.Resource{ID: 0, Value: objects.StringValue("\xff")}},
	}
	for _, tc := range tests {
		if b, err := codec.Encode(objects.MustParsePath(tc.root), tc.node, nil); err == nil {
			t.Errorf("%s: Encode = %s, want an error", tc.name, b)
		}
	}
}

// TestDecodeWithoutModel checks that the payload's own types survive
// when the model does not know the object.
func TestDecodeWithoutModel(t *testing.T) {
	data := `{"bn":"/9999/0/","e":[{"n":"0","v":5},{"n":"1","v":5.0},{"n":"2","v":-1e3},{"n":"3","v":18446744073709551615},` +
		`{"n":"4","bv":true},{"n":"5","sv":"x"},{"n":"6","ov":"1:2"},{"n":"7/3","v":9007199254740993}]}`
	n, err := codec.Decode(objects.MustParsePath("/9999/0"), []byte(data), shared.Registry(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []objects.Record{
		{Path: objects.MustParsePath("/9999/0/0"), Value: objects.IntegerValue(5)},
		{Path: objects.MustParsePath("/9999/0/1"), Value: objects.FloatValue(5)},
		{Path: objects.MustParsePath("/9999/0/2"), Value: objects.FloatValue(-1000)},
		{Path: objects.MustParsePath("/9999/0/3"), Value: objects.UnsignedValue(math.MaxUint64)},
		{Path: objects.MustParsePath("/9999/0/4"), Value: objects.BooleanValue(true)},
		{Path: objects.MustParsePath("/9999/0/5"), Value: objects.StringValue("x")},
		{Path: objects.MustParsePath("/9999/0/6"), Value: objects.ObjlnkValue(objects.ObjLink{Object: 1, Instance: 2})},
		{Path: objects.MustParsePath("/9999/0/7/3"), Value: objects.IntegerValue(9007199254740993)},
	}
	checkRecords(t, objects.Flatten(objects.MustParsePath("/9999/0"), n), want)
}

// TestDecodeByModel checks the conversions the model drives.
func TestDecodeByModel(t *testing.T) {
	tests := []struct {
		entry string
		res   uint16
		want  objects.Value
	}{
		{`"v":9007199254740993`, 1, objects.IntegerValue(9007199254740993)},
		{`"v":-9223372036854775808`, 1, objects.IntegerValue(math.MinInt64)},
		{`"v":42.0`, 1, objects.IntegerValue(42)},
		{`"v":1e3`, 1, objects.IntegerValue(1000)},
		{`"v":18446744073709551615`, 2, objects.UnsignedValue(math.MaxUint64)},
		{`"v":3`, 3, objects.FloatValue(3)},
		{`"v":1`, 4, objects.BooleanValue(true)},
		{`"bv":false`, 4, objects.BooleanValue(false)},
		{`"sv":"AQIDBAU="`, 5, objects.OpaqueValue([]byte{1, 2, 3, 4, 5})},
		{`"sv":"AQIDBAU"`, 5, objects.OpaqueValue([]byte{1, 2, 3, 4, 5})},
		{`"sv":"-_8"`, 5, objects.OpaqueValue([]byte{0xfb, 0xff})},
		{`"v":1367491215`, 6, objects.TimeSecondsValue(1367491215)},
		{`"sv":"1367491215"`, 6, objects.TimeSecondsValue(1367491215)},
		{`"ov":"65535:65535"`, 7, objects.ObjlnkValue(objects.ObjLink{Object: 65535, Instance: 65535})},
		{`"sv":"3:0"`, 7, objects.ObjlnkValue(objects.ObjLink{Object: 3})},
		{`"sv":"</1/0>"`, 8, objects.CorelnkValue("</1/0>")},
		{`"sv":"\u00fc\ud83d\ude00"`, 0, objects.StringValue("ü😀")},
		{`"v":"3800"`, 1, objects.IntegerValue(3800)}, // pre-1.0 drafts quoted numbers
	}
	for _, tc := range tests {
		data := fmt.Sprintf(`{"bn":"/1000/0/","e":[{"n":"%d",%s}]}`, tc.res, tc.entry)
		root := objects.NewPath(1000, 0, tc.res)
		n, err := codec.Decode(root, []byte(data), testModels)
		if err != nil {
			t.Errorf("%s: %v", data, err)
			continue
		}
		if got := n.(*objects.Resource).Value; !got.Equal(tc.want) {
			t.Errorf("%s: got %v, want %v", data, got, tc.want)
		}
	}
}

// TestNamingStyles resolves bn + n in every style seen or allowed.
func TestNamingStyles(t *testing.T) {
	root := objects.MustParsePath("/3/0")
	styles := []string{
		`{"bn":"/3/0/","e":[{"n":"0","sv":"x"},{"n":"6/1","v":5}]}`,               // Wakaama, the spec
		`{"bn":"/3/0","e":[{"n":"/0","sv":"x"},{"n":"/6/1","v":5}]}`,              // Anjay
		`{"e":[{"n":"/3/0/0","sv":"x"},{"n":"/3/0/6/1","v":5}]}`,                  // names only
		`{"bn":"/","e":[{"n":"3/0/0","sv":"x"},{"n":"3/0/6/1","v":5}]}`,           // root base name
		`{"e":[{"n":"0","sv":"x"},{"n":"6/1","v":5}]}`,                            // relative to the request (1.0 text)
		`{"bn":"3/0/","e":[{"n":"0","sv":"x"},{"n":"6/1","v":5}]}`,                // base name without a slash
		`{"bn":"/3/0/0","e":[{"sv":"x"}],"ver":1,"u":"x","x":null,"y":true}`,      // unknown scalar keys
		`  {"e" : [ {"n":"0","sv":"x"} ,{"v":5,"n":"6/1"}], "bn":"/3/0/"}` + "\n", // white space, any order
	}
	for _, s := range styles {
		n, err := codec.Decode(root, []byte(s), shared.Registry(t))
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		in := n.(*objects.Instance)
		if r := in.Resource(0); r == nil || r.Value.Str() != "x" {
			t.Errorf("%s: /3/0/0 = %+v", s, r)
		}
	}
	// Anjay's single resource: a base name and an entry without "n".
	n, err := codec.Decode(objects.MustParsePath("/3/0/13"), []byte(`{"bn":"/3/0/13","e":[{"v":1795305987}]}`), shared.Registry(t))
	if err != nil || !n.(*objects.Resource).Value.Equal(objects.TimeSecondsValue(1795305987)) {
		t.Errorf("Anjay single resource: %v, %v", n, err)
	}
}

func TestTimes(t *testing.T) {
	now := float64(fixedNow.UnixNano()) / 1e9
	tests := []struct {
		data  string
		times []float64
	}{
		{`{"bn":"/3/0/","bt":1000000000,"e":[{"n":"13","v":1,"t":-5},{"n":"14","sv":"x"},{"n":"15","sv":"y","t":2.5}]}`, []float64{999999995, 1e9, 1000000002.5}},
		{`{"bn":"/3/0/","e":[{"n":"13","v":1,"t":-5},{"n":"14","sv":"x"}]}`, []float64{now - 5, 0}},
		{`{"bn":"/3/0/","e":[{"n":"13","v":1,"t":1795305992.25}]}`, []float64{1795305992.25}},
		{`{"bn":"/3/0/","e":[{"n":"13","v":1,"t":"-30"}],"bt":"25462634"}`, []float64{25462604}},
	}
	for _, tc := range tests {
		recs, err := codec.DecodeRecords([]byte(tc.data), nil)
		if err != nil {
			t.Errorf("%s: %v", tc.data, err)
			continue
		}
		for i, r := range recs {
			if r.Time != tc.times[i] {
				t.Errorf("%s: record %d time %v, want %v", tc.data, i, r.Time, tc.times[i])
			}
		}
	}
}

// TestDecodeHistory: a node decode keeps the newest of repeated values.
func TestDecodeHistory(t *testing.T) {
	data := `{"bn":"/3303/0/5700","bt":25462634,"e":[{"v":22.9,"t":-30},{"v":22.4,"t":-5},{"v":24.1,"t":-50}]}`
	n, err := codec.Decode(objects.MustParsePath("/3303/0/5700"), []byte(data), shared.Registry(t))
	if err != nil {
		t.Fatal(err)
	}
	if v := n.(*objects.Resource).Value; !v.Equal(objects.FloatValue(22.4)) {
		t.Errorf("newest value %v, want 22.4", v)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	p := func(s string) objects.Path { return objects.MustParsePath(s) }
	tests := []struct {
		name string
		recs []objects.Record
		want string
	}{
		{"no times", []objects.Record{
			{Path: p("/3/0/0"), Value: objects.StringValue("x")},
			{Path: p("/3/0/9"), Value: objects.IntegerValue(100)},
			{Path: p("/1/0/1"), Value: objects.IntegerValue(300)},
		}, `{"bn":"/","e":[{"n":"3/0/0","sv":"x"},{"n":"3/0/9","v":100},{"n":"1/0/1","v":300}]}`},
		{"history", []objects.Record{
			{Path: p("/3303/0/5700"), Value: objects.FloatValue(22.4), Time: 25462629},
			{Path: p("/3303/0/5700"), Value: objects.FloatValue(22.9), Time: 25462604},
			{Path: p("/3303/0/5700"), Value: objects.FloatValue(24.1), Time: 25462584},
		}, `{"bn":"/3303/0/","bt":25462629,"e":[{"n":"5700","v":22.4},{"n":"5700","v":22.9,"t":-25},{"n":"5700","v":24.1,"t":-45}]}`},
		{"fractional times", []objects.Record{
			{Path: p("/3/0/13"), Value: objects.TimeSecondsValue(1), Time: 1795305992.0001421},
			{Path: p("/3/0/13"), Value: objects.TimeSecondsValue(2), Time: 1795305993.7},
		}, ""},
		{"mixed absolute", []objects.Record{
			{Path: p("/3/0/13"), Value: objects.TimeSecondsValue(1), Time: 1795305992},
			{Path: p("/3/0/14"), Value: objects.StringValue("+01:00")},
		}, `{"bn":"/3/0/","e":[{"n":"13","v":1,"t":1795305992},{"n":"14","sv":"+01:00"}]}`},
		{"paths only", []objects.Record{{Path: p("/3/0")}, {Path: p("/1")}}, `{"bn":"/","e":[{"n":"3/0"},{"n":"1"}]}`},
		{"empty", nil, `{"bn":"/","e":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := codec.EncodeRecords(tc.recs, shared.Registry(t))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && string(b) != tc.want {
				t.Errorf("EncodeRecords = %s\nwant %s", b, tc.want)
			}
			got, err := codec.DecodeRecords(b, shared.Registry(t))
			if err != nil {
				t.Fatalf("DecodeRecords(%s): %v", b, err)
			}
			checkRecords(t, got, tc.recs)
		})
	}
}

func TestEncodeRecordsRejects(t *testing.T) {
	p := objects.MustParsePath
	tests := []struct {
		name string
		recs []objects.Record
		want error
	}{
		{"mixed relative times", []objects.Record{{Path: p("/3/0/0"), Value: objects.StringValue("x"), Time: 5}, {Path: p("/3/0/1"), Value: objects.StringValue("y")}}, objects.ErrUnsupported},
		{"NaN time", []objects.Record{{Path: p("/3/0/0"), Value: objects.StringValue("x"), Time: math.NaN()}}, objects.ErrRange},
		{"value at an instance", []objects.Record{{Path: p("/3/0"), Value: objects.StringValue("x")}}, nil},
		{"root path", []objects.Record{{Path: objects.RootPath}}, nil},
	}
	for _, tc := range tests {
		_, err := codec.EncodeRecords(tc.recs, nil)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
}

func checkRecords(t *testing.T, got, want []objects.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Path != want[i].Path || !got[i].Value.Equal(want[i].Value) || got[i].Time != want[i].Time {
			t.Errorf("record %d = %v %v %v, want %v %v %v", i, got[i].Path, got[i].Value, got[i].Time, want[i].Path, want[i].Value, want[i].Time)
		}
	}
}

func TestDecodeRecordsAt(t *testing.T) {
	data := `{"e":[{"n":"1/2","v":22.4,"t":-5}],"bt":25462634}`
	recs, err := codec.DecodeRecordsAt(objects.MustParsePath("/72"), []byte(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, recs, []objects.Record{{Path: objects.MustParsePath("/72/1/2"), Value: objects.FloatValue(22.4), Time: 25462629}})
	if _, err := codec.DecodeRecordsAt(objects.MustParsePath("/73"), []byte(`{"bn":"/72/","e":[{"n":"1/2","v":1}]}`), nil); !errors.Is(err, objects.ErrMalformed) {
		t.Errorf("record outside the root: %v", err)
	}
}
