package registry

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
)

// Registration is one device's registration: what its Register and later
// Updates said (LwM2M Core §6.2.1, §6.2.2) and where they came from. It
// holds everything server.Registration holds.
type Registration struct {
	ID        string         // registration ID, the {id} of rd/{id}
	Endpoint  string         // ep
	Addr      netip.AddrPort // source of the last Register or Update
	Lifetime  time.Duration  // lt; 0 means no expiry (LwM2M 1.2 lt=0)
	Binding   string         // b ("U", "UQ", ...)
	QueueMode bool           // Q, or a Q in a 1.0 binding
	SMSNumber string         // sms
	Version   string         // lwm2m ("1.0", "1.1", "1.2")
	Root      string         // alternate path ("/lwm2m") or "/"
	// Formats are the content formats announced with ct, in order.
	Formats []objects.Format
	// Objects are the announced object links with their versions and
	// instances, in the order of the payload.
	Objects []linkformat.Object
	// ObjectVersions is the object version in force for each object.
	ObjectVersions map[uint16]string
	// Params are the Register query parameters LwM2M does not define.
	Params map[string]string

	RegisteredAt time.Time
	UpdatedAt    time.Time
}

// ExpiresAt is UpdatedAt + Lifetime, or the zero time when the
// registration never expires.
func (r *Registration) ExpiresAt() time.Time {
	if r.Lifetime <= 0 {
		return time.Time{}
	}
	return r.UpdatedAt.Add(r.Lifetime)
}

// Validate checks what every store needs of a registration.
func (r *Registration) Validate() error {
	if r == nil {
		return fmt.Errorf("registry: nil registration: %w", ErrInvalid)
	}
	if err := CheckEndpoint(r.Endpoint); err != nil {
		return err
	}
	if r.ID == "" {
		return fmt.Errorf("registry: registration of %q: no registration ID: %w", r.Endpoint, ErrInvalid)
	}
	if r.Lifetime < 0 {
		return fmt.Errorf("registry: registration of %q: negative lifetime: %w", r.Endpoint, ErrInvalid)
	}
	texts := []string{r.ID, r.Binding, r.SMSNumber, r.Version, r.Root}
	for _, o := range r.Objects {
		texts = append(texts, o.Version)
	}
	for _, v := range r.ObjectVersions {
		texts = append(texts, v)
	}
	for k, v := range r.Params {
		texts = append(texts, k, v)
	}
	for _, s := range texts {
		if err := checkText(s); err != nil {
			return fmt.Errorf("registry: registration of %q: %w", r.Endpoint, err)
		}
	}
	return nil
}

// Secret is key material. It formats as "[redacted]" in fmt, slog and
// JSON so that it cannot leak into a log line or an API answer by
// accident; use []byte(s) to reach the bytes.
type Secret []byte

const redacted = "[redacted]"

func (Secret) String() string                  { return redacted }
func (Secret) GoString() string                { return redacted }
func (Secret) LogValue() slog.Value            { return slog.StringValue(redacted) }
func (Secret) MarshalJSON() ([]byte, error)    { return json.Marshal(redacted) }
func (Secret) MarshalText() ([]byte, error)    { return []byte(redacted), nil }
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, redacted) }

// Credential is a device's DTLS credentials: a PSK identity and key, and
// X.509 certificate bindings. PSKKey is sealed at rest.
type Credential struct {
	Endpoint     string
	PSKIdentity  string // "" when the device has no PSK
	PSKKey       Secret
	Certificates []CertBinding
	UpdatedAt    time.Time // set by the store
}

// CertBinding binds an X.509 client certificate to an endpoint.
type CertBinding struct {
	// Fingerprint is the SHA-256 of the certificate's DER bytes, 64
	// lower-case hex digits: how a handshake finds the device.
	Fingerprint string
	Subject     string // the certificate's subject, informational
	Certificate []byte // DER, optional
}

// Validate checks c and normalizes its fingerprints to lower case.
func (c *Credential) Validate() error {
	if c == nil {
		return fmt.Errorf("registry: nil credential: %w", ErrInvalid)
	}
	if err := CheckEndpoint(c.Endpoint); err != nil {
		return err
	}
	if (c.PSKIdentity == "") != (len(c.PSKKey) == 0) {
		return fmt.Errorf("registry: credentials of %q: a PSK needs both an identity and a key: %w", c.Endpoint, ErrInvalid)
	}
	if err := checkText(c.PSKIdentity); err != nil {
		return fmt.Errorf("registry: credentials of %q: PSK identity: %w", c.Endpoint, err)
	}
	if len(c.PSKIdentity) > 128 { // RFC 4279 §5.3 allows 2^16-1; DTLS stacks use far less
		return fmt.Errorf("registry: credentials of %q: PSK identity longer than 128 bytes: %w", c.Endpoint, ErrInvalid)
	}
	if len(c.PSKKey) > 64 {
		return fmt.Errorf("registry: credentials of %q: PSK key longer than 64 bytes: %w", c.Endpoint, ErrInvalid)
	}
	seen := make(map[string]bool, len(c.Certificates))
	for i := range c.Certificates {
		b := &c.Certificates[i]
		fp, err := NormalizeFingerprint(b.Fingerprint)
		if err != nil {
			return fmt.Errorf("registry: credentials of %q: %w", c.Endpoint, err)
		}
		if seen[fp] {
			return fmt.Errorf("registry: credentials of %q: certificate %s given twice: %w", c.Endpoint, fp, ErrInvalid)
		}
		seen[fp] = true
		b.Fingerprint = fp
		if err := checkText(b.Subject); err != nil {
			return fmt.Errorf("registry: credentials of %q: certificate subject: %w", c.Endpoint, err)
		}
	}
	return nil
}

// NormalizeFingerprint checks a SHA-256 fingerprint in hex (colons
// allowed, any case) and returns it as 64 lower-case hex digits.
func NormalizeFingerprint(s string) (string, error) {
	fp := strings.ToLower(strings.ReplaceAll(s, ":", ""))
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		return "", fmt.Errorf("certificate fingerprint %q is not a SHA-256 in hex: %w", s, ErrInvalid)
	}
	return fp, nil
}

// BootstrapConfig is an endpoint's bootstrap configuration: what the
// bootstrap server writes to the device. Its shape belongs to the
// bootstrap package; the registry keeps it as opaque JSON, sealed at rest.
type BootstrapConfig struct {
	Endpoint  string
	Config    json.RawMessage
	UpdatedAt time.Time // set by the store
}

// Observation is an observation a device accepted, kept so that lwm2md can
// re-establish it after a restart (LwM2M Core §5.5.1, §5.5.3 for
// Observe-Composite).
type Observation struct {
	Endpoint       string
	RegistrationID string
	Token          []byte         // the CoAP token, raw
	Paths          []objects.Path // one, or several for Observe-Composite
	Composite      bool
	Format         objects.Format // the Accept of the Observe request
	// Attributes are the notification attributes the observation was
	// made with (stored in their query form, "pmin=10").
	Attributes linkformat.Attributes
	Started    time.Time
}

// RequestStatus is where a queued request stands.
type RequestStatus uint8

// The request statuses. Pending and Sent are open; the others are final.
const (
	StatusPending   RequestStatus = iota // waiting for the device
	StatusSent                           // claimed by a node, on its way
	StatusDone                           // the device answered
	StatusFailed                         // it could not be delivered or was refused
	StatusExpired                        // its deadline passed first
	StatusCancelled                      // an operator withdrew it
)

var requestStatusNames = [...]string{"pending", "sent", "done", "failed", "expired", "cancelled"}

func (s RequestStatus) String() string {
	if int(s) < len(requestStatusNames) {
		return requestStatusNames[s]
	}
	return fmt.Sprintf("RequestStatus(%d)", s)
}

// Open reports whether s is Pending or Sent.
func (s RequestStatus) Open() bool { return s == StatusPending || s == StatusSent }

// ParseRequestStatus is the inverse of String.
func ParseRequestStatus(s string) (RequestStatus, error) {
	for i, n := range requestStatusNames {
		if n == s {
			return RequestStatus(i), nil
		}
	}
	return 0, fmt.Errorf("registry: unknown request status %q: %w", s, ErrInvalid)
}

// Request is one queued request to a device.
type Request struct {
	ID        uint64 // set by Enqueue: the queue order
	Endpoint  string
	Operation string         // as the server names it: "read", "write", "execute", ...
	Path      objects.Path   // the target
	Format    objects.Format // content format of Payload, and the Accept
	Payload   []byte
	Deadline  time.Time // zero: none
	JobID     string    // the job it belongs to, if any

	Status     RequestStatus
	Owner      string    // node holding it while Sent
	LeaseUntil time.Time // until when
	Attempts   int       // how many times it was claimed
	Result     Result    // once finished
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Result is how a queued request ended.
type Result struct {
	Status  RequestStatus // Done, Failed or Cancelled
	Code    uint8         // CoAP response code (0x45 = 2.05), 0 when none came
	Format  objects.Format
	Payload []byte
	Error   string
}

// JobStatus is where a job stands.
type JobStatus uint8

// The job statuses.
const (
	JobPending JobStatus = iota
	JobRunning
	JobDone
	JobCancelled
)

var jobStatusNames = [...]string{"pending", "running", "done", "cancelled"}

func (s JobStatus) String() string {
	if int(s) < len(jobStatusNames) {
		return jobStatusNames[s]
	}
	return fmt.Sprintf("JobStatus(%d)", s)
}

// ParseJobStatus is the inverse of String.
func ParseJobStatus(s string) (JobStatus, error) {
	for i, n := range jobStatusNames {
		if n == s {
			return JobStatus(i), nil
		}
	}
	return 0, fmt.Errorf("registry: unknown job status %q: %w", s, ErrInvalid)
}

// NewJobID returns a random job ID: 96 bits in hex.
func NewJobID() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return hex.EncodeToString(b[:])
}

// Job is an operation over many devices.
type Job struct {
	ID        string
	Kind      string          // what it does ("firmware-update", "write", ...)
	Spec      json.RawMessage // how, for the job's kind; opaque to the registry
	Status    JobStatus
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TargetStatus is where one device of a job stands.
type TargetStatus uint8

// The target statuses.
const (
	TargetPending TargetStatus = iota
	TargetRunning
	TargetSucceeded
	TargetFailed
	// TargetCancelled: the job was cancelled before the device's part
	// ended.
	TargetCancelled
)

var targetStatusNames = [...]string{"pending", "running", "succeeded", "failed", "cancelled"}

func (s TargetStatus) String() string {
	if int(s) < len(targetStatusNames) {
		return targetStatusNames[s]
	}
	return fmt.Sprintf("TargetStatus(%d)", s)
}

// ParseTargetStatus is the inverse of String.
func ParseTargetStatus(s string) (TargetStatus, error) {
	for i, n := range targetStatusNames {
		if n == s {
			return TargetStatus(i), nil
		}
	}
	return 0, fmt.Errorf("registry: unknown target status %q: %w", s, ErrInvalid)
}

// JobResult is one device's part of a job.
type JobResult struct {
	JobID      string
	Endpoint   string
	Status     TargetStatus
	Owner      string
	LeaseUntil time.Time
	Attempts   int
	Result     json.RawMessage // what the device answered, for the job's kind
	Error      string
	UpdatedAt  time.Time
}

// ResourceValue is the last known value of one resource (or resource
// instance) of a device.
type ResourceValue struct {
	Path  objects.Path
	Value objects.Value
	// DeviceTime is the time the device gave the value (a SenML or LwM2M
	// JSON timestamp); zero when it gave none.
	DeviceTime time.Time
	// ServerTime is when lwm2md received it.
	ServerTime time.Time
}

// Limits on what the stores accept.
const (
	MaxEndpointLen = 1024 // bytes
	MaxTagKeyLen   = 256
	MaxTagValueLen = 4096
)

// CheckEndpoint checks an endpoint name: not empty, at most MaxEndpointLen
// bytes, UTF-8 without NUL (the stores use NUL to separate key parts, and
// PostgreSQL text cannot hold it).
func CheckEndpoint(ep string) error {
	if ep == "" {
		return fmt.Errorf("registry: empty endpoint name: %w", ErrInvalid)
	}
	if len(ep) > MaxEndpointLen {
		return fmt.Errorf("registry: endpoint name longer than %d bytes: %w", MaxEndpointLen, ErrInvalid)
	}
	if err := checkText(ep); err != nil {
		return fmt.Errorf("registry: endpoint %q: %w", ep, err)
	}
	return nil
}

// CheckTag checks a tag key and value.
func CheckTag(key, value string) error {
	if key == "" || len(key) > MaxTagKeyLen {
		return fmt.Errorf("registry: tag key %q: empty or longer than %d bytes: %w", key, MaxTagKeyLen, ErrInvalid)
	}
	if len(value) > MaxTagValueLen {
		return fmt.Errorf("registry: tag %q: value longer than %d bytes: %w", key, MaxTagValueLen, ErrInvalid)
	}
	if err := checkText(key); err != nil {
		return fmt.Errorf("registry: tag key %q: %w", key, err)
	}
	if err := checkText(value); err != nil {
		return fmt.Errorf("registry: tag %q: value: %w", key, err)
	}
	return nil
}

// checkText rejects text that a store could not keep exactly: invalid
// UTF-8 (JSON would replace it) and NUL (PostgreSQL refuses it).
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8: %w", s, ErrInvalid)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%q holds a NUL byte: %w", s, ErrInvalid)
	}
	return nil
}

// CheckText is checkText for the stores' other fields.
func CheckText(field, s string) error {
	if err := checkText(s); err != nil {
		return fmt.Errorf("registry: %s: %w", field, err)
	}
	return nil
}

// Time is how the stores keep a time: UTC, to the microsecond (what
// PostgreSQL's timestamptz holds), without a monotonic reading. The zero
// time stays zero.
func Time(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}
