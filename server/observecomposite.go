package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/pool"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
)

// ObserveComposite observes several paths of any depth in one observation
// (LwM2M Core 1.1 §5.5.1 Observe-Composite: FETCH on the root with Observe
// 0, the paths as a multi-path payload) and returns the observation and
// the current value of each path the device answered. Its notifications
// carry every path again and arrive as EventNotification with Nodes (and
// Records). The format is one that carries several paths: WithFormat, or
// the registration's composite default (as ReadComposite). Cancel it with
// CancelObservation (a FETCH with Observe 1, §5.5.2) or ForgetObservation.
func (s *Server) ObserveComposite(ctx context.Context, ep string, paths []objects.Path, opts ...Option) (*Observation, map[objects.Path]objects.Node, error) {
	const op = "observe-composite"
	if len(paths) == 0 {
		return nil, nil, s.fail(op, ep, objects.RootPath, "no path to observe")
	}
	for _, p := range paths {
		if p.IsRoot() {
			return nil, nil, s.fail(op, ep, p, "cannot observe the root path")
		}
	}
	paths = append([]objects.Path(nil), paths...)
	if res, held, err := s.holdIfSleeping(ctx, ep, Request{Op: OpObserveComposite, Paths: paths}, opts); held {
		if res == nil {
			return nil, nil, err
		}
		return res.Observation, res.Nodes, err
	}
	c, ctx, cancel, rc, err := s.beginComposite(ctx, op, ep, opts)
	if err != nil {
		return nil, nil, err
	}
	defer cancel()
	token, err := message.GetToken()
	if err != nil {
		return nil, nil, c.end(err)
	}
	o := &Observation{
		Endpoint: ep, RegistrationID: c.reg.ID, Path: objects.RootPath, Token: hex.EncodeToString(token),
		Composite: true, Paths: paths, Format: c.opts.format, Started: time.Now(),
		token: string(token), sess: c.sess, addr: c.reg.Addr, accept: true,
	}
	// Filed before the request goes out, so that a notification racing
	// the answer finds its observation.
	if !s.addObservation(o) {
		return nil, nil, c.end(fmt.Errorf("server: %s %s: %w", op, ep, ErrNotRegistered))
	}
	req, err := c.observeCompositeRequest(ctx, rc, token, paths, 0)
	if err != nil {
		s.removeObservation(o)
		return nil, nil, c.end(err)
	}
	resp, err := c.exchange(ctx, req)
	if err != nil {
		s.removeObservation(o)
		return nil, nil, c.end(err)
	}
	defer c.cc.ReleaseMessage(resp)
	if err := c.check(resp); err != nil {
		s.removeObservation(o)
		return nil, nil, c.end(err)
	}
	seq, seqErr := resp.Observe()
	nodes, err := c.decodeComposite(resp, paths)
	if seqErr != nil || err != nil {
		// The device answered without Observe (RFC 7641 §3.2: it does
		// not observe) or with values that cannot be read: forget the
		// observation, so that a notification, if any comes, gets RST.
		s.removeObservation(o)
		if err == nil {
			err = fmt.Errorf("server: %s %s: %w", op, ep, ErrNotObserved)
		}
		return nil, nodes, c.end(err)
	}
	s.established(o, seq)
	return o, nodes, c.endRead(nil, nodes, nil)
}

// cancelComposite cancels an Observe-Composite actively (LwM2M Core 1.1
// §5.5.2 Cancel Observation-Composite): a FETCH with Observe 1 on its
// token, carrying its paths again. The observation is forgotten whatever
// the device answers.
func (s *Server) cancelComposite(ctx context.Context, o *Observation) error {
	defer s.removeObservation(o)
	c, ctx, cancel, rc, err := s.beginComposite(ctx, "cancel-observation", o.Endpoint, []Option{WithFormat(o.Format)})
	if err != nil {
		return err
	}
	defer cancel()
	req, err := c.observeCompositeRequest(ctx, rc, []byte(o.token), o.Paths, 1)
	if err != nil {
		return c.end(err)
	}
	return c.end(c.roundTrip(ctx, req))
}

// observeCompositeRequest builds the FETCH of an Observe-Composite
// (observe 0) or of its cancellation (observe 1): on token, the paths
// as records without values, answered in the same format.
func (c *call) observeCompositeRequest(ctx context.Context, rc objects.RecordCodec, token message.Token, paths []objects.Path, observe uint32) (*pool.Message, error) {
	recs := make([]objects.Record, len(paths))
	for i, p := range paths {
		recs[i] = objects.Record{Path: p}
	}
	b, err := rc.EncodeRecords(recs, c.models())
	if err != nil {
		return nil, fmt.Errorf("server: %s %s: %w: %w", c.op, c.ep, ErrInvalidRequest, err)
	}
	req, err := c.request(ctx, codeFETCH, token)
	if err != nil {
		return nil, err
	}
	req.SetObserve(observe)
	req.SetContentFormat(message.MediaType(c.opts.format))
	req.SetAccept(message.MediaType(c.opts.format))
	req.SetBody(bytes.NewReader(b))
	return req, nil
}

// decodeCompositeNotification decodes a notification of an
// Observe-Composite: the records of every path, and a node per observed
// path built from the newest record of each resource (a notification
// with history, LwM2M 1.2 hqmax, may carry several timestamped values of
// one resource).
func decodeCompositeNotification(paths []objects.Path, f objects.Format, body []byte, m objects.Models) (map[objects.Path]objects.Node, []objects.Record, error) {
	rc, ok := content.RecordCodec(f)
	if !ok {
		return nil, nil, fmt.Errorf("content format %s cannot carry several paths: %w", f, ErrUnsupportedFormat)
	}
	recs, err := rc.DecodeRecords(body, m)
	if err != nil {
		return nil, nil, err
	}
	nodes, err := objects.NodesFromRecords(paths, newestRecords(recs), m)
	if err != nil {
		return nil, nil, err
	}
	return nodes, recs, nil
}

// newestRecords keeps, in order of first appearance, the newest record of
// each path.
func newestRecords(recs []objects.Record) []objects.Record {
	at := make(map[objects.Path]int, len(recs))
	out := make([]objects.Record, 0, len(recs))
	for _, r := range recs {
		i, ok := at[r.Path]
		switch {
		case !ok:
			at[r.Path] = len(out)
			out = append(out, r)
		case r.Time >= out[i].Time:
			out[i] = r
		}
	}
	return out
}
