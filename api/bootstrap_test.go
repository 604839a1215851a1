package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/client"
)

// newBootstrap starts a bootstrap server on loopback.
func newBootstrap(t *testing.T, factory ...bootstrap.FactoryCredential) *bootstrap.Server {
	t.Helper()
	cfg := bootstrap.Config{UDPAddr: "127.0.0.1:0", RequestTimeout: 5 * time.Second, Factory: factory}
	if len(factory) > 0 {
		cfg.DTLSAddr = "127.0.0.1:0" // factory credentials are DTLS PSKs
	}
	bs, err := bootstrap.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	return bs
}

// bootstrapDevice starts the client engine with only a Bootstrap-Server
// account: it bootstraps, then registers where it was told to.
func bootstrapDevice(t *testing.T, bs *bootstrap.Server, ep string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		Endpoint:         ep,
		Version:          "1.1",
		BootstrapURI:     "coap://" + bs.Addr().String(),
		KeepBootstrap:    true,
		LocalAddr:        "127.0.0.1:0",
		AckTimeout:       200 * time.Millisecond,
		MaxRetransmit:    2,
		BootstrapTimeout: 5 * time.Second,
		Retry:            client.RetryPolicy{Count: 1, SequenceCount: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", ep, err)
	}
	return c
}

func dmConfig(uri string, lifetime int) string {
	return fmt.Sprintf(`{"read":true,"servers":[{"uri":%q,"shortServerId":101,"lifetime":%d,"binding":"U","security":{"mode":"nosec"}}]}`, uri, lifetime)
}

// A device bootstraps with a configuration set through REST, its steps
// come on the event stream, its status is readable, and a
// server-initiated bootstrap started through REST moves it to a new
// lifetime.
func TestBootstrapThroughREST(t *testing.T) {
	bs := newBootstrap(t)
	e := newEnv(t, func(c *Config) { c.Bootstrap = bs }, nil)
	uri := "coap://" + e.srv.Addr().String()
	const ep = "bs-dev"
	s := e.stream("/api/v1/events?endpoint=" + ep + "&kind=bootstrap-started,bootstrap-step,bootstrap-finished,registered")

	e.do("GET", "/api/v1/bootstrap/configs/"+ep, nil, "").problem(t, 404)
	r := e.expect(200, "PUT", "/api/v1/bootstrap/configs/"+ep, dmConfig(uri, 120), "application/json")
	if srv, _ := r.json(t)["servers"].([]any); len(srv) != 1 {
		t.Fatalf("put = %s", r.body)
	}
	r = e.expect(200, "GET", "/api/v1/bootstrap/configs/"+ep, nil, "")
	if !strings.Contains(string(r.body), `"lifetime":120`) || !strings.Contains(string(r.body), `"uri":"`+uri+`"`) {
		t.Fatalf("get = %s", r.body)
	}

	bootstrapDevice(t, bs, ep)
	started := s.next(kind("bootstrap-started"))
	if started.data["initiator"] != "client" || started.data["source"] != "endpoint" {
		t.Fatalf("started %v", started.data)
	}
	// The bootstrap events and the LwM2M server's come through two
	// pumps: "registered" may come before "bootstrap-finished".
	var stepNames []string
	finished, registered := false, false
	for !finished || !registered {
		ev := s.next(nil)
		switch ev.kind {
		case "bootstrap-step":
			stepNames = append(stepNames, fmt.Sprint(ev.data["step"]))
		case "bootstrap-finished":
			finished = true
		case "registered":
			registered = true
		}
	}
	if got := strings.Join(stepNames, ","); !strings.HasPrefix(got, "discover,read,delete") || !strings.HasSuffix(got, "write,finish") {
		t.Fatalf("steps %s", got)
	}

	st := e.expect(200, "GET", "/api/v1/bootstrap/status/"+ep, nil, "").json(t)
	if st["state"] != "finished" || st["initiator"] != "client" || st["attempts"] != float64(1) || st["ended"] == nil || st["registered"] != true {
		t.Fatalf("status %v", st)
	}
	list := e.expect(200, "GET", "/api/v1/bootstrap/status", nil, "")
	if !strings.Contains(string(list.body), `"endpoint":"`+ep+`"`) {
		t.Fatalf("status list %s", list.body)
	}
	if lt := e.expect(200, "GET", "/api/v1/clients/"+ep, nil, "").json(t)["lifetime"]; lt != float64(120) {
		t.Fatalf("registered lifetime %v", lt)
	}

	// Server-initiated: a new lifetime, over the kept association.
	e.expect(200, "PUT", "/api/v1/bootstrap/configs/"+ep, dmConfig(uri, 240), "application/json")
	st = e.expect(200, "POST", "/api/v1/bootstrap/"+ep+"/start?timeout=20s", nil, "").json(t)
	if st["state"] != "finished" || st["initiator"] != "server" || st["attempts"] != float64(2) {
		t.Fatalf("server-initiated status %v", st)
	}
	waitFor(t, "the registration with the new lifetime", func() bool {
		r := e.do("GET", "/api/v1/clients/"+ep, nil, "")
		return r.status == 200 && r.json(t)["lifetime"] == float64(240)
	})

	e.expect(204, "DELETE", "/api/v1/bootstrap/configs/"+ep, nil, "")
	e.do("GET", "/api/v1/bootstrap/configs/"+ep, nil, "").problem(t, 404)
	e.do("DELETE", "/api/v1/bootstrap/configs/"+ep, nil, "").problem(t, 404)
	// With no configuration left, a server-initiated bootstrap fails and
	// says why.
	if p := e.do("POST", "/api/v1/bootstrap/"+ep+"/start", nil, "").problem(t, 409); p["state"] != "no configuration" {
		t.Fatalf("start without a configuration: %v", p)
	}
	if p := e.do("POST", "/api/v1/bootstrap/nobody/start", nil, "").problem(t, 409); p["state"] != "not connected" {
		t.Fatalf("start of an unconnected device: %v", p)
	}
	e.do("GET", "/api/v1/bootstrap/status/nobody", nil, "").problem(t, 404)
}

// A failed bootstrap is recorded with its step, code and reason, and
// reported on the event stream.
func TestBootstrapFailureStatus(t *testing.T) {
	bs := newBootstrap(t)
	e := newEnv(t, func(c *Config) { c.Bootstrap = bs }, nil)
	const ep = "bs-fail"
	s := e.stream("/api/v1/events?endpoint=" + ep + "&kind=bootstrap-failed")
	// An instance of an object the device does not have: BS-Write of
	// /3303/5 is refused by a device without the Temperature object.
	cfg := `{"servers":[{"uri":"coap://127.0.0.1:9","shortServerId":101,"security":{"mode":"nosec"}}],"instances":[{"path":"/3/0","resources":{"14":"+01:00","15":"Europe/Paris"}},{"path":"/3303/5","resources":{"5700":1.5}}]}`
	e.expect(200, "PUT", "/api/v1/bootstrap/configs/"+ep, cfg, "application/json")
	c, err := client.New(client.Config{
		Endpoint: ep, Version: "1.1", BootstrapURI: "coap://" + bs.Addr().String(), LocalAddr: "127.0.0.1:0",
		AckTimeout: 200 * time.Millisecond, MaxRetransmit: 1, BootstrapTimeout: 3 * time.Second,
		Retry: client.RetryPolicy{Count: 1, SequenceCount: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// Start returns once the client gives up waiting for BS-Finish. (It
	// runs in the test's goroutine: a Close during a Start that is still
	// bootstrapping waits forever in the client engine.)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err == nil {
		t.Fatal("the device registered although its bootstrap failed")
	}
	ev := s.next(kind("bootstrap-failed"))
	st := e.expect(200, "GET", "/api/v1/bootstrap/status/"+ep, nil, "").json(t)
	if ev.data["step"] != "write" || ev.data["code"] != "4.04" || !strings.Contains(fmt.Sprint(ev.data["error"]), "/3303/5") {
		t.Fatalf("failed event %v", ev.data)
	}
	if st["state"] != "failed" || st["step"] != "write" || st["code"] != "4.04" || !strings.Contains(fmt.Sprint(st["reason"]), "/3303/5") ||
		st["initiator"] != "client" || st["source"] != "endpoint" {
		t.Fatalf("status %v", st)
	}
}

func TestBootstrapTemplatesMasked(t *testing.T) {
	bs := newBootstrap(t)
	e := newEnv(t, func(c *Config) { c.Bootstrap = bs }, nil)
	if r := e.expect(200, "GET", "/api/v1/bootstrap/templates", nil, ""); strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("no templates: %s", r.body)
	}
	const tpl = `[{"name":"meters","endpoints":["meter-*"],"config":{"servers":[{"uri":"coaps://dm.example.com:5684","shortServerId":1,` +
		`"security":{"mode":"psk","pskIdentity":"meters","pskKey":"00112233445566778899aabbccddeeff"},` +
		`"oscore":{"masterSecret":"0102030405060708","senderId":"c1","recipientId":"s1"}}]}},` +
		`{"name":"default","config":{"servers":[{"uri":"coap://dm.example.com","shortServerId":2,"security":{"mode":"nosec"}}]}}]`
	for _, r := range []response{
		e.expect(200, "PUT", "/api/v1/bootstrap/templates", tpl, "application/json"),
		e.expect(200, "GET", "/api/v1/bootstrap/templates", nil, ""),
	} {
		b := string(r.body)
		if strings.Contains(b, "00112233") || strings.Contains(b, "0102030405060708") ||
			strings.Count(b, `"`+maskedKey+`"`) != 2 || !strings.Contains(b, `"pskIdentity":"meters"`) || !strings.Contains(b, `"name":"default"`) {
			t.Fatalf("templates not masked: %s", b)
		}
	}
	// The template is in force: it resolves for a matching endpoint.
	c, src, err := bs.Configs().Resolve(context.Background(), "meter-7")
	if err != nil || src != "template:meters" || c.Servers[0].Security.PSKIdentity != "meters" {
		t.Fatalf("resolve: %v %s %v", c, src, err)
	}
	// A per-endpoint configuration's key is masked too.
	e.expect(200, "PUT", "/api/v1/bootstrap/configs/dev-k", `{"servers":[{"uri":"coaps://dm:5684","shortServerId":3,"security":{"mode":"psk","pskIdentity":"k","pskKey":"a1a2a3a4"}}]}`, "application/json")
	if b := string(e.expect(200, "GET", "/api/v1/bootstrap/configs/dev-k", nil, "").body); strings.Contains(b, "a1a2a3a4") || !strings.Contains(b, maskedKey) {
		t.Fatalf("config not masked: %s", b)
	}
}

func TestBootstrapValidation(t *testing.T) {
	bs := newBootstrap(t)
	e := newEnv(t, func(c *Config) { c.Bootstrap = bs }, nil)
	const cfgURL = "/api/v1/bootstrap/configs/dev-v"
	tests := []struct {
		name, method, url, body string
		field                   string
	}{
		{"not JSON", "PUT", cfgURL, `{"servers":`, "body"},
		{"unknown field", "PUT", cfgURL, `{"servers":[],"bogus":1}`, "bogus"},
		{"wrong type", "PUT", cfgURL, `{"servers":[{"uri":"coap://x","shortServerId":"a"}]}`, "servers.shortServerId"},
		{"psk over coap", "PUT", cfgURL, `{"servers":[{"uri":"coap://x","shortServerId":1,"security":{"mode":"psk","generatePsk":true}}]}`, "servers[0].security.mode"},
		{"short server ID", "PUT", cfgURL, `{"servers":[{"uri":"coap://x","shortServerId":0}]}`, "servers[0].shortServerId"},
		{"masked key written back", "PUT", cfgURL, `{"servers":[{"uri":"coaps://x","shortServerId":1,"security":{"mode":"psk","pskIdentity":"i","pskKey":"` + maskedKey + `"}}]}`, "servers[0].security.pskKey"},
		{"bad endpoint", "PUT", "/api/v1/bootstrap/configs/a%01b", `{"servers":[]}`, "ep"},
		{"template name", "PUT", "/api/v1/bootstrap/templates", `[{"name":"","config":{"servers":[]}}]`, "templates[0].name"},
		{"template config", "PUT", "/api/v1/bootstrap/templates", `[{"name":"a","config":{"servers":[{"uri":"coap://x","shortServerId":0}]}}]`, "templates[0].config.servers[0].shortServerId"},
		{"templates not an array", "PUT", "/api/v1/bootstrap/templates", `{"name":"a"}`, "body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := e.do(tc.method, tc.url, tc.body, "application/json").problem(t, 400)
			if p["field"] != tc.field {
				t.Fatalf("field %v, want %q (%v)", p["field"], tc.field, p["detail"])
			}
		})
	}
	e.do("GET", cfgURL, nil, "").problem(t, 404) // nothing was stored
}

func TestBootstrapFactoryAndRoles(t *testing.T) {
	bs := newBootstrap(t, bootstrap.FactoryCredential{Identity: "batch-1", Key: []byte("0123456789abcdef"), Endpoints: []string{"meter-*"}})
	e := newEnv(t, func(c *Config) { withTokens(c); c.Bootstrap = bs }, nil)
	e.token = viewerToken
	e.expect(200, "GET", "/api/v1/bootstrap/status", nil, "")
	e.expect(200, "GET", "/api/v1/bootstrap/templates", nil, "")
	e.do("PUT", "/api/v1/bootstrap/templates", `[]`, "application/json").problem(t, 403)
	e.do("DELETE", "/api/v1/bootstrap/factory/batch-1", nil, "").problem(t, 403)
	e.expect(200, "GET", "/api/v1/bootstrap/revoked-cas", nil, "")
	e.do("POST", "/api/v1/bootstrap/revoked-cas", `{"ca":"CN=x"}`, "application/json").problem(t, 403)
	e.token = operatorToken
	e.do("PUT", "/api/v1/bootstrap/configs/x", dmConfig("coap://127.0.0.1:9", 60), "application/json").problem(t, 403)
	e.do("POST", "/api/v1/bootstrap/x/start", nil, "").problem(t, 403)
	e.do("POST", "/api/v1/bootstrap/revoked-cas", `{"ca":"CN=x"}`, "application/json").problem(t, 403)
	e.token = adminToken
	e.expect(201, "POST", "/api/v1/bootstrap/revoked-cas", `{"ca":"CN=x"}`, "application/json")
	e.expect(204, "DELETE", "/api/v1/bootstrap/factory/batch-1", nil, "")
	if p := e.do("DELETE", "/api/v1/bootstrap/factory/batch-1", nil, "").problem(t, 404); p["field"] != "identity" {
		t.Fatalf("second revoke: %v", p)
	}
	if !strings.Contains(e.logs.String(), "op=revokeFactory") || !strings.Contains(e.logs.String(), "op=revokeCA") {
		t.Fatalf("no audit line: %s", e.logs.String())
	}
}

// Without a bootstrap server the resources answer 501.
func TestBootstrapNotConfigured(t *testing.T) {
	e := newEnv(t, nil, nil)
	for _, r := range []struct{ method, url string }{
		{"GET", "/api/v1/bootstrap/status"},
		{"GET", "/api/v1/bootstrap/configs/x"},
		{"PUT", "/api/v1/bootstrap/templates"},
		{"POST", "/api/v1/bootstrap/x/start"},
		{"DELETE", "/api/v1/bootstrap/factory/x"},
		{"GET", "/api/v1/bootstrap/revoked-cas"},
		{"POST", "/api/v1/bootstrap/revoked-cas"},
	} {
		e.do(r.method, r.url, `[]`, "application/json").problem(t, 501)
	}
}
