// Package lwm2mjson implements the LwM2M JSON content format
// (application/vnd.oma.lwm2m+json, 11543, and the pre-registration 1543;
// LwM2M Core 1.0 §6.4.4): a SenML-like object with a base name "bn", a
// base time "bt" and an entry array "e" whose entries carry a name "n", a
// time "t" and one value ("v" number, "bv" Boolean, "sv" string, "ov"
// object link).
//
// Decoding is liberal: the full path of an entry is the plain string
// concatenation bn + n, so the styles of the field clients all resolve
// (Wakaama: "bn":"/3/0/","n":"13"; Anjay: "bn":"/3/0/13" and no "n";
// Wakaama's read of /3 answers with "bn":"/3/0/"). An entry with neither
// "bn" nor a leading slash in "n" is relative to the request path, as the
// 1.0 text says. Numbers are kept as literals until the model gives the
// resource type, so integers beyond 2^53 stay exact; numbers in strings
// ("v":"3800", as the pre-1.0 drafts printed them) are accepted too. An
// entry's time is bt + t; with no "bt", a "t" of 2^28 s or more is
// absolute and a smaller one is relative to the time of decoding
// (Codec.Now), as in SenML.
//
// Encoding is canonical: "bn" is the request path with a trailing slash
// and every "n" is relative to it and never empty (for a single value
// "bn" is the parent path and "n" the last ID, as Wakaama writes it);
// Opaque is padded standard base64 in "sv", the form both field clients
// use; floats always carry a fraction or exponent ("8495.0") so that a
// reader without the model still sees a float; timestamped records get
// the newest time as "bt" and a zero (omitted) or negative "t" each.
package lwm2mjson

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
)

// Codec is the LwM2M JSON codec. The zero value is ready to use.
type Codec struct {
	// Now gives the current time for entries whose time is relative to
	// the time of reading (a "t" with no "bt"); nil means time.Now.
	Now func() time.Time
}

var (
	_ objects.Codec       = Codec{}
	_ objects.RecordCodec = Codec{}
)

// absoluteTime is the SenML boundary (RFC 8428 §4.5.3): with no base
// time, a time of 2^28 s or more is absolute, a smaller one is relative
// to now.
const absoluteTime = 1 << 28

// Decode decodes the node at root from data. Entries that repeat a path
// with different times (a notification with history) give the newest
// value; use DecodeRecordsAt to keep them all.
func (c Codec) Decode(root objects.Path, data []byte, m objects.Models) (objects.Node, error) {
	if root.IsRoot() {
		return nil, decodeErr(root, -1, fmt.Errorf("a node needs at least an object path: %w", objects.ErrUnsupported))
	}
	items, err := c.items(root, data, m, false)
	if err != nil {
		return nil, err
	}
	if timed(items) {
		if items, err = newest(items); err != nil {
			return nil, err
		}
	}
	return build(root, items, m)
}

// DecodeRecords decodes every entry as a record with an absolute path
// and time. Names must be absolute (through "bn" or "n").
func (c Codec) DecodeRecords(data []byte, m objects.Models) ([]objects.Record, error) {
	return c.DecodeRecordsAt(objects.RootPath, data, m)
}

// DecodeRecordsAt is DecodeRecords for the payload of a request on root
// (a notification with history): names without a base name resolve
// against root, and every record must lie at or below it.
func (c Codec) DecodeRecordsAt(root objects.Path, data []byte, m objects.Models) ([]objects.Record, error) {
	items, err := c.items(root, data, m, true)
	if err != nil {
		return nil, err
	}
	recs := make([]objects.Record, len(items))
	for i, it := range items {
		recs[i] = objects.Record{Path: it.path, Value: it.value, Time: it.time}
	}
	return recs, nil
}

// Encode encodes n, the node at root.
func (c Codec) Encode(root objects.Path, n objects.Node, m objects.Models) ([]byte, error) {
	if err := objects.CheckNode(root, n); err != nil {
		return nil, fmt.Errorf("lwm2mjson: %w", err)
	}
	base := root
	switch n := n.(type) {
	case *objects.Resource:
		if !n.Multiple {
			base = root.Parent()
		}
	case *objects.ResourceInstance:
		base = root.Parent()
	}
	recs := objects.Flatten(root, n)
	p := payload{bn: baseName(base), hasBN: true, entries: make([]entry, len(recs))}
	for i, r := range recs {
		e := &p.entries[i]
		e.name, e.hasName = relName(base, r.Path), true
		if r.Value.IsNone() {
			return nil, fmt.Errorf("lwm2mjson: %s: resource has no value", r.Path)
		}
		if err := e.set(r.Value); err != nil {
			return nil, fmt.Errorf("lwm2mjson: %s: %w", r.Path, err)
		}
	}
	return p.pack(make([]byte, 0, 32+24*len(recs))), nil
}

// EncodeRecords encodes records under the longest path they share. When
// every record has a time, "bt" is the newest and each "t" the (zero or
// negative) offset from it. Records with and without times can only be
// mixed when the times are absolute (at least 2^28 s): they are then
// written as "t" with no "bt".
func (c Codec) EncodeRecords(recs []objects.Record, m objects.Models) ([]byte, error) {
	base, err := commonBase(recs)
	if err != nil {
		return nil, err
	}
	p := payload{bn: baseName(base), hasBN: true, entries: make([]entry, len(recs))}
	timed := 0
	for _, r := range recs {
		if r.Time != 0 {
			if math.IsNaN(r.Time) || math.IsInf(r.Time, 0) {
				return nil, fmt.Errorf("lwm2mjson: %s: time %v: %w", r.Path, r.Time, objects.ErrRange)
			}
			if timed == 0 || r.Time > p.bt {
				p.bt = r.Time
			}
			timed++
		}
	}
	p.hasBT = timed > 0 && timed == len(recs)
	for i, r := range recs {
		e := &p.entries[i]
		e.name, e.hasName = relName(base, r.Path), true
		if err := e.set(r.Value); err != nil {
			return nil, fmt.Errorf("lwm2mjson: %s: %w", r.Path, err)
		}
		switch {
		case p.hasBT:
			e.t = r.Time - p.bt
			e.hasT = e.t != 0
		case r.Time != 0:
			if r.Time < absoluteTime {
				return nil, fmt.Errorf("lwm2mjson: %s: records with and without times need absolute times, not %v: %w", r.Path, r.Time, objects.ErrUnsupported)
			}
			e.t, e.hasT = r.Time, true
		}
	}
	if !p.hasBT {
		p.bt = 0
	}
	return p.pack(make([]byte, 0, 32+24*len(recs))), nil
}

// commonBase returns the longest path every record lies at or below,
// shortened so that no record's relative name is empty.
func commonBase(recs []objects.Record) (objects.Path, error) {
	if len(recs) == 0 {
		return objects.RootPath, nil
	}
	base := recs[0].Path
	for _, r := range recs {
		if r.Path.IsRoot() {
			return base, fmt.Errorf("lwm2mjson: a record needs a path below the root")
		}
		if !r.Value.IsNone() && r.Path.Len() < 3 {
			return base, fmt.Errorf("lwm2mjson: %s: a value needs a resource path", r.Path)
		}
		for !r.Path.HasPrefix(base) {
			base = base.Parent()
		}
		if base == r.Path {
			base = base.Parent()
		}
	}
	return base, nil
}

// item is one decoded entry.
type item struct {
	path  objects.Path
	value objects.Value
	time  objects.Time
	off   int
}

// items resolves, types and times every entry. records allows entries
// without a value (a path only).
func (c Codec) items(root objects.Path, data []byte, m objects.Models, records bool) ([]item, error) {
	var p payload
	if err := p.unpack(data); err != nil {
		var we *wireError
		if errors.As(err, &we) {
			return nil, decodeErr(root, we.off, we.err)
		}
		return nil, decodeErr(root, -1, err)
	}
	var now float64
	haveNow := false
	res := newResolver(root, &p)
	items := make([]item, 0, len(p.entries))
	for i := range p.entries {
		e := &p.entries[i]
		path, err := res.resolve(e.name)
		if err != nil {
			return nil, decodeErr(root, e.off, err)
		}
		if !path.HasPrefix(root) {
			return nil, decodeErr(path, e.off, fmt.Errorf("entry lies outside the requested path %s: %w", root, objects.ErrMalformed))
		}
		v, err := e.value()
		if err != nil {
			return nil, decodeErr(path, e.off, err)
		}
		switch {
		case v.IsNone() && !records:
			return nil, decodeErr(path, e.off, fmt.Errorf("entry has no value: %w", objects.ErrMalformed))
		case v.IsNone() && path.IsRoot():
			return nil, decodeErr(path, e.off, fmt.Errorf("entry names the root path: %w", objects.ErrMalformed))
		case !v.IsNone():
			if v, err = objects.Conform(m, path, v); err != nil {
				return nil, decodeErr(path, e.off, err)
			}
		}
		it := item{path: path, value: v, off: e.off}
		switch {
		case p.hasBT:
			it.time = p.bt + e.t
		case !e.hasT:
		case e.t >= absoluteTime:
			it.time = e.t
		default:
			if !haveNow {
				now, haveNow = c.now(), true
			}
			it.time = now + e.t
		}
		if math.IsInf(it.time, 0) {
			return nil, decodeErr(path, e.off, fmt.Errorf("time out of range: %w", objects.ErrRange))
		}
		items = append(items, it)
	}
	return items, nil
}

func (c Codec) now() float64 {
	t := time.Now()
	if c.Now != nil {
		t = c.Now()
	}
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// resolver turns entry names into paths: bn + n as plain strings. The
// common shapes ("/3/0/" + "13", "/3/0" + "/13", "/3/0/13" + "") are
// resolved without building the string.
type resolver struct {
	root   objects.Path
	hasBN  bool
	bn     string
	base   objects.Path // bn parsed, when baseOK
	baseOK bool
	slash  bool // bn ends with "/"
}

func newResolver(root objects.Path, p *payload) resolver {
	r := resolver{root: root, hasBN: p.hasBN, bn: p.bn}
	if p.hasBN {
		if !strings.HasPrefix(r.bn, "/") {
			r.bn = "/" + r.bn // "bn":"3/0/" as some servers write it
		}
		r.base, r.baseOK = parseAbs(r.bn)
		r.slash = strings.HasSuffix(r.bn, "/")
	}
	return r
}

func (r *resolver) resolve(name string) (objects.Path, error) {
	lead := strings.HasPrefix(name, "/")
	switch {
	case r.hasBN && r.baseOK && name == "":
		return r.base, nil
	case r.hasBN && r.baseOK && r.slash != lead:
		if p, ok := appendRel(r.base, strings.TrimPrefix(name, "/")); ok {
			return p, nil
		}
	case !r.hasBN && lead:
		if p, ok := parseAbs(name); ok {
			return p, nil
		}
	case !r.hasBN:
		// LwM2M 1.0 §6.4.4: the name is the path relative to the request.
		if p, ok := appendRel(r.root, name); ok {
			return p, nil
		}
	}
	full := r.bn + name
	switch {
	case !r.hasBN && !lead:
		full = baseName(r.root) + name
	case !r.hasBN:
		full = name
	}
	path, err := objects.ParsePath(full)
	if err != nil {
		return path, fmt.Errorf("name %q is not a path: %w", full, objects.ErrMalformed)
	}
	return path, nil
}

func parseAbs(s string) (objects.Path, bool) {
	if !strings.HasPrefix(s, "/") {
		return objects.Path{}, false
	}
	if s == "/" {
		return objects.RootPath, true
	}
	return appendRel(objects.RootPath, s[1:])
}

// appendRel appends the IDs of rel ("6/0", a trailing slash allowed) to
// base, with the rules of objects.ParsePath: no empty segments, no
// leading zeros, IDs up to 65535, at most four IDs in all.
func appendRel(base objects.Path, rel string) (objects.Path, bool) {
	rel = strings.TrimSuffix(rel, "/")
	if rel == "" {
		return base, false
	}
	p := base
	for len(rel) > 0 {
		seg, tail, _ := strings.Cut(rel, "/")
		if seg == "" || len(seg) > 5 || (len(seg) > 1 && seg[0] == '0') || p.Len() == 4 {
			return p, false
		}
		id := 0
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if c < '0' || c > '9' {
				return p, false
			}
			id = id*10 + int(c-'0')
		}
		if id > objects.MaxID {
			return p, false
		}
		p = p.Child(uint16(id))
		if tail == "" && len(seg) < len(rel) {
			return p, false // "0/" inside: an empty last segment
		}
		rel = tail
	}
	return p, true
}

func timed(items []item) bool {
	for _, it := range items {
		if it.time != 0 {
			return true
		}
	}
	return false
}

// newest keeps one item per path: the one with the latest time. Two
// items for a path without distinct times are an error.
func newest(items []item) ([]item, error) {
	if len(items) < 2 {
		return items, nil
	}
	idx := make(map[objects.Path]int, len(items))
	out := items[:0]
	for _, it := range items {
		j, ok := idx[it.path]
		if !ok {
			idx[it.path] = len(out)
			out = append(out, it)
			continue
		}
		prev := &out[j]
		if it.time == 0 || prev.time == 0 || it.time == prev.time {
			return nil, decodeErr(it.path, it.off, fmt.Errorf("value given twice: %w", objects.ErrMalformed))
		}
		if it.time > prev.time {
			*prev = it
		}
	}
	return out, nil
}

// value returns the entry's value as the payload types it.
func (e *entry) value() (objects.Value, error) {
	switch e.kind {
	case 'v':
		return numberValue(e.num)
	case 'b':
		return objects.BooleanValue(e.b), nil
	case 's':
		return objects.StringValue(e.str), nil
	case 'o':
		l, err := objects.ParseObjLink(e.str)
		if err != nil {
			return objects.Value{}, fmt.Errorf("%v: %w", err, objects.ErrType)
		}
		return objects.ObjlnkValue(l), nil
	}
	return objects.Value{}, nil
}

// numberValue types a number literal: an integer literal is an Integer
// (Unsigned beyond int64), anything else a Float.
func numberValue(lit string) (objects.Value, error) {
	if !strings.ContainsAny(lit, ".eE") {
		if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return objects.IntegerValue(n), nil
		}
		if u, err := strconv.ParseUint(lit, 10, 64); err == nil {
			return objects.UnsignedValue(u), nil
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return objects.Value{}, fmt.Errorf("number %s: %w", lit, objects.ErrRange)
	}
	return objects.FloatValue(f), nil
}

// set fills the entry's value field for v.
func (e *entry) set(v objects.Value) error {
	switch v.Type() {
	case objects.TypeNone:
		e.kind = 0
	case objects.TypeString, objects.TypeCorelnk:
		if !utf8.ValidString(v.Str()) {
			return objects.ErrUTF8
		}
		e.kind, e.str = 's', v.Str()
	case objects.TypeOpaque:
		e.kind, e.str = 's', base64.StdEncoding.EncodeToString(v.Bytes())
	case objects.TypeInteger, objects.TypeTime:
		e.kind, e.num = 'v', strconv.FormatInt(v.Int(), 10)
	case objects.TypeUnsigned:
		e.kind, e.num = 'v', strconv.FormatUint(v.Uint(), 10)
	case objects.TypeFloat:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("float %v: JSON has no such number: %w", f, objects.ErrUnsupported)
		}
		s := objects.FormatFloat(f)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		e.kind, e.num = 'v', s
	case objects.TypeBoolean:
		e.kind, e.b = 'b', v.Bool()
	case objects.TypeObjlnk:
		e.kind, e.str = 'o', v.Objlnk().String()
	default:
		return fmt.Errorf("value type %v: %w", v.Type(), objects.ErrUnsupported)
	}
	return nil
}

func baseName(p objects.Path) string {
	if p.IsRoot() {
		return "/"
	}
	return p.String() + "/"
}

// relName is the path of p below base without a leading slash ("6/0").
func relName(base, p objects.Path) string {
	b := make([]byte, 0, 12)
	for i := base.Len(); i < p.Len(); i++ {
		if i > base.Len() {
			b = append(b, '/')
		}
		b = strconv.AppendUint(b, uint64(p.ID(i)), 10)
	}
	return string(b)
}

func decodeErr(p objects.Path, off int, err error) error {
	return &objects.DecodeError{Format: objects.FormatJSON, Path: p, Offset: off, Err: err}
}
