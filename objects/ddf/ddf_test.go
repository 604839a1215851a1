package ddf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

// registryDir is the OMA registry shared beside the repository.
func registryDir(t testing.TB) string {
	dir := filepath.Join("..", "..", "..", "shared", "lwm2m-registry")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("OMA registry not found at %s (it sits in ../shared beside the checkout): %v", dir, err)
	}
	return dir
}

func TestLoadWholeRegistry(t *testing.T) {
	dir := registryDir(t)
	reg := objects.NewRegistry()
	n, err := LoadInto(reg, dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := reg.IDs()
	t.Logf("loaded %d object definitions (newest copies and version history), %d distinct (object, version) pairs, %d objects", n, reg.Len(), len(ids))
	if n < 740 || reg.Len() < 400 {
		t.Errorf("loaded %d definitions, %d distinct versions; the registry has about 750 and 420", n, reg.Len())
	}
	for _, v := range []struct {
		id  uint16
		ver string
	}{{0, "1.0"}, {0, "1.1"}, {0, "1.2"}, {1, "1.2"}, {3, "1.0"}, {3, "1.1"}, {3303, "1.1"}} {
		if reg.Get(v.id, v.ver) == nil {
			t.Errorf("object %d version %s missing", v.id, v.ver)
		}
	}
	dev := reg.Get(3, "1.0")
	if r := dev.Resource(4); r == nil || r.Name != "Reboot" || r.Operations != objects.OpExecute {
		t.Errorf("/3/x/4 = %+v, want the executable Reboot", r)
	}
	if r := dev.Resource(6); r == nil || !r.Multiple || r.Type != objects.TypeInteger {
		t.Errorf("/3/x/6 = %+v, want multiple Integer", r)
	}
}

func TestBrokenFiles(t *testing.T) {
	head := `<LWM2M><Object ObjectType="MODefinition"><Name>X</Name><ObjectID>%ID%</ObjectID>` +
		`<MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory><Resources>`
	tail := `</Resources></Object></LWM2M>`
	item := func(id, ops, mult, typ string) string {
		return `<Item ID="` + id + `"><Name>r</Name><Operations>` + ops + `</Operations><MultipleInstances>` + mult +
			`</MultipleInstances><Mandatory>Optional</Mandatory><Type>` + typ + `</Type></Item>`
	}
	tests := []struct {
		name, doc, want string
	}{
		{"id too big", strings.Replace(head, "%ID%", "70000", 1) + tail, "<ObjectID>"},
		{"bad type", strings.Replace(head, "%ID%", "9", 1) + item("1", "R", "Single", "Decimal") + tail, `<Item ID="1">: <Type>`},
		{"bad operations", strings.Replace(head, "%ID%", "9", 1) + item("1", "RX", "Single", "String") + tail, "<Operations>"},
		{"bad multiplicity", strings.Replace(head, "%ID%", "9", 1) + item("1", "R", "Many", "String") + tail, "<MultipleInstances>"},
		{"duplicate resource", strings.Replace(head, "%ID%", "9", 1) + item("1", "R", "Single", "String") + item("1", "R", "Single", "String") + tail, "defined twice"},
		{"truncated", strings.Replace(head, "%ID%", "9", 1), "XML syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("broken.xml", strings.NewReader(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "broken.xml") {
				t.Fatalf("err = %v, want one naming broken.xml and %q", err, tt.want)
			}
		})
	}
}

func TestNotDDFIsSkipped(t *testing.T) {
	_, err := Parse("DDF.xml", strings.NewReader(`<DDFList><Item/></DDFList>`))
	if !errors.Is(err, ErrNotDDF) {
		t.Fatalf("err = %v, want ErrNotDDF", err)
	}
}

func TestTestdata(t *testing.T) {
	defs, err := LoadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	reg := objects.NewRegistry()
	for _, d := range defs {
		if err := reg.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	s := reg.Get(32769, "1.1")
	if s == nil || s.Name != "Test Sensor" || !s.Multiple || len(s.Resources) != 6 {
		t.Fatalf("sensor = %+v", s)
	}
	want := []struct {
		id   uint16
		typ  objects.Type
		ops  objects.Operations
		mult bool
	}{{0, objects.TypeFloat, objects.OpRead, false}, {1, objects.TypeInteger, objects.OpRead, true}, {2, objects.TypeNone, objects.OpExecute, false},
		{3, objects.TypeString, objects.OpRead | objects.OpWrite, false}, {4, objects.TypeUnsigned, objects.OpRead, false}, {5, objects.TypeObjlnk, objects.OpRead | objects.OpWrite, false}}
	for _, w := range want {
		r := s.Resource(w.id)
		if r == nil || r.Type != w.typ || r.Operations != w.ops || r.Multiple != w.mult {
			t.Errorf("resource %d = %+v", w.id, r)
		}
	}
	if r := s.Resource(0); r.Units != "Cel" || r.Range != "-40..85" {
		t.Errorf("units/range = %q %q", r.Units, r.Range)
	}
	if l := reg.Get(32770, "1.0"); l == nil || l.Version != "1.0" {
		t.Errorf("an LWM2M.xsd file without ObjectVersion should load as 1.0: %+v", l)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/sensor.xml", "testdata/legacy-1_0.xml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		defs, err := Parse("fuzz.xml", bytes.NewReader(b))
		if err != nil {
			return
		}
		reg := objects.NewRegistry()
		for _, d := range defs {
			if err := reg.Add(d); err != nil {
				return
			}
			for _, r := range d.Resources {
				if d.Resource(r.ID) == nil {
					t.Fatalf("resource %d not found after sort", r.ID)
				}
			}
		}
	})
}
