package server

import (
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
)

// observedRawPeer registers a raw peer and has the server observe its
// /3/0/9; it returns the peer and the observation's token.
func observedRawPeer(t *testing.T, s *testServer, ep string) (*rawPeer, *Observation, message.Token) {
	t.Helper()
	p := newRawPeer(t, s)
	if r := p.request(codes.POST, "/rd", []string{"ep=" + ep, "lwm2m=1.1"}, 40, []byte("</3/0>")); r.Code != codes.Created {
		t.Fatal(r.Code)
	}
	type result struct {
		o   *Observation
		err error
	}
	done := make(chan result, 1)
	go func() {
		o, _, err := s.Observe(ctx(t), ep, path("/3/0/9"), WithFormat(objects.FormatText))
		done <- result{o, err}
	}()
	req := p.serveObserve([]byte("80"), 0)
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	return p, res.o, req.Token
}

// The notifications of one device, taken off go-coap's read loop by the
// ingest workers, are published in the order they came, none lost.
func TestIngestKeepsOrder(t *testing.T) {
	s := newServer(t, nil)
	sub := s.Subscribe(1024)
	p, _, tok := observedRawPeer(t, s, "order")
	const n = 300
	for i := 0; i < n; i++ {
		typ := message.NonConfirmable
		if i%3 == 0 {
			typ = message.Confirmable
		}
		p.send(message.Message{Code: codes.Content, Type: typ, MessageID: p.nextMID(), Token: tok,
			Options: message.Options{{ID: message.Observe, Value: encodeUint(uint32(i + 2))}, {ID: message.ContentFormat, Value: nil}},
			Payload: []byte("1")})
	}
	for i := 0; i < n; i++ {
		e := waitEvent(t, sub, EventNotification)
		if e.Observe != uint32(i+2) {
			t.Fatalf("notification %d: Observe %d, want %d", i, e.Observe, i+2)
		}
	}
	if got := s.Stats().Notifications; got != n {
		t.Fatalf("Stats.Notifications = %d, want %d", got, n)
	}
}

// While an observation is being cancelled, a separate answer to the
// cancelling GET (an empty ACK, then a CON 2.05 with the token and an
// Observe option, RFC 7252 §5.2.2) reaches the waiting request instead of
// being taken as a notification.
func TestIngestLeavesSeparateCancelAnswer(t *testing.T) {
	s := newServer(t, nil)
	p, o, tok := observedRawPeer(t, s, "cancel-separate")
	done := make(chan error, 1)
	go func() { done <- s.CancelObservation(ctx(t), o) }()
	var req message.Message
	for {
		r, ok := p.recv(3 * time.Second)
		if !ok {
			t.Fatal("no cancel request")
		}
		if r.Code == codes.GET {
			req = r
			break
		}
	}
	if string(req.Token) != string(tok) {
		t.Fatalf("cancel on token %x, want %x", req.Token, tok)
	}
	p.send(message.Message{Type: message.Acknowledgement, Code: codes.Empty, MessageID: req.MessageID})
	sep := message.Message{Code: codes.Content, Type: message.Confirmable, MessageID: p.nextMID(), Token: tok,
		Options: message.Options{{ID: message.Observe, Value: []byte{9}}, {ID: message.ContentFormat, Value: nil}}, Payload: []byte("81")}
	p.send(sep)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not get its separate answer")
	}
	if r, ok := p.recv(3 * time.Second); !ok || r.Type != message.Acknowledgement || r.MessageID != sep.MessageID {
		t.Fatalf("separate answer not acknowledged: %v %+v", ok, r)
	}
	if s.hasObservation(o) {
		t.Fatal("observation still held after the cancel")
	}
}
