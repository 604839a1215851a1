package api

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

// node returns the value of a single-resource nodejson answer.
func value(t *testing.T, r response) any {
	t.Helper()
	m := r.json(t)
	v, ok := m["value"]
	if !ok {
		t.Fatalf("no value in %s", r.body)
	}
	return v
}

func TestReadWrite(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.device("dev-1", "1.1", nil)
	const base = "/api/v1/clients/dev-1"

	r := e.expect(200, "GET", base+"/3/0/0", nil, "")
	if got := r.json(t); got["path"] != "/3/0/0" || got["type"] != "string" || got["value"] != "lwm2md" {
		t.Fatalf("read /3/0/0 = %s", r.body)
	}
	r = e.expect(200, "GET", base+"/3/0", nil, "")
	if res, ok := r.json(t)["resources"].([]any); !ok || len(res) < 5 {
		t.Fatalf("read /3/0 = %s", r.body)
	}
	r = e.expect(200, "GET", base+"/1", nil, "")
	if insts, ok := r.json(t)["instances"].([]any); !ok || len(insts) != 1 {
		t.Fatalf("read /1 = %s", r.body)
	}

	t.Run("replace", func(t *testing.T) {
		e.expect(204, "PUT", base+"/1/0/1", `{"value":120}`, "application/json")
		if v := value(t, e.expect(200, "GET", base+"/1/0/1", nil, "")); v != float64(120) {
			t.Fatalf("lifetime = %v after write", v)
		}
	})
	t.Run("text/plain", func(t *testing.T) {
		e.expect(204, "PUT", base+"/1/0/1", "150", "text/plain; charset=utf-8")
		if v := value(t, e.expect(200, "GET", base+"/1/0/1", nil, "")); v != float64(150) {
			t.Fatalf("lifetime = %v after text write", v)
		}
	})
	t.Run("partial instance", func(t *testing.T) {
		e.expect(204, "PATCH", base+"/1/0", `{"resources":[{"id":1,"value":200}]}`, "application/json")
		if v := value(t, e.expect(200, "GET", base+"/1/0/1", nil, "")); v != float64(200) {
			t.Fatalf("lifetime = %v after partial update", v)
		}
	})
	t.Run("resource instance", func(t *testing.T) {
		r := e.expect(200, "GET", base+"/3/0/6/0", nil, "")
		if got := r.json(t); got["path"] != "/3/0/6/0" || got["type"] != "integer" {
			t.Fatalf("read /3/0/6/0 = %s", r.body)
		}
	})
}

func TestExecuteCreateDelete(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.device("dev-x", "1.1", nil)
	const base = "/api/v1/clients/dev-x"

	// Registration Update Trigger: the device answers 2.04 and sends an
	// Update.
	s := e.stream("/api/v1/events?endpoint=dev-x&kind=updated")
	e.expect(204, "POST", base+"/1/0/8", "", "text/plain")
	s.next(kind("updated"))
	// Arguments are checked (LwM2M Core 1.1 §5.4.5).
	e.do("POST", base+"/1/0/8", "not args", "text/plain").problem(t, 400)
	// A resource the model says is not executable is refused here.
	r := e.do("POST", base+"/3/0/0", "", "")
	if p := r.problem(t, 405); !strings.Contains(p["detail"].(string), "not executable") || r.header.Get("Allow") != "GET" {
		t.Fatalf("detail %v, Allow %q", p["detail"], r.header.Get("Allow"))
	}

	r = e.expect(201, "POST", base+"/3303", `{"id":7,"resources":[{"id":5701,"value":"Cel"}]}`, "application/json")
	if r.header.Get("Location") != base+"/3303/7" || r.json(t)["path"] != "/3303/7" {
		t.Fatalf("create: Location %q, body %s", r.header.Get("Location"), r.body)
	}
	if v := value(t, e.expect(200, "GET", base+"/3303/7/5701", nil, "")); v != "Cel" {
		t.Fatalf("created instance reads %v", v)
	}
	// The device refuses a second instance with the same ID: 4.00.
	e.do("POST", base+"/3303", `{"id":7,"resources":[]}`, "application/json").problem(t, 400)
	e.do("POST", base+"/3303", `{"resources":[]}`, "application/json").problem(t, 400)
	e.expect(204, "DELETE", base+"/3303/7", nil, "")
	p := e.do("GET", base+"/3303/7", nil, "").problem(t, 404)
	if p["coapCode"] != "4.04" || p["endpoint"] != "dev-x" {
		t.Fatalf("problem %v", p)
	}
}

func TestDiscoverAttributesObserve(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.device("dev-o", "1.1", nil)
	const base = "/api/v1/clients/dev-o"

	e.expect(204, "PUT", base+"/1/0/1/attributes?pmin=0&pmax=1", nil, "")
	e.expect(204, "PUT", base+"/3/0/attributes", `{"pmax":30,"pmin":null}`, "application/json")
	r := e.expect(200, "GET", base+"/1/0/discover", nil, "")
	if !strings.Contains(string(r.body), `"path":"/1/0/1","attributes":{"pmax":1,"pmin":0}`) {
		t.Fatalf("discover /1/0 = %s", r.body)
	}
	e.do("PUT", base+"/1/0/1/attributes?pmin=10&pmax=5", nil, "").problem(t, 400)
	if p := e.do("PUT", base+"/1/0/1/attributes?bogus=1", nil, "").problem(t, 400); p["field"] != "attributes" {
		t.Fatalf("problem %v", p)
	}
	e.do("PUT", base+"/1/0/1/attributes", nil, "").problem(t, 400)

	s := e.stream("/api/v1/events?endpoint=dev-o&kind=notification")
	r = e.expect(200, "POST", base+"/1/0/1/observe", nil, "")
	m := r.json(t)
	obs, _ := m["observation"].(map[string]any)
	node, _ := m["node"].(map[string]any)
	if obs["path"] != "/1/0/1" || obs["token"] == "" || node["path"] != "/1/0/1" {
		t.Fatalf("observe = %s", r.body)
	}
	e.expect(204, "PUT", base+"/1/0/1", `{"value":321}`, "application/json")
	ev := s.next(func(ev sseEvent) bool {
		n, _ := ev.data["node"].(map[string]any)
		return n["value"] == float64(321)
	})
	if ev.data["endpoint"] != "dev-o" || ev.data["path"] != "/1/0/1" || ev.id == "" {
		t.Fatalf("notification %+v", ev)
	}
	r = e.expect(200, "GET", base+"/observations", nil, "")
	if !strings.Contains(string(r.body), `"path":"/1/0/1"`) {
		t.Fatalf("observations = %s", r.body)
	}
	e.expect(204, "DELETE", base+"/1/0/1/observe", nil, "")
	e.do("DELETE", base+"/1/0/1/observe", nil, "").problem(t, 404)
	if r := e.expect(200, "GET", base+"/observations", nil, ""); string(r.body) != "[]\n" {
		t.Fatalf("observations after cancel = %s", r.body)
	}
}

func TestFormats(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.device("dev-f", "1.2", nil)
	// Freeze the device's clock: Current Time (/3/0/13) read in two
	// formats a second apart would differ, and every format must decode
	// to the same values, the time included.
	const frozen = 1700000000
	c.Object(3).OnRead(13, func(uint16) objects.Value { return objects.TimeSecondsValue(frozen) })
	const base = "/api/v1/clients/dev-f"
	want := string(e.expect(200, "GET", base+"/3/0", nil, "").body)
	if ts := `"path":"/3/0/13","type":"time","value":` + strconv.Itoa(frozen) + `}`; !strings.Contains(want, ts) {
		t.Fatalf("read /3/0 does not hold the frozen time %s:\n%s", ts, want)
	}
	for _, f := range []string{"tlv", "senml-json", "senml-cbor", "lwm2m-cbor", "11542", "110"} {
		t.Run(f, func(t *testing.T) {
			if got := string(e.expect(200, "GET", base+"/3/0?format="+f, nil, "").body); got != want {
				t.Fatalf("read with %s:\n%s\nwant\n%s", f, got, want)
			}
		})
	}
	for _, f := range []string{"text", "cbor", "0"} {
		t.Run("single "+f, func(t *testing.T) {
			if v := value(t, e.expect(200, "GET", base+"/3/0/0?format="+f, nil, "")); v != "lwm2md" {
				t.Fatalf("read with %s: %v", f, v)
			}
		})
	}
	e.expect(204, "PUT", base+"/1/0/1?format=senml-json", `{"value":99}`, "application/json")
	e.expect(204, "PUT", base+"/1/0/1?format=lwm2m-cbor", `{"value":98}`, "application/json")
	if v := value(t, e.expect(200, "GET", base+"/1/0/1?format=text", nil, "")); v != float64(98) {
		t.Fatalf("lifetime %v", v)
	}
	if p := e.do("GET", base+"/3/0?format=xml", nil, "").problem(t, 400); p["field"] != "format" {
		t.Fatalf("problem %v", p)
	}
	if p := e.do("GET", base+"/3/0?format=link-format", nil, "").problem(t, 400); p["field"] != "format" {
		t.Fatalf("problem %v", p)
	}
}

func TestComposite(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.device("dev-c", "1.1", nil)
	const base = "/api/v1/clients/dev-c"
	r := e.expect(200, "POST", base+"/composite/read", `{"paths":["/3/0/0","/1/0/1","/9999/0"]}`, "application/json")
	m := r.json(t)
	nodes, _ := m["nodes"].([]any)
	if len(nodes) != 2 || !strings.Contains(string(r.body), `"value":"lwm2md"`) {
		t.Fatalf("read-composite = %s", r.body)
	}
	e.expect(204, "POST", base+"/composite/write", `[{"path":"/1/0/1","value":444},{"path":"/1/0/3","value":20}]`, "application/json")
	r = e.expect(200, "POST", base+"/composite/read?format=senml-json", `[{"path":"/1/0/1"},{"path":"/1/0/3"}]`, "application/json")
	if !strings.Contains(string(r.body), `"value":444`) || !strings.Contains(string(r.body), `"path":"/1/0/3","type":"integer","value":20`) {
		t.Fatalf("after write-composite: %s", r.body)
	}
	e.do("POST", base+"/composite/read", `{"paths":[]}`, "application/json").problem(t, 400)
	e.do("POST", base+"/composite/read", `{"paths":["3/0"]}`, "application/json").problem(t, 400)
	if p := e.do("POST", base+"/composite/write", `[{"path":"/1/0/1","value":"x"}]`, "application/json").problem(t, 400); p["field"] != "/1/0/1: value" {
		t.Fatalf("problem %v", p)
	}
}

func TestOperationErrors(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBody = 1024 }, nil)
	e.device("dev-e", "1.1", nil)
	const base = "/api/v1/clients/dev-e"
	tests := []struct {
		name, method, path, body, ctype string
		status                          int
		field, state, coap              string
	}{
		{"not registered", "GET", "/api/v1/clients/nobody/3/0", "", "", 404, "", "not registered", ""},
		{"not registered client", "GET", "/api/v1/clients/nobody", "", "", 404, "", "not registered", ""},
		{"bad object", "GET", base + "/abc", "", "", 400, "object", "", ""},
		{"bad instance", "GET", base + "/3/70000", "", "", 400, "instance", "", ""},
		{"device 4.04", "GET", base + "/3/9", "", "", 404, "", "", "4.04"},
		{"device 4.05 write read-only", "PUT", base + "/3/0/0", `{"value":"x"}`, "application/json", 405, "", "", "4.05"},
		{"type", "PUT", base + "/1/0/1", `{"value":"x"}`, "application/json", 400, "/1/0/1: value", "", ""},
		{"range", "PUT", base + "/3/0/9", `{"value":101}`, "application/json", 400, "/3/0/9: value", "", ""},
		{"unknown member", "PUT", base + "/1/0/1", `{"valeu":1}`, "application/json", 400, "/1/0/1", "", ""},
		{"text on instance", "PUT", base + "/1/0", `1`, "text/plain", 415, "", "", ""},
		{"media type", "PUT", base + "/1/0/1", `1`, "application/xml", 415, "", "", ""},
		{"text type", "PUT", base + "/1/0/1", `abc`, "text/plain", 400, "/1/0/1: value", "", ""},
		{"timeout", "GET", base + "/3/0?timeout=forever", "", "", 400, "timeout", "", ""},
		{"timeout too long", "GET", base + "/3/0?timeout=1h", "", "", 400, "timeout", "", ""},
		{"body too large", "PUT", base + "/1/0/1", `{"value":"` + strings.Repeat("a", 2000) + `"}`, "application/json", 413, "", "", ""},
		{"no route", "GET", "/api/v1/nothing", "", "", 404, "", "", ""},
		{"write object", "PUT", base + "/3", `{}`, "application/json", 405, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			p := e.do(tc.method, tc.path, body, tc.ctype).problem(t, tc.status)
			if tc.field != "" && p["field"] != tc.field {
				t.Errorf("field %v, want %q (%v)", p["field"], tc.field, p["detail"])
			}
			if tc.state != "" && p["state"] != tc.state {
				t.Errorf("state %v, want %q", p["state"], tc.state)
			}
			if tc.coap != "" && p["coapCode"] != tc.coap {
				t.Errorf("coapCode %v, want %q", p["coapCode"], tc.coap)
			}
		})
	}
	r := e.do("PUT", base+"/3", `{}`, "application/json")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") || strings.Contains(allow, "PUT") {
		t.Fatalf("Allow %q", allow)
	}
	if r := e.do("GET", base+"/3/0", nil, ""); r.status != http.StatusOK {
		t.Fatalf("device still answers: %d", r.status)
	}
}

func TestLwM2M10Device(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.device("dev-10", "1.0", nil)
	const base = "/api/v1/clients/dev-10"
	r := e.expect(200, "GET", base+"/3/0", nil, "")
	if !strings.Contains(string(r.body), `"path":"/3/0/0","type":"string","value":"lwm2md"`) {
		t.Fatalf("read /3/0 = %s", r.body)
	}
	e.expect(204, "PATCH", base+"/1/0", `{"resources":[{"id":1,"value":500},{"id":6,"value":false}]}`, "application/json")
	if v := value(t, e.expect(200, "GET", base+"/1/0/1", nil, "")); v != float64(500) {
		t.Fatalf("lifetime %v", v)
	}
	r = e.expect(200, "GET", base+"/3/0/discover", nil, "")
	if !strings.Contains(string(r.body), `{"path":"/3/0/0"}`) {
		t.Fatalf("discover = %s", r.body)
	}
}
