package objects

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxID is the largest object, instance or resource ID. LwM2M Core 1.1
// §7.1 reserves 65535 (MAX_ID) as "no instance"; it is still a valid ID on
// the wire (e.g. Server object's Default Minimum Period refers to it), so
// the parser accepts it.
const MaxID = 65535

// Path addresses the root, an object, an object instance, a resource or a
// resource instance. The zero value is the root path "/". Path is
// comparable and can be used as a map key.
type Path struct {
	ids [4]uint16
	n   uint8
}

// Errors returned by ParsePath, wrapped with the offending input.
var (
	ErrEmptySegment = errors.New("empty path segment")
	ErrBadID        = errors.New("path segment is not an ID from 0 to 65535")
	ErrTooDeep      = errors.New("path has more than 4 segments")
	ErrNotAbsolute  = errors.New("path does not start with /")
)

// RootPath is "/".
var RootPath = Path{}

// NewPath builds a path from up to four IDs. It panics with more than four:
// that is a programming error, not bad input.
func NewPath(ids ...uint16) Path {
	if len(ids) > 4 {
		panic("objects: NewPath with more than 4 IDs")
	}
	var p Path
	copy(p.ids[:], ids)
	p.n = uint8(len(ids))
	return p
}

// ParsePath parses "/", "/o", "/o/i", "/o/i/r" and "/o/i/r/ri". A single
// trailing slash is tolerated ("/3/0/"), since several clients send base
// names that way; empty segments elsewhere are rejected.
func ParsePath(s string) (Path, error) {
	if s == "/" || s == "" {
		if s == "" {
			return Path{}, fmt.Errorf("objects: path %q: %w", s, ErrNotAbsolute)
		}
		return Path{}, nil
	}
	if s[0] != '/' {
		return Path{}, fmt.Errorf("objects: path %q: %w", s, ErrNotAbsolute)
	}
	return parseSegments(s, s[1:])
}

// ParseRelativePath parses a path without the leading slash ("3/0/1"), as
// found in SenML names relative to a base name.
func ParseRelativePath(s string) (Path, error) {
	if s == "" {
		return Path{}, nil
	}
	return parseSegments(s, s)
}

func parseSegments(orig, rest string) (Path, error) {
	rest = strings.TrimSuffix(rest, "/")
	var p Path
	for rest != "" || p.n == 0 {
		seg, tail, _ := strings.Cut(rest, "/")
		if p.n == 4 {
			return Path{}, fmt.Errorf("objects: path %q: %w", orig, ErrTooDeep)
		}
		if seg == "" {
			return Path{}, fmt.Errorf("objects: path %q: %w", orig, ErrEmptySegment)
		}
		id, err := parseID(seg)
		if err != nil {
			return Path{}, fmt.Errorf("objects: path %q: segment %q: %w", orig, seg, ErrBadID)
		}
		p.ids[p.n] = id
		p.n++
		if tail == "" && strings.HasSuffix(rest, "/") {
			return Path{}, fmt.Errorf("objects: path %q: %w", orig, ErrEmptySegment)
		}
		rest = tail
	}
	return p, nil
}

func parseID(s string) (uint16, error) {
	if len(s) > 1 && s[0] == '0' {
		return 0, ErrBadID // leading zeros would make two spellings of one path
	}
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, ErrBadID
	}
	return uint16(v), nil
}

// MustParsePath is ParsePath for constants in code and tests.
func MustParsePath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// Len is the number of IDs: 0 for the root, 4 for a resource instance.
func (p Path) Len() int { return int(p.n) }

// ID returns the i-th ID (0: object, 1: instance, 2: resource, 3: resource instance).
func (p Path) ID(i int) uint16 { return p.ids[i] }

// IDs returns the IDs as a slice.
func (p Path) IDs() []uint16 { return append([]uint16(nil), p.ids[:p.n]...) }

func (p Path) IsRoot() bool             { return p.n == 0 }
func (p Path) IsObject() bool           { return p.n == 1 }
func (p Path) IsInstance() bool         { return p.n == 2 }
func (p Path) IsResource() bool         { return p.n == 3 }
func (p Path) IsResourceInstance() bool { return p.n == 4 }

// Object, Instance, Resource and ResourceInstance return the IDs; they are
// only meaningful when the path is at least that deep.
func (p Path) Object() uint16           { return p.ids[0] }
func (p Path) Instance() uint16         { return p.ids[1] }
func (p Path) Resource() uint16         { return p.ids[2] }
func (p Path) ResourceInstance() uint16 { return p.ids[3] }

// Child appends an ID. It panics on a resource-instance path.
func (p Path) Child(id uint16) Path {
	if p.n == 4 {
		panic("objects: Child of a resource instance path")
	}
	p.ids[p.n] = id
	p.n++
	return p
}

// Parent drops the last ID; the parent of the root is the root.
func (p Path) Parent() Path {
	if p.n == 0 {
		return p
	}
	p.n--
	p.ids[p.n] = 0
	return p
}

// Truncate keeps the first n IDs.
func (p Path) Truncate(n int) Path {
	for int(p.n) > n {
		p = p.Parent()
	}
	return p
}

// HasPrefix reports whether q is p itself or one of its ancestors.
func (p Path) HasPrefix(q Path) bool {
	if q.n > p.n {
		return false
	}
	for i := 0; i < int(q.n); i++ {
		if p.ids[i] != q.ids[i] {
			return false
		}
	}
	return true
}

// Compare orders paths depth-first: a parent before its children, and
// siblings by ID. It returns -1, 0 or +1.
func (p Path) Compare(q Path) int {
	for i := 0; i < int(min(p.n, q.n)); i++ {
		switch {
		case p.ids[i] < q.ids[i]:
			return -1
		case p.ids[i] > q.ids[i]:
			return 1
		}
	}
	switch {
	case p.n < q.n:
		return -1
	case p.n > q.n:
		return 1
	}
	return 0
}

// String formats the path as "/o/i/r/ri" ("/" for the root).
func (p Path) String() string {
	if p.n == 0 {
		return "/"
	}
	b := make([]byte, 0, 24)
	for i := 0; i < int(p.n); i++ {
		b = append(b, '/')
		b = strconv.AppendUint(b, uint64(p.ids[i]), 10)
	}
	return string(b)
}

// MarshalText and UnmarshalText let paths travel in JSON and YAML.
func (p Path) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

func (p *Path) UnmarshalText(b []byte) error {
	q, err := ParsePath(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
