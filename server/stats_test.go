package server

import (
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/client"
)

// TestStatsHandshakes: every DTLS handshake is counted once, as a session
// or as a failure with its reason.
func TestStatsHandshakes(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-1", "hs-1", []byte("hs-key-1-16bytes"))
	creds.addPSK("id-2", "hs-2", []byte("hs-key-2-16bytes"))
	s := newDTLSServer(t, creds, func(c *Config) {
		c.MaxAssociations = 1
		c.HandshakeTimeout = time.Second
	})
	fail := func(name string, d client.DTLSConfig, want func(HandshakeFailures) uint64) {
		t.Run(name, func(t *testing.T) {
			d.HandshakeTimeout = 2 * time.Second
			c, err := newDTLSEngine(t, s, "hs-2", d, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(ctx(t)); err == nil {
				t.Fatal("handshake succeeded")
			}
			eventually(t, 5*time.Second, name+" counted", func() bool { return want(s.Stats().HandshakeFailures) > 0 })
		})
	}
	fail("unknown identity", client.DTLSConfig{PSKIdentity: "id-nobody", PSKKey: []byte("hs-key-2-16bytes")},
		func(f HandshakeFailures) uint64 { return f.Credentials })
	startDTLSEngine(t, s, "hs-1", client.DTLSConfig{PSKIdentity: "id-1", PSKKey: []byte("hs-key-1-16bytes")}, nil)
	if st := s.Stats(); st.DTLSHandshakes != 1 {
		t.Fatalf("after one session: %+v", st)
	}
	// One association is held: the cap refuses the next peer before its
	// handshake starts.
	fail("cap", client.DTLSConfig{PSKIdentity: "id-2", PSKKey: []byte("hs-key-2-16bytes")},
		func(f HandshakeFailures) uint64 { return f.Cap })
	// Nothing else was counted: no timeout, no other failure, no session.
	if st := s.Stats(); st.DTLSHandshakes != 1 || st.HandshakeFailures.Timeout != 0 || st.HandshakeFailures.Other != 0 || st.HandshakeFailures.Refused != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStatsWrongKeyTimesOut: a wrong PSK key fails the handshake by
// timeout, as pion drops what it cannot authenticate.
func TestStatsWrongKeyTimesOut(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-1", "wk-1", []byte("wk-key-1-16bytes"))
	s := newDTLSServer(t, creds, func(c *Config) { c.HandshakeTimeout = time.Second })
	c, err := newDTLSEngine(t, s, "wk-1", client.DTLSConfig{PSKIdentity: "id-1", PSKKey: []byte("not-the-key-16by"), HandshakeTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx(t)); err == nil {
		t.Fatal("handshake succeeded")
	}
	eventually(t, 5*time.Second, "failure counted", func() bool {
		f := s.Stats().HandshakeFailures
		return f.Timeout+f.Other > 0
	})
	if st := s.Stats(); st.DTLSHandshakes != 0 || st.HandshakeFailures.Credentials != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("wrong key: %+v", s.Stats().HandshakeFailures)
}

// TestStatsRetransmissions: a confirmable Register sent twice with the
// same message ID is one retransmission; go-coap answers both.
func TestStatsRetransmissions(t *testing.T) {
	s := newServer(t, nil)
	p := newRawPeer(t, s)
	m := message.Message{Code: codes.POST, Type: message.Confirmable, MessageID: p.nextMID(), Token: message.Token{9, 9}}
	m.Options = pathOptions("/rd", []string{"ep=rtx-1", "lwm2m=1.1"}, int(message.AppLinkFormat))
	m.Payload = []byte("</3/0>")
	for i := range 2 {
		p.send(m)
		r, ok := p.recv(3 * time.Second)
		if !ok || r.MessageID != m.MessageID || r.Code != codes.Created {
			t.Fatalf("answer %d: %v %v", i, ok, r)
		}
	}
	// A new confirmable message is not a retransmission.
	r := p.request(codes.POST, "/rd", []string{"ep=rtx-2", "lwm2m=1.1"}, int(message.AppLinkFormat), []byte("</3/0>"))
	if r.Code != codes.Created {
		t.Fatalf("second Register: %v", r.Code)
	}
	if st := s.Stats(); st.Retransmissions != 1 || st.MessagesReceived != 3 {
		t.Fatalf("retransmissions %d, messages %d", st.Retransmissions, st.MessagesReceived)
	}
}
