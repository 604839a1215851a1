package server

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// capture is an entry of shared/interop-vectors/index.json with the
// complete CoAP datagrams, which internal/shared does not expose.
type capture struct {
	ID            string   `json:"id"`
	Peer          string   `json:"peer"`
	Name          string   `json:"name"`
	Operation     string   `json:"operation"`
	Path          string   `json:"path"`
	Accept        *int     `json:"request_accept"`
	ResponseCode  string   `json:"response_code"`
	PayloadFormat *int     `json:"payload_content_format"`
	PayloadHex    string   `json:"payload_hex"`
	CoAPType      string   `json:"coap_type"`
	Requests      []string `json:"coap_request_hex"`
}

func (c capture) payload() []byte { b, _ := hex.DecodeString(c.PayloadHex); return b }

func loadCaptures(t *testing.T) []capture {
	t.Helper()
	dir := shared.Dir(t, "interop-vectors")
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Captures []capture `json:"captures"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return idx.Captures
}

func peersOf(caps []capture) []string {
	var peers []string
	seen := map[string]bool{}
	for _, c := range caps {
		if !seen[c.Peer] {
			seen[c.Peer] = true
			peers = append(peers, c.Peer)
		}
	}
	return peers
}

func decodeDatagram(t *testing.T, h string) message.Message {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	m := message.Message{Options: make(message.Options, 0, 32)}
	if _, err := coder.DefaultCoder.Decode(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestInteropRegistrationSessions replays the Register, Send and
// De-register datagrams Wakaama and Anjay sent, byte for byte (the
// De-register with the Location-Path this server gave).
func TestInteropRegistrationSessions(t *testing.T) {
	caps := loadCaptures(t)
	s := newServer(t, func(c *Config) { c.Models = shared.Registry(t) })
	sub := s.Subscribe(256)
	var sends int
	for _, peer := range peersOf(caps) {
		t.Run(peer, func(t *testing.T) {
			p := newRawPeer(t, s)
			var location string
			for _, c := range caps {
				if c.Peer != peer || len(c.Requests) == 0 {
					continue
				}
				switch c.Operation {
				case "register":
					raw, _ := hex.DecodeString(c.Requests[0])
					p.sendBytes(raw)
					r := p.answerTo(decodeDatagram(t, c.Requests[0]))
					if r.Code != codes.Created {
						t.Fatalf("%s: %v %q", c.ID, r.Code, r.Payload)
					}
					location = locationOf(r)
					e := waitEvent(t, sub, EventRegistered)
					if e.Registration.Location() != location || len(e.Registration.Objects) < 8 {
						t.Fatalf("%s: %+v", c.ID, e.Registration)
					}
					if strings.HasPrefix(peer, "wakaama") && (len(e.Registration.Formats) != 1 || e.Registration.Version != "1.1") {
						t.Fatalf("%s: formats %v", c.ID, e.Registration.Formats)
					}
				case "send":
					if c.ResponseCode != "2.04" {
						continue
					}
					raw, _ := hex.DecodeString(c.Requests[0])
					p.sendBytes(raw)
					if r := p.answerTo(decodeDatagram(t, c.Requests[0])); r.Code != codes.Changed {
						t.Fatalf("%s: %v %q", c.ID, r.Code, r.Payload)
					}
					e := waitEvent(t, sub, EventSend)
					sends++
					var manufacturer string
					for _, r := range e.Records {
						if r.Path == path("/3/0/0") {
							manufacturer = r.Value.Str()
						}
					}
					want := "Open Mobile Alliance"
					if strings.HasPrefix(peer, "anjay") {
						want = "vec"
					}
					if manufacturer != want || len(e.Records) < 2 {
						t.Fatalf("%s: records %+v", c.ID, e.Records)
					}
				case "deregister":
					m := decodeDatagram(t, c.Requests[0])
					m.Options = m.Options.Remove(message.URIPath)
					m.Options = sortOptions(append(m.Options, pathOptions(location, nil, -1)...))
					p.send(m)
					if r := p.answerTo(m); r.Code != codes.Deleted {
						t.Fatalf("%s: %v", c.ID, r.Code)
					}
					waitEvent(t, sub, EventDeregistered)
				}
			}
		})
	}
	t.Logf("replayed the sessions of %d peers, %d Sends", len(peersOf(caps)), sends)
	if st := s.Stats(); st.Registrations != 0 {
		t.Fatalf("%+v", st)
	}
}

// answerTo waits for the answer to request m (piggybacked, matched by
// message ID).
func (p *rawPeer) answerTo(m message.Message) message.Message {
	p.t.Helper()
	for {
		r, ok := p.recv(3 * time.Second)
		if !ok {
			p.t.Fatalf("no answer to %v", m.Code)
		}
		if r.MessageID == m.MessageID && r.Type == message.Acknowledgement {
			return r
		}
	}
}

// TestInteropDeviceAnswers plays each captured client as a device: the
// server sends Read, Discover and Observe, and the peer answers with the
// payloads the client answered with. Every one must decode with the
// device's registered models.
func TestInteropDeviceAnswers(t *testing.T) {
	caps := loadCaptures(t)
	s := newServer(t, func(c *Config) { c.Models = shared.Registry(t) })
	sub := s.Subscribe(256)
	var reads, discovers, notifications int
	for _, peer := range peersOf(caps) {
		t.Run(peer, func(t *testing.T) {
			p := newRawPeer(t, s)
			ep := "interop-" + peer
			for _, c := range caps {
				if c.Peer == peer && c.Operation == "register" {
					m := decodeDatagram(t, c.Requests[0])
					if r := p.request(codes.POST, "/rd", []string{"ep=" + ep, lwm2mQuery(m)}, 40, m.Payload); r.Code != codes.Created {
						t.Fatalf("register: %v", r.Code)
					}
				}
			}
			for i, c := range caps {
				if c.Peer != peer || c.ResponseCode != "2.05" || c.PayloadFormat == nil {
					continue
				}
				f := objects.Format(*c.PayloadFormat)
				switch c.Operation {
				case "read":
					done := make(chan error, 1)
					var n objects.Node
					go func() {
						var err error
						n, err = s.Read(ctx(t), ep, path(c.Path), WithFormat(f))
						done <- err
					}()
					if _, ok := p.serveOne(3*time.Second, codes.Content, int(f), c.payload()); !ok {
						t.Fatalf("%s: no request", c.ID)
					}
					if err := <-done; err != nil {
						t.Fatalf("%s: %v", c.ID, err)
					}
					if c.Path == "/3/0/0" && n.(*objects.Resource).Value.Str() == "" {
						t.Fatalf("%s: empty manufacturer", c.ID)
					}
					reads++
				case "discover":
					done := make(chan error, 1)
					go func() {
						_, err := s.Discover(ctx(t), ep, path(c.Path))
						done <- err
					}()
					p.serveOne(3*time.Second, codes.Content, int(f), c.payload())
					if err := <-done; err != nil {
						t.Fatalf("%s: %v", c.ID, err)
					}
					discovers++
				case "observe":
					// The initial answer, then the two notifications that
					// followed it in the capture.
					done := make(chan error, 1)
					go func() {
						_, _, err := s.Observe(ctx(t), ep, path(c.Path), WithFormat(f))
						done <- err
					}()
					req := p.serveObserve(c.payload(), int(f))
					if err := <-done; err != nil {
						t.Fatalf("%s: %v", c.ID, err)
					}
					for seq, n := range caps[i+1 : i+3] {
						if n.Operation != "observe-notify" {
							t.Fatalf("%s is not a notification", n.ID)
						}
						p.send(message.Message{Code: codes.Content, Type: message.NonConfirmable, MessageID: p.nextMID(), Token: req.Token,
							Options: sortOptions(message.Options{{ID: message.Observe, Value: []byte{byte(seq + 2)}},
								{ID: message.ContentFormat, Value: encodeUint(uint32(*n.PayloadFormat))}}),
							Payload: n.payload()})
						e := waitEvent(t, sub, EventNotification)
						if e.Err != nil || e.Node == nil {
							t.Fatalf("%s: %v", n.ID, e.Err)
						}
						notifications++
					}
				}
			}
		})
	}
	t.Logf("decoded %d captured Read answers, %d Discover answers, %d notifications", reads, discovers, notifications)
	if reads < 250 || discovers != 15 || notifications != 20 {
		t.Fatalf("too few vectors: %d reads, %d discovers, %d notifications", reads, discovers, notifications)
	}
}

func lwm2mQuery(m message.Message) string {
	for _, o := range m.Options {
		if o.ID == message.URIQuery && strings.HasPrefix(string(o.Value), "lwm2m=") {
			return string(o.Value)
		}
	}
	return "lwm2m=1.0"
}

// serveObserve answers an Observe request with Observe 1 and returns it.
func (p *rawPeer) serveObserve(payload []byte, cf int) message.Message {
	p.t.Helper()
	for {
		r, ok := p.recv(3 * time.Second)
		if !ok {
			p.t.Fatal("no observe request")
		}
		if r.Code != codes.GET {
			continue
		}
		p.send(message.Message{Code: codes.Content, Type: message.Acknowledgement, MessageID: r.MessageID, Token: r.Token,
			Options: sortOptions(message.Options{{ID: message.Observe, Value: []byte{1}}, {ID: message.ContentFormat, Value: encodeUint(uint32(cf))}}),
			Payload: payload})
		return r
	}
}
