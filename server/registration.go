package server

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
)

// DefaultLifetime is the lifetime of a registration whose Register has no
// lt parameter (LwM2M Core 1.1 §6.2.1, Table "Register parameters").
const DefaultLifetime = 86400 * time.Second

// Registration is one device's registration: what its Register (and later
// Updates) said, and where it was sent from. A Registration is immutable
// once stored: an Update stores a new value. Values handed out by the
// server and the Store are shared and must not be modified.
type Registration struct {
	ID       string // the registration ID, the {id} of Location-Path rd/{id}
	Endpoint string // ep
	// Addr is the device's address: the source of its last Register or
	// Update, where requests go.
	Addr netip.AddrPort
	// Lifetime is lt (DefaultLifetime when absent); zero means no expiry,
	// which only LwM2M 1.2 allows (lt=0).
	Lifetime  time.Duration
	Binding   string // b: "U", "UQ" (1.0), "UT", ... ("U" when absent)
	QueueMode bool   // Q (1.1+) or a Q in the 1.0 binding
	SMSNumber string // sms (MSISDN)
	Version   string // lwm2m, "1.0" when absent
	// Root is the alternate path the device hosts its objects under
	// ("/lwm2m"), or "/".
	Root string
	// Formats are the content formats the device announced with ct on
	// its root link, in its order.
	Formats []objects.Format
	// Objects are the announced objects with their versions and
	// instances, in the order of the payload (Security and OSCORE, which a
	// device must not announce, are left out).
	Objects []linkformat.Object
	// ObjectVersions is the object version in force for each announced
	// object, for the device's Models: the ver attribute; for a core
	// object without one, the version the device's LwM2M release defines
	// (Core 1.2 "Object Versioning"; see objectVersions); else 1.0.
	ObjectVersions map[uint16]string
	// Params are the query parameters of the Register that LwM2M does not
	// define (kept, not interpreted, as Core 1.1 §6.2.1 lets a server do).
	Params map[string]string

	RegisteredAt time.Time // Register
	UpdatedAt    time.Time // last Register or Update: the lifetime counts from here
}

// ExpiresAt is when the registration ends without an Update: UpdatedAt +
// Lifetime + grace. It is the zero time when the registration never
// expires.
func (r *Registration) ExpiresAt(grace time.Duration) time.Time {
	if r.Lifetime == 0 {
		return time.Time{}
	}
	return r.UpdatedAt.Add(r.Lifetime + grace)
}

// Location is the Location-Path the device uses for Update and
// De-register: "/rd/{id}".
func (r *Registration) Location() string { return "/rd/" + r.ID }

// HasObject reports whether the device announced object id.
func (r *Registration) HasObject(id uint16) bool {
	for i := range r.Objects {
		if r.Objects[i].ID == id {
			return true
		}
	}
	return false
}

// clone returns a shallow copy whose maps and slices may be replaced (not
// changed in place) by the caller.
func (r *Registration) clone() *Registration {
	c := *r
	return &c
}

// PreferredFormat is the content format lwm2md uses for requests to the
// device when the caller does not force one (LwM2M Core 1.1 §7.1 and 1.2
// "Data Formats"): TLV for LwM2M 1.0; for 1.1 and later the first of SenML
// CBOR, SenML JSON and TLV that the device announced with ct, and TLV
// when it announced none of them (TLV is the one both field clients and
// every 1.x release support).
func (r *Registration) PreferredFormat() objects.Format {
	if r.is10() {
		return objects.FormatTLV
	}
	if f, ok := r.firstAnnounced(objects.FormatSenMLCBOR, objects.FormatSenMLJSON, objects.FormatTLV); ok {
		return f
	}
	return objects.FormatTLV
}

// newRegistrationID returns 80 random bits as 16 lower-case base32
// characters: unguessable, and plain in a URI path.
func newRegistrationID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:])), nil
}

// regParams are the query parameters of a Register or Update (LwM2M Core
// 1.1 §6.2.1 and §6.2.2).
type regParams struct {
	endpoint   string
	lifetime   time.Duration
	hasLT      bool
	version    string
	hasVersion bool
	binding    string
	hasBinding bool
	queue      bool
	sms        string
	hasSMS     bool
	other      map[string]string
}

// maxLifetime bounds lt so that UpdatedAt + Lifetime cannot overflow.
const maxLifetime = 1<<32 - 1

// parseRegParams reads the URI query of a Register (register true) or an
// Update. It rejects repeated and malformed parameters and, for an Update,
// parameters an Update cannot change.
func parseRegParams(query []string, register bool) (regParams, error) {
	var p regParams
	seen := make(map[string]bool, len(query))
	for _, q := range query {
		name, value, hasValue := strings.Cut(q, "=")
		if name == "" {
			return p, fmt.Errorf("empty query parameter %q", q)
		}
		if seen[name] {
			return p, fmt.Errorf("parameter %s given twice", name)
		}
		seen[name] = true
		switch name {
		case "ep":
			if !register {
				return p, fmt.Errorf("an Update cannot change the endpoint name")
			}
			if value == "" {
				return p, fmt.Errorf("empty endpoint name")
			}
			p.endpoint = value
		case "lt":
			n, err := strconv.ParseUint(value, 10, 64)
			if err != nil || n > maxLifetime {
				return p, fmt.Errorf("lifetime %q is not a number of seconds", value)
			}
			p.lifetime, p.hasLT = time.Duration(n)*time.Second, true
		case "lwm2m":
			if !register {
				return p, fmt.Errorf("an Update cannot change the LwM2M version")
			}
			v, err := objects.ParseVersion(value)
			if err != nil {
				return p, fmt.Errorf("LwM2M version %q: %v", value, err)
			}
			p.version, p.hasVersion = v.String(), true
		case "b":
			b, q, err := parseBinding(value)
			if err != nil {
				return p, err
			}
			p.binding, p.hasBinding = b, true
			p.queue = p.queue || q
		case "Q":
			if hasValue {
				return p, fmt.Errorf("queue mode parameter Q takes no value")
			}
			p.queue = true
		case "sms":
			p.sms, p.hasSMS = value, true
		default:
			if p.other == nil {
				p.other = make(map[string]string)
			}
			p.other[name] = value
		}
	}
	if register && p.endpoint == "" {
		return p, fmt.Errorf("missing endpoint name (ep)")
	}
	return p, nil
}

// parseBinding checks a binding mode: the letters of LwM2M 1.1 and 1.2 (U
// UDP, T TCP, S SMS, N non-IP, M MQTT, H HTTP) each at most once, and Q,
// the queue mode of LwM2M 1.0 bindings ("UQ", "UQS"). It returns the
// binding as given and whether it holds Q.
func parseBinding(b string) (string, bool, error) {
	if b == "" {
		return "", false, fmt.Errorf("empty binding mode")
	}
	var seen [128]bool
	queue := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !strings.ContainsRune("UTSNMHQ", rune(c)) {
			return "", false, fmt.Errorf("binding mode %q: unknown binding %q", b, string(c))
		}
		if seen[c] {
			return "", false, fmt.Errorf("binding mode %q: %q given twice", b, string(c))
		}
		seen[c] = true
		queue = queue || c == 'Q'
	}
	return b, queue, nil
}

// coreObjects are the objects the LwM2M Core specification defines, whose
// version without a ver attribute follows the client's LwM2M release.
var coreObjects = map[uint16]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 21: true}

// objectVersions picks the version in force for each announced object.
// Core 1.2 "Object Versioning": an object announced without ver is at 1.0,
// except a core object, which is at the version the client's LwM2M release
// defines. lwm2md reads that as the newest version of the object that is
// not above the release (by number) and was written for the release or an
// earlier one: Device 1.1 for an LwM2M 1.1 client, 1.2 for a 1.2 one.
func objectVersions(models *objects.Registry, lwm2m string, objs []linkformat.Object) map[uint16]string {
	vers := make(map[uint16]string, len(objs))
	for _, o := range objs {
		switch {
		case o.HasVersion:
			vers[o.ID] = o.Version
		case coreObjects[o.ID]:
			vers[o.ID] = coreVersion(models, o.ID, lwm2m)
		default:
			vers[o.ID] = "1.0"
		}
	}
	return vers
}

func coreVersion(models *objects.Registry, id uint16, lwm2m string) string {
	best := "1.0"
	for _, v := range models.Versions(id) { // oldest first
		d := models.Get(id, v)
		if d == nil || objects.CompareVersions(v, lwm2m) > 0 {
			continue
		}
		if d.LwM2MVersion == "" || objects.CompareVersions(d.LwM2MVersion, lwm2m) <= 0 {
			best = v
		}
	}
	return best
}

// announced drops the objects a device must not announce (Security and
// OSCORE: LwM2M Core 1.1 §6.2.1) from a parsed payload.
func announced(objs []linkformat.Object) []linkformat.Object {
	out := make([]linkformat.Object, 0, len(objs))
	for _, o := range objs {
		if o.ID == 0 || o.ID == 21 {
			continue
		}
		out = append(out, o)
	}
	return out
}

// is10 reports an LwM2M 1.0 registration (or one whose version does not
// parse, which the registration interface refuses anyway).
func (r *Registration) is10() bool {
	v, err := objects.ParseVersion(r.Version)
	return err != nil || (v.Major == 1 && v.Minor == 0)
}

// compositeFormat is the format of composite operations: the first of
// SenML CBOR and SenML JSON the device announced, else SenML JSON, which
// more 1.1 clients read than SenML CBOR (Wakaama's default build, for
// one).
func (r *Registration) compositeFormat() objects.Format {
	if f, ok := r.firstAnnounced(objects.FormatSenMLCBOR, objects.FormatSenMLJSON); ok {
		return f
	}
	return objects.FormatSenMLJSON
}

// firstAnnounced returns the first of wants the device announced with ct.
func (r *Registration) firstAnnounced(wants ...objects.Format) (objects.Format, bool) {
	for _, want := range wants {
		for _, f := range r.Formats {
			if f.Canonical() == want {
				return want, true
			}
		}
	}
	return 0, false
}
