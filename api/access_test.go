package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	viewerToken   = "viewer-token-0123456789"
	operatorToken = "operator-token-0123456789"
	adminToken    = "admin-token-0123456789"
)

func withTokens(c *Config) {
	c.Tokens = map[string]Role{viewerToken: RoleViewer, operatorToken: RoleOperator, adminToken: RoleAdmin}
}

func TestRoles(t *testing.T) {
	e := newEnv(t, withTokens, nil)
	e.device("dev-r", "1.1", nil)
	const base = "/api/v1/clients/dev-r"
	cred := `{"mode":"psk","identity":"dev-r-id","key":"00112233445566778899aabbccddeeff"}`
	tests := []struct {
		name, token, method, path, body string
		status                          int
	}{
		{"no token", "", "GET", "/api/v1/clients", "", 401},
		{"bad token", "not-a-token-at-all-xx", "GET", "/api/v1/clients", "", 401},
		{"viewer lists", viewerToken, "GET", "/api/v1/clients", "", 200},
		{"viewer reads", viewerToken, "GET", base + "/3/0/0", "", 200},
		{"viewer may not write", viewerToken, "PUT", base + "/1/0/1", `{"value":100}`, 403},
		{"viewer may not execute", viewerToken, "POST", base + "/1/0/8", "", 403},
		{"operator writes", operatorToken, "PUT", base + "/1/0/1", `{"value":100}`, 204},
		{"operator may not set credentials", operatorToken, "PUT", "/api/v1/credentials/dev-r", cred, 403},
		{"operator may not import", operatorToken, "POST", "/api/v1/import", "endpoint\nx\n", 403},
		{"admin sets credentials", adminToken, "PUT", "/api/v1/credentials/dev-r", cred, 200},
		{"viewer may not read credentials", viewerToken, "GET", "/api/v1/credentials/dev-r", "", 403},
		{"admin writes", adminToken, "PUT", base + "/1/0/1", `{"value":101}`, 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.token = tc.token
			var body any
			ctype := ""
			if tc.body != "" {
				body, ctype = tc.body, "application/json"
				if tc.path == "/api/v1/import" {
					ctype = "text/csv"
				}
			}
			r := e.do(tc.method, tc.path, body, ctype)
			if r.status >= 400 {
				r.problem(t, tc.status)
			} else if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	// Every change has an audit line naming who, what and the device;
	// the token itself never appears.
	logs := e.logs.String()
	for _, want := range []string{"msg=audit", "op=writeResource", "endpoint=dev-r", "status=204", "who=token:", "role=operator", "op=putCredentials"} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit log lacks %q:\n%s", want, logs)
		}
	}
	for _, tok := range []string{viewerToken, operatorToken, adminToken, "00112233445566778899aabbccddeeff"} {
		if strings.Contains(logs, tok) {
			t.Errorf("log holds a secret %q", tok)
		}
	}
}

func TestNoTokensLoopbackOnly(t *testing.T) {
	e := newEnv(t, nil, nil)
	// httptest listens on 127.0.0.1: loopback callers are admin.
	e.expect(200, "GET", "/api/v1/credentials", nil, "")
	if loopback("192.0.2.1:4000") || !loopback("[::1]:80") || !loopback("127.0.0.1:1") {
		t.Fatal("loopback check")
	}
}

func TestCheckListen(t *testing.T) {
	tests := []struct {
		addr   string
		tokens bool
		ok     bool
	}{
		{"127.0.0.1:8080", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"192.0.2.10:8080", false, false},
		{"0.0.0.0:8080", true, true},
		{"nonsense", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			err := CheckListen(tc.addr, tc.tokens)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckListen(%q, %v) = %v", tc.addr, tc.tokens, err)
			}
		})
	}
}

func TestTokenConfig(t *testing.T) {
	e := newEnv(t, nil, nil)
	if _, err := New(Config{Server: e.srv, Tokens: map[string]Role{"short": RoleAdmin}}); err == nil {
		t.Fatal("a short token was accepted")
	}
	if _, err := New(Config{Server: e.srv, Tokens: map[string]Role{"long-enough-token-123": 9}}); err == nil {
		t.Fatal("an unknown role was accepted")
	}
	for _, s := range []string{"viewer", "Operator", "admin"} {
		if _, err := ParseRole(s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ParseRole("root"); err == nil {
		t.Fatal("ParseRole(root)")
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { withTokens(c); c.Rate, c.Burst = 0.001, 3 }, nil)
	e.token = viewerToken
	for i := 0; i < 3; i++ {
		e.expect(200, "GET", "/api/v1/status", nil, "")
	}
	r := e.do("GET", "/api/v1/status", nil, "")
	r.problem(t, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// Buckets are per token.
	e.token = adminToken
	e.expect(200, "GET", "/api/v1/status", nil, "")
}

func TestCORS(t *testing.T) {
	e := newEnv(t, nil, nil)
	r := e.do("GET", "/api/v1/status", nil, "", "Origin", "https://ui.example")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS headers without CORSOrigins")
	}
	e = newEnv(t, func(c *Config) { c.CORSOrigins = []string{"https://ui.example"} }, nil)
	r = e.do("OPTIONS", "/api/v1/clients", nil, "", "Origin", "https://ui.example", "Access-Control-Request-Method", "PUT")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://ui.example" || !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
	r = e.do("GET", "/api/v1/status", nil, "", "Origin", "https://other.example")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS headers for another origin")
	}
}

func TestUIAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ui:" + r.URL.Path)) })
	e := newEnv(t, func(c *Config) { c.UI = ui; c.Registerer = reg }, nil)
	if r := e.expect(200, "GET", "/", nil, ""); string(r.body) != "ui:/" {
		t.Fatalf("UI at / = %s", r.body)
	}
	if r := e.expect(200, "GET", "/app.js", nil, ""); string(r.body) != "ui:/app.js" {
		t.Fatalf("UI asset = %s", r.body)
	}
	e.expect(200, "GET", "/api/v1/status", nil, "")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "lwm2md_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["op"] == "getStatus" && labels["status"] == "200" && m.GetCounter().GetValue() == 1 {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("lwm2md_api_requests_total{op=getStatus,status=200} is not 1")
	}
}
