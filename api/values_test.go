package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/internal/lastvalue"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
)

func decodeValues(t *testing.T, r response) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, r.body)
	}
	return out
}

// GET /clients/{ep}/values serves the stored values as nodejson records
// with serverTime, under a path prefix; bad input is a problem.
func TestListValues(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.device("val-dev", "1.1", nil)
	dev := time.Unix(1700000000, 500000000).UTC()
	srv := time.Unix(1700000100, 0).UTC()
	err := e.store.Values().Put(context.Background(), "val-dev", []registry.ResourceValue{
		{Path: objects.MustParsePath("/3303/0/5700"), Value: objects.FloatValue(21.5), DeviceTime: dev, ServerTime: srv},
		{Path: objects.MustParsePath("/3/0/0"), Value: objects.StringValue("lwm2md"), ServerTime: srv},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query string
		want  []map[string]any
	}{
		{"", []map[string]any{
			{"path": "/3/0/0", "type": "string", "value": "lwm2md", "serverTime": 1700000100.0},
			{"path": "/3303/0/5700", "type": "float", "value": 21.5, "time": 1700000000.5, "serverTime": 1700000100.0},
		}},
		{"?path=/3303", []map[string]any{
			{"path": "/3303/0/5700", "type": "float", "value": 21.5, "time": 1700000000.5, "serverTime": 1700000100.0},
		}},
		{"?path=/5", []map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got := decodeValues(t, e.expect(200, "GET", "/api/v1/clients/val-dev/values"+tt.query, nil, ""))
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if len(got[i]) != len(tt.want[i]) {
					t.Fatalf("value %d: got %v, want %v", i, got[i], tt.want[i])
				}
				for k, v := range tt.want[i] {
					if got[i][k] != v {
						t.Fatalf("value %d %s: got %v, want %v", i, k, got[i][k], v)
					}
				}
			}
		})
	}
	if p := e.do("GET", "/api/v1/clients/val-dev/values?path=/x", nil, "").problem(t, 400); p["field"] != "path" {
		t.Fatalf("problem %v", p)
	}
	e.do("GET", "/api/v1/clients/nobody/values", nil, "").problem(t, 404)
}

// With the recorder running, what a REST Read returned is a last known
// value at once.
func TestValuesFromRecorder(t *testing.T) {
	e := newEnv(t, nil, nil)
	r := lastvalue.New(e.srv, e.store.Values(), lastvalue.Config{FlushEvery: 10 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	e.device("val-rec", "1.1", nil)
	e.expect(200, "GET", "/api/v1/clients/val-rec/3/0/0", nil, "")
	waitFor(t, "the read value stored", func() bool {
		vs := decodeValues(t, e.expect(200, "GET", "/api/v1/clients/val-rec/values?path=/3/0/0", nil, ""))
		return len(vs) == 1 && vs[0]["value"] == "lwm2md" && vs[0]["serverTime"].(float64) > 0
	})
}
