package server

import (
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
