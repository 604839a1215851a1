package builtin

import (
	"fmt"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// ipsoIDs lists the IPSO objects the built-in set covers: 3200-3203 and
// 3300-3350 except 3307 and 3309, which the OMA registry does not publish.
func ipsoIDs() []uint16 {
	var ids []uint16
	for id := uint16(3200); id <= 3350; id++ {
		if id <= 3203 || id >= 3300 && id != 3307 && id != 3309 {
			ids = append(ids, id)
		}
	}
	return ids
}

func isIPSO(id uint16) bool { return id >= 3200 && id <= 3399 }

func TestIPSOResources(t *testing.T) {
	tests := []struct {
		obj, res  uint16
		ver       string
		typ       objects.Type
		ops       string
		mandatory bool
		multiple  bool
	}{
		{3303, 5700, "1.0", objects.TypeFloat, "R", true, false},
		{3303, 5700, "1.1", objects.TypeFloat, "R", true, false},
		{3303, 5605, "1.0", objects.TypeNone, "E", false, false},
		{3303, 5518, "1.1", objects.TypeTime, "R", false, false},
		{3311, 5850, "1.0", objects.TypeBoolean, "RW", true, false},
		{3311, 5851, "1.0", objects.TypeInteger, "RW", false, false},
		{3336, 5514, "1.0", objects.TypeString, "R", true, false},
		{3336, 6051, "2.0", objects.TypeFloat, "R", true, false},
		{3349, 5912, "1.1", objects.TypeString, "RW", false, true},
		{3305, 5806, "1.0", objects.TypeFloat, "W", false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d@%s/%d", tt.obj, tt.ver, tt.res), func(t *testing.T) {
			d := Shared().Get(tt.obj, tt.ver)
			if d == nil {
				t.Fatalf("object %d version %s not built in", tt.obj, tt.ver)
			}
			r := d.Resource(tt.res)
			if r == nil {
				t.Fatalf("resource %d missing", tt.res)
			}
			if r.Type != tt.typ || r.Operations.String() != tt.ops || r.Mandatory != tt.mandatory || r.Multiple != tt.multiple {
				t.Errorf("got %v %s mandatory=%v multiple=%v, want %v %s mandatory=%v multiple=%v",
					r.Type, r.Operations, r.Mandatory, r.Multiple, tt.typ, tt.ops, tt.mandatory, tt.multiple)
			}
			if r.Name == "" || r.Description == "" {
				t.Errorf("resource %d has no name or description", tt.res)
			}
		})
	}
}

func TestIPSOVersionsDiffer(t *testing.T) {
	if d := Shared().Get(3303, "1.0").Resource(5518); d != nil {
		t.Error("3303 1.0 has Timestamp (5518), which 1.1 introduced")
	}
	if d := Shared().Get(3336, "2.0").Resource(5514); d != nil {
		t.Error("3336 2.0 still has the string Latitude (5514)")
	}
}

// TestIPSOLookup checks that a client announcing any IPSO object at 1.0
// or 1.1 gets a model, the exact version when one is built in.
func TestIPSOLookup(t *testing.T) {
	reg := Shared()
	for _, id := range ipsoIDs() {
		for _, ver := range []string{"", "1.0", "1.1"} {
			d := reg.Lookup(id, ver)
			if d == nil {
				t.Errorf("Lookup(%d, %q) = nil", id, ver)
				continue
			}
			if d.ID != id || d.Name == "" || d.Description == "" || !d.Multiple || d.Mandatory {
				t.Errorf("Lookup(%d, %q) = %d %q (multiple %v, mandatory %v)", id, ver, d.ID, d.Name, d.Multiple, d.Mandatory)
			}
			want := ver
			if want == "" || reg.Get(id, want) == nil {
				want = "1.0"
			}
			if d.Version != want {
				t.Errorf("Lookup(%d, %q) gave version %s, want %s", id, ver, d.Version, want)
			}
		}
	}
	for id := uint16(3200); id <= 3399; id++ {
		if len(reg.Versions(id)) > 0 && !ipsoHas(ipsoIDs(), id) {
			t.Errorf("object %d is built in but not expected", id)
		}
	}
}

func ipsoHas(ids []uint16, id uint16) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestIPSOShape checks invariants of the tables: URNs follow the version,
// each object has a mandatory resource or is 3345 (whose resources are all
// optional), and a 1.1 version keeps every 1.0 resource unchanged.
func TestIPSOShape(t *testing.T) {
	for _, d := range Defs() {
		if !isIPSO(d.ID) {
			continue
		}
		want := fmt.Sprintf("urn:oma:lwm2m:ext:%d", d.ID)
		if d.Version != "1.0" {
			want += ":" + d.Version
		}
		if d.URN != want {
			t.Errorf("%d@%s: URN %q, want %q", d.ID, d.Version, d.URN, want)
		}
		mandatory := 0
		for _, r := range d.Resources {
			if r.Mandatory {
				mandatory++
			}
			if r.Description == "" {
				t.Errorf("%d@%s: resource %d has no description", d.ID, d.Version, r.ID)
			}
		}
		if mandatory == 0 && d.ID != 3345 {
			t.Errorf("%d@%s: no mandatory resource", d.ID, d.Version)
		}
		if d.Version != "1.1" {
			continue
		}
		old := Shared().Get(d.ID, "1.0")
		for _, r := range old.Resources {
			n := d.Resource(r.ID)
			if n == nil || *n != r {
				t.Errorf("%d: resource %d differs between 1.0 and 1.1", d.ID, r.ID)
			}
		}
	}
}

// TestIPSORanges compares the ranges, which TestCrossCheckRegistry does
// not, with the OMA registry.
func TestIPSORanges(t *testing.T) {
	reg := shared.Registry(t)
	for _, d := range Defs() {
		if !isIPSO(d.ID) {
			continue
		}
		ref := reg.Get(d.ID, d.Version)
		if ref == nil {
			continue // reported by TestCrossCheckRegistry
		}
		for _, r := range d.Resources {
			if rr := ref.Resource(r.ID); rr != nil && rr.Range != r.Range {
				t.Errorf("%d@%s resource %d: range %q, registry %q", d.ID, d.Version, r.ID, r.Range, rr.Range)
			}
		}
	}
}
