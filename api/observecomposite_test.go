package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// nodeValue finds the value of path p in a "nodes" array of nodejson
// nodes (resources at their own path, or inside an instance).
func nodeValue(nodes []any, p string) any {
	for _, n := range nodes {
		m, _ := n.(map[string]any)
		if m["path"] == p {
			return m["value"]
		}
		res, _ := m["resources"].([]any)
		if v := nodeValue(res, p); v != nil {
			return v
		}
	}
	return nil
}

// Observe-Composite through REST in each multi-path format: the first
// values, notifications on the event stream with a node per path, the
// observation in the list, and the cancel by token.
func TestObserveComposite(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.device("dev-oc", "1.2", nil)
	const base = "/api/v1/clients/dev-oc"
	s := e.stream("/api/v1/events?endpoint=dev-oc&kind=notification")
	battery := int64(40)
	for _, f := range []string{"senml-json", "senml-cbor", "lwm2m-cbor"} {
		t.Run(f, func(t *testing.T) {
			r := e.expect(200, "POST", base+"/composite/observe?format="+f, `{"paths":["/3/0/9","/1/0/1","/9999/0"]}`, "application/json")
			m := r.json(t)
			o, _ := m["observation"].(map[string]any)
			nodes, _ := m["nodes"].([]any)
			token, _ := o["token"].(string)
			if o["composite"] != true || o["path"] != "/" || o["format"] != f || len(token) != 16 || len(nodes) != 2 ||
				nodeValue(nodes, "/1/0/1") != float64(60) {
				t.Fatalf("observe-composite = %s", r.body)
			}
			if paths, _ := o["paths"].([]any); len(paths) != 3 || paths[0] != "/3/0/9" {
				t.Fatalf("paths %v", o["paths"])
			}
			list := e.expect(200, "GET", base+"/observations", nil, "")
			if !strings.Contains(string(list.body), token) || !strings.Contains(string(list.body), `"composite":true`) {
				t.Fatalf("observations = %s", list.body)
			}
			battery++
			if err := c.Object(3).Set(objects.MustParsePath("/3/0/9"), objects.IntegerValue(battery)); err != nil {
				t.Fatal(err)
			}
			ev := s.next(func(ev sseEvent) bool {
				ns, _ := ev.data["nodes"].([]any)
				return ev.data["token"] == token && nodeValue(ns, "/3/0/9") == float64(battery)
			})
			if ns, _ := ev.data["nodes"].([]any); len(ns) != 2 || ev.data["format"] != f || ev.data["path"] != "/" {
				t.Fatalf("notification %v", ev.data)
			}
			e.expect(204, "DELETE", base+"/observations/"+token, nil, "")
			waitFor(t, "the device drops the observation", func() bool { return c.Stats().Observations == 0 })
			if p := e.do("DELETE", base+"/observations/"+token, nil, "").problem(t, 404); p["field"] != "token" {
				t.Fatalf("second cancel: %v", p)
			}
		})
	}
}

func TestObserveCompositeErrors(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.device("dev-oc10", "1.0", nil)
	e.device("dev-oc11", "1.1", nil)
	tests := []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"no paths", "/api/v1/clients/dev-oc11/composite/observe", `{"paths":[]}`, 400, "paths"},
		{"bad path", "/api/v1/clients/dev-oc11/composite/observe", `{"paths":["/3/x"]}`, 400, "paths[0]"},
		{"root path", "/api/v1/clients/dev-oc11/composite/observe", `{"paths":["/"]}`, 400, "paths[0]"},
		{"values", "/api/v1/clients/dev-oc11/composite/observe", `[{"path":"/3/0/9","value":1}]`, 400, "[0].value"},
		{"single-path format", "/api/v1/clients/dev-oc11/composite/observe?format=tlv", `{"paths":["/3/0/9"]}`, 400, ""},
		{"LwM2M 1.0", "/api/v1/clients/dev-oc10/composite/observe", `{"paths":["/3/0/9"]}`, 400, ""},
		{"not registered", "/api/v1/clients/nobody/composite/observe", `{"paths":["/3/0/9"]}`, 404, ""},
		{"device 4.04", "/api/v1/clients/dev-oc11/composite/observe", `{"paths":["/9999/0"]}`, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := e.do("POST", tc.path, tc.body, "application/json").problem(t, tc.status)
			if tc.field != "" && p["field"] != tc.field {
				t.Fatalf("field %v, want %q (%v)", p["field"], tc.field, p["detail"])
			}
		})
	}
	e.do("DELETE", "/api/v1/clients/nobody/observations/abcd", nil, "").problem(t, 404)
}

// A sleeping device's Observe-Composite is queued (202) and goes out when
// it wakes; the observation then appears in its list.
func TestObserveCompositeQueued(t *testing.T) {
	e := newEnv(t, nil, func(c *server.Config) { c.AwakeWindow = 300 * time.Millisecond })
	s := e.stream("/api/v1/events?endpoint=dev-ocq")
	c := e.device("dev-ocq", "1.1", func(c *client.Config) { c.Queue = true })
	const base = "/api/v1/clients/dev-ocq"
	s.next(kind("sleeping"))
	r := e.expect(202, "POST", base+"/composite/observe", `{"paths":["/3/0/9","/3303/0/5700"]}`, "application/json")
	if m := r.json(t); m["op"] != "observe-composite" {
		t.Fatalf("202 %s", r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.TriggerUpdate(ctx); err != nil {
		t.Fatal(err)
	}
	ev := s.next(func(ev sseEvent) bool { return ev.kind == "request-result" && ev.data["op"] == "observe-composite" })
	res, _ := ev.data["result"].(map[string]any)
	o, _ := res["observation"].(map[string]any)
	if ns, _ := res["nodes"].([]any); res["status"] != "done" || len(ns) != 2 || o["composite"] != true {
		t.Fatalf("request-result %v", ev.data)
	}
	waitFor(t, "the observation listed", func() bool {
		return strings.Contains(string(e.expect(200, "GET", base+"/observations", nil, "").body), o["token"].(string))
	})
}
