package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// binaries builds lwm2md and lwm2m-sim from the module this harness
// belongs to into dir.
func binaries(ctx context.Context, dir string, log io.Writer) (server, sim string, err error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("bench: go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	server, sim = filepath.Join(dir, "lwm2md"), filepath.Join(dir, "lwm2m-sim")
	for bin, pkg := range map[string]string{server: "./cmd/lwm2md", sim: "./cmd/lwm2m-sim"} {
		fmt.Fprintf(log, "bench: building %s\n", pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("bench: go build %s: %w\n%s", pkg, err, b)
		}
	}
	return server, sim, nil
}

// freePort returns a port on 127.0.0.1 that was free a moment ago for
// network ("udp" or "tcp").
func freePort(network string) (string, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.LocalAddr().String(), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// serverOpts says which roles an lwm2md process runs.
type serverOpts struct {
	dtls bool // DTLS listener and a secrets key
	nats bool // embedded NATS (the bridge)
}

// lwm2md is a running lwm2md process.
type lwm2md struct {
	cmd                       *exec.Cmd
	coap, coaps, http, nats   string
	dataDir, secretsKey, logf string
	bin                       string
	exited                    chan struct{}
}

// prepare makes the data directory, picks ports and the secrets key; start
// runs the process. Between them, import can store credentials.
func prepare(bin, dataRoot string, o serverOpts) (*lwm2md, error) {
	dir, err := os.MkdirTemp(dataRoot, "lwm2md-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: data dir: %w", err)
	}
	s := &lwm2md{bin: bin, dataDir: dir, logf: filepath.Join(dir, "lwm2md.log"), exited: make(chan struct{})}
	if s.coap, err = freePort("udp"); err != nil {
		return nil, err
	}
	if s.http, err = freePort("tcp"); err != nil {
		return nil, err
	}
	if o.dtls {
		if s.coaps, err = freePort("udp"); err != nil {
			return nil, err
		}
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		s.secretsKey = hex.EncodeToString(k)
	}
	if o.nats {
		if s.nats, err = freePort("tcp"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *lwm2md) settings() []string {
	a := []string{"--data-dir", s.dataDir, "--coap-addr", s.coap, "--coaps-addr=" + s.coaps,
		"--bs-coap-addr=", "--bs-coaps-addr=", "--http-addr", s.http, "--nats-addr=" + s.nats,
		"--log-level", "warn",
		// The API's per-caller limit (20/s) would be the figure, not lwm2md.
		"--api-rate", "0"}
	if s.secretsKey != "" {
		a = append(a, "--secrets-key", s.secretsKey)
	}
	return a
}

// importFile runs lwm2md import before the server starts.
func (s *lwm2md) importFile(ctx context.Context, file string) error {
	args := append([]string{"import"}, s.settings()...)
	b, err := exec.CommandContext(ctx, s.bin, append(args, file)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: lwm2md import %s: %w\n%s", file, err, b)
	}
	return nil
}

// start runs lwm2md and waits for /readyz.
func (s *lwm2md) start(ctx context.Context) error {
	logf, err := os.Create(s.logf)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	s.cmd = exec.Command(s.bin, append([]string{"serve"}, s.settings()...)...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("bench: start lwm2md: %w", err)
	}
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("bench: lwm2md exited at start: %s", s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get("http://" + s.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("bench: lwm2md not ready after 60 s: %s", s.logTail())
}

func (s *lwm2md) logTail() string {
	b, _ := os.ReadFile(s.logf)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stop ends the process (SIGTERM, then SIGKILL after 20 s) and removes
// its data.
func (s *lwm2md) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	_ = os.RemoveAll(s.dataDir)
}

// rss is the process's resident set in bytes (VmRSS of /proc/<pid>/status).
func (s *lwm2md) rss() (uint64, error) {
	return vmRSS(s.cmd.Process.Pid)
}

func vmRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("bench: no VmRSS in /proc/<pid>/status")
}

// registered is the number of registrations whose endpoint starts with
// prefix, from the REST API's device list.
func (s *lwm2md) registered(ctx context.Context, prefix string) (int, error) {
	var page struct {
		Total int `json:"total"`
	}
	err := s.getJSON(ctx, "/api/v1/clients?limit=1&prefix="+url.QueryEscape(prefix), &page)
	return page.Total, err
}

func (s *lwm2md) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.http+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("bench: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("bench: GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitRegistered polls until n devices with prefix are registered, the
// simulator exits or the deadline passes.
func (s *lwm2md) waitRegistered(ctx context.Context, sim *simProc, prefix string, n int, limit time.Duration, log io.Writer) (int, error) {
	deadline := time.Now().Add(limit)
	last := time.Now()
	got := 0
	for time.Now().Before(deadline) {
		var err error
		if got, err = s.registered(ctx, prefix); err != nil {
			return got, err
		}
		if got >= n {
			return got, nil
		}
		if time.Since(last) > 5*time.Second {
			fmt.Fprintf(log, "bench:   %d/%d registered\n", got, n)
			last = time.Now()
		}
		select {
		case <-sim.exited:
			return got, fmt.Errorf("bench: lwm2m-sim exited with %d/%d registered: %s", got, n, sim.stderrTail())
		case <-s.exited:
			return got, fmt.Errorf("bench: lwm2md exited: %s", s.logTail())
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return got, nil
}

// simProc is a running lwm2m-sim -json.
type simProc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	tail   []string
	exited chan struct{}
}

// startSim runs the simulator; its status lines go to log.
func startSim(bin string, args []string, log io.Writer) (*simProc, error) {
	p := &simProc{exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append(args, "-json", "-progress", "5s")...)
	// GOGC=50: the simulator's heap is not what is measured; keep its RSS
	// down so that 100,000 devices fit beside the server.
	p.cmd.Env = append(os.Environ(), "GOGC=50")
	p.cmd.Stdout = &p.stdout
	errp, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start lwm2m-sim: %w", err)
	}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(errp)
		for sc.Scan() {
			fmt.Fprintf(log, "bench:   sim %s\n", sc.Text())
			p.mu.Lock()
			p.tail = append(p.tail, sc.Text())
			if len(p.tail) > 20 {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
		}
		close(done)
	}()
	go func() { <-done; _ = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

func (p *simProc) stderrTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// simSummary is the part of lwm2m-sim's -json summary the harness reads.
type simSummary struct {
	Devices             int     `json:"devices"`
	Registered          int64   `json:"registered"`
	Failed              int64   `json:"failed"`
	RegistrationRate    float64 `json:"registration_rate"`
	RegistrationLatency struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"registration_latency_ms"`
	RegisterAttemptsFailed int64 `json:"register_attempts_failed"`
	Notifications          int64 `json:"notifications"`
}

// finish interrupts the simulator (its devices de-register) and reads its
// summary.
func (p *simProc) finish(limit time.Duration) (simSummary, error) {
	var sum simSummary
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return sum, fmt.Errorf("bench: lwm2m-sim did not stop within %s", limit)
	}
	if err := json.Unmarshal(p.stdout.Bytes(), &sum); err != nil {
		return sum, fmt.Errorf("bench: lwm2m-sim summary: %w: %s", err, p.stderrTail())
	}
	return sum, nil
}

// kill ends the simulator at once (no de-registration).
func (p *simProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}
