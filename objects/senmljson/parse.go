package senmljson

import (
	"math"
	"strconv"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/internal/jsontext"
	"github.com/lwm2md/lwm2md/objects/senml"
)

// maxSkipDepth bounds the nesting of the values of unknown fields, the
// only place a SenML JSON pack nests deeper than array and object.
const maxSkipDepth = 16

// parser reads a SenML JSON pack (RFC 8428 §5) straight from the bytes: a
// small scanner rather than encoding/json, because SenML needs what the
// standard decoder hides (duplicate keys, exact integers, invalid UTF-8
// and lone surrogates that it would silently replace) and because a pack
// is flat.
type parser struct {
	data []byte
	pos  int
	dec  senml.Decoder
	root objects.Path // named in errors
}

// Unmarshal parses a SenML JSON pack without resolving it.
func Unmarshal(data []byte) (senml.Pack, error) {
	p := parser{data: data, dec: senml.Decoder{Format: objects.FormatSenMLJSON}}
	return p.pack()
}

func (p *parser) fail(sentinel error, format string, args ...any) error {
	return p.dec.Error(p.root, p.pos, sentinel, format, args...)
}

func (p *parser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte, 0 at the end.
func (p *parser) next() byte {
	p.ws()
	if p.pos >= len(p.data) {
		return 0
	}
	return p.data[p.pos]
}

func (p *parser) expect(c byte, what string) error {
	if p.next() != c {
		return p.unexpected(what)
	}
	p.pos++
	return nil
}

func (p *parser) unexpected(what string) error {
	if p.pos >= len(p.data) {
		return p.fail(objects.ErrMalformed, "payload ends where %s was expected", what)
	}
	return p.fail(objects.ErrMalformed, "%s expected, found %q", what, p.data[p.pos])
}

func (p *parser) pack() (senml.Pack, error) {
	if p.next() != '[' {
		if p.pos >= len(p.data) {
			return nil, p.fail(objects.ErrMalformed, "empty payload; a SenML pack is a JSON array")
		}
		return nil, p.fail(objects.ErrMalformed, "a SenML pack is a JSON array")
	}
	p.pos++
	var pack senml.Pack
	if p.next() == ']' {
		p.pos++
	} else {
		// A record takes at least 9 bytes ({"n":"1"}), so this bounds the
		// first allocation by the payload, not by anything it declares.
		pack = make(senml.Pack, 0, min(len(p.data)/9+1, 64))
		for {
			if len(pack) == senml.MaxRecords {
				return nil, p.fail(objects.ErrMalformed, "more than %d records", senml.MaxRecords)
			}
			r, err := p.record(len(pack))
			if err != nil {
				return nil, err
			}
			pack = append(pack, r)
			c := p.next()
			if c == ',' {
				p.pos++
				continue
			}
			if c == ']' {
				p.pos++
				break
			}
			return nil, p.unexpected(`"," or "]" after a record`)
		}
	}
	if p.next() != 0 {
		return nil, p.fail(objects.ErrMalformed, "data after the end of the pack")
	}
	return pack, nil
}

// The fields a record may carry once each (RFC 8428 §4.2, plus vlo from
// LwM2M Core 1.1 §7.4.4), as bits for the duplicate check.
const (
	fBaseName = 1 << iota
	fBaseTime
	fBaseValue
	fBaseVersion
	fBaseUnit
	fBaseSum
	fName
	fUnit
	fValue
	fString
	fBool
	fSum
	fTime
	fUpdateTime
	fData
	fObjlnk
)

func (p *parser) record(i int) (senml.Record, error) {
	r := senml.Record{Offset: p.pos}
	if err := p.expect('{', "a record (JSON object)"); err != nil {
		return r, err
	}
	if p.next() == '}' {
		p.pos++
		return r, nil
	}
	var seen uint32
	var unknown []string
	for {
		keyAt := p.pos
		if p.next() != '"' {
			return r, p.unexpected("a field name")
		}
		key, err := p.str()
		if err != nil {
			return r, err
		}
		if err := p.expect(':', `":" after a field name`); err != nil {
			return r, err
		}
		p.ws()
		bit, err := p.field(&r, key)
		if err != nil {
			return r, err
		}
		if bit == 0 {
			for _, k := range unknown {
				if k == key {
					p.pos = keyAt
					return r, p.fail(objects.ErrMalformed, "record %d: field %q given twice", i, key)
				}
			}
			unknown = append(unknown, key)
		} else {
			if seen&bit != 0 {
				p.pos = keyAt
				return r, p.fail(objects.ErrMalformed, "record %d: field %q given twice", i, key)
			}
			seen |= bit
		}
		if n := seen & (fValue | fString | fBool | fData | fObjlnk); n&(n-1) != 0 {
			p.pos = keyAt
			return r, p.fail(objects.ErrMalformed, "record %d has more than one value field", i)
		}
		switch p.next() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return r, nil
		default:
			return r, p.unexpected(`"," or "}" in a record`)
		}
	}
}

// field reads the value of one field into r and returns the field's bit,
// 0 for a field SenML does not define (skipped, per RFC 8428 §4.4).
func (p *parser) field(r *senml.Record, key string) (uint32, error) {
	var err error
	switch key {
	case "bn":
		r.Fields |= senml.HasBaseName
		r.BaseName, err = p.strField(key)
		return fBaseName, err
	case "n":
		r.Fields |= senml.HasName
		r.Name, err = p.strField(key)
		return fName, err
	case "bt":
		r.Fields |= senml.HasBaseTime
		r.BaseTime, err = p.timeField(key)
		return fBaseTime, err
	case "t":
		r.Fields |= senml.HasTime
		r.Time, err = p.timeField(key)
		return fTime, err
	case "bv":
		r.Fields |= senml.HasBaseValue
		r.BaseValue, err = p.numField(key)
		return fBaseValue, err
	case "v":
		r.Kind = senml.KindNumber
		r.Value, err = p.numField(key)
		return fValue, err
	case "vs":
		r.Kind = senml.KindString
		var s string
		s, err = p.strField(key)
		r.Value = objects.StringValue(s)
		return fString, err
	case "vd":
		r.Kind = senml.KindData
		var s string
		s, err = p.strField(key)
		r.Value = objects.StringValue(s) // base64, decoded when resolved
		return fData, err
	case "vlo":
		r.Kind = senml.KindObjlnk
		var s string
		s, err = p.strField(key)
		r.Value = objects.StringValue(s)
		return fObjlnk, err
	case "vb":
		r.Kind = senml.KindBool
		var b bool
		b, err = p.boolField(key)
		r.Value = objects.BooleanValue(b)
		return fBool, err
	case "bver":
		r.Fields |= senml.HasBaseVersion
		var v objects.Value
		at := p.pos
		v, err = p.numField(key)
		if err == nil {
			if v.Type() != objects.TypeInteger {
				p.pos = at
				return 0, p.fail(objects.ErrMalformed, "bver is not an integer")
			}
			r.BaseVersion = v.Int()
		}
		return fBaseVersion, err
	// Units, sums and the update time mean nothing to LwM2M: checked for
	// their JSON type, then dropped.
	case "bu":
		_, err = p.strField(key)
		return fBaseUnit, err
	case "u":
		_, err = p.strField(key)
		return fUnit, err
	case "bs":
		_, err = p.timeField(key)
		return fBaseSum, err
	case "s":
		_, err = p.timeField(key)
		return fSum, err
	case "ut":
		_, err = p.timeField(key)
		return fUpdateTime, err
	}
	if senml.IsMustUnderstand(key) {
		return 0, p.fail(objects.ErrUnsupported, "field %q must be understood and lwm2md does not know it", key)
	}
	return 0, p.skip(0)
}

func (p *parser) strField(key string) (string, error) {
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		return "", p.fail(objects.ErrMalformed, "%s is not a string", key)
	}
	return p.str()
}

func (p *parser) boolField(key string) (bool, error) {
	if p.lit("true") {
		return true, nil
	}
	if p.lit("false") {
		return false, nil
	}
	return false, p.fail(objects.ErrMalformed, "%s is not true or false", key)
}

func (p *parser) lit(s string) bool {
	if len(p.data)-p.pos >= len(s) && string(p.data[p.pos:p.pos+len(s)]) == s {
		p.pos += len(s)
		return true
	}
	return false
}

// numField reads a number as the value it spells: an Integer, an
// Unsigned when it needs 64 bits, else a Float (which the model may still
// convert to an integer when it has no fraction).
func (p *parser) numField(key string) (objects.Value, error) {
	at := p.pos
	text, isInt, err := p.number(key)
	if err != nil {
		return objects.Value{}, err
	}
	if isInt {
		if v, ok := parseInt(text); ok {
			return v, nil
		}
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil || math.IsInf(f, 0) {
		p.pos = at
		return objects.Value{}, p.fail(objects.ErrRange, "%s %s is out of range", key, clipBytes(text))
	}
	return objects.FloatValue(f), nil
}

func (p *parser) timeField(key string) (float64, error) {
	at := p.pos
	text, _, err := p.number(key)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil || math.IsInf(f, 0) {
		p.pos = at
		return 0, p.fail(objects.ErrRange, "%s %s is out of range", key, clipBytes(text))
	}
	return f, nil
}

// parseInt reads an integer literal exactly: int64 when it fits, else
// uint64; ok is false beyond that.
func parseInt(b []byte) (objects.Value, bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	var u uint64
	for _, c := range b {
		d := uint64(c - '0')
		if u > (math.MaxUint64-d)/10 {
			return objects.Value{}, false
		}
		u = u*10 + d
	}
	switch {
	case neg && u <= 1<<63:
		return objects.IntegerValue(int64(-u)), true // -u wraps to MinInt64 for 1<<63
	case neg:
		return objects.Value{}, false
	case u <= math.MaxInt64:
		return objects.IntegerValue(int64(u)), true
	}
	return objects.UnsignedValue(u), true
}

// number reads a JSON number at p.pos and returns its literal and
// whether it is an integer.
func (p *parser) number(key string) ([]byte, bool, error) {
	start := p.pos
	end, isInt, err := jsontext.Number(p.data, p.pos)
	if err != nil && err.Off == start {
		return nil, false, p.fail(err.Kind, "%s is not a number", key)
	}
	if err != nil {
		p.pos = err.Off
		return nil, false, p.fail(err.Kind, "%s: %s", key, err.Msg)
	}
	p.pos = end
	return p.data[start:end], isInt, nil
}

// str reads a JSON string at p.pos (which is '"'), rejecting control
// characters, invalid UTF-8 and lone surrogates.
func (p *parser) str() (string, error) {
	s, end, err := jsontext.String(p.data, p.pos)
	if err != nil {
		p.pos = err.Off
		return "", p.fail(err.Kind, "%s", err.Msg)
	}
	p.pos = end
	return s, nil
}

// skip passes over the value of an unknown field, whatever it is.
func (p *parser) skip(depth int) error {
	if depth > maxSkipDepth {
		return p.fail(objects.ErrMalformed, "values nested deeper than %d", maxSkipDepth)
	}
	switch c := p.next(); {
	case c == '"':
		_, err := p.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, _, err := p.number("value")
		return err
	case c == 't' || c == 'f' || c == 'n':
		if p.lit("true") || p.lit("false") || p.lit("null") {
			return nil
		}
	case c == '[' || c == '{':
		return p.skipContainer(c, depth)
	}
	return p.unexpected("a JSON value")
}

func (p *parser) skipContainer(open byte, depth int) error {
	closer := byte(']')
	if open == '{' {
		closer = '}'
	}
	p.pos++
	if p.next() == closer {
		p.pos++
		return nil
	}
	for {
		if open == '{' {
			if p.next() != '"' {
				return p.unexpected("a member name")
			}
			if _, err := p.str(); err != nil {
				return err
			}
			if err := p.expect(':', `":"`); err != nil {
				return err
			}
		}
		if err := p.skip(depth + 1); err != nil {
			return err
		}
		switch p.next() {
		case ',':
			p.pos++
		case closer:
			p.pos++
			return nil
		default:
			return p.unexpected(`"," or "` + string(closer) + `"`)
		}
	}
}

func clipBytes(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
