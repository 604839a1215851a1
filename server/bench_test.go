package server

import (
	"context"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server/internal/testdevice"
)

// BenchmarkRegisterDeregister is a device's Register and De-register
// over loopback, the test device's go-coap client included. A new device
// (socket) takes over every 50 rounds, as in a fleet, where a device
// sends a few requests per 247 s: go-coap keeps each answer to a
// confirmable request that long and scans a peer's answers on every
// datagram from it (go-coap issue 586), so a single socket registering
// ten thousand times measures that scan instead.
func BenchmarkRegisterDeregister(b *testing.B) {
	s := newServer(b, nil)
	c := context.Background()
	b.ReportAllocs()
	i := 0
	var d *testdevice.Device
	for b.Loop() {
		if i%50 == 0 {
			if d != nil {
				_ = d.Close()
			}
			d = newDevice(b, s, "bench-reg", nil)
		}
		i++
		if code, err := d.Register(c); err != nil || code != codes.Created {
			b.Fatal(code, err)
		}
		if code, err := d.Deregister(c); err != nil || code != codes.Deleted {
			b.Fatal(code, err)
		}
	}
}

// BenchmarkRead is a Read of the Device object instance /3/0 (20
// resources, 4 of them multiple) over loopback: request, the device's
// answer, and decoding with the device's models.
func BenchmarkRead(b *testing.B) {
	for _, f := range []objects.Format{objects.FormatTLV, objects.FormatSenMLCBOR, objects.FormatSenMLJSON} {
		b.Run(f.String(), func(b *testing.B) {
			s := newServer(b, nil)
			registerDevice(b, s, "bench-read", nil)
			c := context.Background()
			p := objects.NewPath(3, 0)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Read(c, "bench-read", p, WithFormat(f)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
