package client

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// BenchmarkHandleRead measures the client's side of a Read of /3/0: the
// request through the handler (object snapshot, access filter, encoding),
// without the network.
func BenchmarkHandleRead(b *testing.B) {
	for _, f := range []objects.Format{objects.FormatTLV, objects.FormatSenMLCBOR, objects.FormatSenMLJSON, objects.FormatText} {
		p := "/3/0"
		if f == objects.FormatText {
			p = "/3/0/0"
		}
		b.Run(f.String()+p, func(b *testing.B) {
			c, err := New(Config{Endpoint: "bench", ServerURI: "coap://127.0.0.1:5999", Version: "1.2", Models: testModels})
			if err != nil {
				b.Fatal(err)
			}
			req := rawGet(&testing.T{}, p, int(f))
			pp := path(p)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				a := c.get(req, pp)
				if a.code != codes.Content {
					b.Fatal(a.code, a.diag)
				}
			}
		})
	}
}

// BenchmarkReadRoundTrip is a Read of /3/0 by the lwm2md server over
// loopback: both sides and go-coap.
func BenchmarkReadRoundTrip(b *testing.B) {
	s := newServer(b, nil)
	cfg := testConfig(b, s.Addr().String(), "bench-rt", "1.1")
	startClient(b, cfg)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Read(ctx, "bench-rt", path("/3/0")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleClients measures the memory of idle registered clients:
// 1000 clients (the ready-made Security, Server and Device objects plus a
// temperature sensor) registered, then runtime.MemStats before and after.
// "server" runs them against the lwm2md server in-process (its share is
// in the figure); "responder" against a stateless UDP responder, which
// leaves the client's own share. Run it alone (-bench
// 'IdleClients/responder$'): the runtime keeps the stacks of goroutines
// that ended for reuse, which skews a second measurement in one process.
func BenchmarkIdleClients(b *testing.B) {
	const n = 1000
	for _, target := range []string{"responder", "server"} {
		b.Run(target, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var addr string
				if target == "server" {
					addr = newServer(b, func(c *server.Config) { c.Logger = nil }).Addr().String()
				} else {
					addr = newResponder(b)
				}
				before := memNow()
				clients := make([]*Client, n)
				var wg sync.WaitGroup
				sem := make(chan struct{}, 64)
				for k := range clients {
					cfg := Config{
						Endpoint:  fmt.Sprintf("idle-%d", k),
						ServerURI: "coap://" + addr,
						LocalAddr: "127.0.0.1:0",
						Models:    testModels,
						Objects:   []*Object{NewTemperature(SensorConfig{Seed: uint64(k)}).Object},
					}
					c, err := New(cfg)
					if err != nil {
						b.Fatal(err)
					}
					clients[k] = c
					wg.Add(1)
					sem <- struct{}{}
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						if err := c.Start(ctx); err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
				time.Sleep(200 * time.Millisecond) // let go-coap's goroutines settle
				after := memNow()
				b.ReportMetric(float64(after.bytes-before.bytes)/n, "bytes/client")
				b.ReportMetric(float64(after.stack-before.stack)/n, "stack-bytes/client")
				b.ReportMetric(float64(after.goroutines-before.goroutines)/n, "goroutines/client")
				for _, c := range clients {
					wg.Add(1)
					sem <- struct{}{}
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						_ = c.Close()
					}()
				}
				wg.Wait()
			}
		})
	}
}

type memSample struct {
	bytes      int64 // live heap and stacks
	stack      int64
	goroutines int
}

func memNow() memSample {
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{bytes: int64(m.HeapAlloc + m.StackInuse), stack: int64(m.StackInuse), goroutines: runtime.NumGoroutine()}
}

// newResponder starts a stateless LwM2M registration responder: 2.01 with
// a Location-Path for a Register, 2.04 for an Update, 2.02 for a
// De-register, piggybacked in the ACK. It keeps nothing per client.
func newResponder(tb testing.TB) string {
	tb.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		out := make([]byte, 256)
		n := 0
		for {
			k, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req := message.Message{Options: make(message.Options, 0, 32)}
			if _, err := coder.DefaultCoder.Decode(buf[:k], &req); err != nil || req.Type != message.Confirmable {
				continue
			}
			resp := message.Message{Token: req.Token, MessageID: req.MessageID, Type: message.Acknowledgement}
			p, _ := req.Options.Path()
			switch {
			case req.Code == codes.POST && p == "/rd":
				n++
				resp.Code = codes.Created
				resp.Options = message.Options{
					{ID: message.LocationPath, Value: []byte("rd")},
					{ID: message.LocationPath, Value: []byte(fmt.Sprint(n))},
				}
			case req.Code == codes.POST:
				resp.Code = codes.Changed
			case req.Code == codes.DELETE:
				resp.Code = codes.Deleted
			default:
				resp.Code = codes.NotFound
			}
			m, err := coder.DefaultCoder.Encode(resp, out)
			if err == nil {
				_, _ = conn.WriteToUDP(out[:m], from)
			}
		}
	}()
	return conn.LocalAddr().String()
}
