package bootstrap_test

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/lwm2md/lwm2md/bootstrap"
)

// TestBadRequests: malformed Bootstrap-Requests and Bootstrap-Pack-
// Requests get a 4.xx with a diagnostic naming the problem, from a plain
// CoAP client, and are recorded as failures.
func TestBadRequests(t *testing.T) {
	bs := newBS(t, nil)
	if err := bs.Configs().Put(ctxT(t), "known", &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account("coap://127.0.0.1:9", 1, 60)}}); err != nil {
		t.Fatal(err)
	}
	cc, err := udp.Dial(bs.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sub := bs.Subscribe(32)
	for _, tt := range []struct {
		name   string
		method codes.Code
		path   string
		query  []string
		accept message.MediaType
		code   codes.Code
		diag   string
	}{
		{"no ep", codes.POST, "/bs", nil, 0, codes.BadRequest, "ep query parameter"},
		{"empty ep", codes.POST, "/bs", []string{"ep="}, 0, codes.BadRequest, "empty endpoint"},
		{"ep twice", codes.POST, "/bs", []string{"ep=a", "ep=b"}, 0, codes.BadRequest, "twice"},
		{"control character", codes.POST, "/bs", []string{"ep=a\x01b"}, 0, codes.BadRequest, "control character"},
		{"bad pct", codes.POST, "/bs", []string{"ep=known", "pct=json-ish"}, 0, codes.BadRequest, "pct"},
		{"unknown pct", codes.POST, "/bs", []string{"ep=known", "pct=9999"}, 0, codes.BadRequest, "pct"},
		{"unknown endpoint", codes.POST, "/bs", []string{"ep=nobody"}, 0, codes.BadRequest, "no bootstrap configuration"},
		{"GET /bs", codes.GET, "/bs", []string{"ep=known"}, 0, codes.MethodNotAllowed, "POST"},
		{"pack without ep", codes.GET, "/bspack", nil, 0, codes.BadRequest, "ep query parameter"},
		{"pack in text", codes.GET, "/bspack", []string{"ep=known"}, message.TextPlain, codes.NotAcceptable, "SenML CBOR"},
		{"elsewhere", codes.GET, "/rd", nil, 0, codes.NotFound, "no such resource"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req := cc.AcquireMessage(ctx)
			defer cc.ReleaseMessage(req)
			tok, _ := message.GetToken()
			req.SetCode(tt.method)
			req.SetType(message.Confirmable)
			req.SetToken(tok)
			_ = req.SetPath(tt.path)
			for _, q := range tt.query {
				req.AddQuery(q)
			}
			if tt.accept != 0 || tt.name == "pack in text" {
				req.SetAccept(tt.accept)
			}
			resp, err := cc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer cc.ReleaseMessage(resp)
			body, _ := resp.ReadBody()
			if resp.Code() != tt.code || !bytes.Contains(body, []byte(tt.diag)) {
				t.Fatalf("%v %q, want %v with %q", resp.Code(), body, tt.code, tt.diag)
			}
		})
	}
	// The refusals are events, and recorded for the endpoints they name.
	failed := 0
	for len(sub.C) > 0 {
		if e := <-sub.C; e.Kind == bootstrap.EventFailed && e.Err != nil {
			failed++
		}
	}
	if failed < 8 {
		t.Errorf("%d failure events", failed)
	}
	if st, ok := bs.Status("nobody"); !ok || st.State != bootstrap.StateFailed || !strings.Contains(st.Error, "no bootstrap configuration") {
		t.Errorf("status %+v", st)
	}
}

// TestLibcoapBootstrapRequest: libcoap's coap-client, an independent CoAP
// implementation, sends a Bootstrap-Request and gets 2.04 (the sequence
// that follows fails, as coap-client answers nothing), and a 4.00
// without ep.
func TestLibcoapBootstrapRequest(t *testing.T) {
	bin := ""
	for _, name := range []string{"coap-client-notls", "coap-client-openssl", "coap-client-gnutls", "coap-client"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("libcoap's coap-client is not installed: apt-get install libcoap3-bin")
	}
	bs := newBS(t, func(c *bootstrap.Config) { c.RequestTimeout = 500 * time.Millisecond })
	if err := bs.Configs().Put(ctxT(t), "libcoap-dev", &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account("coap://127.0.0.1:9", 1, 60)}}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append([]string{"-v", "7", "-B", "2"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("coap-client %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	base := "coap://" + bs.Addr().String()
	if out := run("-m", "post", base+"/bs?ep=libcoap-dev"); !regexp.MustCompile(`c:2\.04`).MatchString(out) {
		t.Errorf("bootstrap-request:\n%s", out)
	}
	if out := run("-m", "post", base+"/bs"); !regexp.MustCompile(`c:4\.00`).MatchString(out) {
		t.Errorf("without ep:\n%s", out)
	}
}

// TestGarbageDevice: a device whose BS-Discover answer is not
// link-format fails the bootstrap at the discover step, with the parse
// error as reason.
func TestGarbageDevice(t *testing.T) {
	bs := newBS(t, func(c *bootstrap.Config) { c.RequestTimeout = time.Second })
	if err := bs.Configs().Put(ctxT(t), "garbage", &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account("coap://127.0.0.1:9", 1, 60)}}); err != nil {
		t.Fatal(err)
	}
	router := mux.NewRouter()
	router.DefaultHandleFunc(func(w mux.ResponseWriter, r *mux.Message) {
		_ = w.SetResponse(codes.Content, message.AppLinkFormat, bytes.NewReader([]byte("<</0/0>;;,garbage")))
	})
	cc, err := udp.Dial(bs.Addr().String(), options.WithMux(router))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sub := bs.Subscribe(32)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cc.Post(ctx, "/bs", message.TextPlain, nil, message.Option{ID: message.URIQuery, Value: []byte("ep=garbage")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code() != codes.Changed {
		t.Fatalf("%v", resp.Code())
	}
	es := events(t, sub, "garbage")
	last := es[len(es)-1]
	if last.Kind != bootstrap.EventFailed || last.Step != bootstrap.StepDiscover || !strings.Contains(last.Err.Error(), "BS-Discover answer") {
		t.Fatalf("%s: %v", steps(es), last.Err)
	}
}

// TestRetry: a sequence that fails (the device refuses the first
// BS-Finish) is repeated over the same association as the
// configuration's retries allow, and the second try finishes.
func TestRetry(t *testing.T) {
	bs := newBS(t, nil)
	cfg := &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account("coap://127.0.0.1:9", 1, 60)}, Retries: 2, RetryDelay: 0.05}
	if err := bs.Configs().Put(ctxT(t), "flaky", cfg); err != nil {
		t.Fatal(err)
	}
	finishes := 0
	router := mux.NewRouter()
	_ = router.Handle("/bs", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		finishes++
		if finishes == 1 {
			_ = w.SetResponse(codes.NotAcceptable, message.TextPlain, bytes.NewReader([]byte("not yet")))
			return
		}
		_ = w.SetResponse(codes.Changed, message.TextPlain, nil)
	}))
	router.DefaultHandleFunc(func(w mux.ResponseWriter, r *mux.Message) {
		switch r.Code() {
		case codes.GET:
			_ = w.SetResponse(codes.Content, message.AppLinkFormat, bytes.NewReader([]byte(`</>;lwm2m=1.0,</0/0>,</1>,</3/0>`)))
		case codes.DELETE:
			_ = w.SetResponse(codes.Deleted, message.TextPlain, nil)
		default:
			_ = w.SetResponse(codes.Changed, message.TextPlain, nil)
		}
	})
	cc, err := udp.Dial(bs.Addr().String(), options.WithMux(router))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sub := bs.Subscribe(64)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cc.Post(ctx, "/bs", message.TextPlain, nil, message.Option{ID: message.URIQuery, Value: []byte("ep=flaky")})
	if err != nil || resp.Code() != codes.Changed {
		t.Fatalf("%v %v", resp, err)
	}
	es := events(t, sub, "flaky")
	want := "started, discover /, delete /0, delete /1, write /0/1, write /1/0, finish / !, retry, discover /, delete /0, delete /1, write /0/1, write /1/0, finish /, finished"
	if got := steps(es); got != want {
		t.Errorf("steps:\n got %s\nwant %s", got, want)
	}
	if st, _ := bs.Status("flaky"); st.State != bootstrap.StateFinished || st.Retries != 1 || st.Attempts != 1 {
		t.Errorf("status %+v", st)
	}
}
