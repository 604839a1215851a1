package client

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// Close while Start is still bootstrapping (the bootstrap server never
// answers) ends Start with ErrClosed and returns itself at once.
func TestCloseDuringBootstrap(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c, err := New(Config{Endpoint: "close-during-bs", BootstrapURI: "coap://" + silent.LocalAddr().String(), LocalAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- c.Start(ctx) }()
	// Wait until the Bootstrap-Request reached the silent server.
	buf := make([]byte, 2048)
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := silent.ReadFrom(buf); err != nil {
		t.Fatalf("no Bootstrap-Request: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked while Start was bootstrapping")
	}
	select {
	case err := <-started:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Start: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not end after Close")
	}
}
