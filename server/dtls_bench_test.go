package server

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
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
		m := startIdleMeasure()
		stop := startDeviceProcess(b, s, n, "TestDTLSBenchDevices",
			"LWM2MD_DTLS_DEVICES="+strconv.Itoa(n), "LWM2MD_DTLS_ADDR="+s.DTLSAddr().String())
		m.report(b, n, "session")
		b.ReportMetric(float64(s.Stats().Associations), "sessions")
		stop()
		_ = s.Close()
	}
}

// TestDTLSBenchDevices is the device process of BenchmarkDTLSIdleSession;
// it skips unless the benchmark started it.
func TestDTLSBenchDevices(t *testing.T) {
	addr := os.Getenv("LWM2MD_DTLS_ADDR")
	n, _ := strconv.Atoi(os.Getenv("LWM2MD_DTLS_DEVICES"))
	if addr == "" || n == 0 {
		t.Skip("the device process of BenchmarkDTLSIdleSession (LWM2MD_DTLS_ADDR, LWM2MD_DTLS_DEVICES)")
	}
	holdDevices(t, n, 16, func(i int) (io.Closer, error) {
		cc, err := benchDevice(addr, int64(i))
		if err != nil {
			return nil, err // not a nil *Conn in an io.Closer
		}
		return cc, nil
	})
}
