package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"coap-addr": ":5683", "coaps-addr": ":5684", "bs-coap-addr": ":5783", "bs-coaps-addr": ":5784",
		"http-addr": "127.0.0.1:8080", "data-dir": "./data", "nats-addr": "127.0.0.1:4222",
	}
	for name, v := range want {
		s, _ := lookup(name)
		if got := *s.field(c); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "lwm2md.yaml")
	os.WriteFile(file, []byte("coap-addr: 127.0.0.1:1000\ncoaps-addr: 127.0.0.1:1001\nhttp-addr: 127.0.0.1:1002\nbs-coap-addr: \"\"\n"), 0o600)
	c, err := Load([]string{"--config", file, "--http-addr", "127.0.0.1:3002"},
		env(map[string]string{"LWM2MD_COAPS_ADDR": "127.0.0.1:2001", "LWM2MD_HTTP_ADDR": "127.0.0.1:2002"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.CoAPAddr != "127.0.0.1:1000" || c.CoAPSAddr != "127.0.0.1:2001" || c.HTTPAddr != "127.0.0.1:3002" {
		t.Errorf("file < env < flag not honoured: %+v", c)
	}
	if c.BSCoAPAddr != "" {
		t.Errorf("empty address in the file should turn the listener off, got %q", c.BSCoAPAddr)
	}
	c, err = Load([]string{"--coap-addr="}, env(map[string]string{"LWM2MD_CONFIG": file}), &bytes.Buffer{})
	if err != nil || c.CoAPAddr != "" || c.CoAPSAddr != "127.0.0.1:1001" {
		t.Errorf("LWM2MD_CONFIG and an empty flag: %+v, %v", c, err)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("coap-adr: :1\n"), 0o600)
	nested := filepath.Join(dir, "nested.yaml")
	os.WriteFile(nested, []byte("coap-addr: {a: 1}\n"), 0o600)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown key", []string{"--config", bad}, nil, `unknown key "coap-adr"`},
		{"nested value", []string{"--config", nested}, nil, `key "coap-addr"`},
		{"missing file", []string{"--config", filepath.Join(dir, "none.yaml")}, nil, "none.yaml"},
		{"bad address flag", []string{"--coap-addr", "5683"}, nil, "coap-addr (from flag --coap-addr)"},
		{"bad address env", nil, map[string]string{"LWM2MD_HTTP_ADDR": "localhost"}, "http-addr (from environment LWM2MD_HTTP_ADDR)"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "log-level"},
		{"bad postgres scheme", []string{"--postgres-url", "mysql://x"}, nil, "postgres-url"},
		{"bad secrets key", []string{"--secrets-key", "not-a-key"}, nil, "secrets-key (from flag --secrets-key)"},
		{"short secrets key env", nil, map[string]string{"LWM2MD_SECRETS_KEY": "00112233"}, "secrets-key (from environment LWM2MD_SECRETS_KEY)"},
		{"models not a dir", []string{"--models", bad}, nil, "models"},
		{"stray argument", []string{"extra"}, nil, `unexpected argument "extra"`},
		{"negative api rate", []string{"--api-rate", "-1"}, nil, `api-rate (from flag --api-rate): "-1" is not a whole number`},
		{"bad api burst env", nil, map[string]string{"LWM2MD_API_BURST": "lots"}, "api-burst (from environment LWM2MD_API_BURST)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.args, env(tt.env), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := Load([]string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, n := range Names() {
		if !strings.Contains(out.String(), "-"+n) || !strings.Contains(out.String(), EnvName(n)) {
			t.Errorf("usage lacks %s / %s", n, EnvName(n))
		}
	}
}

func TestPrintMasksSecrets(t *testing.T) {
	c, err := Load([]string{"--postgres-url", "postgres://lwm2md:s3cret@db/lwm2md", "--nats-url", "nats://u:hunter2@a:4222,nats://b:4222"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c.Print(&out)
	if strings.Contains(out.String(), "s3cret") || strings.Contains(out.String(), "hunter2") {
		t.Fatalf("secret printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "postgres://lwm2md:xxxxx@db/lwm2md") || !strings.Contains(out.String(), "# flag --postgres-url") {
		t.Fatalf("print:\n%s", out.String())
	}
}

func TestSecretsKey(t *testing.T) {
	hexKey := "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	b64Key := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" // the same, URL base64 unpadded
	for _, key := range []string{hexKey, b64Key, b64Key + "=", "+/+/+/+/+/+/+/+/+/+/+w=="} {
		c, err := Load([]string{"--secrets-key", key}, env(nil), &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if c.SecretsKey != key {
			t.Fatalf("SecretsKey = %q", c.SecretsKey)
		}
		var out bytes.Buffer
		c.Print(&out)
		if strings.Contains(out.String(), key) || strings.Contains(out.String(), key[:8]) ||
			!strings.Contains(out.String(), `secrets-key: "****" # flag --secrets-key`) {
			t.Fatalf("key not masked:\n%s", out.String())
		}
	}
	// A bad key's error names the setting, never the value.
	bad := "hunter2hunter2hunter2!"
	_, err := Load(nil, env(map[string]string{"LWM2MD_SECRETS_KEY": bad}), &bytes.Buffer{})
	if err == nil || strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "secrets-key") {
		t.Fatalf("err = %v", err)
	}
	// Unset: no key, no error.
	if c, err := Load(nil, env(nil), &bytes.Buffer{}); err != nil || c.SecretsKey != "" {
		t.Fatalf("default: %q %v", c.SecretsKey, err)
	}
}

func TestParseFactoryPSKs(t *testing.T) {
	got, err := ParseFactoryPSKs("factory-a:000102:urn:imei:*,dev-*; factory-b:ff")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Identity != "factory-a" || len(got[0].Key) != 3 || len(got[0].Endpoints) != 2 || got[0].Endpoints[0] != "urn:imei:*" ||
		got[1].Identity != "factory-b" || got[1].Endpoints != nil {
		t.Fatalf("%+v", got)
	}
	for _, bad := range []string{"nokey", "id:zz", "id:", ":00", "id:00:[", "ok:00;bad"} {
		_, err := ParseFactoryPSKs(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "00") && bad == "ok:00;bad" {
			t.Errorf("error shows key material: %v", err)
		}
	}
}
