// Package senmljson is the SenML JSON content format (application/
// senml+json, 110) of LwM2M 1.1 and later (LwM2M Core 1.1 §7.4.4, RFC
// 8428 §5): the Codec for reads and writes at one path, and the
// RecordCodec for Send, composite operations and notifications with
// history.
//
// Decoding is liberal: base names in any split ("bn":"/3/0/","n":"0" from
// Wakaama, "bn":"/3/0","n":"/0" from Anjay), vd in either base64 alphabet
// with or without padding, numbers as integers, decimals or exponents, and
// integers exact to 64 bits. Encoding is canonical: the shape described in
// objects/senml, integers without a fraction, floats in their shortest
// exact decimal form, vd as unpadded base64url (RFC 8428 §5).
package senmljson

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/internal/jsontext"
	"github.com/lwm2md/lwm2md/objects/senml"
)

// Codec is the SenML JSON codec. Now is the clock that relative SenML
// times count from; nil means time.Now.
type Codec struct {
	Now func() time.Time
}

var (
	_ objects.Codec       = Codec{}
	_ objects.RecordCodec = Codec{}
)

func (c Codec) decoder() senml.Decoder {
	return senml.Decoder{Format: objects.FormatSenMLJSON, Now: c.Now}
}

// Decode reads the node at root from a SenML JSON pack.
func (c Codec) Decode(root objects.Path, data []byte, m objects.Models) (objects.Node, error) {
	p := parser{data: data, dec: c.decoder(), root: root}
	pack, err := p.pack()
	if err != nil {
		return nil, err
	}
	return c.decoder().Node(root, pack, m)
}

// DecodeRecords reads every record of a SenML JSON pack, with absolute
// paths and times.
func (c Codec) DecodeRecords(data []byte, m objects.Models) ([]objects.Record, error) {
	p := parser{data: data, dec: c.decoder()}
	pack, err := p.pack()
	if err != nil {
		return nil, err
	}
	return c.decoder().Records(pack, m)
}

// Encode writes node n, which lives at root, as a SenML JSON pack.
func (c Codec) Encode(root objects.Path, n objects.Node, m objects.Models) ([]byte, error) {
	pack, err := senml.FromNode(root, n, m)
	if err != nil {
		return nil, err
	}
	return Marshal(pack)
}

// EncodeRecords writes records as a SenML JSON pack, in their order.
func (c Codec) EncodeRecords(recs []objects.Record, m objects.Models) ([]byte, error) {
	pack, err := senml.FromRecords(recs, m)
	if err != nil {
		return nil, err
	}
	return Marshal(pack)
}

// Marshal writes a pack as compact JSON, the fields of each record in the
// order of the examples in LwM2M Core 1.1 §7.4.4: bver, bn, bt, bv, n, the
// value, t.
func Marshal(p senml.Pack) ([]byte, error) {
	b := make([]byte, 0, 2+40*len(p))
	b = append(b, '[')
	for i := range p {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendRecord(b, &p[i]); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

func appendRecord(b []byte, r *senml.Record) ([]byte, error) {
	b = append(b, '{')
	n := len(b)
	key := func(k string) {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
	}
	var err error
	if r.Fields&senml.HasBaseVersion != 0 {
		key("bver")
		b = strconv.AppendInt(b, r.BaseVersion, 10)
	}
	if r.Fields&senml.HasBaseName != 0 {
		key("bn")
		if b, err = appendString(b, r.BaseName); err != nil {
			return nil, err
		}
	}
	if r.Fields&senml.HasBaseTime != 0 {
		key("bt")
		if b, err = appendFloat(b, r.BaseTime); err != nil {
			return nil, err
		}
	}
	if r.Fields&senml.HasBaseValue != 0 {
		key("bv")
		if b, err = appendNumber(b, r.BaseValue); err != nil {
			return nil, err
		}
	}
	if r.Fields&senml.HasName != 0 {
		key("n")
		if b, err = appendString(b, r.Name); err != nil {
			return nil, err
		}
	}
	switch r.Kind {
	case senml.KindNumber:
		key("v")
		b, err = appendNumber(b, r.Value)
	case senml.KindString:
		key("vs")
		b, err = appendString(b, r.Value.Str())
	case senml.KindBool:
		key("vb")
		b = strconv.AppendBool(b, r.Value.Bool())
	case senml.KindData:
		key("vd")
		b = append(b, '"')
		if r.Value.Type() == objects.TypeString {
			b = append(b, r.Value.Str()...) // already base64 text
		} else {
			b = base64.RawURLEncoding.AppendEncode(b, r.Value.Bytes())
		}
		b = append(b, '"')
	case senml.KindObjlnk:
		key("vlo")
		b, err = appendString(b, r.Value.Text())
	}
	if err != nil {
		return nil, err
	}
	if r.Fields&senml.HasTime != 0 {
		key("t")
		if b, err = appendFloat(b, r.Time); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendNumber(b []byte, v objects.Value) ([]byte, error) {
	switch v.Type() {
	case objects.TypeInteger, objects.TypeTime:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case objects.TypeUnsigned:
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case objects.TypeFloat:
		return appendFloat(b, v.Float())
	}
	return nil, fmt.Errorf("senmljson: a %v value is not a number", v.Type())
}

// appendFloat writes f as objects.FormatFloat does (shortest exact
// decimal, no exponent in the everyday range), without allocating.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("senmljson: %v cannot be written in JSON", f)
	}
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(b, f, 'g', -1, 64), nil
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64), nil
}

// appendString writes s as a JSON string; invalid UTF-8 is refused, not
// replaced.
func appendString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("senmljson: string %q is not valid UTF-8", s)
	}
	return jsontext.AppendString(b, s), nil
}
