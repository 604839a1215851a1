// Package registry is lwm2md's persistent state: registrations, device
// credentials, bootstrap configurations, observations, each device's queue
// of pending requests, jobs and their per-device results, device tags and
// the last known value of every resource a device reported.
//
// The package holds the types and small interfaces, grouped by concern
// (Registrations, Credentials, ...). A Store hands out one implementation
// of each. Two stores implement them: registry/bolt, a single file in the
// data directory (the default), and registry/postgres, for production and
// for several lwm2md nodes sharing one database. registry/registrytest is
// the conformance suite both pass.
//
// Every store keeps the same guarantees: what a call returned nil for is
// durable; a change that spans several records is one transaction; device
// secrets (PSK keys, bootstrap configurations) are sealed with AES-GCM
// (Cipher) before they reach the disk and never appear in an error or a
// log line. Times are kept to the microsecond, in UTC. The stable encodings
// the stores share are described in docs/registry.md.
package registry

import (
	"context"
	"errors"
	"time"

	"github.com/lwm2md/lwm2md/objects"
)

// Errors a store's calls wrap. Test them with errors.Is.
var (
	// ErrNotFound: no such endpoint, ID, job or pending request.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change contradicts what is stored (a registration
	// ID used by another endpoint, a request that is already finished,
	// a lease held by another node).
	ErrConflict = errors.New("conflict")
	// ErrDuplicateIdentity: a PSK identity or certificate already bound to
	// another endpoint. It also matches ErrConflict.
	ErrDuplicateIdentity = &wrapped{"duplicate identity", ErrConflict}
	// ErrInvalid: the value cannot be stored (an empty endpoint name, a
	// NUL byte in a key, a missing ID).
	ErrInvalid = errors.New("invalid")
	// ErrNoKey: a secret was to be sealed or opened but the store has no
	// encryption key, or not the one it was sealed with.
	ErrNoKey = errors.New("no encryption key for the secret")
	// ErrSchemaTooNew: the data was written by a newer lwm2md whose schema
	// this binary does not know. Nothing was changed.
	ErrSchemaTooNew = errors.New("schema version is newer than this lwm2md knows")
	// ErrCorrupt: the stored data is damaged or not an lwm2md registry.
	ErrCorrupt = errors.New("corrupt data")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// wrapped is a sentinel error that also matches a broader one.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// Store is one persistent registry. Each concern is a small interface; a
// Store returns the same implementation on every call. All methods are safe
// for concurrent use.
type Store interface {
	Registrations() Registrations
	Credentials() Credentials
	Bootstrap() BootstrapConfigs
	Observations() Observations
	Queue() Queue
	Jobs() Jobs
	Tags() Tags
	Values() Values
	// Close waits for pending writes and releases the file or the pool.
	Close() error
}

// RegistrationReader reads registrations.
type RegistrationReader interface {
	// Get returns the registration of an endpoint, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, endpoint string) (*Registration, error)
	// GetByID returns the registration with that registration ID, or an
	// error wrapping ErrNotFound.
	GetByID(ctx context.Context, id string) (*Registration, error)
	// List returns the registrations f selects, sorted by endpoint.
	List(ctx context.Context, f RegistrationFilter) ([]*Registration, error)
}

// RegistrationWriter changes registrations. Concurrent Puts are committed
// together (group commit), so a registration storm costs one disk flush
// per batch, not per device.
type RegistrationWriter interface {
	// Put stores r, replacing the registration with the same endpoint
	// whatever its ID. An ID already used by another endpoint is an error
	// wrapping ErrConflict, and nothing changes.
	Put(ctx context.Context, r *Registration) error
	// Delete removes the registration with that ID; removing an unknown ID
	// is not an error.
	Delete(ctx context.Context, id string) error
}

// Registrations are the devices' registrations (LwM2M Core §6.2).
type Registrations interface {
	RegistrationReader
	RegistrationWriter
}

// RegistrationFilter selects registrations. The zero value selects all.
type RegistrationFilter struct {
	Prefix  string // endpoint names that start with Prefix
	Version string // LwM2M version ("1.1"), any when empty
	// ExpiredBy selects registrations whose lifetime ended at or before
	// this time (UpdatedAt + Lifetime <= ExpiredBy; never for lifetime 0).
	ExpiredBy time.Time
	// After and Limit page through the result: endpoints after After,
	// at most Limit of them (0: no limit). Pass the last endpoint of a
	// page as the next After.
	After string
	Limit int
}

// CredentialReader reads device credentials.
type CredentialReader interface {
	// Get returns an endpoint's credentials or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, endpoint string) (*Credential, error)
	// List returns the credentials of endpoints after after, sorted, at
	// most limit (0: all), for export.
	List(ctx context.Context, after string, limit int) ([]*Credential, error)
}

// CredentialLookup finds the device behind a DTLS handshake.
type CredentialLookup interface {
	// ByPSKIdentity returns the credentials holding that PSK identity, or
	// an error wrapping ErrNotFound.
	ByPSKIdentity(ctx context.Context, identity string) (*Credential, error)
	// ByCertificate returns the credentials bound to the certificate with
	// that SHA-256 fingerprint (hex, any case), or ErrNotFound.
	ByCertificate(ctx context.Context, fingerprint string) (*Credential, error)
}

// CredentialWriter changes device credentials.
type CredentialWriter interface {
	// Put stores c, replacing the endpoint's credentials. A PSK identity
	// or certificate fingerprint bound to another endpoint is an error
	// wrapping ErrDuplicateIdentity, and nothing changes.
	Put(ctx context.Context, c *Credential) error
	// Delete removes an endpoint's credentials; an unknown endpoint is not
	// an error.
	Delete(ctx context.Context, endpoint string) error
}

// Credentials are the devices' DTLS credentials.
type Credentials interface {
	CredentialReader
	CredentialLookup
	CredentialWriter
}

// BootstrapConfigs are the per-endpoint bootstrap configurations. The
// configuration is sealed at rest like a key, since it carries the
// device's server accounts and their secrets.
type BootstrapConfigs interface {
	Put(ctx context.Context, c *BootstrapConfig) error
	// Get returns the endpoint's configuration or ErrNotFound.
	Get(ctx context.Context, endpoint string) (*BootstrapConfig, error)
	Delete(ctx context.Context, endpoint string) error
}

// ObservationReader reads active observations.
type ObservationReader interface {
	// List returns an endpoint's observations, sorted by token.
	List(ctx context.Context, endpoint string) ([]*Observation, error)
	// ListAll calls fn with every stored observation, sorted by endpoint
	// and then token: what a server restores at start in one pass
	// instead of a List per registration. The store reads a page at a
	// time and holds no transaction or connection while fn runs, so fn
	// may change observations; a change ahead of the page being read
	// may or may not be seen. An error from fn stops ListAll, which
	// returns it as is.
	ListAll(ctx context.Context, fn func(*Observation) error) error
}

// ObservationWriter changes active observations.
type ObservationWriter interface {
	// Put stores o, replacing the observation with the same endpoint and
	// token.
	Put(ctx context.Context, o *Observation) error
	// Delete removes one observation; an unknown one is not an error.
	Delete(ctx context.Context, endpoint string, token []byte) error
	// DeleteAll removes every observation of an endpoint (its
	// registration ended).
	DeleteAll(ctx context.Context, endpoint string) error
}

// Observations are the observations devices accepted, kept so that they
// can be re-established after a restart.
type Observations interface {
	ObservationReader
	ObservationWriter
}

// QueueWriter adds and finishes queued requests.
type QueueWriter interface {
	// Enqueue appends r to its endpoint's queue with status Pending and
	// returns its ID. IDs grow with every Enqueue: they are the queue's
	// order. r.ID, Status and the times are set by the store.
	Enqueue(ctx context.Context, r *Request) (uint64, error)
	// Complete finishes a Pending or Sent request with res.Status (Done,
	// Failed or Cancelled). When owner is not empty the request must be
	// Sent and claimed by owner. A request that is already finished, or
	// held by another owner, is an error wrapping ErrConflict.
	Complete(ctx context.Context, id uint64, owner string, res Result) error
}

// QueueReader reads the queues.
type QueueReader interface {
	// Peek returns the head of an endpoint's queue at now: its oldest
	// request that is Pending or Sent and whose deadline has not passed.
	// An empty queue is an error wrapping ErrNotFound.
	Peek(ctx context.Context, endpoint string, now time.Time) (*Request, error)
	// Get returns one request or ErrNotFound.
	Get(ctx context.Context, id uint64) (*Request, error)
	// List returns an endpoint's requests in queue order, those with
	// one of the statuses given (all when none).
	List(ctx context.Context, endpoint string, status ...RequestStatus) ([]*Request, error)
}

// QueueClaimer hands the head of a queue to one node.
type QueueClaimer interface {
	// Claim marks the head of the endpoint's queue Sent, held by owner
	// until leaseUntil, and returns it. The head is claimable when it is
	// Pending or its lease has run out; when another owner holds it, or
	// the queue is empty, Claim returns an error wrapping ErrNotFound, so
	// that a device's requests go out one at a time and in order whatever
	// node serves it.
	Claim(ctx context.Context, endpoint, owner string, now, leaseUntil time.Time) (*Request, error)
}

// QueueExpirer retires requests.
type QueueExpirer interface {
	// Expire marks Expired every request whose deadline is at or before
	// now and that is Pending (or Sent with a lease that ran out), and
	// returns them in ID order.
	Expire(ctx context.Context, now time.Time) ([]*Request, error)
	// Purge removes finished requests last updated before before, and
	// returns how many.
	Purge(ctx context.Context, before time.Time) (int, error)
}

// Queue is each device's queue of pending requests: what an operator asked
// while the device slept (queue mode, LwM2M Core §6.5), in order, with
// deadlines and status.
type Queue interface {
	QueueWriter
	QueueReader
	QueueClaimer
	QueueExpirer
}

// JobWriter creates and changes jobs.
type JobWriter interface {
	// Create stores j with one Pending result per endpoint, in one
	// transaction. An empty j.ID gets a random one. An existing ID is an
	// error wrapping ErrConflict.
	Create(ctx context.Context, j *Job, endpoints []string) error
	// SetStatus changes a job's status.
	SetStatus(ctx context.Context, id string, s JobStatus) error
	// Delete removes a job and its results.
	Delete(ctx context.Context, id string) error
}

// JobReader reads jobs and their results.
type JobReader interface {
	Get(ctx context.Context, id string) (*Job, error)
	// List returns jobs sorted by ID, after after, at most limit (0: all).
	List(ctx context.Context, after string, limit int) ([]*Job, error)
	// Results returns a job's per-device results sorted by endpoint,
	// after after, at most limit (0: all).
	Results(ctx context.Context, id, after string, limit int) ([]*JobResult, error)
}

// JobWorker is how nodes share a job's work.
type JobWorker interface {
	// Claim takes up to n of the job's targets that are Pending (or
	// Running with a lease that ran out), marks them Running for owner
	// until leaseUntil and returns them. Concurrent Claims, from this node
	// or others, never return the same target twice.
	Claim(ctx context.Context, id, owner string, n int, now, leaseUntil time.Time) ([]*JobResult, error)
	// Report stores the outcome of one target: r.Status (Succeeded,
	// Failed, or Pending to give it back), r.Result and r.Error. The
	// target must be Running and held by r.Owner, else ErrConflict.
	Report(ctx context.Context, r *JobResult) error
}

// Jobs are operations over many devices (firmware campaigns, bulk
// writes) and what each device answered.
type Jobs interface {
	JobWriter
	JobReader
	JobWorker
}

// TagWriter changes device tags.
type TagWriter interface {
	// Set sets the given tags of an endpoint (a tag without a value has
	// the value ""), keeping its other tags.
	Set(ctx context.Context, endpoint string, tags map[string]string) error
	// Remove removes the given tags, or every tag when none is given.
	Remove(ctx context.Context, endpoint string, keys ...string) error
}

// TagReader reads and searches device tags.
type TagReader interface {
	// Get returns an endpoint's tags (an empty map when it has none).
	Get(ctx context.Context, endpoint string) (map[string]string, error)
	// Find returns the endpoints q selects, sorted.
	Find(ctx context.Context, q TagQuery) ([]string, error)
}

// Tags are the operators' key/value attributes of devices, for search and
// grouping.
type Tags interface {
	TagReader
	TagWriter
}

// TagQuery selects tagged endpoints.
type TagQuery struct {
	// Key is the tag the endpoints must have; empty selects every tagged
	// endpoint.
	Key string
	// Value is the value Key must have, unless AnyValue.
	Value    string
	AnyValue bool
	After    string // endpoints after After
	Limit    int    // at most Limit (0: all)
}

// Values are the last known value of each resource of each device: its
// reported state.
type Values interface {
	// Put stores vs as the endpoint's latest values. A value replaces the
	// stored one for its path unless both carry a device time and the
	// stored one is later (a historical notification arriving late).
	Put(ctx context.Context, endpoint string, vs []ResourceValue) error
	// Get returns the endpoint's values under prefix (the root: all),
	// sorted by path.
	Get(ctx context.Context, endpoint string, prefix objects.Path) ([]ResourceValue, error)
	// Delete removes the endpoint's values under prefix.
	Delete(ctx context.Context, endpoint string, prefix objects.Path) error
}
