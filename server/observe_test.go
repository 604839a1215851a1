package server

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server/internal/testdevice"
)

func TestObserveEveryFormat(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-obs", nil)
	sub := s.Subscribe(64)
	type tc struct {
		f objects.Format
		p string
	}
	var tests []tc
	for _, f := range nodeFormats {
		tests = append(tests, tc{f, "/3/0"}, tc{f, "/3/0/9"})
	}
	tests = append(tests, tc{objects.FormatText, "/3/0/9"}, tc{objects.FormatCBOR, "/3/0/9"})
	battery := int64(50)
	for _, tt := range tests {
		t.Run(tt.f.String()+tt.p, func(t *testing.T) {
			p := path(tt.p)
			o, initial, err := s.Observe(ctx(t), "dev-obs", p, WithFormat(tt.f))
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := d.Node(p); !objects.EqualNodes(initial, want) {
				t.Fatalf("initial %+v", initial)
			}
			if o.Path != p || o.Endpoint != "dev-obs" || len(o.Token) != 16 || !slices.Contains(s.Observations("dev-obs"), o) {
				t.Fatalf("observation %+v", o)
			}
			for i := 0; i < 2; i++ {
				battery++
				d.Set(path("/3/0/9"), objects.IntegerValue(battery))
				if err := d.Notify(ctx(t), path("/3/0/9")); err != nil {
					t.Fatal(err)
				}
				e := waitEvent(t, sub, EventNotification)
				if e.Err != nil || e.Token != o.Token || e.Path != p || e.Format != tt.f || e.Endpoint != "dev-obs" {
					t.Fatalf("notification %+v", e)
				}
				want, _ := d.Node(p)
				if !objects.EqualNodes(e.Node, want) {
					t.Fatalf("notified %+v, want %+v", e.Node, want)
				}
				var got objects.Value
				for _, r := range e.Records {
					if r.Path == path("/3/0/9") {
						got = r.Value
					}
				}
				if got.Int() != battery {
					t.Fatalf("records %+v", e.Records)
				}
			}
			if err := s.CancelObservation(ctx(t), o); err != nil {
				t.Fatal(err)
			}
			if d.Observers() != 0 || len(s.Observations("dev-obs")) != 0 {
				t.Fatalf("after cancel: device %d, server %d", d.Observers(), len(s.Observations("dev-obs")))
			}
			reqs := d.Requests()
			if last := reqs[len(reqs)-1]; !strings.Contains(last, "observe=1") || !strings.HasPrefix(last, "GET "+tt.p+" ") {
				t.Fatalf("cancel request %q", last)
			}
			if err := s.CancelObservation(ctx(t), o); err != nil {
				t.Fatal("second cancel:", err)
			}
		})
	}
}

func TestObserveTimestampedRecords(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-ts", nil)
	sub := s.Subscribe(16)
	o, _, err := s.Observe(ctx(t), "dev-ts", path("/3/0/9"), WithFormat(objects.FormatSenMLJSON))
	if err != nil {
		t.Fatal(err)
	}
	// A notification with history (LwM2M 1.2): two values with times.
	payload := `[{"bn":"/3/0/9","bt":1700000000,"v":40},{"t":10,"v":41}]`
	if _, err := d.NotifyRaw(ctx(t), message.Token(o.token), codes.Content, objects.FormatSenMLJSON, []byte(payload)); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, sub, EventNotification)
	if e.Err != nil || len(e.Records) != 2 || e.Records[0].Time != 1700000000 || e.Records[1].Time != 1700000010 || e.Records[1].Value.Int() != 41 {
		t.Fatalf("%+v", e)
	}
}

func TestPassiveCancel(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-passive", nil)
	sub := s.Subscribe(16)
	o, _, err := s.Observe(ctx(t), "dev-passive", path("/3/0/9"), WithFormat(objects.FormatText))
	if err != nil {
		t.Fatal(err)
	}
	s.ForgetObservation(o)
	if len(s.Observations("dev-passive")) != 0 {
		t.Fatal("still listed")
	}
	if err := d.Notify(ctx(t), path("/3/0/9")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "RST", func() bool { return d.Resets() == 1 && d.Observers() == 0 })
	noEvent(t, sub, EventNotification, 100*time.Millisecond)
	if st := s.Stats(); st.Resets != 1 {
		t.Fatalf("%+v", st)
	}
	// An unknown token from the start gets RST too.
	if _, err := d.NotifyRaw(ctx(t), message.Token{9, 9, 9}, codes.Content, objects.FormatText, []byte("1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "RST", func() bool { return s.Stats().Resets == 2 })
}

// A confirmable notification of an unknown observation gets RST, not the
// empty ACK go-coap would send; a known one gets ACK.
func TestConfirmableNotifications(t *testing.T) {
	s := newServer(t, nil)
	p := newRawPeer(t, s)
	sub := s.Subscribe(16)
	if r := p.request(codes.POST, "/rd", []string{"ep=con", "lwm2m=1.1"}, 40, []byte("</3/0>")); r.Code != codes.Created {
		t.Fatal(r.Code)
	}
	unknown := message.Message{Code: codes.Content, Type: message.Confirmable, MessageID: p.nextMID(), Token: message.Token{7, 7},
		Options: message.Options{{ID: message.Observe, Value: []byte{3}}, {ID: message.ContentFormat, Value: nil}}, Payload: []byte("1")}
	p.send(unknown)
	r, ok := p.recv(3 * time.Second)
	if !ok || r.Type != message.Reset || r.MessageID != unknown.MessageID || r.Code != codes.Empty || len(r.Token) != 0 {
		t.Fatalf("answer to an unknown CON notification: %v %+v", ok, r)
	}

	type result struct {
		o   *Observation
		err error
	}
	done := make(chan result, 1)
	go func() {
		o, _, err := s.Observe(ctx(t), "con", path("/3/0/9"), WithFormat(objects.FormatText))
		done <- result{o, err}
	}()
	req, ok := p.recv(3 * time.Second)
	if !ok {
		t.Fatal("no observe request")
	}
	p.send(message.Message{Code: codes.Content, Type: message.Acknowledgement, MessageID: req.MessageID, Token: req.Token,
		Options: message.Options{{ID: message.Observe, Value: []byte{1}}, {ID: message.ContentFormat, Value: nil}}, Payload: []byte("80")})
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	notify := func(seq byte, value string) message.Message {
		m := message.Message{Code: codes.Content, Type: message.Confirmable, MessageID: p.nextMID(), Token: req.Token,
			Options: message.Options{{ID: message.Observe, Value: []byte{seq}}, {ID: message.ContentFormat, Value: nil}}, Payload: []byte(value)}
		p.send(m)
		return m
	}
	m := notify(2, "81")
	r, ok = p.recv(3 * time.Second)
	if !ok || r.Type != message.Acknowledgement || r.MessageID != m.MessageID || r.Code != codes.Empty {
		t.Fatalf("answer to a known CON notification: %+v", r)
	}
	if e := waitEvent(t, sub, EventNotification); e.Node.(*objects.Resource).Value.Int() != 81 || e.Observe != 2 {
		t.Fatalf("%+v", e)
	}
	// A retransmission (same message ID) is acknowledged again, not
	// delivered twice; an older sequence number is dropped (RFC 7641
	// §3.4).
	p.send(m)
	if r, ok := p.recv(3 * time.Second); !ok || r.Type != message.Acknowledgement {
		t.Fatal("retransmission not acknowledged")
	}
	notify(1, "79")
	p.recv(3 * time.Second)
	noEvent(t, sub, EventNotification, 200*time.Millisecond)
	notify(3, "82")
	p.recv(3 * time.Second)
	if e := waitEvent(t, sub, EventNotification); e.Node.(*objects.Resource).Value.Int() != 82 {
		t.Fatalf("%+v", e)
	}
}

func TestNotificationErrorEndsObservation(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-obs-err", nil)
	sub := s.Subscribe(16)
	o, _, err := s.Observe(ctx(t), "dev-obs-err", path("/3303/0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.NotifyRaw(ctx(t), message.Token(o.token), codes.NotFound, 0, nil); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, sub, EventNotification)
	if !errors.Is(e.Err, ErrNotFound) || e.Token != o.Token {
		t.Fatalf("%+v", e)
	}
	if len(s.Observations("dev-obs-err")) != 0 {
		t.Fatal("observation kept after an error notification")
	}
}

func TestUndecodableNotification(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-obs-bad", nil)
	sub := s.Subscribe(16)
	o, _, err := s.Observe(ctx(t), "dev-obs-bad", path("/3/0"), WithFormat(objects.FormatTLV))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.NotifyRaw(ctx(t), message.Token(o.token), codes.Content, objects.FormatTLV, []byte{0xc8}); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, sub, EventNotification)
	if !errors.Is(e.Err, objects.ErrMalformed) || e.Node != nil || !strings.Contains(e.Err.Error(), "/3/0") {
		t.Fatalf("%+v", e)
	}
	// The observation goes on.
	if err := d.Notify(ctx(t), path("/3/0")); err != nil {
		t.Fatal(err)
	}
	if e := waitEvent(t, sub, EventNotification); e.Err != nil {
		t.Fatal(e.Err)
	}
}

func TestNotificationFromForeignAddress(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-foreign", nil)
	sub := s.Subscribe(16)
	o, _, err := s.Observe(ctx(t), "dev-foreign", path("/3/0/9"), WithFormat(objects.FormatText))
	if err != nil {
		t.Fatal(err)
	}
	// Another peer that learnt the token: neither accepted nor reset.
	p := newRawPeer(t, s)
	p.send(message.Message{Code: codes.Content, Type: message.Confirmable, MessageID: p.nextMID(), Token: message.Token(o.token),
		Options: message.Options{{ID: message.Observe, Value: []byte{200}}, {ID: message.ContentFormat, Value: nil}}, Payload: []byte("1")})
	if r, ok := p.recv(300 * time.Millisecond); ok {
		t.Fatalf("answered %+v", r)
	}
	noEvent(t, sub, EventNotification, 100*time.Millisecond)
	if st := s.Stats(); st.ForeignNotify != 1 || st.Resets != 0 || !s.hasObservation(o) {
		t.Fatalf("%+v", st)
	}
	// The device itself is still heard.
	if err := d.Notify(ctx(t), path("/3/0/9")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, sub, EventNotification)
}

func TestObserveRefusedOrUnsupported(t *testing.T) {
	s := newServer(t, nil)
	p := newRawPeer(t, s)
	if r := p.request(codes.POST, "/rd", []string{"ep=noobs", "lwm2m=1.1"}, 40, []byte("</3/0>")); r.Code != codes.Created {
		t.Fatal(r.Code)
	}
	type result struct {
		n   objects.Node
		err error
	}
	done := make(chan result, 1)
	observe := func() {
		go func() {
			_, n, err := s.Observe(ctx(t), "noobs", path("/3/0/0"), WithFormat(objects.FormatText))
			done <- result{n, err}
		}()
	}
	// A 2.05 without Observe: the value, and ErrNotObserved.
	observe()
	p.serveOne(3*time.Second, codes.Content, 0, []byte("v"))
	res := <-done
	if !errors.Is(res.err, ErrNotObserved) || res.n.(*objects.Resource).Value.Str() != "v" {
		t.Fatalf("%+v", res)
	}
	// An error code.
	observe()
	p.serveOne(3*time.Second, codes.MethodNotAllowed, -1, nil)
	if res := <-done; !errors.Is(res.err, ErrMethodNotAllowed) {
		t.Fatalf("%+v", res)
	}
	if st := s.Stats(); st.Observations != 0 {
		t.Fatalf("%+v", st)
	}
}

func TestObservationsEndWithRegistration(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-obs-end", nil)
	for _, p := range []string{"/3/0/9", "/3303/0", "/6/0"} {
		if _, _, err := s.Observe(ctx(t), "dev-obs-end", path(p)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.Observations("dev-obs-end")); n != 3 {
		t.Fatalf("%d observations", n)
	}
	if code, _ := d.Deregister(ctx(t)); code != codes.Deleted {
		t.Fatal(code)
	}
	if st := s.Stats(); st.Observations != 0 {
		t.Fatalf("%+v", st)
	}
	for _, p := range []string{"/3/0/9", "/3303/0", "/6/0"} {
		if err := d.Notify(ctx(t), path(p)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 3*time.Second, "RSTs after de-register", func() bool { return d.Resets() == 3 })
}

func TestConfirmableNotifyDevice(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-con", func(c *testdevice.Config) { c.ConfirmableNotify = true })
	sub := s.Subscribe(16)
	if _, _, err := s.Observe(ctx(t), "dev-con", path("/3/0/9")); err != nil {
		t.Fatal(err)
	}
	d.Set(path("/3/0/9"), objects.IntegerValue(3))
	if err := d.Notify(ctx(t), path("/3/0/9")); err != nil {
		t.Fatal(err)
	}
	if e := waitEvent(t, sub, EventNotification); e.Node.(*objects.Resource).Value.Int() != 3 {
		t.Fatalf("%+v", e)
	}
}
