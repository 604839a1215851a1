package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"
)

// The registry issue's durability test: lwm2md is killed with SIGKILL in
// the middle of a registration storm; after a restart on the same store
// every registration it acknowledged (2.01 Created) is still served: the
// device's Update to its Location is answered 2.04 without a new
// Register.
func TestBinaryCrashKeepsAcknowledgedRegistrations(t *testing.T) {
	crashKeepsRegistrations(t, nil, "--data-dir", filepath.Join(t.TempDir(), "data"))
}

func TestBinaryCrashKeepsAcknowledgedRegistrationsPostgres(t *testing.T) {
	_, _, env := postgresEnv(t)
	crashKeepsRegistrations(t, []string{env}, "--data-dir", t.TempDir())
}

func crashKeepsRegistrations(t *testing.T, env []string, args ...string) {
	args = append(args, "--coap-addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "info")
	p := startBinary(t, env, args...)
	addr := listenAddr(t, p.expect("lwm2m server listening"))

	// Eight devices register in turn, each Register from a socket of its
	// own, until the process dies under them.
	var mu sync.Mutex
	acked := map[string]string{} // endpoint -> location
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				ep := fmt.Sprintf("crash-%d-%d", w, i)
				loc, err := register(ctx, addr, ep)
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked[ep] = loc
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL, mid-storm
		t.Fatal(err)
	}
	p.cmd.Wait()
	cancel()
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d registrations acknowledged before the kill", len(acked))
	}

	p = startBinary(t, env, args...)
	p.expect("registrations restored")
	addr = listenAddr(t, p.expect("lwm2m server listening"))
	lost := 0
	for ep, loc := range acked {
		if code := update(t, addr, loc); code != codes.Changed {
			lost++
			t.Errorf("%s: Update of acknowledged %s after the crash answered %v", ep, loc, code)
		}
	}
	t.Logf("%d registrations acknowledged before SIGKILL, %d lost", len(acked), lost)
	p.stop()
}

// register sends one Register for ep and returns its location; any
// answer but 2.01 or no answer is an error.
func register(ctx context.Context, addr, ep string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cc, err := udp.Dial(addr)
	if err != nil {
		return "", err
	}
	defer cc.Close()
	resp, err := cc.Post(ctx, "/rd", message.AppLinkFormat, strings.NewReader("</1/0>,</3/0>"),
		message.Option{ID: message.URIQuery, Value: []byte("ep=" + ep)},
		message.Option{ID: message.URIQuery, Value: []byte("lt=3600")},
		message.Option{ID: message.URIQuery, Value: []byte("lwm2m=1.1")})
	if err != nil {
		return "", err
	}
	if resp.Code() != codes.Created {
		return "", fmt.Errorf("register %s: %v", ep, resp.Code())
	}
	return resp.Options().LocationPath()
}
