package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestQuick runs the whole harness with -quick against the real binaries
// on loopback and checks that every scenario produced a row with a
// non-zero figure, its ratio where it has a baseline, and that the
// markdown table has the same rows.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lwm2md and lwm2m-sim; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// Fewer devices and clients than -quick's defaults keep the CPU the
	// test takes from tests running beside it modest.
	args := []string{"-quick", "-json", "-devices", "50", "-fleet", "10", "-memory-devices", "200", "-concurrency", "2", "-duration", "1s"}
	var out, log bytes.Buffer
	if code := run(ctx, args, &out, &log); code != 0 {
		t.Fatalf("run %v = %d\n%s", args, code, log.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	want := []string{"baseline-udp", "baseline-coap", "reg-udp", "reg-dtls", "notify", "rest", "memory-200"}
	if len(rep.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rep.Rows), len(want), rep.Rows)
	}
	for i, r := range rep.Rows {
		t.Run(want[i], func(t *testing.T) {
			if r.Scenario != want[i] {
				t.Fatalf("row %d is %q, want %q", i, r.Scenario, want[i])
			}
			if r.Value <= 0 || r.Devices <= 0 || r.Unit == "" {
				t.Errorf("figure %g %s over %d devices, want all set", r.Value, r.Unit, r.Devices)
			}
			if !strings.HasPrefix(r.Scenario, "memory-") && (r.P50 <= 0 || r.P99 < r.P50) {
				t.Errorf("p50 %g ms, p99 %g ms: want 0 < p50 <= p99", r.P50, r.P99)
			}
			if r.Scenario != "baseline-udp" && !strings.HasPrefix(r.Scenario, "memory-") && (r.Baseline == "" || r.Ratio <= 0) {
				t.Errorf("ratio %g to %q, want a positive ratio to a baseline", r.Ratio, r.Baseline)
			}
			if r.Failed != 0 {
				t.Errorf("%d requests failed: %s", r.Failed, r.Note)
			}
		})
	}
	// The same rows as a markdown table.
	var table bytes.Buffer
	writeTable(&table, rep)
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if got := len(lines) - 4; got != len(want) { // the heading line, a blank line, the header and the rule
		t.Fatalf("table has %d rows, want %d:\n%s", got, len(want), table.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[4+i], "| "+w+": ") {
			t.Errorf("table row %d = %q, want scenario %s", i, lines[4+i], w)
		}
	}
}

// TestFlags checks the command line's errors name the flag.
func TestFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-scenarios", "reg-udp,nope"}, `-scenarios: unknown scenario "nope"`},
		{[]string{"-memory-devices", "10,x"}, `-memory-devices: "x" is not a positive number`},
		{[]string{"-devices", "0"}, "-devices must be at least 1"},
		{[]string{"-duration", "-1s"}, "-duration must be positive"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			var out, log bytes.Buffer
			if code := run(context.Background(), tt.args, &out, &log); code != 2 {
				t.Fatalf("run %v = %d, want 2", tt.args, code)
			}
			if !strings.Contains(log.String(), tt.want) {
				t.Errorf("stderr %q, want it to contain %q", log.String(), tt.want)
			}
		})
	}
	c, err := parseFlags([]string{"-quick", "-devices", "7"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.devices != 7 || c.fleet != 20 || c.duration != 2*time.Second || len(c.memory) != 2 {
		t.Errorf("-quick -devices 7 gave %+v: want -devices kept and the other quick numbers", c)
	}
}

func TestGroup(t *testing.T) {
	for in, want := range map[float64]string{0: "0.0", 39.04: "39.0", 100: "100", 1234.4: "1,234", 1234567: "1,234,567"} {
		if got := group(in); got != want {
			t.Errorf("group(%g) = %q, want %q", in, got, want)
		}
	}
}
