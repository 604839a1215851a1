// Package builtin holds the object definitions lwm2md ships with, written
// in this project from the OMA LwM2M specifications and the IPSO object
// definitions: the core objects (0-7, 9, 19, 21, in every version that
// differs) and the common IPSO sensors and actuators. A user adds or
// overrides definitions with DDF files (--models).
package builtin

import (
	"sync"

	"github.com/lwm2md/lwm2md/objects"
)

var all []*objects.ObjectDef

// add is called from the package's init functions, one per file.
func add(defs ...*objects.ObjectDef) {
	for _, d := range defs {
		if err := d.SortResources(); err != nil {
			panic(err) // a mistake in this package, caught by its tests
		}
	}
	all = append(all, defs...)
}

// Defs returns every built-in definition. The definitions are shared:
// callers must not change them.
func Defs() []*objects.ObjectDef { return all }

var (
	regOnce sync.Once
	reg     *objects.Registry
)

// Registry returns a new registry holding the built-in definitions, to
// which a caller may add its own.
func Registry() *objects.Registry {
	r := objects.NewRegistry()
	for _, d := range all {
		if err := r.Add(d); err != nil {
			panic(err)
		}
	}
	return r
}

// Shared returns one registry of the built-in definitions for read-only
// use (codec tests, tools).
func Shared() *objects.Registry {
	regOnce.Do(func() { reg = Registry() })
	return reg
}
