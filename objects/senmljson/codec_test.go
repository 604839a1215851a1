package senmljson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

func TestRoundTrips(t *testing.T) {
	senmltest.RoundTrips(t, testCodec())
}

// TestVectors decodes the examples of the specification kept in
// testdata/ and checks every value, and that the encoder writes the
// canonical ones byte for byte.
func TestVectors(t *testing.T) {
	reg := shared.Registry(t)
	c := testCodec()
	for _, v := range senmltest.Vectors() {
		t.Run(v.Name, func(t *testing.T) {
			data := readTestdata(t, v.Name+".json")
			recs, err := c.DecodeRecords(data, reg)
			if err != nil {
				t.Fatal(err)
			}
			if !senmltest.RecordsEqual(recs, v.Records) {
				t.Errorf("records\n got: %v\nwant: %v", recs, v.Records)
			}
			var enc []byte
			if v.Root != "" {
				root := objects.MustParsePath(v.Root)
				n, err := c.Decode(root, data, reg)
				if err != nil {
					t.Fatal(err)
				}
				b := objects.NewBuilder(root, reg)
				for _, r := range v.Records {
					if err := b.Add(r.Path, r.Value); err != nil {
						t.Fatal(err)
					}
				}
				want, _ := b.Node()
				if !objects.EqualNodes(n, want) {
					t.Errorf("node\n got: %v\nwant: %v", objects.Flatten(root, n), v.Records)
				}
				enc, err = c.Encode(root, n, reg)
				if err != nil {
					t.Fatal(err)
				}
			} else {
				enc, err = c.EncodeRecords(recs, reg)
				if err != nil {
					t.Fatal(err)
				}
			}
			if v.Canonical {
				var compact bytes.Buffer
				if err := json.Compact(&compact, data); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(enc, compact.Bytes()) {
					t.Errorf("encoder output differs from the example\n got: %s\nwant: %s", enc, compact.Bytes())
				}
			}
		})
	}
}

// TestGolden compares the encoder's output with testdata/golden-*.json;
// go test -update rewrites them.
func TestGolden(t *testing.T) {
	c := testCodec()
	in := senmltest.Instance(0)
	cases := []struct {
		name string
		enc  func() ([]byte, error)
	}{
		{"golden-device.json", func() ([]byte, error) {
			return c.Encode(objects.NewPath(3, 0), senmltest.Device(), senmltest.DeviceModel)
		}},
		{"golden-all-types.json", func() ([]byte, error) {
			return c.Encode(objects.NewPath(senmltest.TestObject, 0), &in, senmltest.Models)
		}},
		{"golden-records100.json", func() ([]byte, error) { return c.EncodeRecords(senmltest.Records100(), nil) }},
		{"golden-resource-instance.json", func() ([]byte, error) {
			return c.Encode(objects.NewPath(3, 0, 7, 1), &objects.ResourceInstance{ID: 1, Value: objects.IntegerValue(5000)}, nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.enc()
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("not JSON: %s", b)
			}
			golden(t, tc.name, b)
		})
	}
}

// TestEncodeShape pins the details of the canonical pack.
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
			`[{"bn":"/3/0/13","v":1795305987}]`},
		{"history of one resource", []objects.Record{
			rec("/3303/0/5700", objects.FloatValue(22.4), 1795305994.5),
			rec("/3303/0/5700", objects.FloatValue(22.9), 1795305964.5)},
			`[{"bn":"/3303/0/5700","bt":1795305994.5,"v":22.4},{"v":22.9,"t":-30}]`},
		{"same time twice", []objects.Record{
			rec("/3/0/0", objects.StringValue("a"), 1795305994),
			rec("/3/0/1", objects.StringValue("b"), 1795305994)},
			`[{"bn":"/3/0/","bt":1795305994,"n":"0","vs":"a"},{"n":"1","vs":"b"}]`},
		{"untimed after timed", []objects.Record{
			rec("/3/0/0", objects.StringValue("a"), 0),
			rec("/3/0/1", objects.StringValue("b"), 1795305994),
			rec("/3/0/2", objects.StringValue("c"), 0)},
			`[{"bn":"/3/0/","n":"0","vs":"a"},{"bt":1795305994,"n":"1","vs":"b"},{"n":"2","vs":"c","t":-1795305994}]`},
		{"opaque is unpadded base64url", []objects.Record{rec("/6/0/4", objects.OpaqueValue([]byte{0xfb, 0xff}), 0)},
			`[{"bn":"/6/0/4","vd":"-_8"}]`},
		{"objlnk and bool", []objects.Record{
			rec("/3/0/22/0", objects.ObjlnkValue(objects.ObjLink{Object: 33606}), 0),
			rec("/1/0/6", objects.BooleanValue(true), 0)},
			`[{"n":"/3/0/22/0","vlo":"33606:0"},{"n":"/1/0/6","vb":true}]`},
		{"a record at the common path", []objects.Record{
			rec("/3/0", objects.Value{}, 0), rec("/3/0/1", objects.Value{}, 0)},
			`[{"bn":"/3/","n":"0"},{"n":"0/1"}]`},
		{"escapes", []objects.Record{rec("/3/0/0", objects.StringValue("\"\\\x01\n</>"), 0)},
			`[{"bn":"/3/0/0","vs":"\"\\\u0001\n</>"}]`},
		{"nothing", nil, `[]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := c.EncodeRecords(tc.recs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}

// TestDecodeStyles reads the base-name styles of both clients and the
// other things RFC 8428 allows.
func TestDecodeStyles(t *testing.T) {
	reg := shared.Registry(t)
	c := testCodec()
	now := senmltest.NowSeconds()
	cases := []struct {
		name    string
		payload string
		want    string // path=value@time, space separated
	}{
		{"wakaama", `[{"bn":"/3/0/","n":"0","vs":"a"},{"n":"6/1","v":5}]`, `/3/0/0=a /3/0/6/1=5`},
		{"anjay", `[{"bn":"/3/0","n":"/0","vs":"a"},{"n":"/6/1","v":5}]`, `/3/0/0=a /3/0/6/1=5`},
		{"names only", `[{"n":"/3/0/0","vs":"a"}]`, `/3/0/0=a`},
		{"bn changes", `[{"bn":"/3/0/","n":"0","vs":"a"},{"bn":"/1/0/","n":"1","v":60},{"bn":"","n":"/3/0/9","v":1}]`,
			`/3/0/0=a /1/0/1=60 /3/0/9=1`},
		{"bn alone, with a trailing slash", `[{"bn":"/3/0/9/","v":7}]`, `/3/0/9=7`},
		{"bt absolute, t relative", `[{"bt":1795305990,"n":"/3/0/9","v":1,"t":5},{"n":"/3/0/10","v":2}]`,
			`/3/0/9=1@1795305995 /3/0/10=2@1795305990`},
		{"relative time", `[{"n":"/3/0/9","v":1,"t":-10}]`, `/3/0/9=1@` + objects.FormatFloat(now-10)},
		{"t zero is no time", `[{"n":"/3/0/9","v":1,"t":0}]`, `/3/0/9=1`},
		{"base value", `[{"bv":10,"n":"/3/0/9","v":5},{"n":"/6/0/1","v":-2.5},{"bv":0.5,"n":"/6/0/0","v":1}]`,
			`/3/0/9=15 /6/0/1=7.5 /6/0/0=1.5`},
		{"numbers", `[{"n":"/6/0/0","v":1E2},{"n":"/6/0/1","v":-0.0},{"n":"/3/0/9","v":1.0},{"n":"/3/0/10","v":2e0}]`,
			`/6/0/0=100 /6/0/1=-0 /3/0/9=1 /3/0/10=2`},
		{"big integers stay exact", `[{"n":"/3/0/21","v":9007199254740993}]`, `/3/0/21=9007199254740993`},
		{"units and unknown fields are ignored", `[{"bu":"%","u":"%","ut":60,"s":1,"bs":2,"x":{"a":[1,{"b":null}]},"bver":10,"n":"/3/0/9","v":1}]`,
			`/3/0/9=1`},
		{"vd in every alphabet", `[{"n":"/6/0/4","vd":"-_8"},{"n":"/6/1/4","vd":"+/8="},{"n":"/6/2/4","vd":"+/8"}]`,
			`/6/0/4=-_8 /6/1/4=-_8 /6/2/4=-_8`},
		{"vs for an opaque resource", `[{"n":"/6/0/4","vs":"+/8="}]`, `/6/0/4=-_8`},
		{"vs for an objlnk resource", `[{"n":"/3/0/22/0","vs":"3:1"}]`, `/3/0/22/0=3:1`},
		{"escaped names and strings", `[{"n":"\/3\/0\/0","vs":"\u00e9\ud834\udd1e\t"}]`, "/3/0/0=é𝄞\t"},
		{"white space", " [ { \"n\" : \"/3/0/9\" , \"v\" : 1 } ] \n", `/3/0/9=1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := c.DecodeRecords([]byte(tc.payload), reg)
			if err != nil {
				t.Fatal(err)
			}
			if got := recordsText(recs); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func recordsText(recs []objects.Record) string {
	var b bytes.Buffer
	for i, r := range recs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(r.Path.String() + "=")
		if r.Value.Type() == objects.TypeOpaque {
			b.WriteString(base64.RawURLEncoding.EncodeToString(r.Value.Bytes()))
		} else {
			b.WriteString(r.Value.Text())
		}
		if r.Time != 0 {
			b.WriteString("@" + objects.FormatFloat(r.Time))
		}
	}
	return b.String()
}

// TestDecodeNoModel: without a model the payload's field decides the type.
func TestDecodeNoModel(t *testing.T) {
	c := testCodec()
	recs, err := c.DecodeRecords([]byte(`[{"bn":"/9/0/","n":"0","v":1},{"n":"1","vs":"x"},{"n":"2","vb":true},{"n":"3","vd":"AQ"},{"n":"4","vlo":"1:2"},{"n":"5","v":18446744073709551615}]`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []objects.Type{objects.TypeFloat, objects.TypeString, objects.TypeBoolean, objects.TypeOpaque, objects.TypeObjlnk, objects.TypeFloat}
	for i, r := range recs {
		if r.Value.Type() != want[i] {
			t.Errorf("%s: %v, want a %v", r.Path, r.Value, want[i])
		}
	}
}

// TestEncodeErrors: what cannot be encoded fails with a clear error.
func TestEncodeErrors(t *testing.T) {
	c := testCodec()
	in := senmltest.Device()
	cases := []struct {
		name string
		enc  func() ([]byte, error)
	}{
		{"instance at a resource path", func() ([]byte, error) { return c.Encode(objects.NewPath(3, 0, 0), in, nil) }},
		{"wrong ID", func() ([]byte, error) { return c.Encode(objects.NewPath(3, 1), in, nil) }},
		{"root path", func() ([]byte, error) { return c.Encode(objects.RootPath, in, nil) }},
		{"nil node", func() ([]byte, error) { return c.Encode(objects.NewPath(3, 0), nil, nil) }},
		{"no value", func() ([]byte, error) {
			r := objects.Resource{ID: 4}
			return c.Encode(objects.NewPath(3, 0, 4), &r, nil)
		}},
		{"NaN", func() ([]byte, error) {
			r := objects.NewSingle(0, objects.FloatValue(math.NaN()))
			return c.Encode(objects.NewPath(6, 0, 0), &r, nil)
		}},
		{"invalid UTF-8", func() ([]byte, error) {
			r := objects.NewSingle(0, objects.StringValue("\xff"))
			return c.Encode(objects.NewPath(3, 0, 0), &r, nil)
		}},
		{"value of the wrong type for the model", func() ([]byte, error) {
			return c.Encode(objects.NewPath(senmltest.TestObject, 0, 0), &objects.Resource{ID: 0, Value: objects.OpaqueValue([]byte{0xff})}, senmltest.Models)
		}},
		{"time before 1978", func() ([]byte, error) {
			return c.EncodeRecords([]objects.Record{{Path: objects.NewPath(3, 0, 9), Value: objects.IntegerValue(1), Time: 1000}}, nil)
		}},
		{"record at the root", func() ([]byte, error) {
			return c.EncodeRecords([]objects.Record{{Path: objects.RootPath}}, nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.enc()
			if err == nil {
				t.Fatalf("no error; wrote %s", b)
			}
			var de *objects.DecodeError
			if errors.As(err, &de) {
				t.Errorf("encode error is a DecodeError: %v", err)
			}
		})
	}
}
