// Package nodejson is the JSON form of LwM2M nodes and records that the
// REST API and the NATS/MQTT bridge share with operators and integrators.
// It is not an LwM2M content format (that is objects/lwm2mjson): it is
// lwm2md's own, self-describing representation, with every value typed.
//
// A single resource:
//
//	{"path":"/3/0/0","type":"string","value":"lwm2md"}
//
// A multiple resource, an instance and an object nest their children:
//
//	{"path":"/3/0/7","type":"integer","instances":[{"path":"/3/0/7/0","value":3800}]}
//	{"path":"/3/0","resources":[{"path":"/3/0/0","type":"string","value":"lwm2md"}]}
//	{"path":"/3","instances":[{"path":"/3/0","resources":[...]}]}
//
// Values are JSON numbers for integer, unsigned, float and time (Unix
// seconds), true/false for boolean, base64 (RFC 4648, standard alphabet)
// for opaque, "o:i" for objlnk and strings for string and corelnk. Floats
// that JSON cannot carry are the strings "NaN", "Infinity", "-Infinity".
// Records (Send, composite operations) are a JSON array of
// {"path","type","value","time"} objects, time in Unix seconds.
//
// Unmarshal checks what it reads against the model in force for the
// device: the type (converting a JSON number to the resource's type only
// when no information is lost), single versus multiple, and the
// RangeEnumeration of the definition ("0..255", "0..255 bytes",
// "16, 32 or 48 bytes"). Every error is an *Error naming the path and the
// field, and wraps objects.ErrMalformed, ErrType, ErrRange or ErrUTF8.
//
// Example (see also the package's runnable examples):
//
//	root := objects.MustParsePath("/3/0/9")
//	n, err := nodejson.Unmarshal([]byte(`{"value":87}`), root, builtin.Registry())
//	// n is &objects.Resource{ID: 9, Value: objects.IntegerValue(87)}
//	b, err := nodejson.Marshal(root, n)
//	// b is {"path":"/3/0/9","type":"integer","value":87}
package nodejson

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lwm2md/lwm2md/objects"
)

// Error says where in a JSON node Unmarshal stopped: the path of the node
// and the field ("value", "type", "instances", "path", ...).
type Error struct {
	Path  objects.Path
	Field string
	Err   error // wraps objects.ErrMalformed, ErrType, ErrRange or ErrUTF8
}

func (e *Error) Error() string {
	if e.Field == "" {
		return "nodejson: " + e.Path.String() + ": " + e.Err.Error()
	}
	return "nodejson: " + e.Path.String() + ": " + e.Field + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func errAt(p objects.Path, field string, kind error, format string, args ...any) error {
	return &Error{Path: p, Field: field, Err: fmt.Errorf(format+": %w", append(args, kind)...)}
}

// typeNames are the JSON names of the value types; ParseType also accepts
// the DDF spellings ("Unsigned Integer").
var typeNames = map[objects.Type]string{
	objects.TypeString: "string", objects.TypeInteger: "integer", objects.TypeUnsigned: "unsigned",
	objects.TypeFloat: "float", objects.TypeBoolean: "boolean", objects.TypeOpaque: "opaque",
	objects.TypeTime: "time", objects.TypeObjlnk: "objlnk", objects.TypeCorelnk: "corelnk",
}

// TypeName returns the JSON name of t ("unsigned"), "" for TypeNone.
func TypeName(t objects.Type) string { return typeNames[t] }

// wire is one JSON node or record. Pointers to slices keep an empty
// multiple resource ("instances":[]) apart from a single one.
type wire struct {
	Path      string          `json:"path,omitempty"`
	ID        *uint16         `json:"id,omitempty"`
	Type      string          `json:"type,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	Time      *float64        `json:"time,omitempty"`
	Instances *[]wire         `json:"instances,omitempty"`
	Resources *[]wire         `json:"resources,omitempty"`
}

// parseType reads the "type" field; "" means not given.
func parseType(p objects.Path, s string) (objects.Type, error) {
	if s == "" {
		return objects.TypeNone, nil
	}
	t, err := objects.ParseType(s)
	if err != nil {
		return 0, errAt(p, "type", objects.ErrMalformed, "unknown type %q", s)
	}
	return t, nil
}

// isNull reports whether a raw value is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// asError turns an encoding/json error into an *Error at p.
func asError(p objects.Path, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return errAt(p, ute.Field, objects.ErrMalformed, "JSON %s where %s was expected", ute.Value, ute.Type)
	}
	return errAt(p, "", objects.ErrMalformed, "%s", strings.TrimPrefix(err.Error(), "json: "))
}
