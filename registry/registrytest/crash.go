package registrytest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
)

// The crash test: a child process writes through a store with several
// goroutines and prints one line for each write the store acknowledged;
// the parent kills it (SIGKILL) mid-storm, opens the store again and
// checks every acknowledged write with CrashCheck.

// CrashWriter writes registrations, credentials, queued requests, jobs
// and values through s from 8 goroutines until the process is killed,
// printing "kind endpoint detail" to w after each acknowledged write.
func CrashWriter(s registry.Store, w io.Writer) {
	var mu sync.Mutex
	ack := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(w, format+"\n", args...)
		mu.Unlock()
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				ep := fmt.Sprintf("crash-%d-%06d", g, i)
				if err := s.Registrations().Put(ctx, fullRegistration(ep, "id-"+ep)); err == nil {
					ack("reg %s id-%s", ep, ep)
				}
				if i%4 == 0 {
					c := pskCredential(ep, "psk-"+ep, []byte("0123456789abcdef"))
					if err := s.Credentials().Put(ctx, c); err == nil {
						ack("cred %s psk-%s", ep, ep)
					}
				}
				if i%4 == 1 {
					if id, err := s.Queue().Enqueue(ctx, request(ep, "write", "/1/0/1")); err == nil {
						ack("req %s %d", ep, id)
					}
				}
				if i%16 == 2 {
					if err := s.Jobs().Create(ctx, &registry.Job{ID: "job-" + ep}, []string{ep, ep + "-b"}); err == nil {
						ack("job %s job-%s", ep, ep)
					}
				}
				if i%4 == 3 {
					v := registry.ResourceValue{Path: objects.MustParsePath("/3303/0/5700"), Value: objects.IntegerValue(int64(i)), ServerTime: base}
					if err := s.Values().Put(ctx, ep, []registry.ResourceValue{v}); err == nil {
						ack("val %s %d", ep, i)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// CrashCheck checks that every write CrashWriter acknowledged in out is in
// s, and returns how many it checked.
func CrashCheck(t *testing.T, s registry.Store, out io.Reader) int {
	t.Helper()
	sc := bufio.NewScanner(out)
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue // the last line may be cut
		}
		kind, ep, detail := f[0], f[1], f[2]
		var err error
		switch kind {
		case "reg":
			var r *registry.Registration
			if r, err = s.Registrations().GetByID(ctx, detail); err == nil && r.Endpoint != ep {
				err = fmt.Errorf("endpoint %q", r.Endpoint)
			}
		case "cred":
			var c *registry.Credential
			if c, err = s.Credentials().ByPSKIdentity(ctx, detail); err == nil && (c.Endpoint != ep || string(c.PSKKey) != "0123456789abcdef") {
				err = fmt.Errorf("credentials %q", c.Endpoint)
			}
		case "req":
			id, _ := strconv.ParseUint(detail, 10, 64)
			var r *registry.Request
			if r, err = s.Queue().Get(ctx, id); err == nil && r.Endpoint != ep {
				err = fmt.Errorf("request for %q", r.Endpoint)
			}
		case "job":
			var rs []*registry.JobResult
			if rs, err = s.Jobs().Results(ctx, detail, "", 0); err == nil && len(rs) != 2 {
				err = fmt.Errorf("%d results", len(rs))
			}
		case "val":
			var vs []registry.ResourceValue
			if vs, err = s.Values().Get(ctx, ep, objects.RootPath); err == nil && (len(vs) != 1 || strconv.FormatInt(vs[0].Value.Int(), 10) != detail) {
				err = fmt.Errorf("values %v", vs)
			}
		default:
			continue
		}
		if err != nil {
			t.Fatalf("acknowledged %q is lost: %v", sc.Text(), err)
		}
		n++
	}
	return n
}

// CrashKill runs the test function child of this test binary in a new
// process with env added, collects the writes it acknowledges until 3000
// have come or 10 s have passed, kills it with SIGKILL, and returns the
// acknowledged lines for CrashCheck.
func CrashKill(t *testing.T, child string, env ...string) *bytes.Buffer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acked bytes.Buffer
	lines := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			acked.Write(sc.Bytes())
			acked.WriteByte('\n')
			lines++
			mu.Unlock()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := lines
		mu.Unlock()
		if n >= 3000 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	_ = cmd.Wait()
	return &acked
}
