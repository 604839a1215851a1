package server

import (
	"errors"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
)

// StoredResult reads back from the registry how finished queued requests
// ended, with the sentinel errors and the CoAP code the live results
// carried: done (with the value read), failed, expired and cancelled. An
// open or unknown request has no result.
func TestStoredResult(t *testing.T) {
	s := queueServer(t, nil)
	sub := s.Subscribe(256)
	ep := "q-stored"
	c := queueClient(t, s.Addr().String(), ep, "1.1", true)
	asleep(t, s, sub, c)

	expired, err := s.Enqueue(ctx(t), ep, Request{Op: OpRead, Path: path("/3/0/0"), Deadline: time.Now().Add(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	waitEventFor(t, sub, EventRequestResult, ep)
	cancelled, err := s.Enqueue(ctx(t), ep, Request{Op: OpExecute, Path: path("/3/0/4")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CancelQueued(ctx(t), ep, cancelled); err != nil {
		t.Fatal(err)
	}
	waitEventFor(t, sub, EventRequestResult, ep)
	done, err := s.Enqueue(ctx(t), ep, Request{Op: OpRead, Path: path("/3/0/0")})
	if err != nil {
		t.Fatal(err)
	}
	failed, err := s.Enqueue(ctx(t), ep, Request{Op: OpRead, Path: path("/3/0/9")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StoredResult(ctx(t), ep, done); !errors.Is(err, ErrNoRequest) {
		t.Fatalf("result of a queued request: %v, want ErrNoRequest", err)
	}
	if err := c.Object(3).Remove(path("/3/0/9")); err != nil { // the device answers 4.04
		t.Fatal(err)
	}
	if err := c.Wake(ctx(t)); err != nil {
		t.Fatal(err)
	}
	live := map[string]Event{}
	for len(live) < 2 {
		e := waitEventFor(t, sub, EventRequestResult, ep)
		live[e.RequestID] = e
	}
	var ce *CoAPError
	if !errors.As(live[failed].Err, &ce) {
		t.Fatalf("live result of the failed read: %v, want a CoAP error", live[failed].Err)
	}

	for _, tc := range []struct {
		name, id string
		status   registry.RequestStatus
		is       []error
		code     Code
	}{
		{"done", done, registry.StatusDone, nil, 0},
		{"failed", failed, registry.StatusFailed, nil, ce.Code},
		{"expired", expired, registry.StatusExpired, []error{ErrExpired, ErrTimeout}, 0},
		{"cancelled", cancelled, registry.StatusCancelled, []error{ErrCancelled}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.StoredResult(ctx(t), ep, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if res.ID != tc.id || res.Endpoint != ep || res.Status != tc.status {
				t.Fatalf("result %+v, want %s %v", res, tc.id, tc.status)
			}
			if (tc.status == registry.StatusDone) != (res.Err == nil) {
				t.Fatalf("error %v", res.Err)
			}
			for _, want := range tc.is {
				if !errors.Is(res.Err, want) {
					t.Errorf("error %v does not match %v", res.Err, want)
				}
			}
			var got *CoAPError
			if tc.code != 0 && (!errors.As(res.Err, &got) || got.Code != tc.code || res.Err.Error() != live[tc.id].Err.Error()) {
				t.Errorf("error %v, want %v as the device answered it", res.Err, live[tc.id].Err)
			}
			if tc.status == registry.StatusDone {
				if r, ok := res.Node.(*objects.Resource); !ok || r.Value.Str() != "lwm2md" {
					t.Errorf("value read %+v, want the manufacturer", res.Node)
				}
			}
		})
	}
	for _, tc := range []struct{ name, ep, id string }{
		{"other endpoint", "someone-else", done},
		{"not a number", ep, "x"},
		{"unknown", ep, "999999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.StoredResult(ctx(t), tc.ep, tc.id); !errors.Is(err, ErrNoRequest) {
				t.Fatalf("StoredResult: %v, want ErrNoRequest", err)
			}
		})
	}
}
