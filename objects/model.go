package objects

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Type is the data type of a resource (LwM2M Core 1.1 Appendix C).
type Type uint8

const (
	TypeNone     Type = iota // executable resources and values of unknown type
	TypeString               // UTF-8 string
	TypeInteger              // signed 64-bit integer
	TypeUnsigned             // unsigned 64-bit integer (LwM2M 1.1)
	TypeFloat                // 32- or 64-bit IEEE 754 float
	TypeBoolean              // true or false
	TypeOpaque               // a sequence of bytes
	TypeTime                 // seconds since the Unix epoch, signed
	TypeObjlnk               // object link "o:i"
	TypeCorelnk              // CoRE link-format string (LwM2M 1.1)
)

var typeNames = [...]string{
	TypeNone: "none", TypeString: "String", TypeInteger: "Integer",
	TypeUnsigned: "Unsigned Integer", TypeFloat: "Float", TypeBoolean: "Boolean",
	TypeOpaque: "Opaque", TypeTime: "Time", TypeObjlnk: "Objlnk", TypeCorelnk: "Corelnk",
}

// String returns the name used in DDF files ("Unsigned Integer", "Objlnk").
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// ParseType accepts the DDF names, case-insensitively, plus short forms
// ("unsigned", "objlnk", "none" and the empty string for no type).
func ParseType(s string) (Type, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none":
		return TypeNone, nil
	case "string":
		return TypeString, nil
	case "integer", "int":
		return TypeInteger, nil
	case "unsigned integer", "unsigned", "uint":
		return TypeUnsigned, nil
	case "float":
		return TypeFloat, nil
	case "boolean", "bool":
		return TypeBoolean, nil
	case "opaque":
		return TypeOpaque, nil
	case "time":
		return TypeTime, nil
	case "objlnk":
		return TypeObjlnk, nil
	case "corelnk":
		return TypeCorelnk, nil
	}
	return TypeNone, fmt.Errorf("objects: unknown resource type %q", s)
}

// Operations is the set of operations a resource allows.
type Operations uint8

const (
	OpRead Operations = 1 << iota
	OpWrite
	OpExecute
)

// ParseOperations accepts "R", "W", "RW", "E" and "" (none).
func ParseOperations(s string) (Operations, error) {
	var ops Operations
	for _, c := range strings.ToUpper(strings.TrimSpace(s)) {
		switch c {
		case 'R':
			ops |= OpRead
		case 'W':
			ops |= OpWrite
		case 'E':
			ops |= OpExecute
		default:
			return 0, fmt.Errorf("objects: unknown operations %q", s)
		}
	}
	if ops&OpExecute != 0 && ops != OpExecute {
		return 0, fmt.Errorf("objects: operations %q mix E with R or W", s)
	}
	return ops, nil
}

func (o Operations) String() string {
	var b strings.Builder
	if o&OpRead != 0 {
		b.WriteByte('R')
	}
	if o&OpWrite != 0 {
		b.WriteByte('W')
	}
	if o&OpExecute != 0 {
		b.WriteByte('E')
	}
	return b.String()
}

func (o Operations) Readable() bool   { return o&OpRead != 0 }
func (o Operations) Writable() bool   { return o&OpWrite != 0 }
func (o Operations) Executable() bool { return o&OpExecute != 0 }

// ResourceDef describes one resource of an object.
type ResourceDef struct {
	ID          uint16
	Name        string
	Operations  Operations
	Multiple    bool
	Mandatory   bool
	Type        Type
	Range       string // RangeEnumeration as written in the DDF
	Units       string
	Description string
}

// ObjectDef describes one version of an object.
type ObjectDef struct {
	ID           uint16
	Name         string
	Description  string
	Version      string // object version, "1.0" when the DDF gives none
	LwM2MVersion string // the LwM2M version the object was written for
	URN          string
	Multiple     bool // multiple instances allowed
	Mandatory    bool
	Resources    []ResourceDef // sorted by ID
}

// Resource returns the definition of resource id, or nil.
func (o *ObjectDef) Resource(id uint16) *ResourceDef {
	if o == nil {
		return nil
	}
	i := sort.Search(len(o.Resources), func(i int) bool { return o.Resources[i].ID >= id })
	if i < len(o.Resources) && o.Resources[i].ID == id {
		return &o.Resources[i]
	}
	return nil
}

// SortResources orders Resources by ID and reports a duplicate ID.
func (o *ObjectDef) SortResources() error {
	sort.Slice(o.Resources, func(i, j int) bool { return o.Resources[i].ID < o.Resources[j].ID })
	for i := 1; i < len(o.Resources); i++ {
		if o.Resources[i].ID == o.Resources[i-1].ID {
			return fmt.Errorf("objects: object %d: resource %d defined twice", o.ID, o.Resources[i].ID)
		}
	}
	return nil
}

// Models gives the definition in force for an object: a codec asks it for
// the type of a resource when the format does not carry one. A nil Models
// (or a nil result) means "unknown", and codecs fall back to what the
// payload itself says.
type Models interface {
	Object(id uint16) *ObjectDef
}

// ResourceOf returns the definition of the resource that p is or lies in,
// or nil when m, the object or the resource is unknown.
func ResourceOf(m Models, p Path) *ResourceDef {
	if m == nil || p.Len() < 3 {
		return nil
	}
	return m.Object(p.Object()).Resource(p.Resource())
}

// TypeOf returns the type of the resource at p, or TypeNone when unknown.
func TypeOf(m Models, p Path) Type {
	if r := ResourceOf(m, p); r != nil {
		return r.Type
	}
	return TypeNone
}

// Conform checks that the path p of a decoded value fits the model (a
// value of a multiple resource needs a resource-instance path, a single
// resource has no instances) and converts the value to the resource's
// type. Without a definition, or for a resource without a type, v is
// returned as it is. Errors wrap ErrMalformed (no resource in p) or
// ErrType/ErrRange; the caller adds the format and the path.
func Conform(m Models, p Path, v Value) (Value, error) {
	if p.Len() < 3 {
		return v, fmt.Errorf("a value needs a resource path: %w", ErrMalformed)
	}
	def := ResourceOf(m, p)
	if def == nil {
		return v, nil
	}
	if def.Multiple && p.Len() == 3 {
		return v, fmt.Errorf("resource %d is multiple: a value needs a resource-instance path: %w", p.Resource(), ErrType)
	}
	if !def.Multiple && p.Len() == 4 {
		return v, fmt.Errorf("resource %d is single: it has no instances: %w", p.Resource(), ErrType)
	}
	if def.Type == TypeNone {
		return v, nil
	}
	out, err := v.Convert(def.Type)
	if err != nil {
		return v, fmt.Errorf("%v as %v: %w", v, def.Type, err)
	}
	return out, nil
}
