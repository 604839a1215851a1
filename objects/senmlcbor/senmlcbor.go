// Package senmlcbor is the SenML CBOR content format (application/
// senml+cbor, 112) of LwM2M 1.1 and later (LwM2M Core 1.1 §7.4.5, RFC
// 8428 §6): the Codec for reads and writes at one path, and the
// RecordCodec for Send, composite operations and notifications with
// history.
//
// Records are CBOR maps with the integer labels of RFC 8428 Table 6 (bver
// -1, bn -2, bt -3, bu -4, bv -5, bs -6, n 0, u 1, v 2, vs 3, vb 4, s 5,
// t 6, ut 7, vd 8) and the text label "vlo" for object links (LwM2M Core
// 1.1 §7.4.5). Decoding takes floats of any width, integers of any width
// and well-formed indefinite-length items, and rejects duplicate labels,
// tags and nesting deeper than a pack needs. Encoding follows the core
// deterministic encoding of RFC 8949 §4.2.1: definite lengths, shortest
// integers and floats, map keys in bytewise order.
package senmlcbor

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml"
)

// The SenML labels (RFC 8428 §6, Table 6).
const (
	labelBaseVersion = -1
	labelBaseName    = -2
	labelBaseTime    = -3
	labelBaseUnit    = -4
	labelBaseValue   = -5
	labelBaseSum     = -6
	labelName        = 0
	labelUnit        = 1
	labelValue       = 2
	labelString      = 3
	labelBool        = 4
	labelSum         = 5
	labelTime        = 6
	labelUpdateTime  = 7
	labelData        = 8
	labelObjlnk      = "vlo"
)

var (
	decMode cbor.DecMode
	encMode cbor.EncMode
)

func init() {
	var err error
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  4, // pack, record, and a little room for unknown fields
		MaxArrayElements: senml.MaxRecords,
		MaxMapPairs:      64,
		IndefLength:      cbor.IndefLengthAllowed,
		TagsMd:           cbor.TagsForbidden,
		IntDec:           cbor.IntDecConvertNone,
		UTF8:             cbor.UTF8DecodeInvalid, // checked here, to name the path
	}.DecMode()
	if err != nil {
		panic(err)
	}
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
}

// Codec is the SenML CBOR codec. Now is the clock that relative SenML
// times count from; nil means time.Now.
type Codec struct {
	Now func() time.Time
}

var (
	_ objects.Codec       = Codec{}
	_ objects.RecordCodec = Codec{}
)

func (c Codec) decoder() senml.Decoder {
	return senml.Decoder{Format: objects.FormatSenMLCBOR, Now: c.Now}
}

// Decode reads the node at root from a SenML CBOR pack.
func (c Codec) Decode(root objects.Path, data []byte, m objects.Models) (objects.Node, error) {
	pack, err := unmarshal(data, root, c.decoder())
	if err != nil {
		return nil, err
	}
	return c.decoder().Node(root, pack, m)
}

// DecodeRecords reads every record of a SenML CBOR pack, with absolute
// paths and times.
func (c Codec) DecodeRecords(data []byte, m objects.Models) ([]objects.Record, error) {
	pack, err := unmarshal(data, objects.RootPath, c.decoder())
	if err != nil {
		return nil, err
	}
	return c.decoder().Records(pack, m)
}

// Encode writes node n, which lives at root, as a SenML CBOR pack.
func (c Codec) Encode(root objects.Path, n objects.Node, m objects.Models) ([]byte, error) {
	pack, err := senml.FromNode(root, n, m)
	if err != nil {
		return nil, err
	}
	return Marshal(pack)
}

// EncodeRecords writes records as a SenML CBOR pack, in their order.
func (c Codec) EncodeRecords(recs []objects.Record, m objects.Models) ([]byte, error) {
	pack, err := senml.FromRecords(recs, m)
	if err != nil {
		return nil, err
	}
	return Marshal(pack)
}

// Unmarshal parses a SenML CBOR pack without resolving it.
func Unmarshal(data []byte) (senml.Pack, error) {
	return unmarshal(data, objects.RootPath, senml.Decoder{Format: objects.FormatSenMLCBOR})
}

func unmarshal(data []byte, root objects.Path, d senml.Decoder) (senml.Pack, error) {
	var raw []map[any]any
	if err := decMode.Unmarshal(data, &raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, d.Error(root, -1, objects.ErrMalformed, "empty payload; a SenML pack is a CBOR array")
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, d.Error(root, -1, objects.ErrMalformed, "payload ends early")
		}
		var te *cbor.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, d.Error(root, -1, objects.ErrMalformed, "a SenML pack is an array of maps (%v)", err)
		}
		return nil, d.Error(root, -1, objects.ErrMalformed, "%v", err)
	}
	pack := make(senml.Pack, len(raw))
	for i, m := range raw {
		if err := record(&pack[i], m); err != nil {
			return nil, d.Error(root, -1, errSentinel(err), "record %d: %v", i, err)
		}
	}
	return pack, nil
}

// fieldError is a problem with one field; sentinel is what it wraps.
type fieldError struct {
	sentinel error
	msg      string
}

func (e *fieldError) Error() string { return e.msg }

func errSentinel(err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		return fe.sentinel
	}
	return objects.ErrMalformed
}

func malformed(format string, args ...any) error {
	return &fieldError{objects.ErrMalformed, fmt.Sprintf(format, args...)}
}

func record(r *senml.Record, m map[any]any) error {
	r.Offset = -1
	for k, v := range m {
		var err error
		switch k := k.(type) {
		case uint64:
			err = positiveField(r, k, v)
		case int64:
			err = negativeField(r, k, v)
		case string:
			switch {
			case k == labelObjlnk:
				err = setValue(r, senml.KindObjlnk, v, "vlo")
			case senml.IsMustUnderstand(k):
				err = &fieldError{objects.ErrUnsupported, fmt.Sprintf("field %q must be understood and lwm2md does not know it", k)}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func positiveField(r *senml.Record, k uint64, v any) error {
	switch k {
	case labelName:
		s, err := text(v, "n")
		r.Fields |= senml.HasName
		r.Name = s
		return err
	case labelValue:
		return setValue(r, senml.KindNumber, v, "v")
	case labelString:
		return setValue(r, senml.KindString, v, "vs")
	case labelBool:
		return setValue(r, senml.KindBool, v, "vb")
	case labelData:
		return setValue(r, senml.KindData, v, "vd")
	case labelTime:
		t, err := number(v, "t")
		r.Fields |= senml.HasTime
		r.Time = t
		return err
	case labelUnit:
		_, err := text(v, "u")
		return err
	case labelSum, labelUpdateTime:
		_, err := number(v, "s or ut")
		return err
	}
	return nil // a label SenML may define later: ignored (RFC 8428 §4.4)
}

func negativeField(r *senml.Record, k int64, v any) error {
	switch k {
	case labelBaseName:
		s, err := text(v, "bn")
		r.Fields |= senml.HasBaseName
		r.BaseName = s
		return err
	case labelBaseTime:
		t, err := number(v, "bt")
		r.Fields |= senml.HasBaseTime
		r.BaseTime = t
		return err
	case labelBaseValue:
		n, err := numeric(v, "bv")
		r.Fields |= senml.HasBaseValue
		r.BaseValue = n
		return err
	case labelBaseVersion:
		r.Fields |= senml.HasBaseVersion
		switch n := v.(type) {
		case uint64:
			r.BaseVersion = int64(min(n, math.MaxInt64))
			return nil
		case int64:
			r.BaseVersion = n
			return nil
		}
		return malformed("bver is not an integer")
	case labelBaseUnit:
		_, err := text(v, "bu")
		return err
	case labelBaseSum:
		_, err := number(v, "bs")
		return err
	}
	return nil
}

func setValue(r *senml.Record, k senml.Kind, v any, name string) error {
	if r.Kind != senml.KindNone {
		return malformed("more than one value field (%s and %s)", r.Kind, name)
	}
	r.Kind = k
	var err error
	switch k {
	case senml.KindNumber:
		r.Value, err = numeric(v, name)
	case senml.KindString, senml.KindObjlnk:
		var s string
		s, err = text(v, name)
		r.Value = objects.StringValue(s)
	case senml.KindBool:
		b, ok := v.(bool)
		if !ok {
			return malformed("vb is not a Boolean")
		}
		r.Value = objects.BooleanValue(b)
	case senml.KindData:
		b, ok := v.([]byte)
		if !ok {
			return malformed("vd is not a byte string")
		}
		r.Value = objects.OpaqueValue(b)
	}
	return err
}

func text(v any, name string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", malformed("%s is not a text string", name)
	}
	return s, nil
}

// numeric keeps an integer exact: Integer when it fits int64, Unsigned
// above, Float for a float or a negative integer below -2^63.
func numeric(v any, name string) (objects.Value, error) {
	switch n := v.(type) {
	case uint64:
		if n <= math.MaxInt64 {
			return objects.IntegerValue(int64(n)), nil
		}
		return objects.UnsignedValue(n), nil
	case int64:
		return objects.IntegerValue(n), nil
	case float64:
		return objects.FloatValue(n), nil
	case big.Int:
		f, _ := new(big.Float).SetInt(&n).Float64()
		return objects.FloatValue(f), nil
	}
	return objects.Value{}, malformed("%s is not a number", name)
}

func number(v any, name string) (float64, error) {
	n, err := numeric(v, name)
	if err != nil {
		return 0, err
	}
	switch n.Type() {
	case objects.TypeInteger:
		return float64(n.Int()), nil
	case objects.TypeUnsigned:
		return float64(n.Uint()), nil
	}
	return n.Float(), nil
}

// wire is a record as it is written. Each field is an interface so that
// presence, not zero-ness, decides whether it is written; the encoder
// orders the keys bytewise (RFC 8949 §4.2.1): 0, 2, 3, 4, 6, 8, -1, -2,
// -3, -5, "vlo".
type wire struct {
	Name        any `cbor:"0,keyasint,omitempty"`
	Value       any `cbor:"2,keyasint,omitempty"`
	String      any `cbor:"3,keyasint,omitempty"`
	Bool        any `cbor:"4,keyasint,omitempty"`
	Time        any `cbor:"6,keyasint,omitempty"`
	Data        any `cbor:"8,keyasint,omitempty"`
	BaseVersion any `cbor:"-1,keyasint,omitempty"`
	BaseName    any `cbor:"-2,keyasint,omitempty"`
	BaseTime    any `cbor:"-3,keyasint,omitempty"`
	BaseValue   any `cbor:"-5,keyasint,omitempty"`
	Objlnk      any `cbor:"vlo,omitempty"`
}

// Marshal writes a pack in the core deterministic encoding.
func Marshal(p senml.Pack) ([]byte, error) {
	out := make([]wire, len(p))
	for i := range p {
		if err := toWire(&out[i], &p[i]); err != nil {
			return nil, err
		}
	}
	return encMode.Marshal(out)
}

func toWire(w *wire, r *senml.Record) error {
	var err error
	if r.Fields&senml.HasBaseVersion != 0 {
		w.BaseVersion = r.BaseVersion
	}
	if r.Fields&senml.HasBaseName != 0 {
		w.BaseName = r.BaseName
	}
	if r.Fields&senml.HasBaseTime != 0 {
		if w.BaseTime, err = timeValue(r.BaseTime); err != nil {
			return err
		}
	}
	if r.Fields&senml.HasBaseValue != 0 {
		if w.BaseValue, err = numberValue(r.BaseValue); err != nil {
			return err
		}
	}
	if r.Fields&senml.HasName != 0 {
		w.Name = r.Name
	}
	if r.Fields&senml.HasTime != 0 {
		if w.Time, err = timeValue(r.Time); err != nil {
			return err
		}
	}
	switch r.Kind {
	case senml.KindNumber:
		w.Value, err = numberValue(r.Value)
	case senml.KindString:
		w.String = r.Value.Str()
	case senml.KindBool:
		w.Bool = r.Value.Bool()
	case senml.KindData:
		b := r.Value.Bytes()
		if b == nil {
			b = []byte{}
		}
		w.Data = b
	case senml.KindObjlnk:
		w.Objlnk = r.Value.Text()
	}
	return err
}

func numberValue(v objects.Value) (any, error) {
	switch v.Type() {
	case objects.TypeInteger, objects.TypeTime:
		return v.Int(), nil
	case objects.TypeUnsigned:
		return v.Uint(), nil
	case objects.TypeFloat:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("senmlcbor: %v is not a finite number", f)
		}
		return f, nil // the shortest float width that keeps the value
	}
	return nil, fmt.Errorf("senmlcbor: a %v value is not a number", v.Type())
}

// timeValue writes a time as an integer when it is a whole second (bt
// 1795305995 takes 5 bytes, not 9) and as the shortest exact float
// otherwise.
func timeValue(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("senmlcbor: time %v is not a finite number", f)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return int64(f), nil
	}
	return f, nil
}
