package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	coapdtls "github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/options"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// benchCredentials bind identity "bench-N" to endpoint "bench-N" with a
// key derived from the identity, so that any number of devices exist
// without a table.
type benchCredentials struct{}

func benchKey(identity string) []byte {
	sum := sha256.Sum256([]byte("lwm2md bench " + identity))
	return sum[:16]
}

func (benchCredentials) PSK(_ context.Context, identity []byte) (string, []byte, error) {
	if !strings.HasPrefix(string(identity), "bench-") {
		return "", nil, fmt.Errorf("%q: %w", identity, ErrUnknownCredentials)
	}
	return string(identity), benchKey(string(identity)), nil
}

func (benchCredentials) Certificate(context.Context, *x509.Certificate) (string, error) {
	return "", ErrUnknownCredentials
}

func (benchCredentials) Secured(_ context.Context, ep string) (bool, error) {
	return strings.HasPrefix(ep, "bench-"), nil
}

// quietBench turns the server's log off: the test log buffer would grow
// with every session and count as the server's memory.
func quietBench(c *Config) { c.Logger = slog.New(slog.DiscardHandler) }

// benchDevice handshakes as bench-N and registers.
func benchDevice(addr string, n int64) (*udpClient.Conn, error) {
	id := "bench-" + strconv.FormatInt(n, 10)
	cc, err := coapdtls.Dial(addr, &dtls.Config{
		PSK:                   func([]byte) ([]byte, error) { return benchKey(id), nil },
		PSKIdentityHint:       []byte(id),
		CipherSuites:          []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8},
		ConnectionIDGenerator: dtls.OnlySendCIDGenerator(),
	}, options.WithErrors(func(error) {}))
	if err != nil {
		return nil, err
	}
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, _, err := rawRegisterCtx(c, cc, id)
	if err != nil || code != codes.Created {
		_ = cc.Close()
		return nil, fmt.Errorf("register %s: %v %v", id, code, err)
	}
	return cc, nil
}

// BenchmarkDTLSRegister: one op is a new device's PSK handshake and
// Register, from parallel clients (-cpu sets how many per core).
func BenchmarkDTLSRegister(b *testing.B) {
	s := newDTLSServer(b, benchCredentials{}, quietBench)
	addr := s.DTLSAddr().String()
	var next atomic.Int64
	b.ReportAllocs()
	// LWM2MD_BENCH_DTLS_PARALLEL: handshakes in flight per GOMAXPROCS
	// (default 8).
	par := 8
	if v, err := strconv.Atoi(os.Getenv("LWM2MD_BENCH_DTLS_PARALLEL")); err == nil && v > 0 {
		par = v
	}
	b.SetParallelism(par)
	// A handshake that stalls until benchDevice's 20 s deadline is
	// counted, not fatal: on a loaded machine a few do (see
	// docs/benchmarks.md), and the rate is of the registrations made.
	var failed atomic.Int64
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			cc, err := benchDevice(addr, next.Add(1))
			if err != nil {
				if failed.Add(1) == 1 {
					b.Log(err)
				}
				continue
			}
			_ = cc.Close()
		}
	})
	ok := int64(b.N) - failed.Load()
	if ok <= 0 {
		b.Fatal("no registration succeeded")
	}
	b.ReportMetric(float64(ok)/time.Since(start).Seconds(), "registrations/s")
	b.ReportMetric(float64(failed.Load()), "failed")
}

// BenchmarkDTLSIdleSession measures the server's memory per registered,
// idle DTLS session: the devices run in a child process (this test binary
// again), so that the heap and stacks measured here are the server's only.
// LWM2MD_BENCH_DTLS_SESSIONS sets how many (default 1000).
func BenchmarkDTLSIdleSession(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("LWM2MD_BENCH_DTLS_SESSIONS")); err == nil && v > 0 {
		n = v
	}
	for i := 0; i < b.N; i++ {
		s := newDTLSServer(b, benchCredentials{}, quietBench)
		before, gBefore := memInUse(), runtime.NumGoroutine()
		cpu0, t0 := cpuTime(), time.Now()
		cmd := exec.Command(os.Args[0], "-test.run=^TestDTLSBenchDevices$", "-test.v")
		cmd.Env = append(os.Environ(), "LWM2MD_DTLS_DEVICES="+strconv.Itoa(n), "LWM2MD_DTLS_ADDR="+s.DTLSAddr().String())
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		ready := waitReady(stdout)
		if !ready {
			b.Fatal("the device process did not get ready")
		}
		deadline := time.Now().Add(time.Minute)
		for s.Stats().Registrations < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		reportServerCPU(b, n, cpu0, t0)
		after := memInUse()
		b.ReportMetric(float64(after-before)/float64(n), "B/session")
		b.ReportMetric(float64(runtime.NumGoroutine()-gBefore)/float64(n), "goroutines/session")
		b.ReportMetric(float64(s.Stats().Associations), "sessions")
		_ = stdin.Close()
		_ = cmd.Wait()
		_ = s.Close()
	}
}

func waitReady(r io.Reader) bool {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if sc.Text() == "devices ready" {
			go func() { _, _ = io.Copy(io.Discard, r) }()
			return true
		}
	}
	return false
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportServerCPU reports the server's CPU time per registration and the
// rate of registrations since t0, the devices running in a child process:
// the CPU figure is the server's alone (the benchmark's own polling is
// negligible), so 1 s divided by it is what one core of the server takes.
func reportServerCPU(b *testing.B, n int, cpu0 time.Duration, t0 time.Time) {
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "server-CPU-µs/registration")
	b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "registrations/s")
}

// memInUse is the live heap plus goroutine stacks, after collection.
func memInUse() int64 {
	var m runtime.MemStats
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc) + int64(m.StackInuse)
}

// TestDTLSBenchDevices is the device process of BenchmarkDTLSIdleSession;
// it skips unless the benchmark started it.
func TestDTLSBenchDevices(t *testing.T) {
	addr := os.Getenv("LWM2MD_DTLS_ADDR")
	n, _ := strconv.Atoi(os.Getenv("LWM2MD_DTLS_DEVICES"))
	if addr == "" || n == 0 {
		t.Skip("the device process of BenchmarkDTLSIdleSession (LWM2MD_DTLS_ADDR, LWM2MD_DTLS_DEVICES)")
	}
	conns := make([]*udpClient.Conn, n)
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, n)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				cc, err := benchDevice(addr, i)
				if err != nil {
					errs <- err
					return
				}
				conns[i] = cc
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fmt.Println("devices ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // hold the sessions until the benchmark closes stdin
	for _, cc := range conns {
		_ = cc.Close()
	}
}
