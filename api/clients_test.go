package api

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

func endpoints(t *testing.T, r response) []string {
	t.Helper()
	m := r.json(t)
	list, _ := m["clients"].([]any)
	var eps []string
	for _, c := range list {
		eps = append(eps, c.(map[string]any)["endpoint"].(string))
	}
	return eps
}

func TestClients(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.device("site-a-1", "1.0", nil)
	e.device("site-a-2", "1.1", nil)
	e.device("site-b-1", "1.2", nil)
	if err := e.store.Tags().Set(context.Background(), "site-a-2", map[string]string{"fw": "2.0"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query string
		want  string
	}{
		{"", "site-a-1 site-a-2 site-b-1"},
		{"?prefix=site-a", "site-a-1 site-a-2"},
		{"?version=1.2", "site-b-1"},
		{"?status=online", "site-a-1 site-a-2 site-b-1"},
		{"?status=sleeping", ""},
		{"?tag=fw", "site-a-2"},
		{"?tag=fw%3D2.0", "site-a-2"},
		{"?tag=fw%3D1.0", ""},
		{"?sort=-endpoint", "site-b-1 site-a-2 site-a-1"},
		{"?sort=-version", "site-b-1 site-a-2 site-a-1"},
		{"?limit=2", "site-a-1 site-a-2"},
		{"?offset=2", "site-b-1"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := e.expect(200, "GET", "/api/v1/clients"+tc.query, nil, "")
			if got := strings.Join(endpoints(t, r), " "); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	// Paging by cursor walks the whole list.
	var all []string
	next := ""
	for i := 0; i < 5; i++ {
		r := e.expect(200, "GET", "/api/v1/clients?limit=1&cursor="+url.QueryEscape(next), nil, "")
		all = append(all, endpoints(t, r)...)
		m := r.json(t)
		if m["total"] != float64(3) {
			t.Fatalf("total %v", m["total"])
		}
		n, ok := m["next"].(string)
		if !ok {
			break
		}
		next = n
	}
	if strings.Join(all, " ") != "site-a-1 site-a-2 site-b-1" {
		t.Fatalf("paged %v", all)
	}
	for _, q := range []string{"status=awake", "limit=0", "limit=5000", "sort=size", "cursor=zzz", "version=x", "offset=-1"} {
		t.Run("bad "+q, func(t *testing.T) {
			p := e.do("GET", "/api/v1/clients?"+q, nil, "").problem(t, 400)
			if !strings.HasPrefix(q, p["field"].(string)+"=") {
				t.Fatalf("field %v for %s", p["field"], q)
			}
		})
	}

	r := e.expect(200, "GET", "/api/v1/clients/site-a-2", nil, "")
	c := r.json(t)
	if c["endpoint"] != "site-a-2" || c["version"] != "1.1" || c["status"] != "online" || c["lifetime"] != float64(60) {
		t.Fatalf("client = %s", r.body)
	}
	if tags, _ := c["tags"].(map[string]any); tags["fw"] != "2.0" {
		t.Fatalf("tags = %v", c["tags"])
	}
	names := map[float64]string{}
	for _, o := range c["objects"].([]any) {
		o := o.(map[string]any)
		names[o["id"].(float64)], _ = o["name"].(string)
	}
	if names[3] != "Device" || names[1] != "LwM2M Server" || names[3303] != "Temperature" {
		t.Fatalf("object names %v", names)
	}
}

func TestStatusAndModels(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.device("st-1", "1.1", nil)
	m := e.expect(200, "GET", "/api/v1/status", nil, "").json(t)
	if m["version"] != "test" || m["registrations"] != float64(1) || m["registry"] != true {
		t.Fatalf("status %v", m)
	}
	r := e.expect(200, "GET", "/api/v1/objects", nil, "")
	if !strings.Contains(string(r.body), `"id":3303,"name":"Temperature"`) {
		t.Fatalf("objects %s", r.body[:200])
	}
	d := e.expect(200, "GET", "/api/v1/objects/3", nil, "").json(t)
	vers, _ := d["versions"].([]any)
	res, _ := d["resources"].([]any)
	if d["name"] != "Device" || len(vers) < 2 || len(res) < 10 {
		t.Fatalf("object 3: %v", d)
	}
	r0 := res[0].(map[string]any)
	if r0["name"] != "Manufacturer" || r0["operations"] != "R" || r0["type"] != "string" {
		t.Fatalf("resource 0: %v", r0)
	}
	if d := e.expect(200, "GET", "/api/v1/objects/3?version=1.0", nil, "").json(t); d["version"] != "1.0" {
		t.Fatalf("version 1.0: %v", d["version"])
	}
	e.do("GET", "/api/v1/objects/64000", nil, "").problem(t, 404)
	if p := e.do("GET", "/api/v1/objects/x", nil, "").problem(t, 400); p["field"] != "id" {
		t.Fatal(p)
	}
}

func TestEscapedEndpoint(t *testing.T) {
	e := newEnv(t, nil, nil)
	for _, ep := range []string{"urn:dev/1", "urn:imei:3530"} {
		e.device(ep, "1.1", nil)
		r := e.expect(200, "GET", "/api/v1/clients/"+url.PathEscape(ep), nil, "")
		if got := r.json(t)["endpoint"]; got != ep {
			t.Fatalf("endpoint %q read as %v", ep, got)
		}
		if v := value(t, e.expect(200, "GET", "/api/v1/clients/"+url.PathEscape(ep)+"/3/0/0", nil, "")); v != "lwm2md" {
			t.Fatalf("read %q: %v", ep, v)
		}
	}
	// "%2541" is the name "%41", not "A".
	if p := e.do("GET", "/api/v1/clients/a%2541", nil, "").problem(t, 404); p["endpoint"] != "a%41" {
		t.Fatalf("endpoint %v", p["endpoint"])
	}
	if p := e.do("GET", "/api/v1/clients/a%2F%2541", nil, "").problem(t, 404); p["endpoint"] != "a/%41" {
		t.Fatalf("endpoint %v", p["endpoint"])
	}
}
