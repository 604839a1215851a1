package tlv

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

type rec struct {
	path string
	v    objects.Value
}

var (
	str  = objects.StringValue
	num  = objects.IntegerValue
	link = func(o, i uint16) objects.Value { return objects.ObjlnkValue(objects.ObjLink{Object: o, Instance: i}) }
)

// deviceRecords are the values of the Device object instance in the TLV
// examples of LwM2M Core 1.0 §6.4.3.1 / 1.1 §7.4.3.1 (Table "Device
// Object Instance").
func deviceRecords(prefix string) []rec {
	return []rec{
		{prefix + "/0", str("Open Mobile Alliance")},
		{prefix + "/1", str("Lightweight M2M Client")},
		{prefix + "/2", str("345000123")},
		{prefix + "/3", str("1.0")},
		{prefix + "/6/0", num(1)}, {prefix + "/6/1", num(5)},
		{prefix + "/7/0", num(3800)}, {prefix + "/7/1", num(5000)},
		{prefix + "/8/0", num(125)}, {prefix + "/8/1", num(900)},
		{prefix + "/9", num(100)},
		{prefix + "/10", num(15)},
		{prefix + "/11/0", num(0)},
		{prefix + "/13", objects.TimeSecondsValue(1367491215)},
		{prefix + "/14", str("+02:00")},
		{prefix + "/16", str("U")},
	}
}

// specVectors are the TLV examples of LwM2M Core 1.0 §6.4.3 (the same in
// 1.1 §7.4.3), hex-decoded from the specification into testdata/.
var specVectors = []struct {
	file string
	root string
	want []rec
}{
	// §6.4.3.1: Read /3/0, the single instance of the Device object: the
	// resource TLVs without an instance wrapper.
	{"spec-device-instance.bin", "/3/0", deviceRecords("/3/0")},
	// §6.4.3.2 A: Read /3 (a single-instance object): one Object Instance TLV.
	{"spec-device-object.bin", "/3", deviceRecords("/3/0")},
	// §6.4.3.2 B: Read /2, Access Control with two instances; ACL instance
	// 310 has a 16-bit identifier.
	{"spec-access-control.bin", "/2", []rec{
		{"/2/0/0", num(1)}, {"/2/0/1", num(0)}, {"/2/0/2/127", num(7)}, {"/2/0/3", num(127)},
		{"/2/2/0", num(3)}, {"/2/2/1", num(0)}, {"/2/2/2/127", num(7)}, {"/2/2/2/310", num(1)}, {"/2/2/3", num(127)},
	}},
	// §6.4.3.2 C: Read /1, a multiple-instance object with one instance.
	{"spec-server-object.bin", "/1", []rec{
		{"/1/0/0", num(1)}, {"/1/0/1", num(86400)}, {"/1/0/6", objects.BooleanValue(true)}, {"/1/0/7", str("U")},
	}},
	// §6.4.3.3 example 1: Read /65/0, a multiple Objlnk resource.
	{"spec-objlnk-65-0.bin", "/65/0", []rec{
		{"/65/0/0/0", link(66, 0)}, {"/65/0/0/1", link(66, 1)}, {"/65/0/1", str("8613800755500")}, {"/65/0/2", num(0x12345678)},
	}},
	// §6.4.3.3 example 2: Read /66, two instances, one with the null link
	// 65535:65535.
	{"spec-objlnk-66.bin", "/66", []rec{
		{"/66/0/0", str("myService 1")}, {"/66/0/1", str("Internet.15.234")}, {"/66/0/2", link(67, 0)},
		{"/66/1/0", str("myService 2")}, {"/66/1/1", str("Internet.15.235")}, {"/66/1/2", link(65535, 65535)},
	}},
}

func TestSpecVectors(t *testing.T) {
	m := models(t)
	for _, sv := range specVectors {
		t.Run(sv.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", sv.file))
			if err != nil {
				t.Fatal(err)
			}
			root := objects.MustParsePath(sv.root)
			n, err := Codec{}.Decode(root, data, m)
			if err != nil {
				t.Fatal(err)
			}
			got := objects.Flatten(root, n)
			if len(got) != len(sv.want) {
				t.Fatalf("%d values, want %d:\n%s", len(got), len(sv.want), dump(root, n))
			}
			for i, w := range sv.want {
				if got[i].Path.String() != w.path || !got[i].Value.Equal(w.v) {
					t.Errorf("value %d: got %s = %v, want %s = %v", i, got[i].Path, got[i].Value, w.path, w.v)
				}
			}
			// The spec's examples use the shortest forms, as our encoder
			// does, so re-encoding gives the same bytes.
			again, err := Codec{}.Encode(root, n, m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Errorf("re-encoded differs from the spec:\n got % x\nwant % x", again, data)
			}
		})
	}
}

// The spec vectors at the wire level: structure without a model.
func TestSpecVectorsUnpack(t *testing.T) {
	data, err := os.ReadFile("testdata/spec-access-control.bin")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := Unpack(data)
	if err != nil {
		t.Fatal(err)
	}
	acl := Entry{Kind: MultipleResource, ID: 2, Children: []Entry{
		{Kind: ResourceInstance, ID: 127, Value: []byte{7}},
		{Kind: ResourceInstance, ID: 310, Value: []byte{1}},
	}}
	if len(entries) != 2 || entries[1].Kind != ObjectInstance || entries[1].ID != 2 || len(entries[1].Children) != 4 {
		t.Fatalf("got %+v", entries)
	}
	if !equalEntries(entries[1].Children[2:3], []Entry{acl}) {
		t.Fatalf("ACL of instance 2: got %+v", entries[1].Children[2])
	}
	packed, err := Pack(entries)
	if err != nil || !bytes.Equal(packed, data) {
		t.Fatalf("Pack: %v\n got % x\nwant % x", err, packed, data)
	}
}

// goldens are encoder outputs kept in testdata/golden; go test -update
// rewrites them.
func goldens() []struct {
	name string
	root string
	node objects.Node
} {
	dev := deviceInstance()
	return []struct {
		name string
		root string
		node objects.Node
	}{
		{"device-instance", "/3/0", dev},
		{"device-object", "/3", &objects.Object{ID: 3, Instances: []objects.Instance{*dev}}},
		{"device-power-voltage", "/3/0/7", &dev.Resources[5]},
		{"device-current-time", "/3/0/13", &dev.Resources[10]},
		{"device-power-source-1", "/3/0/6/1", &dev.Resources[4].Instances[1]},
		{"all-types-instance", "/60000/1", allTypesInstance(1)},
		{"all-types-object", "/60000", &objects.Object{ID: allTypesID, Instances: []objects.Instance{*allTypesInstance(0), *allTypesInstance(256)}}},
	}
}

func TestGolden(t *testing.T) {
	m := models(t)
	for _, g := range goldens() {
		t.Run(g.name, func(t *testing.T) {
			root := objects.MustParsePath(g.root)
			got, err := Codec{}.Encode(root, g.node, m)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", "golden", g.name+".tlv")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding differs from %s:\n got % x\nwant % x", file, got, want)
			}
			back, err := Codec{}.Decode(root, want, m)
			if err != nil || !objects.EqualNodes(back, g.node) {
				t.Fatalf("golden file does not decode to the node: %v", err)
			}
		})
	}
}
