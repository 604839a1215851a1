package bootstrap_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/server"
)

// newDMB starts an LwM2M server for a benchmark and returns its address.
func newDMB(b *testing.B) string {
	s, err := server.New(server.Config{UDPAddr: "127.0.0.1:0", RegisterRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s.Addr().String()
}

// BenchmarkBootstrapAndRegister: one device's whole bootstrap over
// loopback (Bootstrap-Request, BS-Discover, BS-Read, two BS-Deletes, two
// BS-Writes, BS-Finish) followed by its Register at the LwM2M server,
// both servers and the client in process, one device after the other.
func BenchmarkBootstrapAndRegister(b *testing.B) {
	for _, version := range []string{"1.0", "1.1"} {
		b.Run(version, func(b *testing.B) {
			dm := newDMB(b)
			bs, err := bootstrap.New(bootstrap.Config{UDPAddr: "127.0.0.1:0"})
			if err != nil {
				b.Fatal(err)
			}
			if err := bs.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			defer bs.Close()
			cfg := &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account("coap://"+dm, 1, 3600)}}
			if err := bs.Configs().SetTemplates(b.Context(), []bootstrap.Template{{Name: "all", Config: *cfg}}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				c, err := client.New(client.Config{
					Endpoint: fmt.Sprintf("bench-%s-%d", version, i), Version: version,
					BootstrapURI: "coap://" + bs.Addr().String(), Tick: 20 * time.Millisecond,
					Retry: client.RetryPolicy{Count: 1, SequenceCount: 1},
				})
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Start(b.Context()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = c.Close()
				b.StartTimer()
			}
		})
	}
}
