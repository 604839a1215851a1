package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/server"
)

// newServer starts an lwm2md server on a free loopback port that observes
// the temperature of every device that registers, so that the devices'
// samples become notifications.
func newServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.New(server.Config{UDPAddr: "127.0.0.1:0", RegisterRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	sub := s.Subscribe(100_000)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for e := range sub.C {
			if e.Kind != server.EventRegistered {
				continue
			}
			wg.Add(1)
			go func(ep string) {
				defer wg.Done()
				_, _, _ = s.Observe(ctx, ep, objects.NewPath(3303, 0, 5700))
			}(e.Endpoint)
		}
	}()
	t.Cleanup(func() {
		cancel()
		sub.Close()
		wg.Wait()
		_ = s.Close()
	})
	return s
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSmoke runs a few hundred devices for a few seconds against an
// in-process lwm2md and checks the summary against what the server saw.
func TestSmoke(t *testing.T) {
	modes := []struct {
		name  string
		n     int
		flags []string
		addrs int // distinct source addresses the server must see
	}{
		{name: "socket per device", n: 200, flags: []string{"-source-addrs", "127.0.0.1-127.0.0.3"}, addrs: 3},
	}
	if runtime.GOOS == "linux" {
		modes = append(modes, struct {
			name  string
			n     int
			flags []string
			addrs int
		}{name: "shared sockets", n: 200, flags: []string{"-shared", "2", "-shared-base", "127.2.0.1"}, addrs: 200})
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s := newServer(t)
			addrs := map[netip.Addr]bool{}
			var mu sync.Mutex
			sub := s.Subscribe(10_000)
			defer sub.Close()
			go func() {
				for e := range sub.C {
					if e.Kind == server.EventRegistered {
						mu.Lock()
						addrs[e.Registration.Addr.Addr()] = true
						mu.Unlock()
					}
				}
			}()
			var stdout, stderr bytes.Buffer
			args := append([]string{
				"-server", "coap://" + s.Addr().String(),
				"-n", itoa(m.n), "-ramp", "200", "-duration", "6s",
				"-notify-rate", "120", "-send-rate", "60", "-version", "1.1",
				"-ack-timeout", "1s", "-retry-timer", "200ms", "-tick", "100ms",
				"-progress", "1s", "-json",
			}, m.flags...)
			code := run(context.Background(), args, &stdout, &stderr)
			var sum Summary
			if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
				t.Fatalf("summary is not JSON: %v\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			if code != 0 || sum.Registered != int64(m.n) || sum.Failed != 0 {
				t.Fatalf("exit %d, %d registered, %d failed, errors %v\nstderr:\n%s", code, sum.Registered, sum.Failed, sum.Errors, stderr.String())
			}
			if sum.RegistrationLatencyMs.P50 <= 0 || sum.RegistrationLatencyMs.P99 < sum.RegistrationLatencyMs.P50 || sum.RegistrationRate <= 0 {
				t.Fatalf("registration figures %+v, rate %v", sum.RegistrationLatencyMs, sum.RegistrationRate)
			}
			if sum.Sends == 0 || sum.Notifications == 0 {
				t.Fatalf("%d sends, %d notifications: telemetry did not flow", sum.Sends, sum.Notifications)
			}
			// What the devices counted, the server received.
			eventually(t, 5*time.Second, "the server to count the telemetry", func() bool {
				st := s.Stats()
				return st.Sends >= uint64(sum.Sends) && st.Notifications >= uint64(sum.Notifications)
			})
			// Every device de-registered at the end.
			eventually(t, 5*time.Second, "every device to de-register", func() bool { return s.Stats().Registrations == 0 })
			mu.Lock()
			n := len(addrs)
			mu.Unlock()
			if n != m.addrs {
				t.Fatalf("server saw %d source addresses, want %d", n, m.addrs)
			}
			if !strings.Contains(stderr.String(), "registered "+itoa(m.n)+"/"+itoa(m.n)) {
				t.Fatalf("no progress line with every device registered:\n%s", stderr.String())
			}
		})
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestFieldConditions runs devices with loss, delay and rebinding: they
// still register, and the rebinds are counted.
func TestFieldConditions(t *testing.T) {
	s := newServer(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{
		"-server", "coap://" + s.Addr().String(), "-n", "20", "-ramp", "0", "-duration", "3s",
		"-loss", "0.05", "-delay", "20ms", "-rebind-every", "1s", "-source-addrs", "127.0.0.1",
		"-ack-timeout", "300ms", "-retry-timer", "200ms", "-tick", "50ms", "-progress", "0", "-json",
	}, &stdout, &stderr)
	var sum Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if code != 0 || sum.Registered != 20 {
		t.Fatalf("exit %d, %d registered, errors %v", code, sum.Registered, sum.Errors)
	}
	if sum.Rebinds == 0 || sum.Updates == 0 {
		t.Fatalf("%d rebinds, %d updates: rebinding did not happen", sum.Rebinds, sum.Updates)
	}
}

// TestPSKCSV writes the PSKs a seed derives, imports them into an lwm2md
// store as the server's import would, and reads them back.
func TestPSKCSV(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "psk.csv")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-n", "25", "-psk-seed", "s3cret", "-write-psk-csv", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	key, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	cipher, err := registry.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(filepath.Join(dir, "db"), bolt.Options{Cipher: cipher})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := registry.Import(context.Background(), store, f, registry.CSV, registry.ImportOptions{})
	if err != nil || rep.Accepted != 25 || len(rep.Rejected) != 0 {
		t.Fatalf("import: %v, %+v", err, rep)
	}
	want := derivePSK("s3cret", "sim-000007")
	c, err := store.Credentials().ByPSKIdentity(context.Background(), want.Identity)
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "sim-000007" || !bytes.Equal(c.PSKKey, want.Key) {
		t.Fatalf("stored %s with key %x, want %x", c.Endpoint, c.PSKKey, want.Key)
	}
	// The simulator reads the same file back.
	sim, err := New(Options{N: 0, PSKCSV: file})
	if err != nil {
		t.Fatal(err)
	}
	if len(sim.creds) != 25 || sim.endpoint(7) != "sim-000007" || !bytes.Equal(sim.creds[7].Key, want.Key) {
		t.Fatalf("read back %d creds, device 7 %s", len(sim.creds), sim.endpoint(7))
	}
}

// TestReadCredsErrors checks that a broken CSV is refused with the line
// and what is wrong, never the key.
func TestReadCredsErrors(t *testing.T) {
	tests := []struct{ name, csv, want string }{
		{"empty", "", "empty file"},
		{"no key column", "endpoint,psk_identity\na,b\n", "no psk_key column"},
		{"empty endpoint", "endpoint,psk_identity,psk_key\n,id,00ff\n", "line 2: empty endpoint"},
		{"bad hex", "endpoint,psk_identity,psk_key\nep1,id,zzsecret\n", "line 2: ep1: psk_key is not hex"},
		{"duplicate", "endpoint,psk_identity,psk_key\nep1,a,00\nep1,b,01\n", "line 3: endpoint ep1 given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readCreds(strings.NewReader(tc.csv))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
}

// TestFlags checks that bad flags exit 2 with a message naming the flag.
func TestFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no devices", []string{"-server", "coap://127.0.0.1:1", "-n", "0"}, "-n 0"},
		{"bad scheme", []string{"-server", "http://127.0.0.1:1"}, "-server"},
		{"coaps without psk", []string{"-server", "coaps://127.0.0.1:1"}, "-psk-seed or -psk-csv"},
		{"send on 1.0", []string{"-server", "coap://127.0.0.1:1", "-version", "1.0", "-send-rate", "1"}, "-send-rate"},
		{"loss above 1", []string{"-server", "coap://127.0.0.1:1", "-loss", "1.5"}, "-loss"},
		{"queue share", []string{"-server", "coap://127.0.0.1:1", "-queue-share", "-0.1"}, "-queue-share"},
		{"bad range", []string{"-server", "coap://127.0.0.1:1", "-source-addrs", "127.0.0.5-127.0.0.1"}, "-source-addrs"},
		{"shared with addrs", []string{"-server", "coap://127.0.0.1:1", "-shared", "1", "-source-addrs", "127.0.0.1"}, "-source-addrs"},
		{"shared base not loopback", []string{"-server", "coap://127.0.0.1:1", "-shared", "1", "-shared-base", "10.0.0.1"}, "-shared-base"},
		{"csv without seed", []string{"-write-psk-csv", "/dev/null"}, "-write-psk-csv needs -psk-seed"},
		{"no server", []string{"-n", "1"}, "-server is empty"},
		{"bootstrap and server", []string{"-bootstrap", "coap://127.0.0.1:1", "-server", "coap://127.0.0.1:2"}, "give one"},
		{"bootstrap scheme", []string{"-bootstrap", "http://127.0.0.1:1"}, "-bootstrap"},
		{"coaps bootstrap without factory", []string{"-bootstrap", "coaps://127.0.0.1:1"}, "-factory-psk or -factory-cert"},
		{"factory psk without colon", []string{"-bootstrap", "coaps://127.0.0.1:1", "-factory-psk", "batch"}, "-factory-psk: want identity:hexkey"},
		{"factory psk not hex", []string{"-bootstrap", "coaps://127.0.0.1:1", "-factory-psk", "batch:zz"}, "not hex"},
		{"factory psk without bootstrap", []string{"-server", "coap://127.0.0.1:1", "-factory-psk", "batch:00"}, "need -bootstrap"},
		{"factory cert without key", []string{"-bootstrap", "coaps://127.0.0.1:1", "-factory-cert", "/dev/null"}, "go together"},
		{"factory cert unreadable", []string{"-bootstrap", "coaps://127.0.0.1:1", "-factory-cert", "/nonexistent", "-factory-key", "/nonexistent"}, "-factory-cert/-factory-key"},
		{"bootstrap with shared", []string{"-bootstrap", "coap://127.0.0.1:1", "-shared", "2"}, "-shared does not apply"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q, want a message with %q", code, stderr.String(), tc.want)
			}
		})
	}
}

// TestSharedAddr checks the shared-mode address plan: consecutive, with
// no .0 or .255.
func TestSharedAddr(t *testing.T) {
	base := netip.MustParseAddr("127.1.0.1")
	tests := []struct {
		i    int
		want string
	}{{0, "127.1.0.1"}, {1, "127.1.0.2"}, {253, "127.1.0.254"}, {254, "127.1.1.1"}, {100_000, "127.2.137.179"}}
	for _, tc := range tests {
		if got := sharedAddr(base, tc.i).String(); got != tc.want {
			t.Errorf("sharedAddr(%d) = %s, want %s", tc.i, got, tc.want)
		}
	}
}

// TestQueueShare puts half the devices in queue mode with a short awake
// window: they register, announce Q, fall asleep and wake to Send.
func TestQueueShare(t *testing.T) {
	s := newServer(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{
		"-server", "coap://" + s.Addr().String(), "-n", "20", "-ramp", "0", "-duration", "3s",
		"-queue-share", "0.5", "-awake-window", "300ms", "-send-rate", "60", "-source-addrs", "127.0.0.1",
		"-ack-timeout", "500ms", "-tick", "50ms", "-progress", "0", "-json",
	}, &stdout, &stderr)
	var sum Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if code != 0 || sum.Registered != 20 {
		t.Fatalf("exit %d, %d registered, errors %v", code, sum.Registered, sum.Errors)
	}
	if sum.QueueDevices == 0 || sum.QueueDevices == 20 || sum.Sleeps == 0 || sum.Sends == 0 {
		t.Fatalf("%d queue-mode devices, %d sleeps, %d sends", sum.QueueDevices, sum.Sleeps, sum.Sends)
	}
}

// TestMetrics scrapes the Prometheus endpoint while a run goes on.
func TestMetrics(t *testing.T) {
	s := newServer(t)
	sim, err := New(Options{Server: "coap://" + s.Addr().String(), N: 5, Duration: 2 * time.Second,
		SourceAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, AckTimeout: time.Second, Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := serveMetrics("127.0.0.1:0", sim, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	done := make(chan *Summary)
	go func() {
		sum, _ := sim.Run(context.Background())
		done <- sum
	}()
	eventually(t, 10*time.Second, "metrics with 5 devices registered", func() bool {
		resp, err := http.Get("http://" + addr.String() + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "lwm2m_sim_devices_registered_total 5") &&
			strings.Contains(string(body), "lwm2m_sim_devices_target 5")
	})
	if sum := <-done; sum.Registered != 5 {
		t.Fatalf("%d registered", sum.Registered)
	}
}

// TestFirmwareFlag checks that -firmware devices host Object 5, which
// the server can drive: a push of a package ends in Downloaded.
func TestFirmwareFlag(t *testing.T) {
	s := newServer(t)
	sim, err := New(Options{Server: "coap://" + s.Addr().String(), N: 3, Duration: 4 * time.Second, Firmware: true,
		SourceAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, AckTimeout: time.Second, Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *Summary)
	go func() {
		sum, _ := sim.Run(context.Background())
		done <- sum
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ep := "sim-000001"
	eventually(t, 3*time.Second, ep+" to register", func() bool {
		_, err := s.Registration(ctx, ep)
		return err == nil
	})
	pkg := bytes.Repeat([]byte("firmware"), 300) // 2,400 bytes: Block1
	if err := s.Write(ctx, ep, objects.NewPath(5, 0, 0), &objects.Resource{ID: 0, Value: objects.OpaqueValue(pkg)}, true, server.WithFormat(objects.FormatOpaque)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "state Downloaded", func() bool {
		n, err := s.Read(ctx, ep, objects.NewPath(5, 0, 3))
		r, ok := n.(*objects.Resource)
		return err == nil && ok && r.Value.Int() == 2
	})
	if sum := <-done; sum.Registered != 3 || sum.RequestsAnswered < 2 {
		t.Fatalf("%d registered, %d requests answered", sum.Registered, sum.RequestsAnswered)
	}
}
