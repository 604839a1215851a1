package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/server"
)

func TestSleepingDeviceQueued(t *testing.T) {
	e := newEnv(t, nil, func(c *server.Config) { c.AwakeWindow = 300 * time.Millisecond })
	s := e.stream("/api/v1/events?endpoint=dev-q")
	c := e.device("dev-q", "1.1", func(c *client.Config) { c.Queue = true })
	const base = "/api/v1/clients/dev-q"
	s.next(kind("sleeping"))
	if st := e.expect(200, "GET", base, nil, "").json(t)["status"]; st != "sleeping" {
		t.Fatalf("status %v", st)
	}
	if got := endpoints(t, e.expect(200, "GET", "/api/v1/clients?status=sleeping", nil, "")); len(got) != 1 {
		t.Fatalf("sleeping list %v", got)
	}

	r := e.expect(202, "GET", base+"/3/0/0", nil, "")
	loc := r.header.Get("Location")
	m := r.json(t)
	if !strings.HasPrefix(loc, base+"/requests/") || m["location"] != loc || m["status"] != "pending" || m["op"] != "read" {
		t.Fatalf("202: Location %q, %s", loc, r.body)
	}
	w := e.expect(202, "PUT", base+"/1/0/1", `{"value":77}`, "application/json")
	p := e.expect(202, "GET", loc, nil, "").json(t)
	if p["status"] != "pending" || p["path"] != "/3/0/0" {
		t.Fatalf("poll before wake: %v", p)
	}
	list := e.expect(200, "GET", base+"/requests", nil, "")
	if !strings.Contains(string(list.body), `"op":"write"`) {
		t.Fatalf("queue = %s", list.body)
	}
	// A queued request can be withdrawn.
	cancelled := e.expect(202, "POST", base+"/1/0/8", "", "text/plain").header.Get("Location")
	e.expect(204, "DELETE", cancelled, nil, "")
	e.do("DELETE", cancelled, nil, "").problem(t, 404)

	// The device wakes (an Update): the queue is delivered in order.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.TriggerUpdate(ctx); err != nil {
		t.Fatal(err)
	}
	ev := s.next(func(ev sseEvent) bool { return ev.kind == "request-result" && ev.data["path"] == "/3/0/0" })
	res, _ := ev.data["result"].(map[string]any)
	if node, _ := res["node"].(map[string]any); node["value"] != "lwm2md" || res["status"] != "done" {
		t.Fatalf("request-result %v", ev.data)
	}
	var done map[string]any
	waitFor(t, "the read's result", func() bool {
		r := e.do("GET", loc, nil, "")
		done = r.json(t)
		return r.status == 200
	})
	if node, _ := done["node"].(map[string]any); node["value"] != "lwm2md" || done["status"] != "done" {
		t.Fatalf("result %v", done)
	}
	wloc := w.header.Get("Location")
	var wres response
	waitFor(t, "the write's result", func() bool { wres = e.do("GET", wloc, nil, ""); return wres.status == 200 })
	if st := wres.json(t)["status"]; st != "done" {
		t.Fatalf("queued write: %s", wres.body)
	}
	// The write reached the device: the Lifetime it now registers with.
	waitFor(t, "the new lifetime", func() bool {
		return e.expect(200, "GET", base, nil, "").json(t)["lifetime"] == float64(77)
	})
	e.do("GET", base+"/requests/999999", nil, "").problem(t, 404)
}
