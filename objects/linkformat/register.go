package linkformat

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lwm2md/lwm2md/objects"
)

// Registration is what the payload of a Register (or of an Update that
// carries one) announces: LwM2M Core 1.1 §6.2.1, 1.2 "Register Operation".
type Registration struct {
	// Root is the alternate path under which the client hosts its objects,
	// from the link with rt="oma.lwm2m" ("/lwm2m"), or "/" (LwM2M
	// Transport 1.1 "Alternate Path").
	Root string
	// Formats are the content formats the client announces with ct on the
	// root link ("</>;ct=110" or ct="110 112 60"), in the order given.
	Formats []objects.Format
	// Objects are the announced objects in the order they first appear.
	Objects []Object
}

// Object is one announced object: from a bare object link ("</2>"), an
// object link with a version ("</1>;ver=1.1"), or only its instance links
// ("</1/1>").
type Object struct {
	ID uint16
	// Version is the ver attribute, "1.0" when the client gave none (the
	// default of Core 1.1 Table "<PROPERTIES> Class Attributes"). For a core
	// object a missing ver means the version of the client's enabler
	// release (Core 1.2 "Object Definition and Object Version Usage"), so
	// HasVersion tells the two cases apart.
	Version    string
	HasVersion bool
	// Instances are the instance IDs, in the order announced, each once.
	Instances []uint16
}

// Object returns the announced object id, or nil.
func (r *Registration) Object(id uint16) *Object {
	for i := range r.Objects {
		if r.Objects[i].ID == id {
			return &r.Objects[i]
		}
	}
	return nil
}

// HasInstance reports whether instance i of object o was announced.
func (r *Registration) HasInstance(o, i uint16) bool {
	if obj := r.Object(o); obj != nil {
		for _, id := range obj.Instances {
			if id == i {
				return true
			}
		}
	}
	return false
}

// ParseRegistration reads a Register or Update payload. An empty payload
// is a registration without objects (allowed since LwM2M 1.2, where a
// Profile ID may stand for the list). It fails on malformed link-format, on
// a link that is not an LwM2M path under the root, on IDs out of range
// (MAX_ID 65535 names no object or instance: Core 1.2 "Identifiers"), on a
// bad ver or ct value and on two different versions for one object. Links
// to resources are ignored (they have no place in a registration); other
// parameters are ignored as Core 1.1 §6.2.1 asks.
//
// Security (/0) and OSCORE (/21) objects, which a client must not
// announce, are reported like any other: what to do with them is the
// registration handler's call.
func ParseRegistration(data []byte) (*Registration, error) {
	links, offs, err := parse(data)
	if err != nil {
		return nil, err
	}
	r := &Registration{Root: "/"}
	idx := seen{objects: map[uint16]int{}, instances: map[uint32]struct{}{}}
	rootLink := -1
	for i, l := range links {
		if hasRT(l, "oma.lwm2m") {
			if rootLink >= 0 {
				return nil, linkErr(offs[i], l, objects.ErrMalformed, `a second link with rt="oma.lwm2m"`)
			}
			rootLink = i
		}
	}
	if rootLink >= 0 {
		root, err := alternateRoot(links[rootLink].Target)
		if err != nil {
			return nil, linkErr(offs[rootLink], links[rootLink], objects.ErrMalformed, err.Error())
		}
		r.Root = root
	}
	for i, l := range links {
		if i == rootLink || l.Target == r.Root || l.Target == r.Root+"/" {
			// The root link, or the plain "</>" link that carries ct.
			if err := r.addFormats(l); err != nil {
				return nil, linkErr(offs[i], l, objects.ErrType, err.Error())
			}
			continue
		}
		p, err := pathUnder(r.Root, l.Target)
		if err != nil {
			return nil, linkErr(offs[i], l, kindOf(err, objects.ErrMalformed), err.Error())
		}
		if p.Len() > 2 {
			continue
		}
		if err := r.add(p, l, &idx); err != nil {
			return nil, linkErr(offs[i], l, kindOf(err, objects.ErrType), err.Error())
		}
	}
	return r, nil
}

// errMaxID: MAX_ID 65535 names no object or instance (Core 1.2
// "Identifiers").
const errMaxID = rangeError("ID 65535 (MAX_ID) names no object or instance")

// seen indexes what a registration holds while it is parsed, so that a
// payload of many thousand links takes linear time: the position of each
// object in Objects and the announced instances.
type seen struct {
	objects   map[uint16]int
	instances map[uint32]struct{}
}

// add records the object or instance p of link l.
func (r *Registration) add(p objects.Path, l Link, s *seen) error {
	if p.Object() == objects.MaxID || (p.Len() == 2 && p.Instance() == objects.MaxID) {
		return errMaxID
	}
	k, ok := s.objects[p.Object()]
	if !ok {
		k = len(r.Objects)
		s.objects[p.Object()] = k
		r.Objects = append(r.Objects, Object{ID: p.Object(), Version: "1.0"})
	}
	o := &r.Objects[k]
	if v, ok := l.Param("ver"); ok {
		ver, err := parseVersion(AttrVer, v)
		if err != nil {
			return fmt.Errorf("ver=%q is not a version major.minor", short(v))
		}
		if o.HasVersion && o.Version != ver {
			return fmt.Errorf("object %d announced as version %s and %s", o.ID, o.Version, ver)
		}
		o.Version, o.HasVersion = ver, true
	}
	if p.Len() == 2 {
		key := uint32(p.Object())<<16 | uint32(p.Instance())
		if _, dup := s.instances[key]; !dup {
			s.instances[key] = struct{}{}
			o.Instances = append(o.Instances, p.Instance())
		}
	}
	return nil
}

// addFormats reads ct, a number or a quoted list of numbers separated by
// spaces (Core 1.2 "Register Operation": ct="110 112 60").
func (r *Registration) addFormats(l Link) error {
	for _, p := range l.Params {
		if !strings.EqualFold(p.Name, "ct") || !p.HasValue {
			continue
		}
		for _, f := range strings.Fields(p.Value) {
			n, err := strconv.ParseUint(f, 10, 16)
			if err != nil {
				return fmt.Errorf("ct %q is not a content format number", short(f))
			}
			r.Formats = append(r.Formats, objects.Format(n))
		}
	}
	return nil
}

// hasRT reports whether l's rt parameter lists resource type t (rt is a
// space-separated list, RFC 6690 §3.1).
func hasRT(l Link, t string) bool {
	for _, p := range l.Params {
		if strings.EqualFold(p.Name, "rt") {
			for _, f := range strings.Fields(p.Value) {
				if f == t {
					return true
				}
			}
		}
	}
	return false
}

// alternateRoot checks the target of the rt="oma.lwm2m" link: an absolute
// path without numerical segments (Transport 1.1 "Alternate Path": "This
// link MUST NOT contain numerical URI segment"), returned without a
// trailing slash.
func alternateRoot(t string) (string, error) {
	if !strings.HasPrefix(t, "/") {
		return "", fmt.Errorf("the root path must start with /")
	}
	if t == "/" {
		return t, nil
	}
	t = strings.TrimSuffix(t, "/")
	for _, seg := range strings.Split(t[1:], "/") {
		if seg == "" {
			return "", fmt.Errorf("the root path has an empty segment")
		}
		if strings.Trim(seg, "0123456789") == "" {
			return "", fmt.Errorf("the root path has a numerical segment %q", seg)
		}
		if strings.ContainsAny(seg, "?#") {
			return "", fmt.Errorf("the root path has a query or fragment")
		}
	}
	return t, nil
}

// pathUnder returns the LwM2M path of target, which must lie under root.
func pathUnder(root, target string) (objects.Path, error) {
	rel := target
	if root != "/" {
		if !strings.HasPrefix(target, root+"/") {
			return objects.Path{}, fmt.Errorf("not under the root path %s", root)
		}
		rel = target[len(root):]
	}
	p, err := objects.ParsePath(rel)
	if err != nil {
		if allNumeric(rel) {
			return objects.Path{}, rangeError("an ID is larger than 65535")
		}
		return objects.Path{}, fmt.Errorf("not an LwM2M path")
	}
	if p.IsRoot() {
		return objects.Path{}, fmt.Errorf("not an object or instance path")
	}
	return p, nil
}

// rangeError is an ID out of range, reported with objects.ErrRange.
type rangeError string

func (e rangeError) Error() string { return string(e) }

func kindOf(err error, other error) error {
	if _, ok := err.(rangeError); ok {
		return objects.ErrRange
	}
	return other
}

// allNumeric reports whether an absolute path of at most four segments is
// all IDs written without leading zeros, so that a parse failure means an
// ID out of range and not a bad path.
func allNumeric(s string) bool {
	s = strings.TrimSuffix(s, "/")
	if !strings.HasPrefix(s, "/") || len(s) < 2 {
		return false
	}
	segs := strings.Split(s[1:], "/")
	if len(segs) > 4 {
		return false
	}
	for _, seg := range segs {
		if seg == "" || strings.Trim(seg, "0123456789") != "" || (len(seg) > 1 && seg[0] == '0') {
			return false
		}
	}
	return true
}

// linkErr is the error about link l, which starts at byte off.
func linkErr(off int, l Link, kind error, msg string) error {
	return &objects.DecodeError{
		Format: objects.FormatLinkFormat,
		Offset: off,
		Err:    fmt.Errorf("link <%s>: %s: %w", short(l.Target), msg, kind),
	}
}

// EncodeRegistration writes the payload of a Register for the client
// engine: the root link when there is an alternate path
// (`</lwm2m>;rt="oma.lwm2m"`) or content formats to announce (`</>;ct=110`),
// then each object: a bare object link when it has no instance, an object
// link with ver before its instances when the version is not the default
// ("</1>;ver=1.1,</1/0>", as 1.2 "Object Versioning" example 2 writes it),
// and its instance links.
func EncodeRegistration(r *Registration) []byte {
	root := r.Root
	if root == "" {
		root = "/"
	}
	root = strings.TrimSuffix(root, "/")
	var links []Link
	if root != "" || len(r.Formats) > 0 {
		target := root
		if target == "" {
			target = "/"
		}
		l := Link{Target: target}
		if root != "" {
			l.Params = append(l.Params, Param{Name: "rt", Value: "oma.lwm2m", Quoted: true, HasValue: true})
		}
		if len(r.Formats) > 0 {
			var cts []string
			for _, f := range r.Formats {
				cts = append(cts, strconv.Itoa(int(f)))
			}
			l.Params = append(l.Params, Param{Name: "ct", Value: strings.Join(cts, " "), Quoted: len(cts) > 1, HasValue: true})
		}
		links = append(links, l)
	}
	for _, o := range r.Objects {
		obj := root + "/" + strconv.Itoa(int(o.ID))
		withVer := o.HasVersion || (o.Version != "" && o.Version != "1.0")
		if len(o.Instances) == 0 || withVer {
			l := Link{Target: obj}
			if withVer {
				v := o.Version
				if v == "" {
					v = "1.0"
				}
				l.Params = []Param{{Name: "ver", Value: v, HasValue: true}}
			}
			links = append(links, l)
		}
		for _, i := range o.Instances {
			links = append(links, Link{Target: obj + "/" + strconv.Itoa(int(i))})
		}
	}
	return Encode(links)
}
