package server

import (
	"bytes"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
)

func TestSendEveryFormat(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-send", nil)
	sub := s.Subscribe(16)
	recs := []objects.Record{
		{Path: path("/3/0/9"), Value: objects.IntegerValue(77), Time: 1700000000},
		{Path: path("/3/0/0"), Value: objects.StringValue("lwm2md"), Time: 1700000000},
		{Path: path("/6/0/0"), Value: objects.FloatValue(52.5), Time: 1700000010},
		{Path: path("/3/0/7/1"), Value: objects.IntegerValue(4000), Time: 1700000010},
	}
	for _, f := range []objects.Format{objects.FormatSenMLJSON, objects.FormatSenMLCBOR, objects.FormatJSON, objects.FormatLwM2MCBOR} {
		t.Run(f.String(), func(t *testing.T) {
			in := recs
			if f == objects.FormatLwM2MCBOR {
				in = untimed(recs) // LwM2M CBOR carries no timestamps
			}
			code, err := d.Send(ctx(t), f, in)
			if err != nil || code != codes.Changed {
				t.Fatalf("send: %v %v", code, err)
			}
			e := waitEvent(t, sub, EventSend)
			if e.Endpoint != "dev-send" || e.Format != f || e.Registration == nil || len(e.Records) != len(in) {
				t.Fatalf("%+v", e)
			}
			got := map[objects.Path]objects.Record{}
			for _, r := range e.Records {
				got[r.Path] = r
			}
			for _, want := range in {
				r, ok := got[want.Path]
				if !ok || !r.Value.Equal(want.Value) || r.Time != want.Time {
					t.Errorf("%s: got %+v, want %+v", want.Path, r, want)
				}
			}
		})
	}
	if st := s.Stats(); st.Sends != 4 {
		t.Fatalf("%+v", st)
	}
}

func untimed(recs []objects.Record) []objects.Record {
	out := make([]objects.Record, len(recs))
	for i, r := range recs {
		r.Time = 0
		out[i] = r
	}
	return out
}

func TestSendErrors(t *testing.T) {
	s := newServer(t, nil)
	sub := s.Subscribe(16)
	d := newDevice(t, s, "dev-send-err", nil)
	// Not registered yet: 4.04.
	rec := []objects.Record{{Path: path("/3/0/9"), Value: objects.IntegerValue(1)}}
	if code, err := d.Send(ctx(t), objects.FormatSenMLJSON, rec); code != codes.NotFound {
		t.Fatalf("unregistered: %v %v", code, err)
	}
	if code, _ := d.Register(ctx(t)); code != codes.Created {
		t.Fatal(code)
	}
	tests := []struct {
		name    string
		cf      int
		payload string
		code    codes.Code
	}{
		{"broken SenML", int(objects.FormatSenMLJSON), `[{"n":`, codes.BadRequest},
		{"not SenML", int(objects.FormatSenMLJSON), `{"a":1}`, codes.BadRequest},
		{"value of the wrong type", int(objects.FormatSenMLJSON), `[{"n":"/3/0/9","vs":"many"}]`, codes.BadRequest},
		{"TLV cannot carry a Send", int(objects.FormatTLV), "\xc1\x09\x01", codes.UnsupportedMediaType},
		{"unknown format", 50, `{}`, codes.UnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := d.PostRaw(ctx(t), "/dp", codesMedia(tt.cf), []byte(tt.payload))
			if err != nil || code != tt.code {
				t.Fatalf("%v %v, want %v", code, err, tt.code)
			}
		})
	}
	noEvent(t, sub, EventSend, 100*time.Millisecond)
	// No Content-Format at all, and a GET on /dp.
	p := newRawPeer(t, s)
	if r := p.request(codes.POST, "/dp", nil, -1, []byte("[]")); r.Code != codes.NotFound {
		t.Fatalf("unregistered raw peer: %v", r.Code)
	}
	if r := p.request(codes.GET, "/dp", nil, -1, nil); r.Code != codes.MethodNotAllowed {
		t.Fatalf("GET /dp: %v", r.Code)
	}
	if r := p.request(codes.POST, "/rd", []string{"ep=dp-raw", "lwm2m=1.1"}, 40, nil); r.Code != codes.Created {
		t.Fatal(r.Code)
	}
	if r := p.request(codes.POST, "/dp", nil, -1, []byte("[]")); r.Code != codes.BadRequest {
		t.Fatalf("no Content-Format: %v", r.Code)
	}
}

func codesMedia(cf int) message.MediaType { return message.MediaType(cf) }

// A Send is taken past go-coap's response cache (takeSend); its
// duplicates still get the same answer (RFC 7252 §4.5) and are not
// published twice, a bad one included, and a non-confirmable Send is
// answered with a non-confirmable 2.04 (RFC 7252 §5.2.3).
func TestSendDuplicates(t *testing.T) {
	s := newServer(t, nil)
	sub := s.Subscribe(16)
	defer sub.Close()
	p := newRawPeer(t, s)
	if r := p.request(codes.POST, "/rd", []string{"ep=dup-sender", "lwm2m=1.1"}, 40, []byte("</3/0>")); r.Code != codes.Created {
		t.Fatalf("register: %v", r.Code)
	}
	// answer sends m (again) and returns the server's answer with its
	// message ID, or false.
	answer := func(m message.Message, typ message.Type) (message.Message, bool) {
		p.send(m)
		for {
			r, ok := p.recv(time.Second)
			if !ok {
				return r, false
			}
			if r.Type == typ && (typ != message.Acknowledgement || r.MessageID == m.MessageID) {
				return r, true
			}
		}
	}
	good := message.Message{Code: codes.POST, Type: message.Confirmable, MessageID: p.nextMID(), Token: message.Token{7, 7},
		Options: pathOptions("/dp", nil, int(objects.FormatSenMLJSON)), Payload: []byte(`[{"bn":"/3/0/","n":"9","v":42}]`)}
	bad := good
	bad.MessageID, bad.Token, bad.Payload = p.nextMID(), message.Token{8, 8}, []byte(`[{"bn":`)
	for _, tt := range []struct {
		name string
		m    message.Message
		code codes.Code
	}{{"good", good, codes.Changed}, {"bad", bad, codes.BadRequest}} {
		t.Run(tt.name, func(t *testing.T) {
			for try := 0; try < 3; try++ {
				r, ok := answer(tt.m, message.Acknowledgement)
				if !ok || r.Code != tt.code || !bytes.Equal(r.Token, tt.m.Token) {
					t.Fatalf("try %d: %v %v %x", try, ok, r.Code, r.Token)
				}
			}
		})
	}
	if e := waitEvent(t, sub, EventSend); len(e.Records) != 1 || e.Records[0].Value.Int() != 42 {
		t.Fatalf("%+v", e)
	}
	noEvent(t, sub, EventSend, 200*time.Millisecond)
	if st := s.Stats(); st.Sends != 1 {
		t.Fatalf("%d Sends counted", st.Sends)
	}

	non := good
	non.Type, non.MessageID, non.Token = message.NonConfirmable, p.nextMID(), message.Token{9, 9}
	r, ok := answer(non, message.NonConfirmable)
	if !ok || r.Code != codes.Changed || !bytes.Equal(r.Token, non.Token) {
		t.Fatalf("non-confirmable Send: %v %v", ok, r.Code)
	}
	waitEvent(t, sub, EventSend)
	// Its duplicate is dropped silently (RFC 7252 §4.5).
	if _, ok := answer(non, message.NonConfirmable); ok {
		t.Fatal("duplicate non-confirmable Send answered")
	}
	noEvent(t, sub, EventSend, 200*time.Millisecond)
}
