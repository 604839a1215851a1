package builtin

import (
	"fmt"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

// coreVersions lists every core object version core.go must define.
var coreVersions = map[uint16][]string{
	0: {"1.0", "1.1", "1.2"}, 1: {"1.0", "1.1", "1.2"}, 2: {"1.0", "1.1"},
	3: {"1.0", "1.1", "1.2"}, 4: {"1.0", "1.1", "1.2", "1.3"}, 5: {"1.0", "1.1", "1.2"},
	6: {"1.0"}, 7: {"1.0"}, 9: {"1.0"}, 19: {"1.0"}, 21: {"1.0", "1.1", "2.0"},
}

func coreGet(t *testing.T, id uint16, ver string) *objects.ObjectDef {
	t.Helper()
	d := Shared().Get(id, ver)
	if d == nil {
		t.Fatalf("no built-in definition of %d@%s", id, ver)
	}
	return d
}

// TestCoreSemantics checks resources other packages rely on, in every
// version of their object.
func TestCoreSemantics(t *testing.T) {
	tests := []struct {
		obj, res uint16
		ops      objects.Operations
		typ      objects.Type
		multiple bool
	}{
		{3, 4, objects.OpExecute, objects.TypeNone, false},                  // Reboot
		{3, 11, objects.OpRead, objects.TypeInteger, true},                  // Error Code
		{0, 3, 0, objects.TypeOpaque, false},                                // Public Key or Identity
		{0, 5, 0, objects.TypeOpaque, false},                                // Secret Key
		{0, 1, 0, objects.TypeBoolean, false},                               // Bootstrap-Server
		{5, 1, objects.OpRead | objects.OpWrite, objects.TypeString, false}, // Package URI
		{5, 0, objects.OpWrite, objects.TypeOpaque, false},                  // Package
		{1, 7, objects.OpRead | objects.OpWrite, objects.TypeString, false}, // Binding
		{1, 0, objects.OpRead, objects.TypeInteger, false},                  // Short Server ID
		{6, 0, objects.OpRead, objects.TypeFloat, false},                    // Latitude
	}
	for _, tc := range tests {
		for _, ver := range coreVersions[tc.obj] {
			t.Run(fmt.Sprintf("%d@%s/%d", tc.obj, ver, tc.res), func(t *testing.T) {
				r := coreGet(t, tc.obj, ver).Resource(tc.res)
				if r == nil {
					t.Fatal("resource missing")
				}
				if r.Operations != tc.ops || r.Type != tc.typ || r.Multiple != tc.multiple {
					t.Errorf("%s: got %q %v multiple=%v, want %q %v multiple=%v",
						r.Name, r.Operations, r.Type, r.Multiple, tc.ops, tc.typ, tc.multiple)
				}
			})
		}
	}
}

// TestCoreVersions checks the header of every core definition and that
// each version carries a description for itself and its resources.
func TestCoreVersions(t *testing.T) {
	for id, vers := range coreVersions {
		for _, ver := range vers {
			d := coreGet(t, id, ver)
			urn := fmt.Sprintf("urn:oma:lwm2m:oma:%d", id)
			if ver != "1.0" {
				urn += ":" + ver
			}
			if d.URN != urn {
				t.Errorf("%d@%s: URN %q, want %q", id, ver, d.URN, urn)
			}
			if d.Description == "" || d.LwM2MVersion == "" {
				t.Errorf("%d@%s: description or LwM2M version missing", id, ver)
			}
			for _, r := range d.Resources {
				if r.Description == "" {
					t.Errorf("%d@%s/%d: no description", id, ver, r.ID)
				}
				if (r.Type == objects.TypeNone) != r.Operations.Executable() {
					t.Errorf("%d@%s/%d: type %v with operations %q", id, ver, r.ID, r.Type, r.Operations)
				}
			}
		}
	}
}

// TestCoreDerived checks that deriving a version changes only the new
// one: the helpers copy the resource list rather than share it.
func TestCoreDerived(t *testing.T) {
	tests := []struct {
		obj, res uint16
		ver      string
		check    func(r *objects.ResourceDef) bool
		what     string
	}{
		{1, 13, "1.1", func(r *objects.ResourceDef) bool { return r.Operations == 0 }, "no operations"},
		{1, 13, "1.2", func(r *objects.ResourceDef) bool { return r.Operations == objects.OpRead }, "R"},
		{3, 7, "1.0", func(r *objects.ResourceDef) bool { return r.Units == "mV" }, "unit mV"},
		{3, 7, "1.1", func(r *objects.ResourceDef) bool { return r.Units == "" }, "no unit"},
		{3, 11, "1.1", func(r *objects.ResourceDef) bool { return r.Range == "0..8" }, "range 0..8"},
		{3, 11, "1.2", func(r *objects.ResourceDef) bool { return r.Range == "0..32" }, "range 0..32"},
		{4, 2, "1.2", func(r *objects.ResourceDef) bool { return r.Units == "" }, "no unit"},
		{4, 2, "1.3", func(r *objects.ResourceDef) bool { return r.Units == "dBm" }, "unit dBm"},
		{21, 0, "1.1", func(r *objects.ResourceDef) bool { return r.Type == objects.TypeString }, "String"},
		{21, 0, "2.0", func(r *objects.ResourceDef) bool { return r.Type == objects.TypeOpaque }, "Opaque"},
		{5, 5, "1.0", func(r *objects.ResourceDef) bool { return r.Range == "0..9" }, "range 0..9"},
		{5, 5, "1.1", func(r *objects.ResourceDef) bool { return r.Range == "0..11" }, "range 0..11"},
	}
	for _, tc := range tests {
		r := coreGet(t, tc.obj, tc.ver).Resource(tc.res)
		if r == nil || !tc.check(r) {
			t.Errorf("%d@%s/%d: want %s, got %+v", tc.obj, tc.ver, tc.res, tc.what, r)
		}
	}
	// Later versions add resources to the earlier ones and remove none.
	for id, vers := range coreVersions {
		for i := 1; i < len(vers); i++ {
			prev, next := coreGet(t, id, vers[i-1]), coreGet(t, id, vers[i])
			for _, r := range prev.Resources {
				if next.Resource(r.ID) == nil {
					t.Errorf("%d@%s drops resource %d of %s", id, next.Version, r.ID, prev.Version)
				}
			}
			if len(next.Resources) < len(prev.Resources) {
				t.Errorf("%d@%s has fewer resources than %s", id, next.Version, prev.Version)
			}
		}
	}
}

func TestCoreShape(t *testing.T) {
	for _, s := range []string{"", "S", "SX", "XM", "SMO", "sm"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("coreShape(%q) did not panic", s)
				}
			}()
			coreShape(s)
		}()
	}
}
