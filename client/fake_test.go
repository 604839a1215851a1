package client

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpServer "github.com/plgd-dev/go-coap/v3/udp/server"
)

// fakeServer is a minimal LwM2M server on go-coap for what the lwm2md
// server does not offer (yet): chosen error answers to Register and
// Update, and the composite operations (FETCH, iPATCH) sent over the
// client's association.
type fakeServer struct {
	srv  *udpServer.Server
	addr string

	mu            sync.Mutex
	registerCodes []codes.Code // answers to the next Registers; 2.01 after them
	updateCode    codes.Code   // answer to Updates; 0 is 2.04
	registers     []time.Time
	queries       [][]string
	updates       int
	deregisters   int
	cc            *udpClient.Conn
	notes         []*pool.Message
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	l, err := coapNet.NewListenUDP("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.LocalAddr().String()
	f.srv = udp.NewServer(options.WithHandlerFunc(f.handle), options.WithErrors(func(error) {}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.srv.Serve(l)
	}()
	t.Cleanup(func() {
		f.srv.Stop()
		<-done
	})
	return f
}

func (f *fakeServer) handle(w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message) {
	if r.Code() >= codes.Created {
		// A notification of an observation made with FETCH.
		c := f.srvMessage(r)
		f.mu.Lock()
		f.notes = append(f.notes, c)
		f.mu.Unlock()
		return
	}
	p, _ := r.Options().Path()
	q, _ := r.Queries()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case p == "/rd" && r.Code() == codes.POST:
		f.registers = append(f.registers, time.Now())
		f.queries = append(f.queries, q)
		f.cc = w.Conn()
		code := codes.Created
		if len(f.registerCodes) > 0 {
			code, f.registerCodes = f.registerCodes[0], f.registerCodes[1:]
		}
		opts := []message.Option{}
		if code == codes.Created {
			id := strconv.Itoa(len(f.registers))
			opts = append(opts, message.Option{ID: message.LocationPath, Value: []byte("rd")}, message.Option{ID: message.LocationPath, Value: []byte(id)})
		}
		_ = w.SetResponse(code, message.TextPlain, nil, opts...)
	case len(p) > 4 && p[:4] == "/rd/" && r.Code() == codes.POST:
		f.updates++
		code := f.updateCode
		if code == 0 {
			code = codes.Changed
		}
		_ = w.SetResponse(code, message.TextPlain, nil)
	case len(p) > 4 && p[:4] == "/rd/" && r.Code() == codes.DELETE:
		f.deregisters++
		_ = w.SetResponse(codes.Deleted, message.TextPlain, nil)
	default:
		_ = w.SetResponse(codes.NotFound, message.TextPlain, nil)
	}
}

// srvMessage copies a message the handler does not own.
func (f *fakeServer) srvMessage(r *pool.Message) *pool.Message {
	c := pool.NewMessage(context.Background())
	_ = r.Clone(c)
	return c
}

func (f *fakeServer) conn() *udpClient.Conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cc
}

func (f *fakeServer) registerCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.registers)
}

func (f *fakeServer) notifications() []*pool.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*pool.Message(nil), f.notes...)
}

// request sends a request to the registered client and returns the
// answer's code, content format and payload.
func (f *fakeServer) request(t *testing.T, code codes.Code, p string, token string, cf, accept int, observe int, body []byte) (codes.Code, int, []byte, *pool.Message) {
	t.Helper()
	cc := f.conn()
	if cc == nil {
		t.Fatal("no client registered")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := cc.AcquireMessage(ctx)
	defer cc.ReleaseMessage(req)
	req.SetType(message.Confirmable)
	req.SetCode(code)
	req.SetToken(message.Token(token))
	if p != "/" {
		if err := req.SetPath(p); err != nil {
			t.Fatal(err)
		}
	}
	if cf >= 0 {
		req.SetContentFormat(message.MediaType(cf))
		req.SetBody(bytes.NewReader(body))
	}
	if accept >= 0 {
		req.SetAccept(message.MediaType(accept))
	}
	if observe >= 0 {
		req.SetObserve(uint32(observe))
	}
	resp, err := cc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.ReleaseMessage(resp)
	got, _ := resp.ReadBody()
	mt, err := resp.ContentFormat()
	rcf := -1
	if err == nil {
		rcf = int(mt)
	}
	return resp.Code(), rcf, got, f.srvMessage(resp)
}
