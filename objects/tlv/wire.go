// Package tlv implements the LwM2M TLV content format (application/
// vnd.oma.lwm2m+tlv, 11542, and the pre-registration number 1542 that
// LwM2M 1.0 clients use for the same bytes), LwM2M Core 1.0 §6.4.3 and
// 1.1 §7.4.3.
//
// It works on two levels. Pack and Unpack turn bytes into Entry trees and
// back, knowing only the TLV framing. Codec maps those trees to
// objects nodes, using the model to type the values, which TLV itself
// does not carry.
package tlv

import (
	"errors"
	"fmt"

	"github.com/lwm2md/lwm2md/objects"
)

// Kind is the identifier type in bits 7-6 of a TLV's type byte.
type Kind uint8

const (
	ObjectInstance   Kind = 0 // 00: contains resource TLVs
	ResourceInstance Kind = 1 // 01: one value of a multiple resource
	MultipleResource Kind = 2 // 10: contains resource instance TLVs
	Resource         Kind = 3 // 11: one value of a single resource
)

var kindNames = [...]string{"object instance", "resource instance", "multiple resource", "resource"}

func (k Kind) String() string { return kindNames[k&3] }

// container reports whether a TLV of kind k holds TLVs rather than a value.
func (k Kind) container() bool { return k == ObjectInstance || k == MultipleResource }

// canHold reports whether a TLV of kind k may contain one of kind c: only
// object instances contain resources and only multiple resources contain
// resource instances (LwM2M Core 1.0 §6.4.3, 1.1 §7.4.3).
func (k Kind) canHold(c Kind) bool {
	switch k {
	case ObjectInstance:
		return c == Resource || c == MultipleResource
	case MultipleResource:
		return c == ResourceInstance
	}
	return false
}

// Entry is one TLV. Resource and ResourceInstance entries carry Value;
// ObjectInstance and MultipleResource entries carry Children.
type Entry struct {
	Kind     Kind
	ID       uint16
	Value    []byte
	Children []Entry
}

// MaxValueLen is the longest value the 24-bit length field can declare.
const MaxValueLen = 1<<24 - 1

// maxDepth bounds nesting: an object instance holding a multiple resource
// holding resource instances is as deep as TLV goes.
const maxDepth = 3

// Type byte fields (LwM2M Core 1.0 §6.4.3, 1.1 §7.4.3).
const (
	id16Bit     = 1 << 5 // bit 5: the identifier is 16 bits wide
	lenShift    = 3      // bits 4-3: width of the length field
	lenInType   = 0      // 00: no length field, the length is in bits 2-0
	lenTypeMask = 7      // bits 2-0
)

// errPack is returned (wrapped) by Pack for entries TLV cannot express.
var errPack = errors.New("tlv: cannot pack")

// Pack encodes entries in the shortest form: 8-bit identifiers below 256,
// the length in the type byte below 8, else the narrowest length field.
// It fails for a value longer than MaxValueLen, a leaf kind with children,
// a container with a value, or a nesting the format forbids.
func Pack(entries []Entry) ([]byte, error) {
	n, err := seqSize(entries, nil, 0)
	if err != nil {
		return nil, err
	}
	return appendSeq(make([]byte, 0, n), entries), nil
}

// AppendPack is Pack appending to b.
func AppendPack(b []byte, entries []Entry) ([]byte, error) {
	if _, err := seqSize(entries, nil, 0); err != nil {
		return b, err
	}
	return appendSeq(b, entries), nil
}

// seqSize returns the packed size of entries and checks them; parent is
// nil at the top level.
func seqSize(entries []Entry, parent *Entry, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("%w: nesting deeper than %d", errPack, maxDepth)
	}
	total := 0
	for i := range entries {
		e := &entries[i]
		if e.Kind > Resource {
			return 0, fmt.Errorf("%w: kind %d", errPack, e.Kind)
		}
		if parent != nil && !parent.Kind.canHold(e.Kind) {
			return 0, fmt.Errorf("%w: %s %d inside %s %d", errPack, e.Kind, e.ID, parent.Kind, parent.ID)
		}
		n := len(e.Value)
		if e.Kind.container() {
			if len(e.Value) > 0 {
				return 0, fmt.Errorf("%w: %s %d has a value", errPack, e.Kind, e.ID)
			}
			var err error
			if n, err = seqSize(e.Children, e, depth+1); err != nil {
				return 0, err
			}
		} else if len(e.Children) > 0 {
			return 0, fmt.Errorf("%w: %s %d has children", errPack, e.Kind, e.ID)
		}
		if n > MaxValueLen {
			return 0, fmt.Errorf("%w: %s %d is %d bytes long, over the 24-bit limit", errPack, e.Kind, e.ID, n)
		}
		total += headerSize(e.ID, n) + n
	}
	return total, nil
}

// contentSize is the length of e's value field; e must have passed seqSize.
func contentSize(e *Entry) int {
	if !e.Kind.container() {
		return len(e.Value)
	}
	n := 0
	for i := range e.Children {
		c := &e.Children[i]
		m := contentSize(c)
		n += headerSize(c.ID, m) + m
	}
	return n
}

func headerSize(id uint16, n int) int {
	s := 2
	if id > 0xff {
		s++
	}
	switch {
	case n < 8:
	case n <= 0xff:
		s++
	case n <= 0xffff:
		s += 2
	default:
		s += 3
	}
	return s
}

func appendSeq(b []byte, entries []Entry) []byte {
	for i := range entries {
		e := &entries[i]
		n := contentSize(e)
		b = appendHeader(b, e.Kind, e.ID, n)
		if e.Kind.container() {
			b = appendSeq(b, e.Children)
		} else {
			b = append(b, e.Value...)
		}
	}
	return b
}

// appendHeader writes the type byte, identifier and length field of a TLV
// whose value is n bytes long (n <= MaxValueLen).
func appendHeader(b []byte, k Kind, id uint16, n int) []byte {
	t := byte(k) << 6
	if id > 0xff {
		t |= id16Bit
	}
	var lenBytes int
	switch {
	case n < 8:
		t |= byte(n)
	case n <= 0xff:
		lenBytes = 1
	case n <= 0xffff:
		lenBytes = 2
	default:
		lenBytes = 3
	}
	t |= byte(lenBytes) << lenShift
	b = append(b, t)
	if id > 0xff {
		b = append(b, byte(id>>8))
	}
	b = append(b, byte(id))
	for i := lenBytes - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}

// Unpack decodes a sequence of TLVs. Values alias data. Errors are
// *objects.DecodeError wrapping objects.ErrMalformed, with the byte offset
// of the offending TLV.
func Unpack(data []byte) ([]Entry, error) {
	p := parser{data: data}
	return p.seq(0, len(data), top, 0, objects.RootPath, 0)
}

// parser reads TLVs from data. Its methods take at, the path named in
// errors, refined as they descend into instances and resources.
type parser struct {
	data []byte
}

// top stands for "no parent" in seq.
const top Kind = 0xff

// seq parses the TLVs in data[start:end], the value of a TLV of kind
// parent and identifier pid (parent is top at the top level).
func (p *parser) seq(start, end int, parent Kind, pid uint16, at objects.Path, depth int) ([]Entry, error) {
	if depth > maxDepth {
		return nil, p.errorf(at, start, "nesting deeper than %d", maxDepth)
	}
	var out []Entry
	if n := p.count(start, end); n > 0 {
		out = make([]Entry, 0, n)
	}
	for off := start; off < end; {
		e, vstart, vend, err := p.header(off, end, at)
		if err != nil {
			return nil, err
		}
		if parent != top && !parent.canHold(e.Kind) {
			return nil, p.errorf(at, off, "%s TLV %d inside %s TLV %d", e.Kind, e.ID, parent, pid)
		}
		if e.Kind.container() {
			if e.Children, err = p.seq(vstart, vend, e.Kind, e.ID, place(at, e.Kind, e.ID), depth+1); err != nil {
				return nil, err
			}
		} else {
			e.Value = p.data[vstart:vend:vend]
		}
		out = append(out, e)
		off = vend
	}
	return out, nil
}

// count returns how many TLVs data[start:end] holds, stopping at the
// first broken header (seq reports it), so that seq allocates once.
func (p *parser) count(start, end int) int {
	n := 0
	for off := start; off < end; n++ {
		t := p.data[off]
		hdr := 2 + int(t>>5&1) + int(t>>lenShift&3)
		if end-off < hdr {
			return n
		}
		l := int(t & lenTypeMask)
		if t>>lenShift&3 != lenInType {
			l = 0
			for _, c := range p.data[off+hdr-int(t>>lenShift&3) : off+hdr] {
				l = l<<8 | int(c)
			}
		}
		off += hdr + l
	}
	return n
}

// header reads the type byte, identifier and length of the TLV at off,
// which must end by end. It returns the entry (kind and ID) and the
// bounds of its value.
func (p *parser) header(off, end int, at objects.Path) (e Entry, vstart, vend int, err error) {
	t := p.data[off]
	e.Kind = Kind(t >> 6)
	idLen := 1
	if t&id16Bit != 0 {
		idLen = 2
	}
	lenLen := int(t>>lenShift) & 3
	hdr := 1 + idLen + lenLen
	if end-off < hdr {
		return e, 0, 0, p.errorf(at, off, "truncated TLV header: needs %d bytes, %d remain", hdr, end-off)
	}
	e.ID = uint16(p.data[off+1])
	if idLen == 2 {
		e.ID = e.ID<<8 | uint16(p.data[off+2])
	}
	n := int(t & lenTypeMask)
	if lenLen != lenInType {
		n = 0
		for _, c := range p.data[off+1+idLen : off+hdr] {
			n = n<<8 | int(c)
		}
	}
	vstart = off + hdr
	if n > end-vstart {
		return e, 0, 0, p.errorf(place(at, e.Kind, e.ID), off, "%s TLV %d declares %d bytes but only %d remain", e.Kind, e.ID, n, end-vstart)
	}
	return e, vstart, vstart + n, nil
}

func (p *parser) errorf(at objects.Path, off int, format string, args ...any) error {
	return &objects.DecodeError{
		Format: objects.FormatTLV,
		Path:   at,
		Offset: off,
		Err:    fmt.Errorf(format+": %w", append(args, objects.ErrMalformed)...),
	}
}

// place returns the path of a TLV of kind k and identifier id found inside
// the node at path at, for error messages: an instance TLV below an object
// path, a resource TLV below an instance path, a resource instance TLV
// below a resource path. A TLV for the node at itself (an instance wrapper
// at an instance path) leaves at unchanged.
func place(at objects.Path, k Kind, id uint16) objects.Path {
	level := 3
	switch k {
	case ObjectInstance:
		level = 2
	case ResourceInstance:
		level = 4
	}
	if at.Len() == level-1 {
		return at.Child(id)
	}
	return at
}
