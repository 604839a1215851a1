// Package senml is the part of SenML (RFC 8428) that the JSON and CBOR
// representations share, as LwM2M uses it (LwM2M Core 1.1 §7.4.4 and
// §7.4.5): the raw records of a pack, the resolution of base names, base
// times and base values into LwM2M paths and absolute times, the typing of
// values by the object model, and the canonical pack lwm2md sends.
//
// The wire codecs live in objects/senmljson and objects/senmlcbor: they
// turn bytes into a Pack and back, and use this package for the rest.
package senml

import (
	"math"

	"github.com/lwm2md/lwm2md/objects"
)

// Fields says which SenML fields a record carries: presence matters, since
// an empty base name resets the one before it (RFC 8428 §4.1).
type Fields uint16

const (
	HasBaseName Fields = 1 << iota
	HasBaseTime
	HasBaseValue
	HasBaseVersion
	HasName
	HasTime
)

// Kind is the SenML field that carried a record's value.
type Kind uint8

const (
	KindNone   Kind = iota // no value: the record names a path only
	KindNumber             // v
	KindString             // vs
	KindBool               // vb
	KindData               // vd
	KindObjlnk             // vlo (LwM2M Core 1.1 §7.4.4)
)

var kindNames = [...]string{"none", "v", "vs", "vb", "vd", "vlo"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// Record is one SenML record as it appears in the payload, before base
// values are applied. Value holds what the value field said:
//   - v: an Integer, Unsigned or Float value, as the number was spelled
//     (integers stay exact beyond 2^53);
//   - vs: a String;
//   - vb: a Boolean;
//   - vd: an Opaque, or a String holding the base64 text of SenML JSON,
//     decoded when the record is resolved;
//   - vlo: a String holding "o:i", parsed when the record is resolved.
//
// BaseValue (bv) is numeric like v. The fields lwm2md has no use for (units,
// sums, update time) are checked by the codecs and dropped.
type Record struct {
	Fields      Fields
	BaseName    string
	BaseTime    float64
	BaseValue   objects.Value
	BaseVersion int64
	Name        string
	Time        float64
	Kind        Kind
	Value       objects.Value
	Offset      int // where the record starts in the payload, -1 when unknown
}

// Pack is a SenML pack: the records of one payload, in order.
type Pack []Record

// Version is the SenML version lwm2md understands (RFC 8428 §4.4: a pack
// with a higher bver must be rejected).
const Version = 10

// MaxRecords bounds the records of one pack, so that a hostile payload
// cannot make the decoder allocate without end. A whole object read is a
// few hundred records at most.
const MaxRecords = 1 << 17

// RelativeTimeLimit is 2^28: resolved times below it are relative to now
// (RFC 8428 §4.5.3).
const RelativeTimeLimit = 1 << 28

// IsMustUnderstand reports whether an unknown field name ends in "_",
// which RFC 8428 §4.4 says a receiver must reject rather than ignore.
func IsMustUnderstand(name string) bool {
	return len(name) > 0 && name[len(name)-1] == '_'
}

// isFinite reports whether f is neither NaN nor infinite.
func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
