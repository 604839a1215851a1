package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/server"
)

// An API that did not see a queued request's result (it started after
// it, as after a restart of lwm2md) reads it back from the server's
// queue: GET .../requests/{id} answers 200 with the status and the value
// read, not 404.
func TestQueuedResultFromRegistry(t *testing.T) {
	e := newEnv(t, nil, func(c *server.Config) { c.AwakeWindow = 300 * time.Millisecond })
	s := e.stream("/api/v1/events?endpoint=dev-r")
	c := e.device("dev-r", "1.1", func(c *client.Config) { c.Queue = true })
	s.next(kind("sleeping"))
	loc := e.expect(202, "GET", "/api/v1/clients/dev-r/3/0/0", nil, "").header.Get("Location")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.TriggerUpdate(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the read's result", func() bool { return e.do("GET", loc, nil, "").status == 200 })

	fresh, err := New(Config{Server: e.srv, Store: e.store, Version: "test", Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	hs := httptest.NewServer(fresh.Handler())
	defer hs.Close()
	for _, tc := range []struct {
		path   string
		status int
	}{{loc, 200}, {"/api/v1/clients/someone-else/requests/" + loc[len("/api/v1/clients/dev-r/requests/"):], 404}} {
		resp, err := hs.Client().Get(hs.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("GET %s from a fresh API: %d %s, want %d", tc.path, resp.StatusCode, body, tc.status)
		}
		if tc.status != 200 {
			continue
		}
		var res struct {
			Status string
			Node   struct{ Value any }
		}
		if err := json.Unmarshal(body, &res); err != nil || res.Status != "done" || res.Node.Value != "lwm2md" {
			t.Fatalf("result from the registry: %s", body)
		}
	}
}
