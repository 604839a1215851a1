package linkformat

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/lwm2md/lwm2md/objects"
)

// Attr names one LwM2M attribute, and a set of them when or-ed together.
// The order of the constants is the order in which Query and Params write
// attributes: the <PROPERTIES> class first, then the <NOTIFICATION>
// class, as in the Discover examples of LwM2M Core 1.2
// ("</3/0/7>;dim=2;pmin=10;pmax=60;gt=50;lt=42.2").
type Attr uint16

// The attributes of LwM2M Core 1.2 §5.1.2 ("Attributes Classification").
const (
	AttrDim   Attr = 1 << iota // dim: number of instances of a multiple resource, 0-255
	AttrSSID                   // ssid: Short Server ID of a Security, Server or OSCORE instance, 1-65534 (1.1)
	AttrURI                    // uri: Server URI of a Security instance (1.1)
	AttrVer                    // ver: object version "major.minor"
	AttrLwM2M                  // lwm2m: enabler version "major.minor" (1.1)
	AttrPMin                   // pmin: minimum period, seconds
	AttrPMax                   // pmax: maximum period, seconds
	AttrGT                     // gt: greater-than threshold
	AttrLT                     // lt: less-than threshold
	AttrST                     // st: step, ≥ 0
	AttrEPMin                  // epmin: minimum evaluation period, seconds (1.1)
	AttrEPMax                  // epmax: maximum evaluation period, seconds (1.1)
	AttrEdge                   // edge: 0 falling, 1 rising edge of a Boolean (1.2)
	AttrCon                    // con: 1 confirmable notifications, 0 not (1.2)
	AttrHQMax                  // hqmax: maximum historical queue (1.2)

	attrEnd
)

// Properties are the <PROPERTIES> class attributes, which a client reports
// (Discover, Bootstrap-Discover) and a server cannot write.
const Properties = AttrDim | AttrSSID | AttrURI | AttrVer | AttrLwM2M

// Notification are the <NOTIFICATION> class attributes, which
// Write-Attributes sets and which drive Observe.
const Notification = AttrPMin | AttrPMax | AttrGT | AttrLT | AttrST | AttrEPMin | AttrEPMax | AttrEdge | AttrCon | AttrHQMax

var attrNames = [...]string{"dim", "ssid", "uri", "ver", "lwm2m", "pmin", "pmax", "gt", "lt", "st", "epmin", "epmax", "edge", "con", "hqmax"}

// String returns the CoRE link parameter name ("pmin"), or the names of a
// set joined by commas.
func (a Attr) String() string {
	var names []string
	for i, x := 0, Attr(1); x < attrEnd; i, x = i+1, x<<1 {
		if a&x != 0 {
			names = append(names, attrNames[i])
		}
	}
	return strings.Join(names, ",")
}

// ParseAttr returns the attribute called name (lower case, as the
// specification writes them).
func ParseAttr(name string) (Attr, bool) {
	for i, n := range attrNames {
		if n == name {
			return Attr(1) << i, true
		}
	}
	return 0, false
}

// Attributes holds the LwM2M attributes of one object, instance, resource
// or resource instance. Set says which fields hold a value; Unset lists
// the attributes named without a value, which Write-Attributes uses to
// clear an attribute at that level (Write-Attributes, Core 1.0 §5.4.4:
// "When an Attribute is specified without value, it means this Attribute
// value is unset"). The zero value has no attribute.
type Attributes struct {
	Set   Attr
	Unset Attr

	Dim   uint8  // dim
	SSID  uint16 // ssid
	URI   string // uri
	Ver   string // ver, "1.1"
	LwM2M string // lwm2m, "1.1"

	PMin, PMax   uint64  // seconds
	GT, LT, ST   float64 // thresholds and step, in the resource's unit
	EPMin, EPMax uint64  // seconds
	Edge         bool    // edge=1 (rising) when true, edge=0 (falling) when false
	Con          bool    // con=1 when true
	HQMax        uint64  // hqmax
}

// Has reports whether every attribute of x has a value.
func (a Attributes) Has(x Attr) bool { return a.Set&x == x }

// IsZero reports whether a neither sets nor unsets anything.
func (a Attributes) IsZero() bool { return a.Set == 0 && a.Unset == 0 }

// Merge returns a with b applied on top, as a Write-Attributes b changes
// what a level had: b's values replace a's, b's unset attributes are
// removed.
func (a Attributes) Merge(b Attributes) Attributes {
	for x := Attr(1); x < attrEnd; x <<= 1 {
		switch {
		case b.Set&x != 0:
			a.copyFrom(b, x)
			a.Set |= x
		case b.Unset&x != 0:
			a.Set &^= x
			a.copyFrom(Attributes{}, x)
		}
	}
	a.Unset = 0
	return a
}

func (a *Attributes) copyFrom(b Attributes, x Attr) {
	switch x {
	case AttrDim:
		a.Dim = b.Dim
	case AttrSSID:
		a.SSID = b.SSID
	case AttrURI:
		a.URI = b.URI
	case AttrVer:
		a.Ver = b.Ver
	case AttrLwM2M:
		a.LwM2M = b.LwM2M
	case AttrPMin:
		a.PMin = b.PMin
	case AttrPMax:
		a.PMax = b.PMax
	case AttrGT:
		a.GT = b.GT
	case AttrLT:
		a.LT = b.LT
	case AttrST:
		a.ST = b.ST
	case AttrEPMin:
		a.EPMin = b.EPMin
	case AttrEPMax:
		a.EPMax = b.EPMax
	case AttrEdge:
		a.Edge = b.Edge
	case AttrCon:
		a.Con = b.Con
	case AttrHQMax:
		a.HQMax = b.HQMax
	}
}

// ErrAttribute is wrapped by every error about an attribute: a value the
// attribute cannot take, an unknown or repeated name, or a set of values
// that breaks a rule of the specification. A server answers it with 4.00.
// The errors also wrap objects.ErrType (not a number, not the syntax) or
// objects.ErrRange (a number out of range, a rule broken).
var ErrAttribute = errors.New("invalid LwM2M attribute")

type attrError struct {
	msg  string
	kind error
}

func (e *attrError) Error() string   { return "linkformat: " + e.msg }
func (e *attrError) Unwrap() []error { return []error{ErrAttribute, e.kind} }

func attrErr(kind error, msg string) error { return &attrError{msg: msg, kind: kind} }

// ParseAttributes reads the LwM2M attributes among a link's parameters
// and checks them, one by one and together (Validate). Parameters that are
// not LwM2M attributes (rt, ct, obs, title, ...) are ignored, as Core 1.1
// §6.2.1 asks of a server.
func ParseAttributes(params []Param) (Attributes, error) {
	a, _, err := parseParams(params, true)
	return a, err
}

// ParseQuery reads the attributes of a Write-Attributes request (or of an
// Observe with attributes, LwM2M 1.2) from its URI query options, one
// "name=value" or "name" per element: "pmin=10", "gt=5.5", "st" (unset st).
// Unlike ParseAttributes it rejects names that are not LwM2M attributes:
// the query of Write-Attributes holds nothing else.
func ParseQuery(query []string) (Attributes, error) {
	params := make([]Param, len(query))
	for i, q := range query {
		name, value, has := strings.Cut(q, "=")
		if _, ok := ParseAttr(name); !ok {
			return Attributes{}, attrErr(objects.ErrType, "query "+strconv.Quote(short(q))+": not an LwM2M attribute")
		}
		params[i] = Param{Name: name, Value: value, HasValue: has}
	}
	a, _, err := parseParams(params, true)
	return a, err
}

// parseParams sorts params into attributes and the rest. rules asks for
// Validate; a Discover answer is read without it, since a client reports
// there values inherited from several levels that need not agree.
func parseParams(params []Param, rules bool) (Attributes, []Param, error) {
	var a Attributes
	var other []Param
	for _, p := range params {
		x, ok := ParseAttr(p.Name)
		if !ok {
			other = append(other, p)
			continue
		}
		if (a.Set|a.Unset)&x != 0 {
			return Attributes{}, nil, attrErr(objects.ErrType, "attribute "+p.Name+" given twice")
		}
		if !p.HasValue {
			a.Unset |= x
			continue
		}
		if err := a.setValue(x, p.Value); err != nil {
			return Attributes{}, nil, err
		}
		a.Set |= x
	}
	if rules {
		if err := a.Validate(); err != nil {
			return Attributes{}, nil, err
		}
	}
	return a, other, nil
}

// setValue parses the text of one attribute into its field.
func (a *Attributes) setValue(x Attr, s string) error {
	var err error
	switch x {
	case AttrDim:
		var n uint64
		if n, err = parseUint(x, s, 255); err == nil {
			a.Dim = uint8(n)
		}
	case AttrSSID:
		var n uint64
		if n, err = parseUint(x, s, 65534); err == nil {
			if n == 0 {
				// Core 1.2 "Identifiers": 0 and 65535 are reserved.
				return attrErr(objects.ErrRange, "attribute ssid=0: Short Server ID 0 is reserved")
			}
			a.SSID = uint16(n)
		}
	case AttrURI:
		a.URI = s
	case AttrVer:
		a.Ver, err = parseVersion(x, s)
	case AttrLwM2M:
		a.LwM2M, err = parseVersion(x, s)
	case AttrPMin:
		a.PMin, err = parseUint(x, s, math.MaxUint64)
	case AttrPMax:
		a.PMax, err = parseUint(x, s, math.MaxUint64)
	case AttrEPMin:
		a.EPMin, err = parseUint(x, s, math.MaxUint64)
	case AttrEPMax:
		a.EPMax, err = parseUint(x, s, math.MaxUint64)
	case AttrHQMax:
		a.HQMax, err = parseUint(x, s, math.MaxUint64)
	case AttrGT:
		a.GT, err = parseFloat(x, s)
	case AttrLT:
		a.LT, err = parseFloat(x, s)
	case AttrST:
		if a.ST, err = parseFloat(x, s); err == nil && a.ST < 0 {
			return attrErr(objects.ErrRange, "attribute st="+s+": a step cannot be negative")
		}
	case AttrEdge:
		a.Edge, err = parseBit(x, s)
	case AttrCon:
		a.Con, err = parseBit(x, s)
	}
	return err
}

// parseUint reads 1*DIGIT no larger than max.
func parseUint(x Attr, s string, max uint64) (uint64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		if len(s) > 1 && s[0] == '-' && strings.Trim(s[1:], "0123456789") == "" {
			return 0, attrErr(objects.ErrRange, "attribute "+x.String()+"="+s+": must be an integer ≥ 0")
		}
		return 0, attrErr(objects.ErrType, "attribute "+x.String()+"="+strconv.Quote(short(s))+": not an integer")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, attrErr(objects.ErrRange, "attribute "+x.String()+"="+short(s)+": larger than "+strconv.FormatUint(max, 10))
	}
	return n, nil
}

// parseFloat reads a decimal number, with an optional sign, fraction and
// exponent. Core 1.2 writes gt, lt and st as 1*DIGIT ["." 1*DIGIT], but
// thresholds below zero are common (temperatures) and some clients print
// exponents; hexadecimal floats, infinities and NaN are refused.
func parseFloat(x Attr, s string) (float64, error) {
	if s == "" || strings.Trim(s, "0123456789+-.eE") != "" {
		return 0, attrErr(objects.ErrType, "attribute "+x.String()+"="+strconv.Quote(short(s))+": not a decimal number")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, attrErr(objects.ErrRange, "attribute "+x.String()+"="+short(s)+": out of the range of a float")
		}
		return 0, attrErr(objects.ErrType, "attribute "+x.String()+"="+strconv.Quote(short(s))+": not a decimal number")
	}
	return f, nil
}

func parseBit(x Attr, s string) (bool, error) {
	switch s {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, attrErr(objects.ErrRange, "attribute "+x.String()+"="+strconv.Quote(short(s))+": must be 0 or 1")
}

// parseVersion reads "major.minor" (Core 1.2 Table "<PROPERTIES> Class
// Attributes": 1*DIGIT "." 1*DIGIT). A bare major ("2") is read as "2.0".
func parseVersion(x Attr, s string) (string, error) {
	maj, min, dot := strings.Cut(s, ".")
	if !dot {
		min = "0"
	}
	if !digits(maj) || !digits(min) {
		return "", attrErr(objects.ErrType, "attribute "+x.String()+"="+strconv.Quote(short(s))+": not a version major.minor")
	}
	return maj + "." + min, nil
}

func digits(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	return strings.Trim(s, "0123456789") == ""
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Validate checks the rules between attributes of LwM2M Core 1.1 §5.1.2
// and 1.2 "Attributes Classification":
//
//   - lt < gt, and lt + 2*st < gt, when they are set together;
//   - pmax ≥ pmin when both are set, except pmax=0, which 1.2 defines as
//     "no maximum period";
//   - epmin < epmax when both are set;
//
// and that no attribute is both set and unset. Values out of their own
// range cannot be built by the parsers; Validate checks those too (dim,
// ssid, edge, con are typed to fit), so that hand-made Attributes are
// checked before they are sent.
func (a Attributes) Validate() error {
	if both := a.Set & a.Unset; both != 0 {
		return attrErr(objects.ErrType, "attribute "+both.String()+" both set and unset")
	}
	if a.Has(AttrLT|AttrGT) && !(a.LT < a.GT) {
		return attrErr(objects.ErrRange, "lt="+objects.FormatFloat(a.LT)+" must be less than gt="+objects.FormatFloat(a.GT))
	}
	if a.Has(AttrLT|AttrGT|AttrST) && !(a.LT+2*a.ST < a.GT) {
		return attrErr(objects.ErrRange, "lt + 2*st must be less than gt (lt="+objects.FormatFloat(a.LT)+", st="+objects.FormatFloat(a.ST)+", gt="+objects.FormatFloat(a.GT)+")")
	}
	if a.Has(AttrPMin|AttrPMax) && a.PMax != 0 && a.PMax < a.PMin {
		return attrErr(objects.ErrRange, "pmax="+strconv.FormatUint(a.PMax, 10)+" is smaller than pmin="+strconv.FormatUint(a.PMin, 10))
	}
	if a.Has(AttrEPMin|AttrEPMax) && !(a.EPMin < a.EPMax) {
		return attrErr(objects.ErrRange, "epmin="+strconv.FormatUint(a.EPMin, 10)+" must be less than epmax="+strconv.FormatUint(a.EPMax, 10))
	}
	for _, x := range []Attr{AttrGT, AttrLT, AttrST} {
		if a.Has(x) {
			f := a.float(x)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return attrErr(objects.ErrRange, "attribute "+x.String()+" is not a finite number")
			}
		}
	}
	if a.Has(AttrST) && a.ST < 0 {
		return attrErr(objects.ErrRange, "attribute st is negative")
	}
	if a.Has(AttrSSID) && (a.SSID == 0 || a.SSID == 65535) {
		return attrErr(objects.ErrRange, "attribute ssid="+strconv.Itoa(int(a.SSID))+" is reserved")
	}
	for _, x := range []Attr{AttrVer, AttrLwM2M} {
		if a.Has(x) {
			if _, err := parseVersion(x, a.text(x)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a Attributes) float(x Attr) float64 {
	switch x {
	case AttrGT:
		return a.GT
	case AttrLT:
		return a.LT
	}
	return a.ST
}

// text returns the value of attribute x as it travels.
func (a Attributes) text(x Attr) string {
	switch x {
	case AttrDim:
		return strconv.Itoa(int(a.Dim))
	case AttrSSID:
		return strconv.Itoa(int(a.SSID))
	case AttrURI:
		return a.URI
	case AttrVer:
		return a.Ver
	case AttrLwM2M:
		return a.LwM2M
	case AttrPMin:
		return strconv.FormatUint(a.PMin, 10)
	case AttrPMax:
		return strconv.FormatUint(a.PMax, 10)
	case AttrGT:
		return objects.FormatFloat(a.GT)
	case AttrLT:
		return objects.FormatFloat(a.LT)
	case AttrST:
		return objects.FormatFloat(a.ST)
	case AttrEPMin:
		return strconv.FormatUint(a.EPMin, 10)
	case AttrEPMax:
		return strconv.FormatUint(a.EPMax, 10)
	case AttrEdge:
		return bit(a.Edge)
	case AttrCon:
		return bit(a.Con)
	case AttrHQMax:
		return strconv.FormatUint(a.HQMax, 10)
	}
	return ""
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Query returns the attributes as URI query options for Write-Attributes:
// "pmin=10", "gt=50", and a bare name for each unset attribute, in the
// order of the Attr constants. It writes what a holds; call Validate first
// for attributes built by hand.
func (a Attributes) Query() []string {
	var q []string
	for x := Attr(1); x < attrEnd; x <<= 1 {
		if a.Set&x != 0 {
			q = append(q, x.String()+"="+a.text(x))
		}
	}
	for x := Attr(1); x < attrEnd; x <<= 1 {
		if a.Unset&x != 0 && a.Set&x == 0 {
			q = append(q, x.String())
		}
	}
	return q
}

// Params returns the attributes as link parameters, as a Discover answer
// carries them. uri is a quoted-string (Core 1.2 Table "<PROPERTIES> Class
// Attributes"); the other values are bare tokens.
func (a Attributes) Params() []Param {
	var ps []Param
	for x := Attr(1); x < attrEnd; x <<= 1 {
		if a.Set&x != 0 {
			ps = append(ps, Param{Name: x.String(), Value: a.text(x), HasValue: true, Quoted: x == AttrURI})
		}
	}
	for x := Attr(1); x < attrEnd; x <<= 1 {
		if a.Unset&x != 0 && a.Set&x == 0 {
			ps = append(ps, Param{Name: x.String()})
		}
	}
	return ps
}
