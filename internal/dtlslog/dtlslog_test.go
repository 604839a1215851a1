package dtlslog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLevels(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		log   func(l interface{ Errorf(string, ...any) })
		want  string
	}{
		{"error at debug", slog.LevelDebug, func(l interface{ Errorf(string, ...any) }) { l.Errorf("handshake %d failed", 7) }, "level=DEBUG msg=\"handshake 7 failed\" pion=dtls"},
		{"error hidden at info", slog.LevelInfo, func(l interface{ Errorf(string, ...any) }) { l.Errorf("handshake %d failed", 7) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			f := Factory{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level}))}
			tt.log(f.NewLogger("dtls"))
			got := buf.String()
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("logged %q, want %q", got, tt.want)
			}
		})
	}
	var buf bytes.Buffer
	l := Factory{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))}.NewLogger("udp")
	l.Tracef("flight %d", 3)
	l.Warn("retransmit")
	if got := buf.String(); !strings.Contains(got, "level=DEBUG-4 msg=\"flight 3\" pion=udp") || !strings.Contains(got, "level=DEBUG msg=retransmit") {
		t.Fatalf("logged %q", got)
	}
}
