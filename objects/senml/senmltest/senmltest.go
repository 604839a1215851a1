// Package senmltest holds what the tests of the two SenML codecs share:
// the examples of the LwM2M specification with the values they decode to,
// a model with a resource of every type, the nodes and records used for
// round trips and benchmarks, and the round-trip checks themselves.
package senmltest

import (
	"math"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
)

// Now is the clock of every test: relative SenML times count from it.
var Now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Clock returns Now, for Codec.Now.
func Clock() time.Time { return Now }

// NowSeconds is Now as the decoders compute it.
func NowSeconds() float64 { return float64(Now.UnixNano()) / 1e9 }

// Codec is what both SenML codecs implement.
type Codec interface {
	objects.Codec
	objects.RecordCodec
}

// Vector is one example payload kept in a codec's testdata/ directory.
type Vector struct {
	Name   string // file name without the extension
	Source string // where the example comes from
	// Root is the request path the payload answers; Decode must give the
	// node the records make. Empty when the payload is not one node (the
	// root path, several objects, one path repeated with history).
	Root string
	// Records is what DecodeRecords returns with the OMA registry as the
	// model.
	Records []objects.Record
	// Canonical: lwm2md's JSON encoder writes this payload byte for byte,
	// once white space is removed.
	Canonical bool
}

func rec(p string, v objects.Value) objects.Record {
	return objects.Record{Path: objects.MustParsePath(p), Value: v}
}

func timed(p string, v objects.Value, t float64) objects.Record {
	r := rec(p, v)
	r.Time = t
	return r
}

var (
	str   = objects.StringValue
	i64   = objects.IntegerValue
	f64   = objects.FloatValue
	boolv = objects.BooleanValue
)

func link(o, i uint16) objects.Value {
	return objects.ObjlnkValue(objects.ObjLink{Object: o, Instance: i})
}

// Vectors lists the examples: the SenML JSON tables of LwM2M Core 1.1
// §7.4.4 (the same in 1.2), which the CBOR files render with the labels of
// §7.4.5, and a few lwm2md wrote in the same style for what the tables do
// not show (named ex-).
func Vectors() []Vector {
	now := NowSeconds()
	return []Vector{{
		Name:   "spec-7.4.4-2-read-device-instance",
		Source: "LwM2M Core 1.1 Table 7.4.4-2: Read /3/0",
		Root:   "/3/0",
		Records: []objects.Record{
			rec("/3/0/0", str("Open Mobile Alliance")),
			rec("/3/0/1", str("Lightweight M2M Client")),
			rec("/3/0/2", str("345000123")),
			rec("/3/0/3", str("1.0")),
			rec("/3/0/6/0", i64(1)),
			rec("/3/0/6/1", i64(5)),
			rec("/3/0/7/0", i64(3800)),
			rec("/3/0/7/1", i64(5000)),
			rec("/3/0/8/0", i64(125)),
			rec("/3/0/8/1", i64(900)),
			rec("/3/0/9", i64(100)),
			rec("/3/0/10", i64(15)),
			rec("/3/0/11/0", i64(0)),
			rec("/3/0/13", objects.TimeSecondsValue(1367491215)),
			rec("/3/0/14", str("+02:00")),
			rec("/3/0/16", str("U")),
		},
		Canonical: true,
	}, {
		Name:   "spec-7.4.4-3-historical-notification",
		Source: "LwM2M Core 1.1 Table 7.4.4-3: notification with history; bt 25462634 is below 2^28, so relative to now",
		Records: []objects.Record{
			timed("/72/1/2", f64(22.4), now+25462634-5),
			timed("/72/1/2", f64(22.9), now+25462634-30),
			timed("/72/1/2", f64(24.1), now+25462634-50),
		},
	}, {
		Name:   "spec-7.4.4-4-read-root-objlnk",
		Source: "LwM2M Core 1.1 Table 7.4.4-4: objects linked with vlo; the null link is written FFFF:FFFF there",
		Records: []objects.Record{
			rec("/65/0/0/0", link(66, 0)),
			rec("/65/0/0/1", link(66, 1)),
			rec("/65/0/1", str("8613800755500")),
			rec("/65/0/2", f64(1)), // objects 65-67 are not in the registry: v is a Float
			rec("/66/0/0", str("myService1")),
			rec("/66/0/1", str("Internet.15.234")),
			rec("/66/0/2", link(67, 0)),
			rec("/66/1/0", str("myService2")),
			rec("/66/1/1", str("Internet.15.235")),
			rec("/66/1/2", link(65535, 65535)),
			rec("/67/0/0", str("85.76.76.84")),
			rec("/67/0/1", str("85.76.255.255")),
		},
	}, {
		Name:      "spec-7.4.4-5-read-single-resource",
		Source:    "LwM2M Core 1.1 Table 7.4.4-5: Read /3/0/0",
		Root:      "/3/0/0",
		Records:   []objects.Record{rec("/3/0/0", str("Open Mobile Alliance"))},
		Canonical: true,
	}, {
		Name:   "spec-7.4.4-6-read-composite-request",
		Source: "LwM2M Core 1.1 Table 7.4.4-6: Read-Composite request, names only",
		Records: []objects.Record{
			rec("/3/0/0", objects.Value{}),
			rec("/3/0/9", objects.Value{}),
			rec("/1/0/1", objects.Value{}),
		},
		Canonical: true,
	}, {
		Name:   "spec-7.4.4-7-read-composite-response",
		Source: "LwM2M Core 1.1 Table 7.4.4-7: Read-Composite response",
		Records: []objects.Record{
			rec("/3/0/0", str("Open Mobile Alliance")),
			rec("/3/0/9", i64(95)),
			rec("/1/0/1", i64(86400)),
		},
		Canonical: true,
	}, {
		Name:   "spec-7.4.4-8-write-composite",
		Source: "LwM2M Core 1.1 Table 7.4.4-8: Write-Composite",
		Records: []objects.Record{
			rec("/3311/0/5850", boolv(false)),
			rec("/3311/1/5850", boolv(false)),
			rec("/3311/2/5851", i64(20)),
			rec("/3308/0/5900", f64(18)),
		},
		Canonical: true,
	}, {
		Name:   "ex-read-multiple-resource",
		Source: "lwm2md: Read /3/0/7, the values of Table 7.4.4-2",
		Root:   "/3/0/7",
		Records: []objects.Record{
			rec("/3/0/7/0", i64(3800)),
			rec("/3/0/7/1", i64(5000)),
		},
		Canonical: true,
	}, {
		Name:   "ex-send-timestamps",
		Source: "lwm2md: Send of two timestamped readings and an untimed one (t = -bt resolves to 0)",
		Records: []objects.Record{
			timed("/3303/0/5700", f64(22.4), 1795305994.5),
			timed("/3303/0/5700", f64(22.9), 1795305964.5),
			rec("/3303/0/5701", str("Cel")),
		},
		Canonical: true,
	}, {
		Name:   "ex-write-opaque",
		Source: "lwm2md: Write /6/0 with an Opaque and a 17-digit Float, as Anjay writes them",
		Root:   "/6/0",
		Records: []objects.Record{
			rec("/6/0/4", objects.OpaqueValue([]byte{0x01, 0x25, 0x00, 0x01})),
			rec("/6/0/0", f64(50.083464215191043)),
		},
	}}
}

// TestObject is the ID of the object of Models: one resource of every
// type, single (0-8) and multiple (9-13).
const TestObject = 32769

// Models knows TestObject only.
var Models objects.Models = testModels{}

type testModels struct{}

var testDef = func() *objects.ObjectDef {
	d := &objects.ObjectDef{ID: TestObject, Name: "SenML test", Version: "1.0", Multiple: true}
	types := []objects.Type{
		objects.TypeString, objects.TypeInteger, objects.TypeUnsigned, objects.TypeFloat,
		objects.TypeBoolean, objects.TypeOpaque, objects.TypeTime, objects.TypeObjlnk, objects.TypeCorelnk,
	}
	for i, t := range types {
		d.Resources = append(d.Resources, objects.ResourceDef{ID: uint16(i), Type: t, Operations: objects.OpRead | objects.OpWrite})
	}
	multi := []objects.Type{objects.TypeInteger, objects.TypeString, objects.TypeOpaque, objects.TypeFloat, objects.TypeObjlnk}
	for i, t := range multi {
		d.Resources = append(d.Resources, objects.ResourceDef{ID: uint16(9 + i), Type: t, Multiple: true, Operations: objects.OpRead | objects.OpWrite})
	}
	return d
}()

func (testModels) Object(id uint16) *objects.ObjectDef {
	if id == TestObject {
		return testDef
	}
	return nil
}

// Values lists, per single resource of TestObject, values that stress
// the encoders: limits, empty strings and bytes, escapes, non-ASCII text.
func Values() map[uint16][]objects.Value {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return map[uint16][]objects.Value{
		0: {str(""), str("Open Mobile Alliance"), str("quote \" backslash \\ slash / tab \t nl \n nul \x00 \x1f"), str("héllo ✓ 𝄞 \u2028")},
		1: {i64(0), i64(-1), i64(1 << 53), i64(1<<53 + 1), i64(math.MaxInt64), i64(math.MinInt64)},
		2: {objects.UnsignedValue(0), objects.UnsignedValue(1<<63 + 1), objects.UnsignedValue(math.MaxUint64)},
		3: {f64(0), f64(-1.5), f64(0.1), f64(27.98606491088867), f64(50.083464215191043), f64(1e21), f64(1e-7),
			f64(math.MaxFloat64), f64(math.SmallestNonzeroFloat64), f64(-8495), f64(1 << 63)},
		4: {boolv(true), boolv(false)},
		5: {objects.OpaqueValue([]byte{}), objects.OpaqueValue([]byte{0xfb, 0xff}), objects.OpaqueValue(all)},
		6: {objects.TimeSecondsValue(0), objects.TimeSecondsValue(1795305987), objects.TimeSecondsValue(-1)},
		7: {link(0, 0), link(33606, 0), link(65535, 65535)},
		8: {objects.CorelnkValue(""), objects.CorelnkValue(`</3/0>;ct=110,</1/0/1>;rt="x"`)},
	}
}

// Instance is an instance of TestObject with one value of every type and
// a few multiple resources, one of them empty.
func Instance(id uint16) objects.Instance {
	in := objects.Instance{ID: id}
	vals := Values()
	for rid := uint16(0); rid <= 8; rid++ {
		in.Resources = append(in.Resources, objects.NewSingle(rid, vals[rid][len(vals[rid])-1]))
	}
	in.Resources = append(in.Resources,
		objects.NewMultiple(9, map[uint16]objects.Value{0: i64(1), 1: i64(-5), 65534: i64(math.MaxInt64)}),
		objects.NewMultiple(10, map[uint16]objects.Value{3: str("a"), 4: str("")}),
		objects.NewMultiple(11, map[uint16]objects.Value{0: objects.OpaqueValue([]byte("ab"))}),
		objects.NewMultiple(12, map[uint16]objects.Value{7: f64(2.5)}),
		objects.NewMultiple(13, map[uint16]objects.Value{0: link(3, 0), 1: link(65535, 65535)}),
	)
	return in
}

// Device is a realistic Device object instance (/3/0): 19 resources,
// among them the multiple resources 6, 7 and 8.
func Device() *objects.Instance {
	return &objects.Instance{ID: 0, Resources: []objects.Resource{
		objects.NewSingle(0, str("Open Mobile Alliance")),
		objects.NewSingle(1, str("Lightweight M2M Client")),
		objects.NewSingle(2, str("345000123")),
		objects.NewSingle(3, str("1.0")),
		objects.NewMultiple(6, map[uint16]objects.Value{0: i64(1), 1: i64(5)}),
		objects.NewMultiple(7, map[uint16]objects.Value{0: i64(3800), 1: i64(5000)}),
		objects.NewMultiple(8, map[uint16]objects.Value{0: i64(125), 1: i64(900)}),
		objects.NewSingle(9, i64(100)),
		objects.NewSingle(10, i64(15)),
		objects.NewMultiple(11, map[uint16]objects.Value{0: i64(0)}),
		objects.NewSingle(13, objects.TimeSecondsValue(1795305987)),
		objects.NewSingle(14, str("+01:00")),
		objects.NewSingle(15, str("Europe/Berlin")),
		objects.NewSingle(16, str("U")),
		objects.NewSingle(17, str("demo")),
		objects.NewSingle(18, str("1.0")),
		objects.NewSingle(19, str("1.0")),
		objects.NewSingle(20, i64(0)),
		objects.NewSingle(21, i64(32768)),
	}}
}

// Records100 is a Send of 100 timestamped records: 25 temperature sensor
// instances (/3303/i) with a value, a unit, a minimum and a maximum.
func Records100() []objects.Record {
	recs := make([]objects.Record, 0, 100)
	t := 1795305900.25
	for i := uint16(0); i < 25; i++ {
		base := objects.NewPath(3303, i)
		recs = append(recs,
			objects.Record{Path: base.Child(5700), Value: f64(20 + float64(i)/8), Time: t},
			objects.Record{Path: base.Child(5701), Value: str("Cel"), Time: t},
			objects.Record{Path: base.Child(5601), Value: f64(-4.5), Time: t},
			objects.Record{Path: base.Child(5602), Value: f64(38.125), Time: t},
		)
		t += 0.5
	}
	return recs
}

// RecordsEqual compares paths, values and times.
func RecordsEqual(a, b []objects.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path || !a[i].Value.Equal(b[i].Value) || a[i].Time != b[i].Time {
			return false
		}
	}
	return true
}

// NodeRoundTrip encodes n at root, decodes the result and fails unless
// the node comes back equal. It returns the encoding.
func NodeRoundTrip(t testing.TB, c Codec, root objects.Path, n objects.Node, m objects.Models) []byte {
	t.Helper()
	b, err := c.Encode(root, n, m)
	if err != nil {
		t.Errorf("encode %s: %v", root, err)
		return nil
	}
	got, err := c.Decode(root, b, m)
	if err != nil {
		t.Errorf("decode %s: %v\npayload: %q", root, err, b)
		return b
	}
	if !objects.EqualNodes(n, got) {
		t.Errorf("round trip of %s changed the node\n got: %v\nwant: %v\npayload: %q",
			root, objects.Flatten(root, got), objects.Flatten(root, n), b)
	}
	return b
}

// RecordsRoundTrip does the same for records.
func RecordsRoundTrip(t testing.TB, c Codec, recs []objects.Record, m objects.Models) []byte {
	t.Helper()
	b, err := c.EncodeRecords(recs, m)
	if err != nil {
		t.Errorf("encode records: %v", err)
		return nil
	}
	got, err := c.DecodeRecords(b, m)
	if err != nil {
		t.Errorf("decode records: %v\npayload: %q", err, b)
		return b
	}
	if !RecordsEqual(recs, got) {
		t.Errorf("round trip changed the records\n got: %v\nwant: %v\npayload: %q", got, recs, b)
	}
	return b
}

// RoundTrips runs the round trips every SenML codec must pass: every type
// of value, every node kind, and records with and without times.
func RoundTrips(t *testing.T, c Codec) {
	obj := objects.MustParsePath("/32769")
	t.Run("types", func(t *testing.T) {
		for rid, vals := range Values() {
			for _, v := range vals {
				root := obj.Child(1).Child(rid)
				r := objects.NewSingle(rid, v)
				NodeRoundTrip(t, c, root, &r, Models)
			}
		}
	})
	t.Run("object", func(t *testing.T) {
		o := &objects.Object{ID: TestObject, Instances: []objects.Instance{Instance(0), Instance(7)}}
		NodeRoundTrip(t, c, obj, o, Models)
	})
	t.Run("instance", func(t *testing.T) {
		in := Instance(3)
		NodeRoundTrip(t, c, obj.Child(3), &in, Models)
	})
	t.Run("empty instance and object", func(t *testing.T) {
		NodeRoundTrip(t, c, obj.Child(9), &objects.Instance{ID: 9}, Models)
		NodeRoundTrip(t, c, obj, &objects.Object{ID: TestObject}, Models)
	})
	t.Run("single resource", func(t *testing.T) {
		r := objects.NewSingle(0, str("x"))
		NodeRoundTrip(t, c, obj.Child(0).Child(0), &r, Models)
	})
	t.Run("multiple resource", func(t *testing.T) {
		in := Instance(0)
		for _, rid := range []uint16{9, 10, 11, 12, 13} {
			NodeRoundTrip(t, c, objects.NewPath(TestObject, 0, rid), in.Resource(rid), Models)
		}
		// Without a model the name says the resource is multiple, and v is a Float.
		one := objects.NewMultiple(9, map[uint16]objects.Value{4: f64(4)})
		NodeRoundTrip(t, c, objects.NewPath(TestObject, 0, 9), &one, nil)
	})
	t.Run("empty multiple resource", func(t *testing.T) {
		r := objects.Resource{ID: 10, Multiple: true}
		NodeRoundTrip(t, c, objects.NewPath(TestObject, 0, 10), &r, Models)
	})
	t.Run("resource instance", func(t *testing.T) {
		ri := &objects.ResourceInstance{ID: 65534, Value: i64(-3)}
		NodeRoundTrip(t, c, objects.NewPath(TestObject, 0, 9, 65534), ri, Models)
	})
	t.Run("device", func(t *testing.T) {
		NodeRoundTrip(t, c, objects.NewPath(3, 0), Device(), deviceModel{})
	})
	t.Run("records", func(t *testing.T) {
		recs := []objects.Record{
			{Path: objects.NewPath(TestObject, 0, 3), Value: f64(1.5), Time: 1795305994.8345482},
			{Path: objects.NewPath(TestObject, 0, 3), Value: f64(2.5), Time: 1795305964.25},
			{Path: objects.NewPath(TestObject, 0, 0), Value: str("untimed")},
			{Path: objects.NewPath(TestObject, 1, 9, 3), Value: i64(7), Time: 1795305999},
			{Path: objects.NewPath(TestObject, 1, 1), Value: i64(-7), Time: 1795305999},
			{Path: objects.NewPath(TestObject, 2, 5), Value: objects.OpaqueValue([]byte{1, 2, 3}), Time: 3e9},
		}
		RecordsRoundTrip(t, c, recs, Models)
		RecordsRoundTrip(t, c, Records100(), nil)
		RecordsRoundTrip(t, c, nil, nil)
	})
	t.Run("records across objects", func(t *testing.T) {
		recs := []objects.Record{
			{Path: objects.NewPath(3, 0, 0), Value: str("vec")},
			{Path: objects.NewPath(1, 0, 1), Value: f64(86400)}, // Models does not know /1
			{Path: objects.NewPath(TestObject, 0, 7), Value: link(1, 2)},
		}
		RecordsRoundTrip(t, c, recs, Models)
	})
	t.Run("path-only records", func(t *testing.T) {
		recs := []objects.Record{
			{Path: objects.NewPath(3, 0)},
			{Path: objects.NewPath(3, 0, 1)},
			{Path: objects.NewPath(3)},
			{Path: objects.NewPath(3, 0, 6, 1)},
		}
		RecordsRoundTrip(t, c, recs, nil)
		RecordsRoundTrip(t, c, recs[:1], nil)
	})
	t.Run("no model", func(t *testing.T) {
		// Without a model the payload decides: v is a Float.
		in := &objects.Instance{ID: 0, Resources: []objects.Resource{
			objects.NewSingle(0, str("s")),
			objects.NewSingle(1, f64(1.25)),
			objects.NewSingle(2, boolv(true)),
			objects.NewSingle(3, objects.OpaqueValue([]byte{9})),
			objects.NewSingle(4, link(1, 0)),
		}}
		NodeRoundTrip(t, c, objects.NewPath(32770, 0), in, nil)
	})
}

// deviceModel types the Device object as the OMA registry does, for the
// resources Device uses, without reading the registry.
type deviceModel struct{}

var deviceDef = func() *objects.ObjectDef {
	d := &objects.ObjectDef{ID: 3, Name: "Device", Version: "1.2"}
	add := func(id uint16, t objects.Type, multiple bool) {
		d.Resources = append(d.Resources, objects.ResourceDef{ID: id, Type: t, Multiple: multiple, Operations: objects.OpRead})
	}
	for _, id := range []uint16{0, 1, 2, 3, 14, 15, 16, 17, 18, 19} {
		add(id, objects.TypeString, false)
	}
	for _, id := range []uint16{6, 7, 8, 11} {
		add(id, objects.TypeInteger, true)
	}
	add(9, objects.TypeInteger, false)
	add(10, objects.TypeInteger, false)
	add(13, objects.TypeTime, false)
	add(20, objects.TypeInteger, false)
	add(21, objects.TypeInteger, false)
	if err := d.SortResources(); err != nil {
		panic(err)
	}
	return d
}()

// DeviceModel types the resources of Device.
var DeviceModel objects.Models = deviceModel{}

func (deviceModel) Object(id uint16) *objects.ObjectDef {
	if id == 3 {
		return deviceDef
	}
	return nil
}
