package objects

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Format is a CoAP Content-Format number.
type Format uint16

// The content formats LwM2M uses (LwM2M Core 1.2 §7.1, Transport §6.4.2
// for the pre-registration numbers 1541-1543 used by LwM2M 1.0 clients).
const (
	FormatText       Format = 0
	FormatLinkFormat Format = 40
	FormatOpaque     Format = 42
	FormatCBOR       Format = 60
	FormatSenMLJSON  Format = 110
	FormatSenMLCBOR  Format = 112
	FormatOldText    Format = 1541
	FormatOldTLV     Format = 1542
	FormatOldJSON    Format = 1543
	FormatOldOpaque  Format = 1544
	FormatTLV        Format = 11542
	FormatJSON       Format = 11543
	FormatLwM2MCBOR  Format = 11544
)

var formatNames = map[Format]string{
	FormatText: "text", FormatLinkFormat: "link-format", FormatOpaque: "opaque",
	FormatCBOR: "cbor", FormatSenMLJSON: "senml-json", FormatSenMLCBOR: "senml-cbor",
	FormatTLV: "tlv", FormatJSON: "json", FormatLwM2MCBOR: "lwm2m-cbor",
	FormatOldText: "text-1541", FormatOldTLV: "tlv-1542", FormatOldJSON: "json-1543",
	FormatOldOpaque: "opaque-1544",
}

// String returns the short name used in the REST API ("senml-cbor"), or
// the number for a format lwm2md does not know.
func (f Format) String() string {
	if s, ok := formatNames[f]; ok {
		return s
	}
	return strconv.Itoa(int(f))
}

// ParseFormat accepts a short name or a number.
func ParseFormat(s string) (Format, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for f, name := range formatNames {
		if name == s {
			return f, nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("objects: unknown content format %q", s)
	}
	return Format(n), nil
}

// Canonical maps the pre-registration numbers of LwM2M 1.0 drafts to the
// registered ones (1542 is TLV 11542, and so on).
func (f Format) Canonical() Format {
	switch f {
	case FormatOldText:
		return FormatText
	case FormatOldTLV:
		return FormatTLV
	case FormatOldJSON:
		return FormatJSON
	case FormatOldOpaque:
		return FormatOpaque
	}
	return f
}

// Codec encodes and decodes the node at one path. root is the path the
// request addressed: it decides whether the payload is an object, an
// instance, a resource or a resource instance. m supplies resource types
// where the format does not carry them; it may be nil.
type Codec interface {
	Encode(root Path, n Node, m Models) ([]byte, error)
	Decode(root Path, data []byte, m Models) (Node, error)
}

// RecordCodec is implemented by the formats that carry many paths and
// timestamps in one payload (SenML JSON and CBOR, LwM2M JSON, LwM2M CBOR):
// composite operations, Send and notifications with history use it.
type RecordCodec interface {
	EncodeRecords(recs []Record, m Models) ([]byte, error)
	DecodeRecords(data []byte, m Models) ([]Record, error)
}

// Errors every codec wraps, so callers can map them to CoAP codes.
var (
	// ErrUnsupported: the format cannot carry this node (text/plain for an
	// object instance), to be answered with 4.06 or 4.15.
	ErrUnsupported = errors.New("node cannot be carried in this content format")
	// ErrMalformed: the payload breaks the format's rules, answered with 4.00.
	ErrMalformed = errors.New("malformed payload")
)

// DecodeError is the error a decoder returns: where in the payload it
// stopped (a path when it knows one, else a byte offset) and why.
type DecodeError struct {
	Format Format
	Path   Path  // the path being decoded, or the request path
	Offset int   // byte offset in the payload, -1 when not meaningful
	Err    error // the cause; wraps ErrMalformed, ErrType, ErrRange, ...
}

func (e *DecodeError) Error() string {
	where := e.Path.String()
	if e.Offset >= 0 {
		where += " at byte " + strconv.Itoa(e.Offset)
	}
	return e.Format.String() + ": " + where + ": " + e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }
