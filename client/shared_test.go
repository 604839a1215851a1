//go:build linux

package client

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/server"
)

// TestSharedUDP runs clients over two shared sockets against the lwm2md
// server: each registers from its own loopback address, answers a Read,
// moves to the other socket on Rebind, and de-registers on Close.
func TestSharedUDP(t *testing.T) {
	sh, err := NewSharedUDP(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sh.Close() })
	s := newServer(t, nil)
	sub := s.Subscribe(1024)
	t.Cleanup(sub.Close)
	const n = 40
	clients := make([]*Client, n)
	for i := range clients {
		cfg := testConfig(t, s.Addr().String(), fmt.Sprintf("shared-%02d", i), "1.1")
		cfg.Shared = sh
		cfg.LocalAddr = fmt.Sprintf("127.1.0.%d:0", i+1)
		clients[i] = startClient(t, cfg)
	}
	seen := map[string]bool{}
	for _, c := range clients {
		reg, err := s.Registration(ctx(t), c.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := reg.Addr.String(), c.LocalAddr().String(); got != want {
			t.Fatalf("%s: server sees %s, client sends from %s", c.Endpoint(), got, want)
		}
		seen[reg.Addr.String()] = true
		if _, err := s.Read(ctx(t), c.Endpoint(), path("/3/0/2")); err != nil {
			t.Fatalf("read %s: %v", c.Endpoint(), err)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct peer addresses, want %d", len(seen), n)
	}

	c := clients[0]
	before := c.LocalAddr().(*net.UDPAddr)
	if err := c.Rebind(ctx(t)); err != nil {
		t.Fatal(err)
	}
	after := c.LocalAddr().(*net.UDPAddr)
	if !after.IP.Equal(before.IP) || after.Port == before.Port {
		t.Fatalf("rebind moved %s to %s, want the same address on the other port", before, after)
	}
	eventually(t, 5*time.Second, "the server to see the new port", func() bool {
		reg, err := s.Registration(ctx(t), c.Endpoint())
		return err == nil && reg.Addr.String() == after.String()
	})
	if _, err := s.Read(ctx(t), c.Endpoint(), path("/3/0/2")); err != nil {
		t.Fatalf("read after rebind: %v", err)
	}

	_ = clients[1].Close()
	waitEvent(t, sub, 5*time.Second, "de-registration", func(e server.Event) bool {
		return e.Kind == server.EventDeregistered && e.Endpoint == clients[1].Endpoint()
	})
}

// TestSharedUDPRefuses checks the settings shared sockets cannot serve.
func TestSharedUDPRefuses(t *testing.T) {
	sh, err := NewSharedUDP(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sh.Close() })
	tests := []struct{ name, server, local string }{
		{"no local address", "coap://127.0.0.1:9", ""},
		{"local address not loopback", "coap://127.0.0.1:9", "10.0.0.1:0"},
		{"server not loopback", "coap://192.0.2.1:5683", "127.1.0.1:0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{Endpoint: "refused", ServerURI: tc.server, LocalAddr: tc.local, Shared: sh, Models: testModels})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Start(ctx(t)); err == nil {
				t.Fatal("Start succeeded")
			}
		})
	}
	t.Run("address in use", func(t *testing.T) {
		s := newServer(t, nil)
		a := startClient(t, Config{Endpoint: "a", ServerURI: "coap://" + s.Addr().String(), LocalAddr: "127.1.0.9:0", Shared: sh, Models: testModels})
		_ = a
		b, err := New(Config{Endpoint: "b", ServerURI: "coap://" + s.Addr().String(), LocalAddr: "127.1.0.9:0", Shared: sh, Models: testModels})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Start(ctx(t)); err == nil {
			t.Fatal("second client on one address started")
		}
	})
}
