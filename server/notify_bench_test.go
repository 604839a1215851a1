package server

import (
	"context"
	"fmt"
	"io"
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
)

// notifier is a lean device for the ingestion benchmarks: a plain UDP
// socket speaking CoAP through go-coap's message codec, which registers,
// accepts one observation of /3303/0/5700 and then sends notifications
// as fast as it is let. Its reader goroutine answers the server's
// requests and passes the acknowledgements of its notifications on.
type notifier struct {
	ep    string
	conn  *net.UDPConn
	mid   uint16
	token atomic.Pointer[message.Token]
	seq   uint32
	acks  chan int32 // message IDs of the ACKs received
	reg   chan message.Message
}

func dialNotifier(addr *net.UDPAddr, ep string) (*notifier, error) {
	conn, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		return nil, err
	}
	n := &notifier{ep: ep, conn: conn, mid: 1, seq: 2, acks: make(chan int32, 16), reg: make(chan message.Message, 1)}
	go n.read()
	return n, nil
}

// Close closes the device's socket, which ends its reader.
func (n *notifier) Close() error { return n.conn.Close() }

func (n *notifier) write(m message.Message) error {
	b := make([]byte, 0, 64)
	size, err := coder.DefaultCoder.Size(m)
	if err != nil {
		return err
	}
	b = b[:size]
	if _, err := coder.DefaultCoder.Encode(m, b); err != nil {
		return err
	}
	_, err = n.conn.Write(b)
	return err
}

// read answers the server's Observe with the current value and hands the
// ACKs of notifications to acks, until the socket closes.
func (n *notifier) read() {
	buf := make([]byte, 2048)
	for {
		l, err := n.conn.Read(buf)
		if err != nil {
			return
		}
		m := message.Message{Options: make(message.Options, 0, 8)}
		if _, err := coder.DefaultCoder.Decode(buf[:l], &m); err != nil {
			continue
		}
		switch {
		case m.Type == message.Acknowledgement && m.Code == codes.Created:
			select {
			case n.reg <- m:
			default:
			}
		case m.Type == message.Acknowledgement && m.Code == codes.Empty:
			select {
			case n.acks <- m.MessageID:
			default:
			}
		case m.Code == codes.GET:
			tok := append(message.Token(nil), m.Token...)
			n.token.Store(&tok)
			_ = n.write(message.Message{
				Code: codes.Content, Type: message.Acknowledgement, MessageID: m.MessageID, Token: m.Token,
				Options: message.Options{{ID: message.Observe, Value: encodeUint(1)}, {ID: message.ContentFormat, Value: nil}},
				Payload: []byte("20.0"),
			})
		}
	}
}

func (n *notifier) register(d time.Duration) error {
	m := message.Message{Code: codes.POST, Type: message.Confirmable, MessageID: 1, Token: message.Token{1}}
	m.Options = pathOptions("/rd", []string{"ep=" + n.ep, "lt=86400", "lwm2m=1.1", "b=U"}, 40)
	m.Payload = []byte("</3303/0>")
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := n.write(m); err != nil {
			return err
		}
		select {
		case <-n.reg:
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	return fmt.Errorf("%s: no answer to Register", n.ep)
}

// notify sends the next notification, confirmable or not.
func (n *notifier) notify(con bool) (int32, error) {
	n.mid++
	n.seq++
	typ := message.NonConfirmable
	if con {
		typ = message.Confirmable
	}
	v := 20 + float64(n.seq%100)/10
	return int32(n.mid), n.write(message.Message{
		Code: codes.Content, Type: typ, MessageID: int32(n.mid), Token: *n.token.Load(),
		Options: message.Options{{ID: message.Observe, Value: encodeUint(n.seq & 0xffffff)}, {ID: message.ContentFormat, Value: nil}},
		Payload: strconv.AppendFloat(nil, v, 'f', 1, 64),
	})
}

// notifyCON sends a confirmable notification and waits for its ACK,
// retransmitting it (same message ID and sequence number) after 2 s
// (RFC 7252 §4.2, simplified).
func (n *notifier) notifyCON() error {
	mid, err := n.notify(true)
	if err != nil {
		return err
	}
	for try := 0; try < 5; try++ {
		timeout := time.After(2 * time.Second)
		for {
			select {
			case got := <-n.acks:
				if got != mid {
					continue
				}
				return nil
			case <-timeout:
			}
			break
		}
		n.mid--
		n.seq--
		if _, err := n.notify(true); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s: notification %d not acknowledged", n.ep, mid)
}

// benchNotifiers registers count notifiers and observes each one's
// temperature.
func benchNotifiers(b *testing.B, s *testServer, count int) []*notifier {
	b.Helper()
	addr := s.Addr().(*net.UDPAddr)
	ns := make([]*notifier, count)
	b.Cleanup(func() {
		for _, n := range ns {
			if n != nil {
				_ = n.Close()
			}
		}
	})
	err := parallel(count, 16, func(i int) error {
		n, err := dialNotifier(addr, "notify-"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		ns[i] = n
		if err := n.register(20 * time.Second); err != nil {
			return err
		}
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _, err = s.Observe(c, n.ep, path("/3303/0/5700"))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return ns
}

// BenchmarkNotify measures notifications ingested by the server over UDP:
// decoded with the model and published as events to a subscriber, from
// many devices at once. One op is one notification. "con": each device
// has one confirmable notification in flight (NSTART 1, RFC 7252 §4.7)
// and sends the next on its ACK; "non": non-confirmable notifications,
// with a window of notifications not yet seen by the subscriber across
// the fleet. LWM2MD_BENCH_NOTIFIERS sets the number of devices (default
// 500).
func BenchmarkNotify(b *testing.B) {
	count := 500
	if v, err := strconv.Atoi(os.Getenv("LWM2MD_BENCH_NOTIFIERS")); err == nil && v > 0 {
		count = v
	}
	for _, con := range []bool{true, false} {
		name := "non"
		if con {
			name = "con"
		}
		b.Run(name, func(b *testing.B) {
			s := newServer(b, quietBench)
			ns := benchNotifiers(b, s, count)
			sub := s.Subscribe(4096)
			defer sub.Close()
			window := make(chan struct{}, 256)
			var seen atomic.Int64
			go func() {
				for e := range sub.C {
					if e.Kind != EventNotification {
						continue
					}
					if e.Err != nil {
						b.Error(e.Err)
					}
					seen.Add(1)
					select {
					case <-window:
					default:
					}
				}
			}()
			var sent atomic.Int64
			total := int64(b.N)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for _, n := range ns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for sent.Add(1) <= total {
						var err error
						if con {
							err = n.notifyCON()
						} else {
							// A lost datagram never frees its slot: after
							// 100 ms without one, send anyway.
							select {
							case window <- struct{}{}:
							case <-time.After(100 * time.Millisecond):
							}
							_, err = n.notify(false)
						}
						if err != nil {
							b.Error(err)
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
			elapsed := time.Since(start)
			b.StopTimer()
			got := seen.Load()
			if con && got < total {
				b.Fatalf("%d of %d notifications ingested (%d events dropped)", got, total, s.Stats().EventsDropped)
			}
			if dropped := s.Stats().EventsDropped; dropped > 0 {
				b.Fatalf("%d events dropped", dropped)
			}
			// Non-confirmable notifications may be lost (UDP buffers);
			// the rate counts those that arrived.
			b.ReportMetric(float64(got)/elapsed.Seconds(), "notifications/s")
			b.ReportMetric(float64(total-got), "lost")
		})
	}
}

// BenchmarkUDPIdleDevice measures the server's memory per registered, idle
// device over UDP (NoSec): the devices (a socket each, Register only) run
// in a child process (this test binary again), so that the heap and
// stacks measured here are the server's only. LWM2MD_BENCH_UDP_DEVICES
// sets how many (default 1000).
func BenchmarkUDPIdleDevice(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("LWM2MD_BENCH_UDP_DEVICES")); err == nil && v > 0 {
		n = v
	}
	for i := 0; i < b.N; i++ {
		s := newServer(b, quietBench)
		m := startIdleMeasure()
		stop := startDeviceProcess(b, s, n, "TestUDPBenchDevices",
			"LWM2MD_UDP_DEVICES="+strconv.Itoa(n), "LWM2MD_UDP_ADDR="+s.Addr().String())
		m.report(b, n, "device")
		b.ReportMetric(float64(s.Stats().Registrations), "registrations")
		stop()
		_ = s.Close()
	}
}

// TestUDPBenchDevices is the device process of BenchmarkUDPIdleDevice; it
// skips unless the benchmark started it.
func TestUDPBenchDevices(t *testing.T) {
	addr := os.Getenv("LWM2MD_UDP_ADDR")
	n, _ := strconv.Atoi(os.Getenv("LWM2MD_UDP_DEVICES"))
	if addr == "" || n == 0 {
		t.Skip("the device process of BenchmarkUDPIdleDevice (LWM2MD_UDP_ADDR, LWM2MD_UDP_DEVICES)")
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	holdDevices(t, n, 32, func(i int) (io.Closer, error) {
		d, err := dialNotifier(ua, "idle-"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		return d, d.register(30 * time.Second)
	})
}
