package bootstrap

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
)

// ErrInvalidConfig is wrapped by every error about a configuration or a
// template: the message names the field.
var ErrInvalidConfig = errors.New("invalid bootstrap configuration")

// Configuration is what the bootstrap server writes to a device: its
// LwM2M server accounts and any other object instances. Its JSON form is
// the one the registry stores and the REST API exposes (docs/bootstrap.md).
type Configuration struct {
	// Delete are the paths of the BS-Delete step, in order. Absent: "/0"
	// and "/1" (and "/21" for a 1.1+ device that has OSCORE instances):
	// every server account but the Bootstrap-Server account, which the
	// device keeps (Core 1.1 §5.2.7.5). ["/"] deletes every instance but
	// that account and the Device object. An empty list deletes nothing.
	Delete []string `json:"delete,omitempty"`
	// Read asks for a BS-Read of the Server object (/1) before the
	// writes, for LwM2M 1.1+ devices. Absent: true.
	Read *bool `json:"read,omitempty"`
	// Format is the content format of the BS-Writes ("tlv", "senml-cbor",
	// 11542, ...). Absent: the device's preferred format (pct) when it can
	// carry an instance, else TLV, the format every LwM2M 1.x client has.
	Format string `json:"format,omitempty"`
	// Servers are the LwM2M server accounts: one Security (0) and one
	// Server (1) instance each, and an OSCORE (21) instance when given.
	Servers []ServerAccount `json:"servers"`
	// Instances are other object instances to write.
	Instances []InstanceConfig `json:"instances,omitempty"`
	// Retries is how many times a failed sequence is repeated over the
	// same association (0..10), RetryDelay the pause before each, in
	// seconds (default 5).
	Retries    int     `json:"retries,omitempty"`
	RetryDelay float64 `json:"retryDelay,omitempty"`
}

// retryDelay is RetryDelay as a duration.
func (c *Configuration) retryDelay() time.Duration {
	if c.RetryDelay <= 0 {
		return 5 * time.Second
	}
	return time.Duration(c.RetryDelay * float64(time.Second))
}

// ServerAccount is one LwM2M server account.
type ServerAccount struct {
	URI           string `json:"uri"`           // "coap://host:5683", "coaps://host:5684"
	ShortServerID uint16 `json:"shortServerId"` // 1..65534
	Lifetime      int64  `json:"lifetime"`      // seconds, default 86400
	Binding       string `json:"binding,omitempty"`
	// DefaultMinPeriod and DefaultMaxPeriod (seconds) fill the Server
	// object's resources 2 and 3 when set.
	DefaultMinPeriod *int64 `json:"defaultMinPeriod,omitempty"`
	DefaultMaxPeriod *int64 `json:"defaultMaxPeriod,omitempty"`
	// NotificationStoring is resource 6 (absent: true).
	NotificationStoring *bool `json:"notificationStoring,omitempty"`
	// MuteSend is resource 23 (LwM2M 1.1+; not written when absent). A
	// client without it may not Send (Core 1.1 Appendix E.2: "if true or
	// the Resource is not present, the Send capability is de-activated").
	MuteSend *bool `json:"muteSend,omitempty"`
	// SecurityInstance and ServerInstance choose the instance IDs;
	// absent, the bootstrap server picks free ones.
	SecurityInstance *uint16       `json:"securityInstance,omitempty"`
	ServerInstance   *uint16       `json:"serverInstance,omitempty"`
	Security         Security      `json:"security"`
	OSCORE           *OSCOREConfig `json:"oscore,omitempty"`
}

// The security modes of the Security object's resource 2.
const (
	ModePSK   = "psk"   // 0
	ModeRPK   = "rpk"   // 1
	ModeX509  = "x509"  // 2
	ModeNoSec = "nosec" // 3
)

// Security are the credentials of one account.
type Security struct {
	Mode string `json:"mode"` // "nosec" (default), "psk", "rpk", "x509"
	// PSKIdentity and PSKKey (hex) are the PSK; GeneratePSK makes the
	// bootstrap server draw a new 16-byte key at each bootstrap (and use
	// the endpoint name as identity when PSKIdentity is empty). Either
	// way the PSK is also stored as the device's credential, for the
	// LwM2M server's DTLS handshake.
	PSKIdentity string `json:"pskIdentity,omitempty"`
	PSKKey      Hex    `json:"pskKey,omitempty"`
	GeneratePSK bool   `json:"generatePsk,omitempty"`
	// Certificate, PrivateKey and ServerCertificate (base64 DER) are the
	// client's certificate or raw public key, its private key and the
	// server's certificate or key, for "x509" and "rpk".
	Certificate       []byte `json:"certificate,omitempty"`
	PrivateKey        []byte `json:"privateKey,omitempty"`
	ServerCertificate []byte `json:"serverCertificate,omitempty"`
	// KeepCertificate ("x509" only, without certificate and privateKey):
	// the device keeps the certificate it bootstrapped with over DTLS
	// (provisioning by claim with a factory CA). The bootstrap server
	// writes that certificate as resource 3, leaves the secret key
	// (resource 5) empty, as it never holds the device's private key, and
	// binds the certificate to the endpoint in the registry, so that the
	// LwM2M server's handshake accepts it.
	KeepCertificate bool `json:"keepCertificate,omitempty"`
}

// OSCOREConfig is an OSCORE security context (object 21, RFC 8613).
type OSCOREConfig struct {
	MasterSecret  string  `json:"masterSecret"`
	SenderID      string  `json:"senderId"`
	RecipientID   string  `json:"recipientId"`
	AEADAlgorithm *int64  `json:"aeadAlgorithm,omitempty"`
	HMACAlgorithm *int64  `json:"hmacAlgorithm,omitempty"`
	MasterSalt    string  `json:"masterSalt,omitempty"`
	Instance      *uint16 `json:"instance,omitempty"`
}

// InstanceConfig is one other object instance to write: its path
// ("/3303/0") and resource values by resource ID. A value is a JSON
// string (the text form of LwM2M Core Appendix C: base64 for Opaque,
// "3:0" for Objlnk), number or boolean; a multiple resource is an object
// of resource-instance IDs to values.
type InstanceConfig struct {
	Path      string                     `json:"path"`
	Resources map[string]json.RawMessage `json:"resources"`
}

// Hex is bytes written as hex in JSON.
type Hex []byte

// MarshalJSON writes h as a hex string.
func (h Hex) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

// UnmarshalJSON reads a hex string.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("not hex: %w", err)
	}
	*h = d
	return nil
}

// Template is a configuration for the endpoints it matches: those whose
// name matches one of Endpoints (globs as path.Match: "meter-*"), or that
// have every tag of Tags (registry.Tags). A template with neither matches
// every endpoint: it is the default.
type Template struct {
	Name      string            `json:"name"`
	Endpoints []string          `json:"endpoints,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
	Config    Configuration     `json:"config"`
}

// ParseConfiguration decodes and checks a configuration's JSON. Unknown
// fields are refused, so that a misspelt field does not pass unnoticed.
func ParseConfiguration(data []byte) (*Configuration, error) {
	var c Configuration
	if err := strictJSON(data, &c); err != nil {
		return nil, fmt.Errorf("bootstrap: configuration: %w: %w", ErrInvalidConfig, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// ParseTemplates decodes and checks a JSON array of templates.
func ParseTemplates(data []byte) ([]Template, error) {
	var ts []Template
	if err := strictJSON(data, &ts); err != nil {
		return nil, fmt.Errorf("bootstrap: templates: %w: %w", ErrInvalidConfig, err)
	}
	if err := ValidateTemplates(ts); err != nil {
		return nil, err
	}
	return ts, nil
}

func strictJSON(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// ValidateTemplates checks templates: names present and unique, globs
// well formed, configurations valid.
func ValidateTemplates(ts []Template) error {
	seen := make(map[string]bool)
	for i, t := range ts {
		if t.Name == "" || !utf8.ValidString(t.Name) {
			return fmt.Errorf("bootstrap: templates[%d].name: empty or not UTF-8: %w", i, ErrInvalidConfig)
		}
		if seen[t.Name] {
			return fmt.Errorf("bootstrap: templates[%d].name: %q given twice: %w", i, t.Name, ErrInvalidConfig)
		}
		seen[t.Name] = true
		for j, g := range t.Endpoints {
			if _, err := path.Match(g, ""); err != nil {
				return fmt.Errorf("bootstrap: templates[%d].endpoints[%d]: %q: %w: %w", i, j, g, ErrInvalidConfig, err)
			}
		}
		if err := t.Config.Validate(); err != nil {
			return fmt.Errorf("bootstrap: templates[%d] (%s): %w", i, t.Name, err)
		}
	}
	return nil
}

// matches reports whether t applies to endpoint ep with tags.
func (t *Template) matches(ep string, tags map[string]string) bool {
	if len(t.Endpoints) == 0 && len(t.Tags) == 0 {
		return true
	}
	for _, g := range t.Endpoints {
		if ok, _ := path.Match(g, ep); ok {
			return true
		}
	}
	if len(t.Tags) == 0 {
		return false
	}
	for k, v := range t.Tags {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Validate checks a configuration; the error names the field.
func (c *Configuration) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("bootstrap: %s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalidConfig)
	}
	for i, d := range c.Delete {
		p, err := objects.ParsePath(d)
		if err != nil || p.Len() > 2 {
			return bad(fmt.Sprintf("delete[%d]", i), "%q is not the root, an object or an instance path", d)
		}
	}
	if c.Retries < 0 || c.Retries > 10 {
		return bad("retries", "%d is outside 0..10", c.Retries)
	}
	if c.RetryDelay < 0 || c.RetryDelay > 3600 || math.IsNaN(c.RetryDelay) {
		return bad("retryDelay", "%v is outside 0..3600 seconds", c.RetryDelay)
	}
	if c.Format != "" {
		if _, err := c.format(); err != nil {
			return bad("format", "%v", err)
		}
	}
	ssids := make(map[uint16]bool)
	for i := range c.Servers {
		a := &c.Servers[i]
		field := fmt.Sprintf("servers[%d]", i)
		if err := a.validate(field); err != nil {
			return err
		}
		if ssids[a.ShortServerID] {
			return bad(field+".shortServerId", "%d given twice", a.ShortServerID)
		}
		ssids[a.ShortServerID] = true
	}
	if err := checkDistinct(c.Servers); err != nil {
		return err
	}
	for i, in := range c.Instances {
		if _, err := in.instance(nil); err != nil {
			return fmt.Errorf("bootstrap: instances[%d]: %w", i, err)
		}
	}
	return nil
}

// format is the configured content format of the writes (0: none).
func (c *Configuration) format() (objects.Format, error) {
	if c.Format == "" {
		return 0, nil
	}
	f, err := objects.ParseFormat(c.Format)
	if err != nil {
		return 0, err
	}
	if _, ok := content.Codec(f); !ok || !carriesInstance(f, "1.2") {
		return 0, fmt.Errorf("%s cannot carry an object instance", f)
	}
	return f, nil
}

// readFirst reports whether the configuration asks for the BS-Read.
func (c *Configuration) readFirst() bool { return c.Read == nil || *c.Read }

func (a *ServerAccount) validate(field string) error {
	bad := func(sub, format string, args ...any) error {
		return fmt.Errorf("bootstrap: %s.%s: %s: %w", field, sub, fmt.Sprintf(format, args...), ErrInvalidConfig)
	}
	if !strings.HasPrefix(a.URI, "coap://") && !strings.HasPrefix(a.URI, "coaps://") && !strings.HasPrefix(a.URI, "coap+tcp://") && !strings.HasPrefix(a.URI, "coaps+tcp://") {
		return bad("uri", "%q is not a coap:// or coaps:// URI", a.URI)
	}
	if len(a.URI) > 255 {
		return bad("uri", "longer than 255 bytes")
	}
	if a.ShortServerID == 0 || a.ShortServerID == 65535 {
		return bad("shortServerId", "%d is outside 1..65534", a.ShortServerID)
	}
	if a.Lifetime < 0 {
		return bad("lifetime", "negative")
	}
	if a.Binding != "" && strings.Trim(a.Binding, "UTSNQ") != "" {
		return bad("binding", "%q: letters U, T, S, N, Q only", a.Binding)
	}
	if a.DefaultMinPeriod != nil && *a.DefaultMinPeriod < 0 {
		return bad("defaultMinPeriod", "negative")
	}
	if a.DefaultMaxPeriod != nil && *a.DefaultMaxPeriod < 0 {
		return bad("defaultMaxPeriod", "negative")
	}
	secure := strings.HasPrefix(a.URI, "coaps")
	s := &a.Security
	if s.KeepCertificate && s.Mode != ModeX509 {
		return bad("security.keepCertificate", "only in x509 mode")
	}
	switch s.Mode {
	case "", ModeNoSec:
		if secure {
			return bad("security.mode", "nosec with a coaps URI")
		}
	case ModePSK:
		if !s.GeneratePSK && (s.PSKIdentity == "" || len(s.PSKKey) == 0) {
			return bad("security", "psk needs pskIdentity and pskKey, or generatePsk")
		}
		if len(s.PSKIdentity) > 128 || len(s.PSKKey) > 64 {
			return bad("security", "PSK identity over 128 bytes or key over 64 bytes")
		}
	case ModeX509, ModeRPK:
		if s.KeepCertificate {
			if s.Mode != ModeX509 || len(s.Certificate) > 0 || len(s.PrivateKey) > 0 {
				return bad("security.keepCertificate", "only in x509 mode, without certificate and privateKey")
			}
			break
		}
		if len(s.Certificate) == 0 || len(s.PrivateKey) == 0 {
			return bad("security", "%s needs certificate and privateKey", s.Mode)
		}
	default:
		return bad("security.mode", "%q: one of nosec, psk, rpk, x509", s.Mode)
	}
	if s.Mode != "" && s.Mode != ModeNoSec && !secure {
		return bad("security.mode", "%s with a coap:// URI", s.Mode)
	}
	if o := a.OSCORE; o != nil && (o.MasterSecret == "" || o.SenderID == "" && o.RecipientID == "") {
		return bad("oscore", "masterSecret and a sender or recipient ID are needed")
	}
	return nil
}

// checkDistinct refuses two accounts asking for the same instance IDs.
func checkDistinct(as []ServerAccount) error {
	sec, srv, osc := map[uint16]bool{}, map[uint16]bool{}, map[uint16]bool{}
	for i, a := range as {
		for _, x := range []struct {
			id   *uint16
			seen map[uint16]bool
			name string
		}{{a.SecurityInstance, sec, "securityInstance"}, {a.ServerInstance, srv, "serverInstance"}, {oscoreInstance(a.OSCORE), osc, "oscore.instance"}} {
			if x.id == nil {
				continue
			}
			if x.seen[*x.id] || *x.id == 65535 {
				return fmt.Errorf("bootstrap: servers[%d].%s: %d used twice or reserved: %w", i, x.name, *x.id, ErrInvalidConfig)
			}
			x.seen[*x.id] = true
		}
	}
	return nil
}

func oscoreInstance(o *OSCOREConfig) *uint16 {
	if o == nil {
		return nil
	}
	return o.Instance
}

// securityMode is resource 0/x/2 for a mode name.
func securityMode(m string) int64 {
	switch m {
	case ModePSK:
		return 0
	case ModeRPK:
		return 1
	case ModeX509:
		return 2
	}
	return 3
}

// instance builds the object instance an InstanceConfig describes; with
// models, values take their resource's type, else they stay as written
// (strings, numbers, booleans), which is enough to check the syntax.
func (ic *InstanceConfig) instance(m objects.Models) (objects.Path, error) {
	p, err := objects.ParsePath(ic.Path)
	if err != nil || p.Len() != 2 {
		return p, fmt.Errorf("path %q is not an instance path: %w", ic.Path, ErrInvalidConfig)
	}
	if p.Object() == 0 || p.Object() == 1 || p.Object() == 21 {
		return p, fmt.Errorf("path %s: Security, Server and OSCORE instances come from servers: %w", p, ErrInvalidConfig)
	}
	_, err = ic.node(p, m)
	return p, err
}

// node is the instance at p with its typed values.
func (ic *InstanceConfig) node(p objects.Path, m objects.Models) (*objects.Instance, error) {
	in := &objects.Instance{ID: p.Instance()}
	var def *objects.ObjectDef
	if m != nil {
		def = m.Object(p.Object())
		if def == nil {
			return nil, fmt.Errorf("path %s: no model for object %d: %w", p, p.Object(), ErrInvalidConfig)
		}
	}
	for k, raw := range ic.Resources {
		id, err := strconv.ParseUint(k, 10, 16)
		if err != nil || id == 65535 {
			return nil, fmt.Errorf("path %s: resource %q is not a resource ID: %w", p, k, ErrInvalidConfig)
		}
		rp := p.Child(uint16(id))
		var rdef *objects.ResourceDef
		if def != nil {
			if rdef = def.Resource(uint16(id)); rdef == nil {
				return nil, fmt.Errorf("resource %s: object %d has no such resource: %w", rp, p.Object(), ErrInvalidConfig)
			}
		}
		r, err := resourceFromJSON(rp, raw, rdef)
		if err != nil {
			return nil, err
		}
		in.Resources = append(in.Resources, r)
	}
	sort.Slice(in.Resources, func(i, j int) bool { return in.Resources[i].ID < in.Resources[j].ID })
	return in, nil
}

func resourceFromJSON(rp objects.Path, raw json.RawMessage, def *objects.ResourceDef) (objects.Resource, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		if def != nil && !def.Multiple {
			return objects.Resource{}, fmt.Errorf("resource %s is single, not multiple: %w", rp, ErrInvalidConfig)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return objects.Resource{}, fmt.Errorf("resource %s: %w: %w", rp, ErrInvalidConfig, err)
		}
		vals := make(map[uint16]objects.Value, len(m))
		for k, v := range m {
			id, err := strconv.ParseUint(k, 10, 16)
			if err != nil || id == 65535 {
				return objects.Resource{}, fmt.Errorf("resource %s: %q is not a resource-instance ID: %w", rp, k, ErrInvalidConfig)
			}
			val, err := valueFromJSON(rp.Child(uint16(id)), v, def)
			if err != nil {
				return objects.Resource{}, err
			}
			vals[uint16(id)] = val
		}
		return objects.NewMultiple(rp.Resource(), vals), nil
	}
	if def != nil && def.Multiple {
		return objects.Resource{}, fmt.Errorf("resource %s is multiple: give an object of instance IDs to values: %w", rp, ErrInvalidConfig)
	}
	v, err := valueFromJSON(rp, raw, def)
	if err != nil {
		return objects.Resource{}, err
	}
	return objects.NewSingle(rp.Resource(), v), nil
}

// valueFromJSON turns a JSON scalar into a value of def's type.
func valueFromJSON(p objects.Path, raw json.RawMessage, def *objects.ResourceDef) (objects.Value, error) {
	var x any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&x); err != nil {
		return objects.Value{}, fmt.Errorf("resource %s: %w: %w", p, ErrInvalidConfig, err)
	}
	var text string
	switch v := x.(type) {
	case string:
		text = v
	case json.Number:
		text = v.String()
	case bool:
		text = "0"
		if v {
			text = "1"
		}
	default:
		return objects.Value{}, fmt.Errorf("resource %s: value must be a string, number or boolean: %w", p, ErrInvalidConfig)
	}
	if def == nil {
		return objects.StringValue(text), nil
	}
	if def.Type == objects.TypeNone {
		return objects.Value{}, fmt.Errorf("resource %s is executable, it holds no value: %w", p, ErrInvalidConfig)
	}
	v, err := objects.ParseText(def.Type, text)
	if err != nil {
		return objects.Value{}, fmt.Errorf("resource %s: %q is not a %v: %w", p, text, def.Type, ErrInvalidConfig)
	}
	return v, nil
}
