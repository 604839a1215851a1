package lwm2mjson

import (
	"strconv"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/internal/jsontext"
)

// payload is the wire form of an LwM2M JSON document (LwM2M Core 1.0
// §6.4.4): a base name, a base time and the entry array "e".
type payload struct {
	bn      string
	hasBN   bool
	bt      float64
	hasBT   bool
	entries []entry
}

// entry is one element of "e". The value is kept in the payload's own
// terms (a number literal, a string, a Boolean); the codec types it.
type entry struct {
	off     int // byte offset of the entry, for errors
	name    string
	hasName bool
	t       float64
	hasT    bool
	kind    byte   // 0 (no value), 'v', 'b' (bv), 's' (sv) or 'o' (ov)
	num     string // "v": the number literal as written
	str     string // "sv" or "ov"
	b       bool   // "bv"
}

// wireError is a syntax or structure error at a byte offset.
type wireError struct {
	off int
	err error
}

func (e *wireError) Error() string { return e.err.Error() }
func (e *wireError) Unwrap() error { return e.err }

// kindError is a message with the objects error it is a kind of, so
// that errors.Is(err, objects.ErrMalformed) holds.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg + ": " + e.kind.Error() }
func (e *kindError) Unwrap() error { return e.kind }

func fail(off int, kind error, msg string) error {
	return &wireError{off: off, err: &kindError{msg: msg, kind: kind}}
}

// unpack parses data strictly: one JSON object, no duplicate keys, valid
// UTF-8, the fields of LwM2M JSON with their JSON types. Unknown keys
// with a scalar value are skipped (SenML fields such as "u" or "ver");
// unknown keys holding an object or array are refused, so nesting stays
// bounded by the schema.
func (p *payload) unpack(data []byte) error {
	if !utf8.Valid(data) {
		return fail(jsontext.FirstInvalid(data), objects.ErrUTF8, "payload is not valid UTF-8")
	}
	s := &scanner{data: data}
	s.ws()
	if s.off == len(data) {
		return fail(0, objects.ErrMalformed, "empty payload")
	}
	var seen keySet
	hasE := false
	err := s.object(&seen, func(key string, off int) error {
		switch key {
		case "bn":
			str, err := s.str()
			if err != nil {
				return err
			}
			p.bn, p.hasBN = str, true
		case "bt":
			f, err := s.float()
			if err != nil {
				return err
			}
			p.bt, p.hasBT = f, true
		case "e":
			hasE = true
			return s.array(func(i int) error {
				var e entry
				if err := e.unpack(s); err != nil {
					return err
				}
				p.entries = append(p.entries, e)
				return nil
			})
		default:
			return s.skipScalar(key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.ws()
	if s.off != len(data) {
		return fail(s.off, objects.ErrMalformed, "data after the JSON object")
	}
	if !hasE {
		return fail(0, objects.ErrMalformed, `no entry array "e"`)
	}
	return nil
}

func (e *entry) unpack(s *scanner) error {
	s.ws()
	e.off = s.off
	var seen keySet
	return s.object(&seen, func(key string, off int) error {
		var err error
		switch key {
		case "n":
			e.name, err = s.str()
			e.hasName = true
		case "t":
			e.t, err = s.float()
			e.hasT = true
		case "v", "bv", "sv", "ov":
			if e.kind != 0 {
				return fail(off, objects.ErrMalformed, "entry has more than one value")
			}
			err = e.unpackValue(s, key)
		default:
			err = s.skipScalar(key)
		}
		return err
	})
}

func (e *entry) unpackValue(s *scanner, key string) error {
	s.ws()
	off := s.off
	var err error
	switch key {
	case "v":
		e.kind = 'v'
		if s.peek() == '"' {
			// The pre-1.0 drafts wrote numbers as strings ("v":"3800").
			var lit string
			if lit, err = s.str(); err == nil {
				if !jsontext.ValidNumber(lit) {
					return fail(off, objects.ErrType, `"v" is not a number`)
				}
				e.num = lit
			}
			return err
		}
		if s.peek() != '-' && (s.peek() < '0' || s.peek() > '9') {
			return fail(off, objects.ErrType, `"v" is not a number`)
		}
		e.num, err = s.number()
	case "bv":
		e.kind = 'b'
		switch {
		case s.lit("true"):
			e.b = true
		case s.lit("false"):
			e.b = false
		default:
			return fail(off, objects.ErrType, `"bv" is not true or false`)
		}
	case "sv", "ov":
		e.kind = key[0]
		if s.peek() != '"' {
			return fail(off, objects.ErrType, `"`+key+`" is not a string`)
		}
		e.str, err = s.str()
	}
	return err
}

// keySet detects duplicate keys in one JSON object. The LwM2M keys are
// a bit set; other keys go into a map made on first use.
type keySet struct {
	known uint16
	other map[string]struct{}
}

func knownKey(key string) uint16 {
	switch key {
	case "bn":
		return 1
	case "bt":
		return 2
	case "e":
		return 4
	case "n":
		return 8
	case "t":
		return 16
	case "v":
		return 32
	case "bv":
		return 64
	case "sv":
		return 128
	case "ov":
		return 256
	}
	return 0
}

func (k *keySet) add(key string) bool {
	if bit := knownKey(key); bit != 0 {
		if k.known&bit != 0 {
			return false
		}
		k.known |= bit
		return true
	}
	if _, dup := k.other[key]; dup {
		return false
	}
	if k.other == nil {
		k.other = make(map[string]struct{})
	}
	k.other[key] = struct{}{}
	return true
}

// scanner reads JSON (RFC 8259) from a byte slice.
type scanner struct {
	data []byte
	off  int
}

func (s *scanner) ws() {
	for s.off < len(s.data) {
		switch s.data[s.off] {
		case ' ', '\t', '\n', '\r':
			s.off++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.off < len(s.data) {
		return s.data[s.off]
	}
	return 0
}

func (s *scanner) lit(word string) bool {
	if len(s.data)-s.off >= len(word) && string(s.data[s.off:s.off+len(word)]) == word {
		s.off += len(word)
		return true
	}
	return false
}

func (s *scanner) expect(c byte, what string) error {
	s.ws()
	if s.peek() != c {
		if s.off == len(s.data) {
			return fail(s.off, objects.ErrMalformed, "payload ends before "+what)
		}
		return fail(s.off, objects.ErrMalformed, "expected "+what)
	}
	s.off++
	return nil
}

// object reads {"key": value, ...}, calling member with the scanner
// positioned at each value, which member must consume.
func (s *scanner) object(seen *keySet, member func(key string, off int) error) error {
	if err := s.expect('{', "an object"); err != nil {
		return err
	}
	s.ws()
	if s.peek() == '}' {
		s.off++
		return nil
	}
	for {
		s.ws()
		off := s.off
		if s.peek() != '"' {
			return fail(off, objects.ErrMalformed, "expected a member name")
		}
		key, err := s.key()
		if err != nil {
			return err
		}
		if !seen.add(key) {
			return fail(off, objects.ErrMalformed, "duplicate key "+strconv.Quote(key))
		}
		if err := s.expect(':', "':'"); err != nil {
			return err
		}
		if err := member(key, off); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.off++
		case '}':
			s.off++
			return nil
		default:
			return fail(s.off, objects.ErrMalformed, "expected ',' or '}'")
		}
	}
}

func (s *scanner) array(elem func(i int) error) error {
	if err := s.expect('[', "an array"); err != nil {
		return err
	}
	s.ws()
	if s.peek() == ']' {
		s.off++
		return nil
	}
	for i := 0; ; i++ {
		if err := elem(i); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.off++
		case ']':
			s.off++
			return nil
		default:
			return fail(s.off, objects.ErrMalformed, "expected ',' or ']'")
		}
	}
}

// skipScalar consumes the value of an unknown key, which must be a
// string, number, true, false or null.
func (s *scanner) skipScalar(key string) error {
	s.ws()
	switch c := s.peek(); {
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || c >= '0' && c <= '9':
		_, err := s.number()
		return err
	case s.lit("true"), s.lit("false"), s.lit("null"):
		return nil
	case c == '{' || c == '[':
		return fail(s.off, objects.ErrMalformed, "unknown key "+strconv.Quote(key)+" holds a structure")
	}
	return fail(s.off, objects.ErrMalformed, "expected a value")
}

// float reads "t" or "bt": a number, or a number in a string as in the
// pre-1.0 drafts. It must be finite.
func (s *scanner) float() (float64, error) {
	s.ws()
	off := s.off
	var lit string
	var err error
	if s.peek() == '"' {
		if lit, err = s.str(); err == nil && !jsontext.ValidNumber(lit) {
			return 0, fail(off, objects.ErrMalformed, "time is not a number")
		}
	} else {
		lit, err = s.number()
	}
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return 0, fail(off, objects.ErrRange, "time "+lit+" is out of range")
	}
	return f, nil
}

// key reads a member name. The LwM2M names come back as constants, so
// reading them does not allocate.
func (s *scanner) key() (string, error) {
	start := s.off
	if end := s.off + 4; end <= len(s.data) && s.data[s.off] == '"' {
		for i := s.off + 1; i < end; i++ {
			if s.data[i] == '"' {
				raw := s.data[s.off+1 : i]
				for _, k := range [...]string{"bn", "bt", "e", "n", "t", "v", "bv", "sv", "ov"} {
					if string(raw) == k {
						s.off = i + 1
						return k, nil
					}
				}
				break
			}
		}
	}
	s.off = start
	return s.str()
}

// number reads a JSON number and returns its literal.
func (s *scanner) number() (string, error) {
	s.ws()
	start := s.off
	end, _, err := jsontext.Number(s.data, s.off)
	if err != nil {
		return "", fail(err.Off, err.Kind, "malformed number: "+err.Msg)
	}
	s.off = end
	return string(s.data[start:end]), nil
}

// str reads a JSON string.
func (s *scanner) str() (string, error) {
	s.ws()
	out, end, err := jsontext.String(s.data, s.off)
	if err != nil {
		return "", fail(err.Off, err.Kind, err.Msg)
	}
	s.off = end
	return out, nil
}

// pack writes p in canonical form: members in the order bn, bt, e and,
// in each entry, n, the value, t; no white space.
func (p *payload) pack(b []byte) []byte {
	b = append(b, '{')
	if p.hasBN {
		b = append(b, `"bn":`...)
		b = jsontext.AppendString(b, p.bn)
		b = append(b, ',')
	}
	if p.hasBT {
		b = append(b, `"bt":`...)
		b = appendTime(b, p.bt)
		b = append(b, ',')
	}
	b = append(b, `"e":[`...)
	for i := range p.entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = p.entries[i].pack(b)
	}
	return append(b, "]}"...)
}

func (e *entry) pack(b []byte) []byte {
	b = append(b, '{')
	sep := false
	if e.hasName {
		b = append(b, `"n":`...)
		b = jsontext.AppendString(b, e.name)
		sep = true
	}
	if e.kind != 0 {
		if sep {
			b = append(b, ',')
		}
		sep = true
		switch e.kind {
		case 'v':
			b = append(b, `"v":`...)
			b = append(b, e.num...)
		case 'b':
			b = append(b, `"bv":`...)
			b = strconv.AppendBool(b, e.b)
		case 's':
			b = append(b, `"sv":`...)
			b = jsontext.AppendString(b, e.str)
		case 'o':
			b = append(b, `"ov":`...)
			b = jsontext.AppendString(b, e.str)
		}
	}
	if e.hasT {
		if sep {
			b = append(b, ',')
		}
		b = append(b, `"t":`...)
		b = appendTime(b, e.t)
	}
	return append(b, '}')
}

// appendTime writes a time as an integer when it is one, else in the
// shortest form that reads back to the same float64.
func appendTime(b []byte, f float64) []byte {
	return append(b, objects.FormatFloat(f)...)
}
