// Package enc is the stable JSON encoding of registry records that both
// stores share: registry/bolt keeps every record in it, registry/postgres
// the parts it does not spread into columns (a registration's object
// links, for instance). Field names are snake_case and never reused; a
// field added later must be optional. docs/registry.md shows an example of
// each record.
package enc

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/registry"
)

// corrupt wraps a decoding error as registry.ErrCorrupt.
func corrupt(what string, err error) error {
	return fmt.Errorf("registry: stored %s: %v: %w", what, err, registry.ErrCorrupt)
}

// Registration is the stored form of a registry.Registration.
type Registration struct {
	ID             string            `json:"id"`
	Endpoint       string            `json:"endpoint"`
	Addr           string            `json:"addr,omitempty"`
	Lifetime       int64             `json:"lifetime_ns"`
	Binding        string            `json:"binding,omitempty"`
	QueueMode      bool              `json:"queue_mode,omitempty"`
	SMSNumber      string            `json:"sms,omitempty"`
	Version        string            `json:"lwm2m,omitempty"`
	Root           string            `json:"root,omitempty"`
	Formats        []uint16          `json:"formats,omitempty"`
	Objects        []Object          `json:"objects,omitempty"`
	ObjectVersions map[uint16]string `json:"object_versions,omitempty"`
	Params         map[string]string `json:"params,omitempty"`
	RegisteredAt   time.Time         `json:"registered_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// Object is one announced object link.
type Object struct {
	ID         uint16   `json:"id"`
	Version    string   `json:"ver,omitempty"`
	HasVersion bool     `json:"has_ver,omitempty"`
	Instances  []uint16 `json:"instances,omitempty"`
}

// FromRegistration converts r to its stored form.
func FromRegistration(r *registry.Registration) *Registration {
	s := &Registration{
		ID: r.ID, Endpoint: r.Endpoint, Lifetime: int64(r.Lifetime),
		Binding: r.Binding, QueueMode: r.QueueMode, SMSNumber: r.SMSNumber,
		Version: r.Version, Root: r.Root, ObjectVersions: r.ObjectVersions,
		Params:       r.Params,
		RegisteredAt: registry.Time(r.RegisteredAt), UpdatedAt: registry.Time(r.UpdatedAt),
	}
	if r.Addr.IsValid() {
		s.Addr = r.Addr.String()
	}
	for _, f := range r.Formats {
		s.Formats = append(s.Formats, uint16(f))
	}
	for _, o := range r.Objects {
		s.Objects = append(s.Objects, Object{ID: o.ID, Version: o.Version, HasVersion: o.HasVersion, Instances: o.Instances})
	}
	return s
}

// Registration converts the stored form back.
func (s *Registration) Registration() (*registry.Registration, error) {
	r := &registry.Registration{
		ID: s.ID, Endpoint: s.Endpoint, Lifetime: time.Duration(s.Lifetime),
		Binding: s.Binding, QueueMode: s.QueueMode, SMSNumber: s.SMSNumber,
		Version: s.Version, Root: s.Root, ObjectVersions: s.ObjectVersions,
		Params:       s.Params,
		RegisteredAt: s.RegisteredAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(),
	}
	if s.Addr != "" {
		a, err := netip.ParseAddrPort(s.Addr)
		if err != nil {
			return nil, corrupt("registration of "+s.Endpoint, err)
		}
		r.Addr = a
	}
	for _, f := range s.Formats {
		r.Formats = append(r.Formats, objects.Format(f))
	}
	for _, o := range s.Objects {
		r.Objects = append(r.Objects, linkformat.Object{ID: o.ID, Version: o.Version, HasVersion: o.HasVersion, Instances: o.Instances})
	}
	if r.ID == "" || r.Endpoint == "" {
		return nil, corrupt("registration", fmt.Errorf("no endpoint or ID"))
	}
	return r, nil
}

// MarshalRegistration encodes r.
func MarshalRegistration(r *registry.Registration) ([]byte, error) {
	return json.Marshal(FromRegistration(r))
}

// UnmarshalRegistration decodes what MarshalRegistration wrote.
func UnmarshalRegistration(b []byte) (*registry.Registration, error) {
	var s Registration
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, corrupt("registration", err)
	}
	return s.Registration()
}

// Credential is the stored form of a registry.Credential: the PSK key is
// sealed (registry.Cipher, purpose "psk", subject the endpoint).
type Credential struct {
	Endpoint     string        `json:"endpoint"`
	PSKIdentity  string        `json:"psk_identity,omitempty"`
	PSKKeySealed []byte        `json:"psk_key_sealed,omitempty"`
	Certificates []CertBinding `json:"certificates,omitempty"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

// CertBinding is one certificate binding.
type CertBinding struct {
	Fingerprint string `json:"sha256"`
	Subject     string `json:"subject,omitempty"`
	Certificate []byte `json:"der,omitempty"`
}

// SealCredential converts c to its stored form, sealing its key.
func SealCredential(c *registry.Credential, ci *registry.Cipher) (*Credential, error) {
	s := &Credential{Endpoint: c.Endpoint, PSKIdentity: c.PSKIdentity, UpdatedAt: registry.Time(c.UpdatedAt)}
	if len(c.PSKKey) > 0 {
		sealed, err := ci.Seal("psk", c.Endpoint, c.PSKKey)
		if err != nil {
			return nil, err
		}
		s.PSKKeySealed = sealed
	}
	s.Certificates = FromCertBindings(c.Certificates)
	return s, nil
}

// FromCertBindings converts certificate bindings to their stored form.
func FromCertBindings(bs []registry.CertBinding) []CertBinding {
	var out []CertBinding
	for _, b := range bs {
		out = append(out, CertBinding{Fingerprint: b.Fingerprint, Subject: b.Subject, Certificate: b.Certificate})
	}
	return out
}

// CertBindings converts the stored form back.
func CertBindings(bs []CertBinding) []registry.CertBinding {
	var out []registry.CertBinding
	for _, b := range bs {
		out = append(out, registry.CertBinding{Fingerprint: b.Fingerprint, Subject: b.Subject, Certificate: b.Certificate})
	}
	return out
}

// Open converts the stored form back, opening the key.
func (s *Credential) Open(ci *registry.Cipher) (*registry.Credential, error) {
	c := &registry.Credential{
		Endpoint: s.Endpoint, PSKIdentity: s.PSKIdentity,
		Certificates: CertBindings(s.Certificates), UpdatedAt: s.UpdatedAt.UTC(),
	}
	if len(s.PSKKeySealed) > 0 {
		key, err := ci.Open("psk", s.Endpoint, s.PSKKeySealed)
		if err != nil {
			return nil, err
		}
		c.PSKKey = key
	}
	return c, nil
}

// BootstrapConfig is the stored form of a registry.BootstrapConfig: the
// configuration is sealed (purpose "bootstrap", subject the endpoint).
type BootstrapConfig struct {
	Endpoint     string    `json:"endpoint"`
	ConfigSealed []byte    `json:"config_sealed"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Observation is the stored form of a registry.Observation.
type Observation struct {
	Endpoint       string    `json:"endpoint"`
	RegistrationID string    `json:"registration_id,omitempty"`
	Token          []byte    `json:"token"`
	Paths          []string  `json:"paths"`
	Composite      bool      `json:"composite,omitempty"`
	Format         uint16    `json:"format"`
	Attributes     []string  `json:"attributes,omitempty"`
	Started        time.Time `json:"started"`
}

// FromObservation converts o to its stored form.
func FromObservation(o *registry.Observation) *Observation {
	return &Observation{
		Endpoint: o.Endpoint, RegistrationID: o.RegistrationID, Token: o.Token,
		Paths: PathStrings(o.Paths), Composite: o.Composite, Format: uint16(o.Format),
		Attributes: o.Attributes.Query(), Started: registry.Time(o.Started),
	}
}

// Observation converts the stored form back.
func (s *Observation) Observation() (*registry.Observation, error) {
	paths, err := ParsePaths(s.Paths)
	if err != nil {
		return nil, corrupt("observation of "+s.Endpoint, err)
	}
	attrs, err := linkformat.ParseQuery(s.Attributes)
	if err != nil {
		return nil, corrupt("observation of "+s.Endpoint, err)
	}
	return &registry.Observation{
		Endpoint: s.Endpoint, RegistrationID: s.RegistrationID, Token: s.Token,
		Paths: paths, Composite: s.Composite, Format: objects.Format(s.Format),
		Attributes: attrs, Started: s.Started.UTC(),
	}, nil
}

// CheckObservation checks that o can be stored and read back.
func CheckObservation(o *registry.Observation) error {
	if o == nil {
		return fmt.Errorf("registry: nil observation: %w", registry.ErrInvalid)
	}
	if err := registry.CheckEndpoint(o.Endpoint); err != nil {
		return err
	}
	if len(o.Token) == 0 || len(o.Token) > 8 { // RFC 7252 §3: 0-8 bytes; LwM2M observations always have one
		return fmt.Errorf("registry: observation of %q: token of %d bytes: %w", o.Endpoint, len(o.Token), registry.ErrInvalid)
	}
	if len(o.Paths) == 0 {
		return fmt.Errorf("registry: observation of %q: no path: %w", o.Endpoint, registry.ErrInvalid)
	}
	if err := registry.CheckText("registration ID", o.RegistrationID); err != nil {
		return err
	}
	if _, err := linkformat.ParseQuery(o.Attributes.Query()); err != nil {
		return fmt.Errorf("registry: observation of %q: attributes: %v: %w", o.Endpoint, err, registry.ErrInvalid)
	}
	return nil
}

// PathStrings formats paths.
func PathStrings(ps []objects.Path) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// ParsePaths parses paths.
func ParsePaths(ss []string) ([]objects.Path, error) {
	out := make([]objects.Path, len(ss))
	for i, s := range ss {
		p, err := objects.ParsePath(s)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// Request is the stored form of a registry.Request.
type Request struct {
	ID         uint64    `json:"id"`
	Endpoint   string    `json:"endpoint"`
	Operation  string    `json:"operation"`
	Path       string    `json:"path"`
	Format     uint16    `json:"format"`
	Payload    []byte    `json:"payload,omitempty"`
	Deadline   time.Time `json:"deadline,omitzero"`
	JobID      string    `json:"job_id,omitempty"`
	Status     string    `json:"status"`
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	Attempts   int       `json:"attempts,omitempty"`
	Result     *Result   `json:"result,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Result is how a request ended.
type Result struct {
	Status  string `json:"status"`
	Code    uint8  `json:"code,omitempty"`
	Format  uint16 `json:"format,omitempty"`
	Payload []byte `json:"payload,omitempty"`
	Error   string `json:"error,omitempty"`
}

// FromRequest converts r to its stored form.
func FromRequest(r *registry.Request) *Request {
	s := &Request{
		ID: r.ID, Endpoint: r.Endpoint, Operation: r.Operation, Path: r.Path.String(),
		Format: uint16(r.Format), Payload: r.Payload, Deadline: registry.Time(r.Deadline),
		JobID: r.JobID, Status: r.Status.String(), Owner: r.Owner,
		LeaseUntil: registry.Time(r.LeaseUntil), Attempts: r.Attempts,
		CreatedAt: registry.Time(r.CreatedAt), UpdatedAt: registry.Time(r.UpdatedAt),
	}
	if !r.Status.Open() {
		s.Result = &Result{
			Status: r.Result.Status.String(), Code: r.Result.Code, Format: uint16(r.Result.Format),
			Payload: r.Result.Payload, Error: r.Result.Error,
		}
	}
	return s
}

// Request converts the stored form back.
func (s *Request) Request() (*registry.Request, error) {
	p, err := objects.ParsePath(s.Path)
	if err != nil {
		return nil, corrupt("request", err)
	}
	st, err := registry.ParseRequestStatus(s.Status)
	if err != nil {
		return nil, corrupt("request", err)
	}
	r := &registry.Request{
		ID: s.ID, Endpoint: s.Endpoint, Operation: s.Operation, Path: p,
		Format: objects.Format(s.Format), Payload: s.Payload, Deadline: utc(s.Deadline),
		JobID: s.JobID, Status: st, Owner: s.Owner, LeaseUntil: utc(s.LeaseUntil),
		Attempts: s.Attempts, CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(),
	}
	if s.Result != nil {
		rs, err := registry.ParseRequestStatus(s.Result.Status)
		if err != nil {
			return nil, corrupt("request", err)
		}
		r.Result = registry.Result{
			Status: rs, Code: s.Result.Code, Format: objects.Format(s.Result.Format),
			Payload: s.Result.Payload, Error: s.Result.Error,
		}
	}
	return r, nil
}

// CheckRequest checks what Enqueue needs.
func CheckRequest(r *registry.Request) error {
	if r == nil {
		return fmt.Errorf("registry: nil request: %w", registry.ErrInvalid)
	}
	if err := registry.CheckEndpoint(r.Endpoint); err != nil {
		return err
	}
	if r.Operation == "" {
		return fmt.Errorf("registry: request to %q: no operation: %w", r.Endpoint, registry.ErrInvalid)
	}
	for _, t := range []string{r.Operation, r.JobID} {
		if err := registry.CheckText("request to "+r.Endpoint, t); err != nil {
			return err
		}
	}
	return nil
}

// CheckResult checks what Complete needs.
func CheckResult(id uint64, res registry.Result) error {
	switch res.Status {
	case registry.StatusDone, registry.StatusFailed, registry.StatusCancelled:
	default:
		return fmt.Errorf("registry: request %d: cannot complete as %v: %w", id, res.Status, registry.ErrInvalid)
	}
	return registry.CheckText(fmt.Sprintf("request %d: error text", id), res.Error)
}

// Job is the stored form of a registry.Job.
type Job struct {
	ID        string          `json:"id"`
	Kind      string          `json:"kind,omitempty"`
	Spec      json.RawMessage `json:"spec,omitempty"`
	Status    string          `json:"status"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// FromJob converts j to its stored form.
func FromJob(j *registry.Job) *Job {
	return &Job{
		ID: j.ID, Kind: j.Kind, Spec: j.Spec, Status: j.Status.String(),
		CreatedAt: registry.Time(j.CreatedAt), UpdatedAt: registry.Time(j.UpdatedAt),
	}
}

// Job converts the stored form back.
func (s *Job) Job() (*registry.Job, error) {
	st, err := registry.ParseJobStatus(s.Status)
	if err != nil {
		return nil, corrupt("job", err)
	}
	return &registry.Job{
		ID: s.ID, Kind: s.Kind, Spec: s.Spec, Status: st,
		CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(),
	}, nil
}

// CheckJob checks what Create needs.
func CheckJob(j *registry.Job, endpoints []string) error {
	if j == nil {
		return fmt.Errorf("registry: nil job: %w", registry.ErrInvalid)
	}
	if err := registry.CheckText("job ID", j.ID); err != nil {
		return err
	}
	if err := registry.CheckText("job kind", j.Kind); err != nil {
		return err
	}
	if len(j.Spec) > 0 && !json.Valid(j.Spec) {
		return fmt.Errorf("registry: job %s: spec is not JSON: %w", j.ID, registry.ErrInvalid)
	}
	seen := make(map[string]bool, len(endpoints))
	for _, ep := range endpoints {
		if err := registry.CheckEndpoint(ep); err != nil {
			return err
		}
		if seen[ep] {
			return fmt.Errorf("registry: job %s: endpoint %q given twice: %w", j.ID, ep, registry.ErrInvalid)
		}
		seen[ep] = true
	}
	return nil
}

// JobResult is the stored form of a registry.JobResult.
type JobResult struct {
	JobID      string          `json:"job_id"`
	Endpoint   string          `json:"endpoint"`
	Status     string          `json:"status"`
	Owner      string          `json:"owner,omitempty"`
	LeaseUntil time.Time       `json:"lease_until,omitzero"`
	Attempts   int             `json:"attempts,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      string          `json:"error,omitempty"`
	UpdatedAt  time.Time       `json:"updated_at"`
}

// FromJobResult converts r to its stored form.
func FromJobResult(r *registry.JobResult) *JobResult {
	return &JobResult{
		JobID: r.JobID, Endpoint: r.Endpoint, Status: r.Status.String(), Owner: r.Owner,
		LeaseUntil: registry.Time(r.LeaseUntil), Attempts: r.Attempts, Result: r.Result,
		Error: r.Error, UpdatedAt: registry.Time(r.UpdatedAt),
	}
}

// JobResult converts the stored form back.
func (s *JobResult) JobResult() (*registry.JobResult, error) {
	st, err := registry.ParseTargetStatus(s.Status)
	if err != nil {
		return nil, corrupt("job result", err)
	}
	return &registry.JobResult{
		JobID: s.JobID, Endpoint: s.Endpoint, Status: st, Owner: s.Owner,
		LeaseUntil: utc(s.LeaseUntil), Attempts: s.Attempts, Result: s.Result,
		Error: s.Error, UpdatedAt: s.UpdatedAt.UTC(),
	}, nil
}

// CheckReport checks what Report needs.
func CheckReport(r *registry.JobResult) error {
	if r == nil {
		return fmt.Errorf("registry: nil job result: %w", registry.ErrInvalid)
	}
	switch r.Status {
	case registry.TargetPending, registry.TargetSucceeded, registry.TargetFailed, registry.TargetCancelled:
	default:
		return fmt.Errorf("registry: job %s, %q: cannot report %v: %w", r.JobID, r.Endpoint, r.Status, registry.ErrInvalid)
	}
	if len(r.Result) > 0 && !json.Valid(r.Result) {
		return fmt.Errorf("registry: job %s, %q: result is not JSON: %w", r.JobID, r.Endpoint, registry.ErrInvalid)
	}
	return registry.CheckText("job result error", r.Error)
}

// Value is the stored form of a registry.ResourceValue (the path is in
// the key or its own column).
type Value struct {
	Type       string    `json:"type"`
	Text       string    `json:"text"`
	DeviceTime time.Time `json:"device_time,omitzero"`
	ServerTime time.Time `json:"server_time"`
}

// FromValue converts v to its stored form.
func FromValue(v registry.ResourceValue) (*Value, error) {
	typ, text, err := registry.FormatValue(v.Value)
	if err != nil {
		return nil, err
	}
	return &Value{Type: typ, Text: text, DeviceTime: registry.Time(v.DeviceTime), ServerTime: registry.Time(v.ServerTime)}, nil
}

// Value converts the stored form back.
func (s *Value) Value(p objects.Path) (registry.ResourceValue, error) {
	v, err := registry.ParseValue(s.Type, s.Text)
	if err != nil {
		return registry.ResourceValue{}, err
	}
	return registry.ResourceValue{Path: p, Value: v, DeviceTime: utc(s.DeviceTime), ServerTime: s.ServerTime.UTC()}, nil
}

// Newer reports whether a value with device time dt may replace one
// stored with device time old: unless both are set and old is later.
func Newer(dt, old time.Time) bool {
	return dt.IsZero() || old.IsZero() || !dt.Before(old)
}

// CheckValues checks what Values.Put needs.
func CheckValues(endpoint string, vs []registry.ResourceValue) error {
	if err := registry.CheckEndpoint(endpoint); err != nil {
		return err
	}
	for _, v := range vs {
		if v.Path.Len() < 3 {
			return fmt.Errorf("registry: value of %q at %s: not a resource path: %w", endpoint, v.Path, registry.ErrInvalid)
		}
		if v.Value.IsNone() {
			return fmt.Errorf("registry: value of %q at %s: no value: %w", endpoint, v.Path, registry.ErrInvalid)
		}
		if _, _, err := registry.FormatValue(v.Value); err != nil {
			return fmt.Errorf("registry: value of %q at %s: %w", endpoint, v.Path, err)
		}
	}
	return nil
}

// CheckTags checks a Tags.Set.
func CheckTags(endpoint string, tags map[string]string) error {
	if err := registry.CheckEndpoint(endpoint); err != nil {
		return err
	}
	for k, v := range tags {
		if err := registry.CheckTag(k, v); err != nil {
			return err
		}
	}
	return nil
}

// SortedKeys returns m's keys in order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
