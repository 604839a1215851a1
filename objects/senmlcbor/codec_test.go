package senmlcbor

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

func TestRoundTrips(t *testing.T) {
	senmltest.RoundTrips(t, testCodec())
}

var diagMode = func() cbor.DiagMode {
	dm, err := cbor.DiagOptions{FloatPrecisionIndicator: true}.DiagMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

func diag(t *testing.T, b []byte) string {
	t.Helper()
	s, err := diagMode.Diagnose(b)
	if err != nil {
		t.Fatalf("%x: %v", b, err)
	}
	return s
}

// checkDeterministic fails unless b is already in the core deterministic
// encoding: re-encoding what it says must give the same bytes.
func checkDeterministic(t *testing.T, b []byte) {
	t.Helper()
	var v any
	if err := cbor.Unmarshal(b, &v); err != nil {
		t.Fatalf("%x: %v", b, err)
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, again) {
		t.Errorf("not deterministic:\n got %x\nwant %x", b, again)
	}
}

// TestVectors decodes the examples of the specification, rendered in
// SenML CBOR in testdata/, and checks every value.
func TestVectors(t *testing.T) {
	reg := shared.Registry(t)
	c := testCodec()
	for _, v := range senmltest.Vectors() {
		t.Run(v.Name, func(t *testing.T) {
			data := readTestdata(t, v.Name+".cbor")
			recs, err := c.DecodeRecords(data, reg)
			if err != nil {
				t.Fatal(err)
			}
			if !senmltest.RecordsEqual(recs, v.Records) {
				t.Errorf("records\n got: %v\nwant: %v", recs, v.Records)
			}
			b := senmltest.RecordsRoundTrip(t, c, recs, reg)
			checkDeterministic(t, b)
			if v.Root == "" {
				return
			}
			root := objects.MustParsePath(v.Root)
			n, err := c.Decode(root, data, reg)
			if err != nil {
				t.Fatal(err)
			}
			bld := objects.NewBuilder(root, reg)
			for _, r := range v.Records {
				if err := bld.Add(r.Path, r.Value); err != nil {
					t.Fatal(err)
				}
			}
			want, _ := bld.Node()
			if !objects.EqualNodes(n, want) {
				t.Errorf("node\n got: %v\nwant: %v", objects.Flatten(root, n), v.Records)
			}
			checkDeterministic(t, senmltest.NodeRoundTrip(t, c, root, n, reg))
		})
	}
}

// TestGolden compares the encoder's output with testdata/golden-*.cbor;
// go test -update rewrites them. The .diag files beside them are the
// diagnostic notation, for reading.
func TestGolden(t *testing.T) {
	c := testCodec()
	in := senmltest.Instance(0)
	cases := []struct {
		name string
		enc  func() ([]byte, error)
	}{
		{"golden-device", func() ([]byte, error) {
			return c.Encode(objects.NewPath(3, 0), senmltest.Device(), senmltest.DeviceModel)
		}},
		{"golden-all-types", func() ([]byte, error) {
			return c.Encode(objects.NewPath(senmltest.TestObject, 0), &in, senmltest.Models)
		}},
		{"golden-records100", func() ([]byte, error) { return c.EncodeRecords(senmltest.Records100(), nil) }},
		{"golden-resource-instance", func() ([]byte, error) {
			return c.Encode(objects.NewPath(3, 0, 7, 1), &objects.ResourceInstance{ID: 1, Value: objects.IntegerValue(5000)}, nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.enc()
			if err != nil {
				t.Fatal(err)
			}
			checkDeterministic(t, b)
			golden(t, tc.name+".cbor", b)
			golden(t, tc.name+".diag", []byte(diag(t, b)+"\n"))
		})
	}
}

// TestEncodeShape pins the canonical pack in diagnostic notation: keys in
// bytewise order (0, 2, 3, 4, 6, 8, -2, -3, "vlo"), shortest integers and
// floats, whole-second times as integers.
func TestEncodeShape(t *testing.T) {
	c := testCodec()
	rec := func(p string, v objects.Value, tm float64) objects.Record {
		return objects.Record{Path: objects.MustParsePath(p), Value: v, Time: tm}
	}
	cases := []struct {
		name string
		recs []objects.Record
		want string
	}{
		{"one value", []objects.Record{rec("/3/0/13", objects.TimeSecondsValue(1795305987), 0)},
			`[{2: 1795305987, -2: "/3/0/13"}]`},
		{"floats in their shortest width", []objects.Record{
			rec("/6/0/0", objects.FloatValue(0), 0), rec("/6/0/1", objects.FloatValue(8495), 0),
			rec("/6/0/2", objects.FloatValue(27.986064910888672), 0), rec("/6/0/3", objects.FloatValue(0.1), 0)},
			`[{0: "0", 2: 0.0_1, -2: "/6/0/"}, {0: "1", 2: 8495.0_2}, {0: "2", 2: 27.986064910888672_2}, {0: "3", 2: 0.1_3}]`},
		{"history of one resource", []objects.Record{
			rec("/3303/0/5700", objects.FloatValue(22.5), 1795305994.5),
			rec("/3303/0/5700", objects.FloatValue(23), 1795305964.5)},
			`[{2: 22.5_1, -2: "/3303/0/5700", -3: 1795305994.5_3}, {2: 23.0_1, 6: -30}]`},
		{"untimed after timed", []objects.Record{
			rec("/3/0/1", objects.StringValue("b"), 1795305994),
			rec("/3/0/2", objects.StringValue("c"), 0)},
			`[{0: "1", 3: "b", -2: "/3/0/", -3: 1795305994}, {0: "2", 3: "c", 6: -1795305994}]`},
		{"opaque, objlnk, bool, unsigned", []objects.Record{
			rec("/6/0/4", objects.OpaqueValue([]byte{0xfb, 0xff}), 0),
			rec("/3/0/22/0", objects.ObjlnkValue(objects.ObjLink{Object: 33606}), 0),
			rec("/1/0/6", objects.BooleanValue(true), 0),
			rec("/9/0/1", objects.UnsignedValue(1<<64-1), 0)},
			`[{0: "/6/0/4", 8: h'fbff'}, {0: "/3/0/22/0", "vlo": "33606:0"}, {0: "/1/0/6", 4: true}, {0: "/9/0/1", 2: 18446744073709551615}]`},
		{"path-only records", []objects.Record{rec("/3/0/0", objects.Value{}, 0), rec("/1/0/1", objects.Value{}, 0)},
			`[{0: "/3/0/0"}, {0: "/1/0/1"}]`},
		{"nothing", nil, `[]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := c.EncodeRecords(tc.recs, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkDeterministic(t, b)
			if got := diag(t, b); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestDecodeForms: CBOR lets the same values be written in several ways;
// all of them decode.
func TestDecodeForms(t *testing.T) {
	reg := shared.Registry(t)
	c := testCodec()
	cases := []struct {
		name string
		hex  string
		want string
	}{
		{"definite", "81a200662f332f302f390218 64", "/3/0/9=100"},
		{"indefinite array and map", "9fbf00662f332f302f39021864ffff", "/3/0/9=100"},
		{"indefinite text", "81a2007f622f33642f302f39ff021864", "/3/0/9=100"},
		{"indefinite bytes", "81a200662f362f302f34085f4201024103ff", "/6/0/4=AQID"},
		{"integer in 8 bytes", "81a200662f332f302f39021b0000000000000064", "/3/0/9=100"},
		{"half float", "81a200662f362f302f3002f93e00", "/6/0/0=1.5"},
		{"single float", "81a200662f362f302f3002fa3fc00000", "/6/0/0=1.5"},
		{"double float", "81a200662f362f302f3002fb3ff8000000000000", "/6/0/0=1.5"},
		{"float for an integer resource", "81a200662f332f302f3902f95640", "/3/0/9=100"},
		{"negative integer", "81a200672f332f302f3130022a", "/3/0/10=-11"},
		{"bn then n, Anjay style", "81a321642f332f3000622f390218 64", "/3/0/9=100"},
		{"bt as a float, t as an integer", "81a400682f332f302f372f300201 22fb41dac0000000000006 20", "/3/0/7/0=1@1795162111"},
		{"vs for an objlnk", "81a200692f332f302f32322f300363313a32", "/3/0/22/0=1:2"},
		{"unknown labels and text keys", "81a400682f332f302f372f30020118 2aa16178f6616101", "/3/0/7/0=1"},
		{"units and sums", "81a600682f332f302f372f300201016125 236125 0501 0700", "/3/0/7/0=1"},
		{"bver 10", "81a320 0a 00682f332f302f372f300201", "/3/0/7/0=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := hex.DecodeString(strings.ReplaceAll(tc.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			recs, err := c.DecodeRecords(data, reg)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, r := range recs {
				s := r.Path.String() + "=" + r.Value.Text()
				if r.Time != 0 {
					s += "@" + objects.FormatFloat(r.Time)
				}
				parts = append(parts, s)
			}
			if got := strings.Join(parts, " "); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
