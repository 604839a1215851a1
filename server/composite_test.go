package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
)

// startEngine starts lwm2md's own client engine against s: a complete
// LwM2M device that answers the composite operations the test device
// does not.
func startEngine(t *testing.T, s *testServer, ep, version string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		Endpoint:  ep,
		ServerURI: "coap://" + s.Addr().String(),
		LocalAddr: "127.0.0.1:0",
		Version:   version,
		Lifetime:  60 * time.Second,
		Models:    testModels,
		Device:    client.DeviceInfo{Manufacturer: "lwm2md", Battery: 87},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", ep, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestReadComposite(t *testing.T) {
	s := newServer(t, nil)
	startEngine(t, s, "comp-12", "1.2")
	paths := []objects.Path{path("/3/0/0"), path("/3/0/9"), path("/1/0"), path("/3/0/6"), path("/9999/0")}
	for _, f := range []Option{nil, WithFormat(objects.FormatSenMLJSON), WithFormat(objects.FormatSenMLCBOR), WithFormat(objects.FormatLwM2MCBOR)} {
		var opts []Option
		if f != nil {
			opts = append(opts, f)
		}
		nodes, err := s.ReadComposite(ctx(t), "comp-12", paths, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := nodes[path("/3/0/0")].(*objects.Resource); !ok || r.Value.Str() != "lwm2md" {
			t.Errorf("/3/0/0 = %#v", nodes[path("/3/0/0")])
		}
		if r, ok := nodes[path("/3/0/9")].(*objects.Resource); !ok || r.Value.Int() != 87 {
			t.Errorf("/3/0/9 = %#v", nodes[path("/3/0/9")])
		}
		if in, ok := nodes[path("/1/0")].(*objects.Instance); !ok || in.Resource(1) == nil {
			t.Errorf("/1/0 = %#v, want the Server instance with its lifetime", nodes[path("/1/0")])
		}
		if r, ok := nodes[path("/3/0/6")].(*objects.Resource); !ok || !r.Multiple {
			t.Errorf("/3/0/6 = %#v, want a multiple resource", nodes[path("/3/0/6")])
		}
		if _, ok := nodes[path("/9999/0")]; ok {
			t.Errorf("a path the device does not have came back")
		}
	}
}

func TestWriteComposite(t *testing.T) {
	s := newServer(t, nil)
	startEngine(t, s, "comp-w", "1.1")
	err := s.WriteComposite(ctx(t), "comp-w", []objects.Record{
		{Path: path("/3/0/14"), Value: objects.StringValue("+05:30")},
		{Path: path("/3/0/15"), Value: objects.StringValue("Asia/Kolkata")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"/3/0/14": "+05:30", "/3/0/15": "Asia/Kolkata"} {
		n, err := s.Read(ctx(t), "comp-w", path(p))
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := n.(*objects.Resource); !ok || r.Value.Str() != want {
			t.Errorf("%s = %#v, want %q", p, n, want)
		}
	}
	// A read-only resource makes the whole write fail on the device.
	err = s.WriteComposite(ctx(t), "comp-w", []objects.Record{
		{Path: path("/3/0/14"), Value: objects.StringValue("+01:00")},
		{Path: path("/3/0/0"), Value: objects.StringValue("other")},
	})
	var ce *CoAPError
	if !errors.As(err, &ce) {
		t.Fatalf("write of a read-only resource: err = %v, want the device's error", err)
	}
}

func TestCompositeRefused(t *testing.T) {
	s := newServer(t, nil)
	startEngine(t, s, "comp-10", "1.0")
	startEngine(t, s, "comp-11", "1.1")
	tests := []struct {
		name string
		call func() error
	}{
		{"1.0 device", func() error {
			_, err := s.ReadComposite(ctx(t), "comp-10", []objects.Path{path("/3/0/0")})
			return err
		}},
		{"single-path format", func() error {
			_, err := s.ReadComposite(ctx(t), "comp-11", []objects.Path{path("/3/0/0")}, WithFormat(objects.FormatTLV))
			return err
		}},
		{"no path", func() error { _, err := s.ReadComposite(ctx(t), "comp-11", nil); return err }},
		{"root path", func() error {
			_, err := s.ReadComposite(ctx(t), "comp-11", []objects.Path{objects.RootPath})
			return err
		}},
		{"write without value", func() error {
			return s.WriteComposite(ctx(t), "comp-11", []objects.Record{{Path: path("/3/0/14")}})
		}},
		{"write at an instance", func() error {
			return s.WriteComposite(ctx(t), "comp-11", []objects.Record{{Path: path("/3/0"), Value: objects.StringValue("x")}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("err = %v, want ErrInvalidRequest", err)
			}
		})
	}
}
