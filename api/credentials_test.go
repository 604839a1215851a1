package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T, cn string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), hex.EncodeToString(sum[:])
}

func TestCredentials(t *testing.T) {
	e := newEnv(t, nil, nil)
	const key = "00112233445566778899aabbccddeeff"
	r := e.expect(200, "PUT", "/api/v1/credentials/dev-psk", `{"mode":"psk","identity":"dev-psk-id","key":"`+key+`"}`, "application/json")
	if strings.Contains(string(r.body), key) {
		t.Fatalf("PUT answer holds the key: %s", r.body)
	}
	r = e.expect(200, "GET", "/api/v1/credentials/dev-psk", nil, "")
	m := r.json(t)
	if m["mode"] != "psk" || m["identity"] != "dev-psk-id" || m["key"] != maskedKey || m["keyLength"] != float64(16) || strings.Contains(string(r.body), key) {
		t.Fatalf("GET = %s", r.body)
	}
	pemText, fp := selfSigned(t, "dev-cert")
	body, _ := json.Marshal(map[string]string{"mode": "x509", "certificate": pemText})
	e.expect(200, "PUT", "/api/v1/credentials/dev-cert", body, "application/json")
	m = e.expect(200, "GET", "/api/v1/credentials/dev-cert", nil, "").json(t)
	certs, _ := m["certificates"].([]any)
	if m["mode"] != "x509" || len(certs) != 1 || certs[0].(map[string]any)["sha256"] != fp || certs[0].(map[string]any)["subject"] != "CN=dev-cert" {
		t.Fatalf("x509 GET = %v", m)
	}
	list := e.expect(200, "GET", "/api/v1/credentials", nil, "").json(t)
	if cs, _ := list["credentials"].([]any); len(cs) != 2 {
		t.Fatalf("list = %v", list)
	}

	tests := []struct {
		name, ep, body string
		status         int
		field          string
	}{
		{"no mode", "x", `{"identity":"a","key":"00"}`, 400, "mode"},
		{"bad mode", "x", `{"mode":"rpk"}`, 400, "mode"},
		{"key not hex", "x", `{"mode":"psk","identity":"a","key":"zz"}`, 400, "key"},
		{"no identity", "x", `{"mode":"psk","key":"00"}`, 400, "identity"},
		{"unknown member", "x", `{"mode":"psk","identity":"a","key":"00","extra":1}`, 400, "body"},
		{"not PEM", "x", `{"mode":"x509","certificate":"hello"}`, 400, "certificate"},
		{"key with x509", "x", `{"mode":"x509","certificate":"hello","key":"00"}`, 400, "key"},
		{"duplicate identity", "other", `{"mode":"psk","identity":"dev-psk-id","key":"00"}`, 409, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := e.do("PUT", "/api/v1/credentials/"+tc.ep, tc.body, "application/json").problem(t, tc.status)
			if tc.field != "" && p["field"] != tc.field {
				t.Fatalf("field %v, want %s: %v", p["field"], tc.field, p["detail"])
			}
		})
	}
	e.expect(204, "DELETE", "/api/v1/credentials/dev-psk", nil, "")
	e.do("GET", "/api/v1/credentials/dev-psk", nil, "").problem(t, 404)
	e.do("DELETE", "/api/v1/credentials/dev-psk", nil, "").problem(t, 404)
}

func TestImportExport(t *testing.T) {
	e := newEnv(t, nil, nil)
	csv := "endpoint,psk_identity,psk_key,tags\n" +
		"imp-1,imp-1-id,000102030405060708090a0b0c0d0e0f,site=berlin\n" +
		"imp-2,imp-2-id,zz,\n" +
		"imp-3,,,site=paris&fw=1.2\n"
	r := e.expect(200, "POST", "/api/v1/import?dryRun=true", csv, "text/csv")
	if m := r.json(t); m["accepted"] != float64(2) || m["dryRun"] != true {
		t.Fatalf("dry run = %s", r.body)
	}
	e.do("GET", "/api/v1/credentials/imp-1", nil, "").problem(t, 404)
	r = e.expect(200, "POST", "/api/v1/import", csv, "text/csv")
	m := r.json(t)
	rej, _ := m["rejected"].([]any)
	if m["accepted"] != float64(2) || len(rej) != 1 || rej[0].(map[string]any)["line"] != float64(3) || rej[0].(map[string]any)["endpoint"] != "imp-2" {
		t.Fatalf("import = %s", r.body)
	}
	e.expect(200, "GET", "/api/v1/credentials/imp-1", nil, "")

	r = e.expect(200, "POST", "/api/v1/import", `[{"endpoint":"imp-4","tags":{"site":"rome"}}]`, "application/json")
	if m := r.json(t); m["accepted"] != float64(1) {
		t.Fatalf("JSON import = %s", r.body)
	}
	e.do("POST", "/api/v1/import", "x", "application/xml").problem(t, 415)
	// A broken JSON line is one rejected line of the report.
	r = e.expect(200, "POST", "/api/v1/import", "{", "application/json")
	if rej, _ := r.json(t)["rejected"].([]any); len(rej) != 1 || rej[0].(map[string]any)["line"] != float64(1) {
		t.Fatalf("broken JSON import = %s", r.body)
	}
	if p := e.do("POST", "/api/v1/import", "psk_identity\nx\n", "text/csv").problem(t, 400); p["field"] != "body" {
		t.Fatalf("CSV without endpoint column: %v", p)
	}

	r = e.expect(200, "GET", "/api/v1/export?format=csv", nil, "")
	out := string(r.body)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") || !strings.Contains(out, "imp-1") || !strings.Contains(out, "imp-4") || strings.Contains(out, "000102030405060708090a0b0c0d0e0f") {
		t.Fatalf("export = %s", out)
	}
	r = e.expect(200, "GET", "/api/v1/export?format=json&secrets=true", nil, "")
	if !strings.Contains(string(r.body), "000102030405060708090a0b0c0d0e0f") {
		t.Fatalf("export with secrets = %s", r.body)
	}
	e.do("GET", "/api/v1/export?format=xml", nil, "").problem(t, 400)
	e.do("GET", "/api/v1/export?secrets=maybe", nil, "").problem(t, 400)
}

func TestNoStore(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Store = nil }, nil)
	e.do("GET", "/api/v1/credentials/x", nil, "").problem(t, 501)
	e.do("POST", "/api/v1/import", "endpoint\n", "text/csv").problem(t, 501)
	e.do("GET", "/api/v1/clients?tag=x", nil, "").problem(t, 501)
}
