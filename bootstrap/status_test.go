package bootstrap

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// TestStatusTags: a status survives its trip through the tags.
func TestStatusTags(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 30, 0, 123456000, time.UTC)
	for _, st := range []Status{
		{Endpoint: "a", State: StateFinished, Initiator: "client", Source: "endpoint", Step: StepFinish, Started: at.Add(-time.Second), Ended: at, Attempts: 7},
		{Endpoint: "b", State: StateFailed, Initiator: "server", Source: "template:x", Step: StepFinish, Error: "refused", Code: 0x86, Started: at.Add(-time.Second), Ended: at},
		{Endpoint: "c", State: StateFailed, Initiator: "client", Step: StepRequest, Error: "forbidden", Started: at, Ended: at},
	} {
		t.Run(st.Endpoint, func(t *testing.T) {
			got, ok := statusFromTags(st.Endpoint, statusTags(st))
			if !ok || got != st {
				t.Fatalf("got %+v, want %+v", got, st)
			}
		})
	}
	t.Run("running is interrupted", func(t *testing.T) {
		got, ok := statusFromTags("d", statusTags(Status{Endpoint: "d", State: StateRunning, Started: at}))
		if !ok || got.State != StateFailed || got.Error == "" || !got.Started.Equal(at) {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("no status", func(t *testing.T) {
		if _, ok := statusFromTags("e", map[string]string{"fleet": "north"}); ok {
			t.Fatal("a status from unrelated tags")
		}
	})
	t.Run("long reason", func(t *testing.T) {
		long := make([]byte, 5000)
		for i := range long {
			long[i] = 'x'
		}
		if r := statusTags(Status{State: StateFailed, Error: string(long)})[TagReason]; len(r) != maxReason {
			t.Fatalf("reason of %d bytes", len(r))
		}
	})
}

// FuzzStatusFromTags: whatever the tags hold (an operator can edit them),
// reading a status does not panic, and a code it reads is a CoAP code.
func FuzzStatusFromTags(f *testing.F) {
	b, err := os.ReadFile("testdata/status-tags.json")
	if err != nil {
		f.Fatal(err)
	}
	var seeds []map[string]string
	if err := json.Unmarshal(b, &seeds); err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		f.Add(s[TagState], s[TagStep], s[TagCode], s[TagReason], s[TagTime])
	}
	f.Fuzz(func(t *testing.T, state, step, code, reason, at string) {
		st, ok := statusFromTags("ep", map[string]string{TagState: state, TagStep: step, TagCode: code, TagReason: reason, TagTime: at})
		if !ok {
			t.Fatal("a state tag gave no status")
		}
		if st.State != StateFinished && st.State != StateFailed {
			t.Fatalf("state %q", st.State)
		}
		if st.Code != 0 && st.Code>>5 > 7 {
			t.Fatalf("code %d", st.Code)
		}
	})
}
