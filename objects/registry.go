package objects

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Registry holds object definitions keyed by object ID and object version.
// It is safe for concurrent use; definitions must not be changed after Add.
type Registry struct {
	mu   sync.RWMutex
	defs map[uint16][]*ObjectDef // each slice sorted by version, oldest first
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{defs: make(map[uint16][]*ObjectDef)}
}

// Add stores d, replacing a definition with the same ID and version.
func (r *Registry) Add(d *ObjectDef) error {
	if d.Version == "" {
		d.Version = "1.0"
	}
	if _, err := ParseVersion(d.Version); err != nil {
		return fmt.Errorf("objects: object %d: %w", d.ID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.defs[d.ID]
	for i, old := range list {
		if old.Version == d.Version {
			list[i] = d
			return nil
		}
	}
	list = append(list, d)
	sort.Slice(list, func(i, j int) bool { return CompareVersions(list[i].Version, list[j].Version) < 0 })
	r.defs[d.ID] = list
	return nil
}

// Get returns the definition of object id at exactly version ver.
func (r *Registry) Get(id uint16, ver string) *ObjectDef {
	if ver == "" {
		ver = "1.0"
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, d := range r.defs[id] {
		if CompareVersions(d.Version, ver) == 0 {
			return d
		}
	}
	return nil
}

// Lookup picks the definition for a client that announced object id with
// version ver (LwM2M Core 1.1 §6.2.1.1: no "ver" attribute means 1.0). It
// returns the exact version if known, else the newest version below it,
// else the oldest one above it, so a client is never left without a model
// while one exists for the object.
func (r *Registry) Lookup(id uint16, ver string) *ObjectDef {
	if ver == "" {
		ver = "1.0"
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	list := r.defs[id]
	var best *ObjectDef
	for _, d := range list {
		if CompareVersions(d.Version, ver) <= 0 {
			best = d
		}
	}
	if best == nil && len(list) > 0 {
		best = list[0]
	}
	return best
}

// Object returns the newest definition of id: the registry as a Models
// for payloads whose client versions are not known.
func (r *Registry) Object(id uint16) *ObjectDef {
	r.mu.RLock()
	defer r.mu.RUnlock()
	list := r.defs[id]
	if len(list) == 0 {
		return nil
	}
	return list[len(list)-1]
}

// Versions lists the known versions of object id, oldest first.
func (r *Registry) Versions(id uint16) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var vs []string
	for _, d := range r.defs[id] {
		vs = append(vs, d.Version)
	}
	return vs
}

// IDs lists the known object IDs in ascending order.
func (r *Registry) IDs() []uint16 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]uint16, 0, len(r.defs))
	for id := range r.defs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Len is the number of (object, version) definitions.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, l := range r.defs {
		n += len(l)
	}
	return n
}

// ForVersions returns the Models of one client: for each object the
// definition matching the version it registered (see Lookup), and the
// newest one for objects it did not announce.
func (r *Registry) ForVersions(vers map[uint16]string) Models {
	return versioned{r: r, vers: vers}
}

type versioned struct {
	r    *Registry
	vers map[uint16]string
}

func (v versioned) Object(id uint16) *ObjectDef {
	if ver, ok := v.vers[id]; ok {
		return v.r.Lookup(id, ver)
	}
	return v.r.Object(id)
}

// Version is a parsed "major.minor" version.
type Version struct{ Major, Minor int }

// ParseVersion parses "1", "1.0", "1.2" (surrounding quotes tolerated, as
// some clients quote the ver attribute).
func ParseVersion(s string) (Version, error) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	maj, minStr, hasMinor := strings.Cut(s, ".")
	var v Version
	var err error
	if v.Major, err = strconv.Atoi(maj); err != nil || v.Major < 0 {
		return Version{}, fmt.Errorf("bad version %q", s)
	}
	if hasMinor {
		if v.Minor, err = strconv.Atoi(minStr); err != nil || v.Minor < 0 {
			return Version{}, fmt.Errorf("bad version %q", s)
		}
	}
	return v, nil
}

func (v Version) String() string { return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor) }

// CompareVersions compares two version strings; unparsable ones sort first.
func CompareVersions(a, b string) int {
	va, erra := ParseVersion(a)
	vb, errb := ParseVersion(b)
	switch {
	case erra != nil && errb != nil:
		return strings.Compare(a, b)
	case erra != nil:
		return -1
	case errb != nil:
		return 1
	case va.Major != vb.Major:
		return cmpInt(va.Major, vb.Major)
	}
	return cmpInt(va.Minor, vb.Minor)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
