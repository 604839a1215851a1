package server

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
)

// A Read whose answer is larger than one datagram arrives block-wise
// (RFC 7959 Block2) and is decoded whole, in each format.
func TestBlock2LargeRead(t *testing.T) {
	s := newServer(t, nil)
	big := strings.Repeat("lwm2md-block2-", 300) // 4200 bytes
	c, err := client.New(client.Config{Endpoint: "block2", ServerURI: "coap://" + s.Addr().String(),
		LocalAddr: "127.0.0.1:0", Version: "1.1", Lifetime: time.Minute, Models: testModels,
		Device: client.DeviceInfo{Manufacturer: big}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, f := range []objects.Format{objects.FormatText, objects.FormatTLV, objects.FormatSenMLJSON, objects.FormatSenMLCBOR} {
		t.Run(f.String(), func(t *testing.T) {
			n, err := s.Read(ctx(t), "block2", path("/3/0/0"), WithFormat(f))
			if err != nil {
				t.Fatal(err)
			}
			r, ok := n.(*objects.Resource)
			if !ok || r.Value.Text() != big {
				t.Fatalf("read %d bytes, want %d", len(r.Value.Text()), len(big))
			}
		})
	}
	// The whole instance, larger still.
	n, err := s.Read(ctx(t), "block2", path("/3/0"))
	if err != nil {
		t.Fatal(err)
	}
	if in, ok := n.(*objects.Instance); !ok || len(in.Resources) < 5 {
		t.Fatalf("instance: %#v", n)
	}
}

// A device that sends a Send larger than its block size (here 64 bytes,
// the smallest, RFC 7959 §2.2) gets each block acknowledged with 2.31
// Continue and the server decodes the whole body.
func TestBlock1SmallBlocksFromDevice(t *testing.T) {
	s := newServer(t, nil)
	sub := s.Subscribe(16)
	defer sub.Close()
	cc, err := udp.Dial(s.Addr().String(), options.WithBlockwise(true, blockwise.SZX64, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cc.Post(c, "/rd", message.AppLinkFormat, strings.NewReader("</1/0>,</3/0>,</3303/0>"),
		message.Option{ID: message.URIQuery, Value: []byte("ep=block1")},
		message.Option{ID: message.URIQuery, Value: []byte("lwm2m=1.1")})
	if err != nil || resp.Code() != codes.Created {
		t.Fatalf("register: %v %v", resp, err)
	}
	unit := strings.Repeat("x", 1500)
	body := `[{"bn":"/3/0/","n":"0","vs":"` + unit + `"},{"n":"1","vs":"block-model"}]`
	resp, err = cc.Post(c, "/dp", message.AppSenmlJSON, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code() != codes.Changed {
		t.Fatalf("Send answered %v", resp.Code())
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-sub.C:
			if e.Kind != EventSend {
				continue
			}
			if len(e.Records) != 2 || e.Records[0].Value.Text() != unit || e.Records[1].Value.Text() != "block-model" {
				t.Fatalf("records: %d, first %d bytes", len(e.Records), len(e.Records[0].Value.Text()))
			}
			return
		case <-deadline:
			t.Fatal("no Send event")
		}
	}
}
