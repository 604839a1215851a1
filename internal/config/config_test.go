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
		{"models not a dir", []string{"--models", bad}, nil, "models"},
		{"stray argument", []string{"extra"}, nil, `unexpected argument "extra"`},
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
