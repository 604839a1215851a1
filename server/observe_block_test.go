package server

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/lwm2md/lwm2md/objects"
)

// blockDevice is a raw CoAP device whose value of /3/0/0 is larger than
// one block: its notification carries the first block only, with Block2
// (RFC 7959 §3.4 with RFC 7641), and it serves the others to GETs with
// Block2, as a constrained device does.
type blockDevice struct {
	t     testing.TB
	conn  *net.UDPConn
	mu    sync.Mutex
	value []byte
	cf    []byte         // Content-Format option value: text, or SenML JSON
	etags map[int][]byte // ETag of each block, if any (RFC 7959 §2.4)
	token message.Token
	gets  []string // Block2 requests received: "code num,observe"
	reg   chan struct{}
	acks  chan int32
}

// blockSZX is the block size of blockDevice: 1024 bytes (SZX 6).
const blockSZX = 6

func dialBlockDevice(t testing.TB, addr net.Addr, value []byte, cf []byte) *blockDevice {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, addr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	d := &blockDevice{t: t, conn: conn, value: value, cf: cf, reg: make(chan struct{}, 1), acks: make(chan int32, 16)}
	t.Cleanup(func() { _ = conn.Close() })
	go d.read()
	return d
}

func (d *blockDevice) write(m message.Message) {
	b := make([]byte, 4096)
	n, err := coder.DefaultCoder.Encode(m, b)
	if err != nil {
		d.t.Error(err)
		return
	}
	_, _ = d.conn.Write(b[:n])
}

func (d *blockDevice) read() {
	buf := make([]byte, 4096)
	for {
		n, err := d.conn.Read(buf)
		if err != nil {
			return
		}
		m := message.Message{Options: make(message.Options, 0, 8)}
		if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
			continue
		}
		switch {
		case m.Type == message.Acknowledgement && m.Code == codes.Created:
			d.reg <- struct{}{}
		case m.Type == message.Acknowledgement && m.Code == codes.Empty:
			d.acks <- m.MessageID
		case m.Code == codes.GET || m.Code == codeFETCH:
			d.get(m)
		}
	}
}

// get answers the Observe (GET, or FETCH for an Observe-Composite) with
// the current value, and a request with Block2 with that block of it.
func (d *blockDevice) get(m message.Message) {
	_, obsErr := m.Options.GetUint32(message.Observe)
	d.mu.Lock()
	defer d.mu.Unlock()
	ack := message.Message{Code: codes.Content, Type: message.Acknowledgement, MessageID: m.MessageID, Token: m.Token}
	block, blockErr := m.Options.GetUint32(message.Block2)
	switch {
	case obsErr == nil && blockErr != nil:
		d.token = append(message.Token(nil), m.Token...)
		ack.Options = message.Options{{ID: message.Observe, Value: encodeUint(1)}, {ID: message.ContentFormat, Value: d.cf}}
		ack.Payload = d.value
	case blockErr == nil:
		num := int(block >> 4)
		d.gets = append(d.gets, m.Code.String()+" "+strconv.Itoa(num)+","+boolString(obsErr == nil))
		payload, more := d.blockLocked(num)
		ack.Options = message.Options{{ID: message.ContentFormat, Value: d.cf}, {ID: message.Block2, Value: blockValue(num, more)}}
		if tag := d.etags[num]; tag != nil {
			ack.Options = sortOptions(append(ack.Options, message.Option{ID: message.ETag, Value: tag}))
		}
		ack.Payload = payload
	default:
		ack.Code = codes.BadRequest
	}
	d.write(ack)
}

func (d *blockDevice) blockLocked(num int) ([]byte, bool) {
	size := 1 << (blockSZX + 4)
	start := min(num*size, len(d.value))
	end := min(start+size, len(d.value))
	return d.value[start:end], end < len(d.value)
}

func blockValue(num int, more bool) []byte {
	v := uint32(num)<<4 | blockSZX
	if more {
		v |= 1 << 3
	}
	if v == 0 {
		return []byte{0}
	}
	return encodeUint(v)
}

// notify sets the value and sends its first block as a confirmable
// notification.
func (d *blockDevice) notify(value []byte, seq uint32, mid int32) {
	d.mu.Lock()
	d.value = value
	payload, more := d.blockLocked(0)
	tok := d.token
	opts := message.Options{{ID: message.Observe, Value: encodeUint(seq)}, {ID: message.ContentFormat, Value: d.cf},
		{ID: message.Block2, Value: blockValue(0, more)}}
	if tag := d.etags[0]; tag != nil {
		opts = sortOptions(append(opts, message.Option{ID: message.ETag, Value: tag}))
	}
	d.mu.Unlock()
	d.write(message.Message{Code: codes.Content, Type: message.Confirmable, MessageID: mid, Token: tok,
		Options: opts, Payload: payload})
}

func (d *blockDevice) register(ep string) {
	m := message.Message{Code: codes.POST, Type: message.Confirmable, MessageID: 1, Token: message.Token{1},
		Options: pathOptions("/rd", []string{"ep=" + ep, "lt=300", "lwm2m=1.1"}, 40), Payload: []byte("</3/0>")}
	for try := 0; try < 3; try++ {
		d.write(m)
		select {
		case <-d.reg:
			return
		case <-time.After(2 * time.Second):
		}
	}
	d.t.Fatal("no answer to Register")
}

func boolString(b bool) string {
	if b {
		return "observe"
	}
	return "plain"
}

// A notification larger than one datagram comes as its first block with
// Block2 (NUM 0, M 1); the server fetches the others with the
// observation's request without Observe (RFC 7959 §3.4, RFC 7641): GET
// for an Observe, FETCH with the paths for an Observe-Composite; it
// decodes the whole and emits one event.
func TestBlockwiseNotification(t *testing.T) {
	big := strings.Repeat("0123456789abcdef-block-notification-", 70) // 2520 bytes: three blocks
	senml := func(v string) []byte { return []byte(`[{"bn":"/3/0/","n":"0","vs":"` + v + `"}]`) }
	for _, tt := range []struct {
		name      string
		composite bool
		cf        []byte
		value     func(string) []byte
		code      codes.Code
	}{
		{"observe", false, nil, func(v string) []byte { return []byte(v) }, codes.GET},
		{"observe-composite", true, encodeUint(uint32(objects.FormatSenMLJSON)), senml, codeFETCH},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, nil)
			d := dialBlockDevice(t, s.Addr(), tt.value("short"), tt.cf)
			d.register("block-notify")
			sub := s.Subscribe(16)
			defer sub.Close()
			var o *Observation
			var err error
			if tt.composite {
				o, _, err = s.ObserveComposite(ctx(t), "block-notify", []objects.Path{path("/3/0/0")}, WithFormat(objects.FormatSenMLJSON))
			} else {
				o, _, err = s.Observe(ctx(t), "block-notify", path("/3/0/0"))
			}
			if err != nil {
				t.Fatal(err)
			}
			// value is what a notification event carries for /3/0/0.
			value := func(e Event) string {
				n := e.Node
				if tt.composite {
					n = e.Nodes[path("/3/0/0")]
				}
				if r, ok := n.(*objects.Resource); ok {
					return r.Value.Text()
				}
				return fmt.Sprintf("%#v", n)
			}
			d.notify(tt.value(big), 2, 100)
			e := waitEvent(t, sub, EventNotification)
			if e.Err != nil || e.Token != o.Token {
				t.Fatalf("%+v", e)
			}
			if got := value(e); got != big {
				t.Fatalf("notified %d bytes, want %d", len(got), len(big))
			}
			noEvent(t, sub, EventNotification, 300*time.Millisecond)
			d.mu.Lock()
			gets := strings.Join(d.gets, " / ")
			d.mu.Unlock()
			if want := tt.code.String() + " 1,plain / " + tt.code.String() + " 2,plain"; gets != want {
				t.Fatalf("block requests %q, want %q", gets, want)
			}
			select {
			case mid := <-d.acks:
				if mid != 100 {
					t.Fatalf("ACK of %d", mid)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the notification was not acknowledged")
			}
			// The observation goes on: a small notification after the large one.
			d.notify(tt.value("small again"), 3, 101)
			if e := waitEvent(t, sub, EventNotification); e.Err != nil || value(e) != "small again" {
				t.Fatalf("%+v", e)
			}
		})
	}
}

// A representation that changes between two blocks (another ETag, RFC
// 7959 §2.4) is not published half old, half new: that notification is
// dropped and the next one comes whole.
func TestBlockwiseNotificationChanged(t *testing.T) {
	s := newServer(t, nil)
	d := dialBlockDevice(t, s.Addr(), []byte("short"), nil)
	d.register("block-etag")
	sub := s.Subscribe(16)
	defer sub.Close()
	if _, _, err := s.Observe(ctx(t), "block-etag", path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.etags = map[int][]byte{0: {1}, 1: {2}, 2: {2}}
	d.mu.Unlock()
	d.notify([]byte(strings.Repeat("changing-", 300)), 2, 100)
	noEvent(t, sub, EventNotification, 500*time.Millisecond)
	d.mu.Lock()
	d.etags = map[int][]byte{0: {3}, 1: {3}, 2: {3}}
	d.mu.Unlock()
	whole := strings.Repeat("settled-", 300)
	d.notify([]byte(whole), 3, 101)
	e := waitEvent(t, sub, EventNotification)
	if r, ok := e.Node.(*objects.Resource); e.Err != nil || !ok || r.Value.Text() != whole {
		t.Fatalf("%+v", e)
	}
}
