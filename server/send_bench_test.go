package server

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/lwm2md/lwm2md/objects"
)

// sender is a lean device for BenchmarkSend: a plain UDP socket speaking
// CoAP through go-coap's codec, which registers and then sends Sends
// (POST /dp), one confirmable at a time (NSTART 1, RFC 7252 §4.7).
type sender struct {
	conn    *net.UDPConn
	mid     uint16
	answers chan message.Message // the ACKs it receives
}

func dialSender(addr *net.UDPAddr) (*sender, error) {
	conn, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		return nil, err
	}
	d := &sender{conn: conn, answers: make(chan message.Message, 4)}
	go d.read()
	return d, nil
}

func (d *sender) read() {
	for {
		buf := make([]byte, 1500)
		n, err := d.conn.Read(buf)
		if err != nil {
			return
		}
		m := message.Message{Options: make(message.Options, 0, 4)}
		if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil || m.Type != message.Acknowledgement {
			continue
		}
		select {
		case d.answers <- m:
		default:
		}
	}
}

// exchange sends a confirmable request and waits for its ACK,
// retransmitting it (same message ID) after 2 s (RFC 7252 §4.2,
// simplified).
func (d *sender) exchange(m message.Message) (message.Message, error) {
	d.mid++
	m.MessageID = int32(d.mid)
	m.Type = message.Confirmable
	m.Token = message.Token{byte(d.mid >> 8), byte(d.mid)}
	b := make([]byte, 256)
	n, err := coder.DefaultCoder.Encode(m, b)
	if err != nil {
		return m, err
	}
	for try := 0; try < 5; try++ {
		if _, err := d.conn.Write(b[:n]); err != nil {
			return m, err
		}
		timeout := time.After(2 * time.Second)
		for {
			select {
			case a := <-d.answers:
				if a.MessageID != m.MessageID {
					continue
				}
				return a, nil
			case <-timeout:
			}
			break
		}
	}
	return m, fmt.Errorf("no answer to message %d", m.MessageID)
}

// BenchmarkSend measures the devices' Sends (POST /dp, SenML JSON, one
// record) taken by the server over UDP: decoded with the model and
// published as EventSend. One op is one Send; each device has one in
// flight. The devices send as fast as they are answered, so that a run of
// N Sends leaves N/devices answers per device in a response cache kept
// for EXCHANGE_LIFETIME (247 s): 100 devices and -benchtime 50000x make
// 500 each, an average of 250 per datagram, as many as a device sending
// once a second has. LWM2MD_BENCH_SENDERS sets the number of devices
// (default 100). The CPU figure is the process's (server and the lean
// devices), from getrusage.
func BenchmarkSend(b *testing.B) {
	count := 100
	if v, err := strconv.Atoi(os.Getenv("LWM2MD_BENCH_SENDERS")); err == nil && v > 0 {
		count = v
	}
	s := newServer(b, quietBench)
	addr := s.Addr().(*net.UDPAddr)
	ds := make([]*sender, count)
	b.Cleanup(func() {
		for _, d := range ds {
			if d != nil {
				_ = d.conn.Close()
			}
		}
	})
	for i := range ds {
		d, err := dialSender(addr)
		if err != nil {
			b.Fatal(err)
		}
		ds[i] = d
		a, err := d.exchange(message.Message{Code: codes.POST,
			Options: pathOptions("/rd", []string{"ep=sender-" + strconv.Itoa(i), "lt=86400", "lwm2m=1.1"}, 40),
			Payload: []byte("</3303/0>")})
		if err != nil || a.Code != codes.Created {
			b.Fatalf("register: %v %v", a.Code, err)
		}
	}
	sub := s.Subscribe(4096)
	defer sub.Close()
	var seen atomic.Int64
	go func() {
		for e := range sub.C {
			if e.Kind == EventSend {
				seen.Add(1)
			}
		}
	}()
	opts := pathOptions("/dp", nil, int(objects.FormatSenMLJSON))
	var sent atomic.Int64
	total := int64(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := sent.Add(1); n <= total; n = sent.Add(1) {
				payload := strconv.AppendInt([]byte(`[{"bn":"/3303/0/","n":"5700","v":`), n%1000, 10)
				a, err := d.exchange(message.Message{Code: codes.POST, Options: opts, Payload: append(payload, "}]"...)})
				if err != nil || a.Code != codes.Changed {
					b.Errorf("send: %v %v", a.Code, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for seen.Load() < total && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	if got := seen.Load(); got < total {
		b.Fatalf("%d of %d Sends published (%d events dropped)", got, total, s.Stats().EventsDropped)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "sends/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "CPU-µs/send")
}
