package lwm2mjson

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deviceValues are the values of the spec's Device example (LwM2M Core
// 1.0 §6.4.4, the same instance as the TLV example of §6.4.3).
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

func checkValues(t *testing.T, root objects.Path, n objects.Node, want map[string]objects.Value) {
	t.Helper()
	recs := objects.Flatten(root, n)
	if len(recs) != len(want) {
		t.Errorf("%d values, want %d", len(recs), len(want))
	}
	for _, r := range recs {
		w, ok := want[r.Path.String()]
		if !ok || !r.Value.Equal(w) {
			t.Errorf("%s = %v, want %v", r.Path, r.Value, w)
		}
	}
}

func TestSpecDevice(t *testing.T) {
	root := objects.MustParsePath("/3/0")
	for _, name := range []string{"spec-1.0-device.json", "spec-draft-device.json"} {
		t.Run(name, func(t *testing.T) {
			n, err := codec.Decode(root, readTestdata(t, name), shared.Registry(t))
			if err != nil {
				t.Fatal(err)
			}
			want := deviceValues
			if name == "spec-draft-device.json" { // the draft printed the binding as resource 15
				want = map[string]objects.Value{"/3/0/15": objects.StringValue("U")}
				for k, v := range deviceValues {
					if k != "/3/0/16" {
						want[k] = v
					}
				}
			}
			checkValues(t, root, n, want)
		})
	}
}

func TestSpecHistory(t *testing.T) {
	recs, err := codec.DecodeRecordsAt(objects.MustParsePath("/72"), readTestdata(t, "spec-1.0-history.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := objects.MustParsePath("/72/1/2")
	checkRecords(t, recs, []objects.Record{
		{Path: p, Value: objects.FloatValue(22.4), Time: 25462634 - 5},
		{Path: p, Value: objects.FloatValue(22.9), Time: 25462634 - 30},
		{Path: p, Value: objects.FloatValue(24.1), Time: 25462634 - 50},
	})
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoder output differs from %s:\n got %s\nwant %s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	b, err := codec.Encode(objects.MustParsePath("/3/0"), deviceInstance(), shared.Registry(t))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "golden-device.json", b)

	// Our canonical form is the spec's own example, white space aside.
	var spec bytes.Buffer
	if err := json.Compact(&spec, readTestdata(t, "spec-1.0-device.json")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, spec.Bytes()) {
		t.Errorf("encoding differs from the spec example:\n got %s\nspec %s", b, spec.Bytes())
	}

	p := objects.MustParsePath("/72/1/2")
	b, err = codec.EncodeRecords([]objects.Record{
		{Path: p, Value: objects.FloatValue(22.4), Time: 25462634 - 5},
		{Path: p, Value: objects.FloatValue(22.9), Time: 25462634 - 30},
		{Path: p, Value: objects.FloatValue(24.1), Time: 25462634 - 50},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "golden-history.json", b)
}
