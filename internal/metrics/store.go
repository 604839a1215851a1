package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
)

// InstrumentStore returns s with the calls the LwM2M server makes on its
// device path timed: registrations, credentials (the DTLS handshake's
// lookup), observations, the request queues and the last known values,
// as lwm2md_store_duration_seconds{kind, op} and
// lwm2md_store_errors_total{kind, op} ("not found" is an answer, not an
// error). Jobs, tags and bootstrap configurations pass through untimed.
// The series are made up front, so each costs a clock read and a bucket
// increment per call, not a label lookup.
func InstrumentStore(s registry.Store, r prometheus.Registerer) (registry.Store, error) {
	t := &storeTimers{
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "store_duration_seconds",
			Help:    "Registry store calls on the device path, by kind (registrations, credentials, observations, queue, values) and operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"kind", "op"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "store_errors_total",
			Help: "Registry store calls that failed (not counting \"not found\"), by kind and operation."}, []string{"kind", "op"}),
	}
	for _, c := range []prometheus.Collector{t.dur, t.errs} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	is := &instrumentedStore{Store: s}
	is.regs = &timedRegistrations{s.Registrations(), t.of("registrations", "get"), t.of("registrations", "get_by_id"),
		t.of("registrations", "list"), t.of("registrations", "put"), t.of("registrations", "delete")}
	is.creds = &timedCredentials{s.Credentials(), t.of("credentials", "get"), t.of("credentials", "by_psk_identity"),
		t.of("credentials", "by_certificate"), t.of("credentials", "put"), t.of("credentials", "delete")}
	is.obs = &timedObservations{s.Observations(), t.of("observations", "list"), t.of("observations", "list_all"),
		t.of("observations", "put"), t.of("observations", "delete"), t.of("observations", "delete_all")}
	is.queue = &timedQueue{s.Queue(), t.of("queue", "enqueue"), t.of("queue", "complete"), t.of("queue", "peek"),
		t.of("queue", "claim"), t.of("queue", "expire")}
	is.values = &timedValues{s.Values(), t.of("values", "put"), t.of("values", "get"), t.of("values", "delete")}
	return is, nil
}

type storeTimers struct {
	dur  *prometheus.HistogramVec
	errs *prometheus.CounterVec
}

func (t *storeTimers) of(kind, op string) timer {
	return timer{t.dur.WithLabelValues(kind, op), t.errs.WithLabelValues(kind, op)}
}

// timer is one (kind, op) series pair.
type timer struct {
	obs  prometheus.Observer
	errs prometheus.Counter
}

// done records a call that started at start and returns its error.
func (t timer) done(start time.Time, err error) error {
	t.obs.Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		t.errs.Inc()
	}
	return err
}

// instrumentedStore embeds the store, so that what is not timed (and
// what the interfaces gain later) passes through.
type instrumentedStore struct {
	registry.Store
	// Pointers: the accessors return them as interfaces without a copy
	// (an allocation per call for a struct value).
	regs   *timedRegistrations
	creds  *timedCredentials
	obs    *timedObservations
	queue  *timedQueue
	values *timedValues
}

func (s *instrumentedStore) Registrations() registry.Registrations { return s.regs }
func (s *instrumentedStore) Credentials() registry.Credentials     { return s.creds }
func (s *instrumentedStore) Observations() registry.Observations   { return s.obs }
func (s *instrumentedStore) Queue() registry.Queue                 { return s.queue }
func (s *instrumentedStore) Values() registry.Values               { return s.values }

type timedRegistrations struct {
	registry.Registrations
	get, getByID, list, put, del timer
}

func (r timedRegistrations) Get(ctx context.Context, endpoint string) (*registry.Registration, error) {
	start := time.Now()
	v, err := r.Registrations.Get(ctx, endpoint)
	return v, r.get.done(start, err)
}

func (r timedRegistrations) GetByID(ctx context.Context, id string) (*registry.Registration, error) {
	start := time.Now()
	v, err := r.Registrations.GetByID(ctx, id)
	return v, r.getByID.done(start, err)
}

func (r timedRegistrations) List(ctx context.Context, f registry.RegistrationFilter) ([]*registry.Registration, error) {
	start := time.Now()
	v, err := r.Registrations.List(ctx, f)
	return v, r.list.done(start, err)
}

func (r timedRegistrations) Put(ctx context.Context, reg *registry.Registration) error {
	start := time.Now()
	return r.put.done(start, r.Registrations.Put(ctx, reg))
}

func (r timedRegistrations) Delete(ctx context.Context, id string) error {
	start := time.Now()
	return r.del.done(start, r.Registrations.Delete(ctx, id))
}

type timedCredentials struct {
	registry.Credentials
	get, byPSK, byCert, put, del timer
}

func (c timedCredentials) Get(ctx context.Context, endpoint string) (*registry.Credential, error) {
	start := time.Now()
	v, err := c.Credentials.Get(ctx, endpoint)
	return v, c.get.done(start, err)
}

func (c timedCredentials) ByPSKIdentity(ctx context.Context, identity string) (*registry.Credential, error) {
	start := time.Now()
	v, err := c.Credentials.ByPSKIdentity(ctx, identity)
	return v, c.byPSK.done(start, err)
}

func (c timedCredentials) ByCertificate(ctx context.Context, fingerprint string) (*registry.Credential, error) {
	start := time.Now()
	v, err := c.Credentials.ByCertificate(ctx, fingerprint)
	return v, c.byCert.done(start, err)
}

func (c timedCredentials) Put(ctx context.Context, cr *registry.Credential) error {
	start := time.Now()
	return c.put.done(start, c.Credentials.Put(ctx, cr))
}

func (c timedCredentials) Delete(ctx context.Context, endpoint string) error {
	start := time.Now()
	return c.del.done(start, c.Credentials.Delete(ctx, endpoint))
}

type timedObservations struct {
	registry.Observations
	list, listAll, put, del, delAll timer
}

func (o timedObservations) List(ctx context.Context, endpoint string) ([]*registry.Observation, error) {
	start := time.Now()
	v, err := o.Observations.List(ctx, endpoint)
	return v, o.list.done(start, err)
}

// ListAll's time includes fn's: the whole pass, as a restore takes it.
func (o timedObservations) ListAll(ctx context.Context, fn func(*registry.Observation) error) error {
	start := time.Now()
	return o.listAll.done(start, o.Observations.ListAll(ctx, fn))
}

func (o timedObservations) Put(ctx context.Context, ob *registry.Observation) error {
	start := time.Now()
	return o.put.done(start, o.Observations.Put(ctx, ob))
}

func (o timedObservations) Delete(ctx context.Context, endpoint string, token []byte) error {
	start := time.Now()
	return o.del.done(start, o.Observations.Delete(ctx, endpoint, token))
}

func (o timedObservations) DeleteAll(ctx context.Context, endpoint string) error {
	start := time.Now()
	return o.delAll.done(start, o.Observations.DeleteAll(ctx, endpoint))
}

type timedQueue struct {
	registry.Queue
	enqueue, complete, peek, claim, expire timer
}

func (q timedQueue) Enqueue(ctx context.Context, r *registry.Request) (uint64, error) {
	start := time.Now()
	v, err := q.Queue.Enqueue(ctx, r)
	return v, q.enqueue.done(start, err)
}

func (q timedQueue) Complete(ctx context.Context, id uint64, owner string, res registry.Result) error {
	start := time.Now()
	return q.complete.done(start, q.Queue.Complete(ctx, id, owner, res))
}

func (q timedQueue) Peek(ctx context.Context, endpoint string, now time.Time) (*registry.Request, error) {
	start := time.Now()
	v, err := q.Queue.Peek(ctx, endpoint, now)
	return v, q.peek.done(start, err)
}

func (q timedQueue) Claim(ctx context.Context, endpoint, owner string, now, leaseUntil time.Time) (*registry.Request, error) {
	start := time.Now()
	v, err := q.Queue.Claim(ctx, endpoint, owner, now, leaseUntil)
	return v, q.claim.done(start, err)
}

func (q timedQueue) Expire(ctx context.Context, now time.Time) ([]*registry.Request, error) {
	start := time.Now()
	v, err := q.Queue.Expire(ctx, now)
	return v, q.expire.done(start, err)
}

type timedValues struct {
	registry.Values
	put, get, del timer
}

func (v timedValues) Put(ctx context.Context, endpoint string, vs []registry.ResourceValue) error {
	start := time.Now()
	return v.put.done(start, v.Values.Put(ctx, endpoint, vs))
}

func (v timedValues) Get(ctx context.Context, endpoint string, prefix objects.Path) ([]registry.ResourceValue, error) {
	start := time.Now()
	r, err := v.Values.Get(ctx, endpoint, prefix)
	return r, v.get.done(start, err)
}

func (v timedValues) Delete(ctx context.Context, endpoint string, prefix objects.Path) error {
	start := time.Now()
	return v.del.done(start, v.Values.Delete(ctx, endpoint, prefix))
}
