package server

import (
	"bytes"
	"context"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
)

// The CoAP methods of RFC 8132 that the composite operations use; go-coap
// has no names for them.
const (
	codeFETCH  codes.Code = 5
	codeIPATCH codes.Code = 7
)

// ReadComposite reads several paths of any depth in one request (LwM2M
// Core 1.1 §6.3.1 Read-Composite: FETCH on the root, the paths as a
// multi-path payload). It returns the node of each path the device
// answered; a path it left out (one that does not exist) is absent from
// the map.
func (s *Server) ReadComposite(ctx context.Context, ep string, paths []objects.Path, opts ...Option) (map[objects.Path]objects.Node, error) {
	if len(paths) == 0 {
		return nil, s.fail("read-composite", ep, objects.RootPath, "no path to read")
	}
	recs := make([]objects.Record, len(paths))
	for i, p := range paths {
		if p.IsRoot() {
			return nil, s.fail("read-composite", ep, p, "cannot read the root path")
		}
		recs[i] = objects.Record{Path: p}
	}
	if res, held, err := s.holdIfSleeping(ctx, ep, Request{Op: OpReadComposite, Paths: paths}, opts); held {
		if res == nil {
			return nil, err
		}
		return res.Nodes, err
	}
	c, ctx, cancel, rc, err := s.beginComposite(ctx, "read-composite", ep, opts)
	if err != nil {
		return nil, err
	}
	defer cancel()
	req, err := c.compositeRequest(ctx, codeFETCH, rc, recs)
	if err != nil {
		return nil, c.end(err)
	}
	req.SetAccept(message.MediaType(c.opts.format))
	resp, err := c.exchange(ctx, req)
	if err != nil {
		return nil, c.end(err)
	}
	defer c.cc.ReleaseMessage(resp)
	if err := c.check(resp); err != nil {
		return nil, c.end(err)
	}
	nodes, err := c.decodeComposite(resp, paths)
	return nodes, c.endRead(nil, nodes, err)
}

// WriteComposite writes values at several resource or resource-instance
// paths in one request (LwM2M Core 1.1 §6.3.3 Write-Composite: iPATCH on
// the root). The device applies all of them or none.
func (s *Server) WriteComposite(ctx context.Context, ep string, recs []objects.Record, opts ...Option) error {
	if len(recs) == 0 {
		return s.fail("write-composite", ep, objects.RootPath, "no value to write")
	}
	for _, r := range recs {
		if r.Path.Len() < 3 || r.Value.IsNone() {
			return s.fail("write-composite", ep, r.Path, "Write-Composite needs a value at a resource or resource-instance path")
		}
	}
	if _, held, err := s.holdIfSleeping(ctx, ep, Request{Op: OpWriteComposite, Records: recs}, opts); held {
		return err
	}
	c, ctx, cancel, rc, err := s.beginComposite(ctx, "write-composite", ep, opts)
	if err != nil {
		return err
	}
	defer cancel()
	req, err := c.compositeRequest(ctx, codeIPATCH, rc, recs)
	if err != nil {
		return c.end(err)
	}
	return c.end(c.roundTrip(ctx, req))
}

// beginComposite starts a composite call: the device must be LwM2M 1.1
// or later, and the format one that carries several paths.
func (s *Server) beginComposite(ctx context.Context, op, ep string, opts []Option) (*call, context.Context, context.CancelFunc, objects.RecordCodec, error) {
	c, ctx, cancel, err := s.begin(ctx, op, ep, objects.RootPath, opts)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if c.reg.is10() {
		cancel()
		return nil, nil, nil, nil, c.end(fmt.Errorf("server: %s %s: composite operations need LwM2M 1.1 or later, the device registered %s: %w", op, ep, c.reg.Version, ErrInvalidRequest))
	}
	if !c.opts.forced {
		c.opts.format = c.reg.compositeFormat()
	}
	rc, ok := content.RecordCodec(c.opts.format)
	if !ok {
		cancel()
		return nil, nil, nil, nil, c.end(fmt.Errorf("server: %s %s: content format %s cannot carry several paths: %w", op, ep, c.opts.format, ErrInvalidRequest))
	}
	return c, ctx, cancel, rc, nil
}

// compositeRequest builds the FETCH or iPATCH with recs as its payload.
func (c *call) compositeRequest(ctx context.Context, code codes.Code, rc objects.RecordCodec, recs []objects.Record) (*pool.Message, error) {
	b, err := rc.EncodeRecords(recs, c.models())
	if err != nil {
		return nil, fmt.Errorf("server: %s %s: %w: %w", c.op, c.ep, ErrInvalidRequest, err)
	}
	req, err := c.request(ctx, code, nil)
	if err != nil {
		return nil, err
	}
	req.SetContentFormat(message.MediaType(c.opts.format))
	req.SetBody(bytes.NewReader(b))
	return req, nil
}

// decodeComposite reads the answer's records and builds a node per path.
func (c *call) decodeComposite(resp *pool.Message, paths []objects.Path) (map[objects.Path]objects.Node, error) {
	f := c.opts.format
	if mt, err := resp.ContentFormat(); err == nil {
		f = objects.Format(mt)
	}
	rc, ok := content.RecordCodec(f)
	if !ok {
		return nil, fmt.Errorf("server: %s %s: answer in content format %s, which cannot carry several paths: %w", c.op, c.ep, f, ErrUnsupportedFormat)
	}
	body, err := resp.ReadBody()
	if err != nil {
		return nil, fmt.Errorf("server: %s %s: %w", c.op, c.ep, err)
	}
	recs, err := rc.DecodeRecords(body, c.models())
	if err != nil {
		return nil, fmt.Errorf("server: %s %s: %w", c.op, c.ep, err)
	}
	nodes, err := objects.NodesFromRecords(paths, recs, c.models())
	if err != nil {
		return nil, fmt.Errorf("server: %s %s: %w", c.op, c.ep, err)
	}
	return nodes, nil
}
