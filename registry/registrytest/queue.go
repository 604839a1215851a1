package registrytest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/registry"
)

func observation(ep string, token byte, paths ...string) *registry.Observation {
	o := &registry.Observation{Endpoint: ep, RegistrationID: "reg-" + ep, Token: []byte{token, 0xee, 0x01}, Format: objects.FormatSenMLCBOR, Started: base}
	for _, p := range paths {
		o.Paths = append(o.Paths, objects.MustParsePath(p))
	}
	return o
}

func testObservations(t *testing.T, s registry.Store) {
	obs := s.Observations()
	list, err := obs.List(ctx, "dev-a")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("List of none: %v", list)
	}
	attrs, err := linkformat.ParseQuery([]string{"pmin=10", "pmax=60", "gt=25.5", "st"})
	must(t, err)
	o1 := observation("dev-a", 2, "/3303/0/5700")
	o1.Attributes = attrs
	o2 := observation("dev-a", 1, "/3/0/9", "/3303/0", "/4")
	o2.Composite, o2.Format = true, objects.FormatSenMLJSON
	o3 := observation("dev-b", 1, "/3/0")
	for _, o := range []*registry.Observation{o1, o2, o3} {
		must(t, obs.Put(ctx, o))
	}
	check := func(ep string, want ...*registry.Observation) {
		t.Helper()
		list, err := obs.List(ctx, ep)
		must(t, err)
		if len(list) != len(want) {
			t.Fatalf("%s: %d observations, want %d", ep, len(list), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(list[i], want[i]) {
				t.Fatalf("%s: observation %d:\n got %+v\nwant %+v", ep, i, list[i], want[i])
			}
		}
	}
	check("dev-a", o2, o1) // by token
	check("dev-b", o3)
	// Put replaces the observation with the same token.
	o1b := *o1
	o1b.Format, o1b.Attributes = objects.FormatTLV, linkformat.Attributes{}
	must(t, obs.Put(ctx, &o1b))
	check("dev-a", o2, &o1b)
	must(t, obs.Delete(ctx, "dev-a", o2.Token))
	must(t, obs.Delete(ctx, "dev-a", []byte{9, 9}))
	check("dev-a", &o1b)
	must(t, obs.Put(ctx, o2))
	must(t, obs.DeleteAll(ctx, "dev-a"))
	check("dev-a")
	check("dev-b", o3)
}

func request(ep, op, path string) *registry.Request {
	return &registry.Request{Endpoint: ep, Operation: op, Path: objects.MustParsePath(path), Format: objects.FormatTLV, Payload: []byte{0xc1, 0x0e, 0x01}}
}

func ids(rs []*registry.Request) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func testQueueOrder(t *testing.T, s registry.Store) {
	q := s.Queue()
	wantErr(t, errOf(q.Peek(ctx, "dev-a", base)), registry.ErrNotFound, "Peek of an empty queue")
	wantErr(t, errOf(q.Get(ctx, 12345)), registry.ErrNotFound, "Get of an unknown request")
	var a, b []uint64
	var last uint64
	for i := 0; i < 5; i++ {
		for _, ep := range []string{"dev-a", "dev-b"} {
			r := request(ep, "write", fmt.Sprintf("/3/0/%d", i))
			r.JobID = "job-1"
			r.Deadline = base.Add(time.Hour)
			r.Status, r.Attempts, r.Owner = registry.StatusDone, 7, "ignored" // the store sets these
			id, err := q.Enqueue(ctx, r)
			must(t, err)
			if id <= last {
				t.Fatalf("ID %d after %d", id, last)
			}
			last = id
			if ep == "dev-a" {
				a = append(a, id)
			} else {
				b = append(b, id)
			}
		}
	}
	list, err := q.List(ctx, "dev-a")
	must(t, err)
	if fmt.Sprint(ids(list)) != fmt.Sprint(a) {
		t.Fatalf("dev-a queue %v, want %v", ids(list), a)
	}
	r := list[2]
	want := request("dev-a", "write", "/3/0/2")
	want.ID, want.JobID, want.Deadline, want.Status = a[2], "job-1", base.Add(time.Hour), registry.StatusPending
	want.CreatedAt, want.UpdatedAt = r.CreatedAt, r.UpdatedAt
	if r.CreatedAt.IsZero() || !reflect.DeepEqual(r, want) {
		t.Fatalf("stored request:\n got %+v\nwant %+v", r, want)
	}
	got, err := q.Get(ctx, a[2])
	must(t, err)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Get: %+v", got)
	}
	// The head moves as requests finish, in order.
	for i, id := range a {
		h, err := q.Peek(ctx, "dev-a", base)
		must(t, err)
		if h.ID != id {
			t.Fatalf("head %d, want %d (step %d)", h.ID, id, i)
		}
		must(t, q.Complete(ctx, id, "", registry.Result{Status: registry.StatusDone, Code: 0x44}))
	}
	wantErr(t, errOf(q.Peek(ctx, "dev-a", base)), registry.ErrNotFound, "Peek of a finished queue")
	h, err := q.Peek(ctx, "dev-b", base)
	must(t, err)
	if h.ID != b[0] {
		t.Fatalf("dev-b head %d", h.ID)
	}
	done, err := q.List(ctx, "dev-a", registry.StatusDone)
	must(t, err)
	if len(done) != 5 || done[0].Result.Code != 0x44 || done[0].Result.Status != registry.StatusDone {
		t.Fatalf("done: %+v", done)
	}
	open, err := q.List(ctx, "dev-b", registry.StatusPending, registry.StatusSent)
	must(t, err)
	if len(open) != 5 {
		t.Fatalf("open: %d", len(open))
	}
	// A finished request cannot finish again.
	wantErr(t, q.Complete(ctx, a[0], "", registry.Result{Status: registry.StatusFailed}), registry.ErrConflict, "second Complete")
	wantErr(t, q.Complete(ctx, 99999, "", registry.Result{Status: registry.StatusDone}), registry.ErrNotFound, "Complete of an unknown request")
	wantErr(t, q.Complete(ctx, b[0], "", registry.Result{Status: registry.StatusPending}), registry.ErrInvalid, "Complete as Pending")

	// Purge drops finished requests last updated before a time.
	n, err := q.Purge(ctx, time.Now().Add(-time.Hour))
	must(t, err)
	if n != 0 {
		t.Fatalf("purged %d recent requests", n)
	}
	n, err = q.Purge(ctx, time.Now().Add(time.Hour))
	must(t, err)
	if n != 5 {
		t.Fatalf("purged %d, want 5", n)
	}
	list, err = q.List(ctx, "dev-a")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("after Purge: %v", ids(list))
	}
	wantErr(t, errOf(q.Get(ctx, a[0])), registry.ErrNotFound, "purged request")
}

func testQueueClaim(t *testing.T, s registry.Store) {
	q := s.Queue()
	id1, err := q.Enqueue(ctx, request("dev-a", "read", "/3/0"))
	must(t, err)
	id2, err := q.Enqueue(ctx, request("dev-a", "execute", "/3/0/4"))
	must(t, err)
	now := base
	r, err := q.Claim(ctx, "dev-a", "node-1", now, now.Add(time.Minute))
	must(t, err)
	if r.ID != id1 || r.Status != registry.StatusSent || r.Owner != "node-1" || !r.LeaseUntil.Equal(now.Add(time.Minute)) || r.Attempts != 1 {
		t.Fatalf("claimed %+v", r)
	}
	// The head is held: nobody gets the next one before it is done.
	wantErr(t, errOf(q.Claim(ctx, "dev-a", "node-2", now.Add(time.Second), now.Add(time.Minute))), registry.ErrNotFound, "Claim of a held head")
	h, err := q.Peek(ctx, "dev-a", now)
	must(t, err)
	if h.ID != id1 || h.Status != registry.StatusSent {
		t.Fatalf("Peek while held: %+v", h)
	}
	// After the lease, another node takes it over.
	r, err = q.Claim(ctx, "dev-a", "node-2", now.Add(2*time.Minute), now.Add(3*time.Minute))
	must(t, err)
	if r.ID != id1 || r.Owner != "node-2" || r.Attempts != 2 {
		t.Fatalf("claim after the lease: %+v", r)
	}
	// The first owner's late answer is refused.
	wantErr(t, q.Complete(ctx, id1, "node-1", registry.Result{Status: registry.StatusDone}), registry.ErrConflict, "Complete by a former owner")
	must(t, q.Complete(ctx, id1, "node-2", registry.Result{Status: registry.StatusDone, Code: 0x45, Format: objects.FormatTLV, Payload: []byte{1, 2}}))
	got, err := q.Get(ctx, id1)
	must(t, err)
	if got.Status != registry.StatusDone || got.Result.Code != 0x45 || string(got.Result.Payload) != "\x01\x02" || got.Result.Format != objects.FormatTLV {
		t.Fatalf("completed: %+v", got)
	}
	// Owner checks need the request to be Sent.
	wantErr(t, q.Complete(ctx, id2, "node-2", registry.Result{Status: registry.StatusDone}), registry.ErrConflict, "owner Complete of a Pending request")
	r, err = q.Claim(ctx, "dev-a", "node-2", now, now.Add(time.Minute))
	must(t, err)
	if r.ID != id2 {
		t.Fatalf("second claim: %d", r.ID)
	}
	// An operator cancels without being the owner.
	must(t, q.Complete(ctx, id2, "", registry.Result{Status: registry.StatusCancelled, Error: "withdrawn"}))
	got, err = q.Get(ctx, id2)
	must(t, err)
	if got.Status != registry.StatusCancelled || got.Result.Error != "withdrawn" {
		t.Fatalf("cancelled: %+v", got)
	}
	wantErr(t, errOf(q.Claim(ctx, "dev-a", "node-2", now, now.Add(time.Minute))), registry.ErrNotFound, "Claim of an empty queue")
}

func testQueueDeadlines(t *testing.T, s registry.Store) {
	q := s.Queue()
	now := base
	enq := func(ep string, deadline time.Time) uint64 {
		r := request(ep, "read", "/3/0/0")
		r.Deadline = deadline
		id, err := q.Enqueue(ctx, r)
		must(t, err)
		return id
	}
	early := enq("dev-a", now.Add(time.Minute))
	none := enq("dev-a", time.Time{})
	late := enq("dev-a", now.Add(time.Hour))
	held := enq("dev-b", now.Add(time.Minute))
	heldLong := enq("dev-c", now.Add(time.Minute))
	// A request is live strictly before its deadline.
	h, err := q.Peek(ctx, "dev-a", now.Add(time.Minute-time.Microsecond))
	must(t, err)
	if h.ID != early {
		t.Fatalf("head before the deadline: %d", h.ID)
	}
	h, err = q.Peek(ctx, "dev-a", now.Add(time.Minute))
	must(t, err)
	if h.ID != none {
		t.Fatalf("head at the deadline: %d, want %d", h.ID, none)
	}
	_, err = q.Claim(ctx, "dev-b", "n1", now, now.Add(30*time.Second))
	must(t, err)
	_, err = q.Claim(ctx, "dev-c", "n1", now, now.Add(time.Hour))
	must(t, err)

	// Expire retires the Pending request past its deadline and the Sent
	// one whose lease ran out, not the one still held.
	exp, err := q.Expire(ctx, now.Add(time.Minute))
	must(t, err)
	if fmt.Sprint(ids(exp)) != fmt.Sprint([]uint64{early, held}) {
		t.Fatalf("expired %v, want %v", ids(exp), []uint64{early, held})
	}
	for _, r := range exp {
		if r.Status != registry.StatusExpired {
			t.Fatalf("returned as %v", r.Status)
		}
	}
	for id, want := range map[uint64]registry.RequestStatus{early: registry.StatusExpired, held: registry.StatusExpired,
		none: registry.StatusPending, late: registry.StatusPending, heldLong: registry.StatusSent} {
		r, err := q.Get(ctx, id)
		must(t, err)
		if r.Status != want {
			t.Fatalf("request %d: %v, want %v", id, r.Status, want)
		}
	}
	exp, err = q.Expire(ctx, now.Add(time.Minute))
	must(t, err)
	if len(exp) != 0 {
		t.Fatalf("expired twice: %v", ids(exp))
	}
	wantErr(t, q.Complete(ctx, early, "", registry.Result{Status: registry.StatusDone}), registry.ErrConflict, "Complete of an expired request")
	exp, err = q.Expire(ctx, now.Add(2*time.Hour))
	must(t, err)
	if fmt.Sprint(ids(exp)) != fmt.Sprint([]uint64{late, heldLong}) { // ID order
		t.Fatalf("expired later %v", ids(exp))
	}
	h, err = q.Peek(ctx, "dev-a", now.Add(2*time.Hour))
	must(t, err)
	if h.ID != none {
		t.Fatalf("only the request without deadline is left: %d", h.ID)
	}
}
