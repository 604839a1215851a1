package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/config"
)

// TestLogLevels: log-levels sets components apart from log-level, both
// ways, and a sub-logger keeps its component's level.
func TestLogLevels(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&config.Config{LogLevel: "info", LogFormat: "text", LogLevels: "server=debug, bridge=error"}, &buf)
	srv := log.With("component", "server")
	br := log.With("component", "bridge").With("transport", "nats")
	api := log.With("component", "api")
	srv.Debug("server debug")
	br.Warn("bridge warn")
	br.Error("bridge error")
	api.Debug("api debug")
	api.Info("api info")
	log.Debug("root debug")
	out := buf.String()
	for _, tc := range []struct {
		msg  string
		want bool
	}{
		{"server debug", true},
		{"bridge warn", false},
		{"bridge error", true},
		{"api debug", false},
		{"api info", true},
		{"root debug", false},
	} {
		if got := strings.Contains(out, tc.msg); got != tc.want {
			t.Errorf("%q logged: %v, want %v\n%s", tc.msg, got, tc.want, out)
		}
	}
}

func TestLogLevelsChecked(t *testing.T) {
	for _, v := range []string{"server", "nobody=debug", "server=loud"} {
		var stderr bytes.Buffer
		if code := run(t.Context(), []string{"config", "print", "--log-levels", v}, noEnv, &bytes.Buffer{}, &stderr); code != 2 || !strings.Contains(stderr.String(), "log-levels") {
			t.Errorf("log-levels %q: exit %d, %s", v, code, stderr.String())
		}
	}
}
