package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
)

// Block-wise notifications (RFC 7959 §2.4 and §3.4 with RFC 7641): a
// notification too large for one datagram carries the first block of its
// representation (Block2 NUM 0, M 1); the server acknowledges it and
// fetches the others itself, block NUM 1, 2… with requests like the
// Observe but without the Observe option (GET, or FETCH with the paths
// for an Observe-Composite), then decodes the whole as one notification.
//
// go-coap cannot do it: its block-wise layer pairs a Block2 response with
// a request it sent on the same token, and the Observe went out through
// Do, which has forgotten it ("cannot request body without paired
// request"); and given a response with NUM 1 and M 1 to a request of
// ours, it starts over from block 0. So the answers to the block requests
// are taken by the monitor (takeBlock) before go-coap sees them.

// blockFetches are the block requests in progress: token -> the channel
// their answer goes to.
type blockFetches struct {
	n  atomic.Int32 // entries of m, so that the monitor skips the lookup when none
	m  sync.Map
	mu sync.Mutex
	// firsts are the notifications whose blocks are being fetched,
	// token + Observe sequence number, so that the retransmission of one
	// (its ACK was lost) does not fetch them again.
	firsts map[string]bool
}

// blockNotification takes a notification of o carrying Block2. It reports
// whether it did; a block other than the first is not a notification and
// goes the usual way.
func (s *Server) blockNotification(cc *udpClient.Conn, r *pool.Message, o *Observation) bool {
	v, err := r.Options().GetUint32(message.Block2)
	if err != nil {
		return false
	}
	szx, num, more, err := blockwise.DecodeBlockOption(v)
	if err != nil || num != 0 || szx == blockwise.SZXBERT {
		return false
	}
	if !more {
		return s.ingest.enqueue(s, cc, r, o.Endpoint) // the whole in one block
	}
	first, err := copyBody(r)
	if err != nil {
		return false
	}
	seq, _ := r.Observe()
	key := fmt.Sprintf("%s/%d", o.token, seq)
	if r.Type() == message.Confirmable {
		// Acknowledged at once: the fetch takes round trips, and the
		// device would retransmit meanwhile (RFC 7252 §4.2).
		s.emptyACK(cc, r)
	}
	if !s.blocks.start(key) {
		return true // a retransmission of a notification being fetched
	}
	m := copyMessage(cc, r, nil)
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Add(-1)
		defer s.blocks.done(key)
		defer cc.ReleaseMessage(m)
		body, err := s.fetchBlocks(cc, m.Options(), o, first, szx)
		if err != nil {
			s.log.Info("block-wise notification dropped", "ep", o.Endpoint, "path", o.Path.String(), "err", err)
			return
		}
		m.Remove(message.Block2)
		m.Remove(message.Size2)
		m.SetBody(bytes.NewReader(body))
		s.handleResponse(cc, m)
	}()
	return true
}

func (b *blockFetches) start(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.firsts[key] {
		return false
	}
	if b.firsts == nil {
		b.firsts = make(map[string]bool)
	}
	b.firsts[key] = true
	return true
}

func (b *blockFetches) done(key string) {
	b.mu.Lock()
	delete(b.firsts, key)
	b.mu.Unlock()
}

// errBlockChanged: the representation changed between two blocks (their
// ETags differ, RFC 7959 §2.4); the device's next notification carries
// the new one.
var errBlockChanged = errors.New("the representation changed during the block-wise transfer")

// fetchBlocks fetches the blocks after first, which had the options
// opts, and returns the whole body, bounded by MaxMessageSize.
func (s *Server) fetchBlocks(cc *udpClient.Conn, opts message.Options, o *Observation, first []byte, szx blockwise.SZX) ([]byte, error) {
	etag, _ := opts.GetBytes(message.ETag)
	etag = append([]byte(nil), etag...)
	ctx, cancel := context.WithTimeout(cc.Context(), s.cfg.RequestTimeout)
	defer cancel()
	body := append(make([]byte, 0, 2*len(first)), first...)
	for {
		if len(body) > s.cfg.MaxMessageSize {
			return nil, fmt.Errorf("server: notification %s %s: over %d bytes", o.Endpoint, o.Path, s.cfg.MaxMessageSize)
		}
		num := int64(len(body)) / szx.Size()
		resp, err := s.fetchBlock(ctx, cc, o, num, szx)
		if err != nil {
			return nil, err
		}
		more, next, err := s.appendBlock(resp, o, etag, &body, num, szx)
		cc.ReleaseMessage(resp)
		if err != nil || !more {
			return body, err
		}
		szx = next
	}
}

// appendBlock checks the answer to the request of block num and appends
// its payload to body; more tells whether blocks follow, and next is the
// block size the device answered with, which may be smaller than asked
// (RFC 7959 §2.3).
func (s *Server) appendBlock(resp *pool.Message, o *Observation, etag []byte, body *[]byte, num int64, szx blockwise.SZX) (bool, blockwise.SZX, error) {
	if resp.Code() != codes.Content {
		return false, 0, fmt.Errorf("server: notification %s %s: block %d answered %v", o.Endpoint, o.Path, num, resp.Code())
	}
	if tag, _ := resp.Options().GetBytes(message.ETag); !bytes.Equal(tag, etag) {
		return false, 0, fmt.Errorf("server: notification %s %s: %w", o.Endpoint, o.Path, errBlockChanged)
	}
	v, err := resp.Options().GetUint32(message.Block2)
	if err != nil {
		return false, 0, fmt.Errorf("server: notification %s %s: block %d answered without Block2", o.Endpoint, o.Path, num)
	}
	gotSZX, gotNum, more, err := blockwise.DecodeBlockOption(v)
	if err != nil || gotSZX > szx || gotSZX == blockwise.SZXBERT || gotNum*gotSZX.Size() != num*szx.Size() {
		return false, 0, fmt.Errorf("server: notification %s %s: block %d answered with Block2 %#x", o.Endpoint, o.Path, num, v)
	}
	part, err := resp.ReadBody()
	if err != nil {
		return false, 0, err
	}
	if more && int64(len(part)) != gotSZX.Size() {
		return false, 0, fmt.Errorf("server: notification %s %s: block %d has %d bytes", o.Endpoint, o.Path, num, len(part))
	}
	*body = append(*body, part...)
	return more, gotSZX, nil
}

// fetchBlock requests block num of o's representation and returns the
// answer, which the monitor took (takeBlock).
func (s *Server) fetchBlock(ctx context.Context, cc *udpClient.Conn, o *Observation, num int64, szx blockwise.SZX) (*pool.Message, error) {
	token, err := message.GetToken()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := s.blockRequest(ctx, cc, o, token, num, szx)
	if err != nil {
		return nil, err
	}
	ch := make(chan *pool.Message, 1)
	s.blocks.m.Store(string(token), ch)
	s.blocks.n.Add(1)
	defer func() {
		s.blocks.m.Delete(string(token))
		s.blocks.n.Add(-1)
	}()
	done := make(chan struct{})
	go func() {
		// go-coap sends the request and retransmits it (RFC 7252 §4.2)
		// until the answer, which it never sees: cancel ends it.
		defer close(done)
		if resp, err := cc.Do(req); err == nil {
			cc.ReleaseMessage(resp)
		}
		cc.ReleaseMessage(req)
	}()
	defer func() { cancel(); <-done }()
	select {
	case resp := <-ch:
		return resp, nil
	case <-done:
		return nil, fmt.Errorf("server: notification %s %s: block %d: %w", o.Endpoint, o.Path, num, ErrTimeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("server: notification %s %s: block %d: %w", o.Endpoint, o.Path, num, ctx.Err())
	}
}

// blockRequest is the request of block num: the Observe request without
// Observe (RFC 7959 §3.4), with Block2.
func (s *Server) blockRequest(ctx context.Context, cc *udpClient.Conn, o *Observation, token message.Token, num int64, szx blockwise.SZX) (*pool.Message, error) {
	s.mu.RLock()
	reg := o.sess.reg
	s.mu.RUnlock()
	if reg == nil {
		return nil, fmt.Errorf("server: notification %s %s: %w", o.Endpoint, o.Path, ErrNotRegistered)
	}
	block, err := blockwise.EncodeBlockOption(szx, num, false)
	if err != nil {
		return nil, err
	}
	req := cc.AcquireMessage(ctx)
	req.SetType(message.Confirmable)
	req.SetToken(token)
	root := strings.TrimSuffix(reg.Root, "/")
	if o.Composite {
		rc, ok := content.RecordCodec(o.Format)
		if !ok {
			cc.ReleaseMessage(req)
			return nil, fmt.Errorf("server: notification %s: format %s: %w", o.Endpoint, o.Format, ErrUnsupportedFormat)
		}
		recs := make([]objects.Record, len(o.Paths))
		for i, p := range o.Paths {
			recs[i] = objects.Record{Path: p}
		}
		b, err := rc.EncodeRecords(recs, s.Models(reg))
		if err != nil {
			cc.ReleaseMessage(req)
			return nil, err
		}
		req.SetCode(codeFETCH)
		req.SetContentFormat(message.MediaType(o.Format))
		req.SetBody(bytes.NewReader(b))
		root += "/"
	} else {
		req.SetCode(codes.GET)
		root += o.Path.String()
	}
	if err := req.SetPath(root); err != nil {
		cc.ReleaseMessage(req)
		return nil, err
	}
	if o.accept || o.Composite {
		req.SetAccept(message.MediaType(o.Format))
	}
	req.SetOptionUint32(message.Block2, block)
	return req, nil
}

// takeBlock hands an answer to a block request in progress to it, before
// go-coap's block-wise layer; a confirmable (separate) answer is
// acknowledged.
func (s *Server) takeBlock(cc *udpClient.Conn, r *pool.Message) bool {
	if s.blocks.n.Load() == 0 {
		return false
	}
	v, ok := s.blocks.m.Load(string(r.Token()))
	if !ok {
		return false
	}
	body, err := copyBody(r)
	if err != nil {
		return false
	}
	if r.Type() == message.Confirmable {
		s.emptyACK(cc, r)
	}
	m := copyMessage(cc, r, body)
	select {
	case v.(chan *pool.Message) <- m:
	default: // a duplicate
		cc.ReleaseMessage(m)
	}
	return true
}
