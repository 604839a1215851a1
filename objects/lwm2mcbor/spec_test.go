package lwm2mcbor

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deviceValues are the values of the spec's Device example.
var deviceValues = map[string]objects.Value{
	"/3/0/0":    objects.StringValue("Open Mobile Alliance"),
	"/3/0/1":    objects.StringValue("Lightweight M2M Client"),
	"/3/0/2":    objects.StringValue("345000123"),
	"/3/0/3":    objects.StringValue("1.0"),
	"/3/0/6/0":  objects.IntegerValue(1),
	"/3/0/6/1":  objects.IntegerValue(5),
	"/3/0/7/0":  objects.IntegerValue(3800),
	"/3/0/7/1":  objects.IntegerValue(5000),
	"/3/0/8/0":  objects.IntegerValue(125),
	"/3/0/8/1":  objects.IntegerValue(900),
	"/3/0/9":    objects.IntegerValue(100),
	"/3/0/10":   objects.IntegerValue(15),
	"/3/0/11/0": objects.IntegerValue(0),
	"/3/0/13":   objects.TimeSecondsValue(1367491215),
	"/3/0/14":   objects.StringValue("+02:00"),
	"/3/0/16":   objects.StringValue("U"),
}

func checkRecordValues(t *testing.T, recs []objects.Record, want map[string]objects.Value) {
	t.Helper()
	if len(recs) != len(want) {
		t.Errorf("%d values, want %d: %v", len(recs), len(want), recs)
	}
	for _, r := range recs {
		w, ok := want[r.Path.String()]
		if !ok || !r.Value.Equal(w) || r.Time != 0 {
			t.Errorf("%s = %v (time %v), want %v", r.Path, r.Value, r.Time, w)
		}
	}
}

func TestExampleVectors(t *testing.T) {
	reg := shared.Registry(t)
	nodes := []struct {
		file, root string
		want       map[string]objects.Value
	}{
		{"example-device-instance.cbor", "/3/0", deviceValues},
		{"example-device-nested.cbor", "/3", deviceValues},
		{"example-device-nested.cbor", "/3/0", deviceValues},
		{"example-device-resource.cbor", "/3/0/0", map[string]objects.Value{"/3/0/0": deviceValues["/3/0/0"]}},
	}
	for _, tc := range nodes {
		t.Run(tc.file+tc.root, func(t *testing.T) {
			root := objects.MustParsePath(tc.root)
			n, err := codec.Decode(root, readTestdata(t, tc.file), reg)
			if err != nil {
				t.Fatal(err)
			}
			checkRecordValues(t, objects.Flatten(root, n), tc.want)
		})
	}
	recs, err := codec.DecodeRecords(readTestdata(t, "example-device-composite.cbor"), reg)
	if err != nil {
		t.Fatal(err)
	}
	checkRecordValues(t, recs, map[string]objects.Value{
		"/3/0/0": deviceValues["/3/0/0"], "/3/0/9": deviceValues["/3/0/9"], "/1/0/1": objects.IntegerValue(86400),
	})
	recs, err = codec.DecodeRecords(readTestdata(t, "example-read-composite-request.cbor"), reg)
	if err != nil {
		t.Fatal(err)
	}
	checkRecordValues(t, recs, map[string]objects.Value{"/3/0/0": {}, "/1/0": {}})
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	diag, err := cbor.Diagnose(got)
	if err != nil {
		t.Fatalf("our output %x is not well-formed CBOR: %v", got, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{name + ".cbor", got}, {name + ".diag", []byte(diag + "\n")}} {
		path := filepath.Join("testdata", f.name)
		if *update {
			if err := os.WriteFile(path, f.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(f.data, want) {
			t.Errorf("encoder output differs from %s:\n got %x\nwant %x\n(%s)", path, f.data, want, diag)
		}
	}
}

func TestGolden(t *testing.T) {
	reg := shared.Registry(t)
	b, err := codec.Encode(objects.MustParsePath("/3/0"), deviceInstance(), reg)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "golden-device", b)

	// The example and our encoding differ only in the key of resource 11
	// (our compact form folds {11: {0: 0}} into {[11, 0]: 0}).
	example, err := codec.Decode(objects.MustParsePath("/3/0"), readTestdata(t, "example-device-instance.cbor"), reg)
	if err != nil {
		t.Fatal(err)
	}
	if !objects.EqualNodes(example, deviceInstance()) {
		t.Error("the example does not decode to the spec's Device instance")
	}
	if len(b) != len(readTestdata(t, "example-device-instance.cbor")) {
		t.Errorf("golden is %d bytes, the nested example %d", len(b), len(readTestdata(t, "example-device-instance.cbor")))
	}

	b, err = codec.EncodeRecords([]objects.Record{
		{Path: objects.MustParsePath("/3/0/0"), Value: objects.StringValue("Open Mobile Alliance")},
		{Path: objects.MustParsePath("/3/0/9"), Value: objects.IntegerValue(100)},
		{Path: objects.MustParsePath("/1/0/1"), Value: objects.IntegerValue(86400)},
	}, reg)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "golden-composite", b)
}
