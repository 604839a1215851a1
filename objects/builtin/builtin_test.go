package builtin

import (
	"fmt"
	"sort"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// required lists the objects the built-in set must cover, in every
// version the OMA registry publishes.
func required(id uint16) bool {
	switch {
	case id <= 7, id == 9, id == 19, id == 21:
		return true
	case id >= 3200 && id <= 3203, id >= 3300 && id <= 3350:
		return true
	}
	return false
}

// TestCrossCheckRegistry compares every built-in definition with the OMA
// registry's DDF of the same object and version, and checks that no
// required object version is missing.
func TestCrossCheckRegistry(t *testing.T) {
	reg := shared.Registry(t)
	have := map[string]bool{}
	for _, d := range Defs() {
		key := fmt.Sprintf("%d@%s", d.ID, d.Version)
		if have[key] {
			t.Errorf("%s defined twice", key)
		}
		have[key] = true
		t.Run(key, func(t *testing.T) {
			ref := reg.Get(d.ID, d.Version)
			if ref == nil {
				t.Fatalf("the OMA registry has no object %d version %s", d.ID, d.Version)
			}
			for _, diff := range compare(d, ref) {
				t.Error(diff)
			}
		})
	}
	var missing []string
	for _, id := range reg.IDs() {
		if !required(id) {
			continue
		}
		for _, v := range reg.Versions(id) {
			if !have[fmt.Sprintf("%d@%s", id, v)] {
				missing = append(missing, fmt.Sprintf("%d@%s", id, v))
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d required object versions are not built in: %v", len(missing), missing)
	}
	t.Logf("%d built-in definitions of %d objects", len(Defs()), len(Shared().IDs()))
}

func compare(d, ref *objects.ObjectDef) []string {
	var diffs []string
	diff := func(what string, got, want any) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s: built-in %v, registry %v", what, got, want))
		}
	}
	diff("name", d.Name, ref.Name)
	diff("multiple instances", d.Multiple, ref.Multiple)
	diff("mandatory", d.Mandatory, ref.Mandatory)
	if d.URN != "" {
		diff("URN", d.URN, ref.URN)
	}
	for _, r := range ref.Resources {
		b := d.Resource(r.ID)
		if b == nil {
			diffs = append(diffs, fmt.Sprintf("resource %d (%s) missing", r.ID, r.Name))
			continue
		}
		p := fmt.Sprintf("resource %d", r.ID)
		diff(p+" name", b.Name, r.Name)
		diff(p+" operations", b.Operations, r.Operations)
		diff(p+" multiple", b.Multiple, r.Multiple)
		diff(p+" mandatory", b.Mandatory, r.Mandatory)
		diff(p+" type", b.Type, r.Type)
		if b.Units != "" {
			diff(p+" units", b.Units, r.Units)
		}
	}
	for _, b := range d.Resources {
		if ref.Resource(b.ID) == nil {
			diffs = append(diffs, fmt.Sprintf("resource %d (%s) is not in the registry", b.ID, b.Name))
		}
	}
	return diffs
}
