package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
)

// The composite operations of LwM2M 1.1 (Core 1.1 §5.4.1 Read-Composite,
// §5.4.3 Write-Composite, §5.5.1 Observe-Composite) and Send (§6.4.6):
// many paths in one multi-path payload (SenML JSON or CBOR, LwM2M JSON,
// and LwM2M CBOR in 1.2).

// recordFormat checks that f is a multi-path format of the client's
// version.
func (c *Client) recordFormat(f objects.Format, code codes.Code) (objects.RecordCodec, error) {
	rc, ok := content.RecordCodec(f)
	if !ok || !supported(c.cfg.Version, f) {
		return nil, Status(code, "content format %v cannot carry several paths in LwM2M %s", f, c.cfg.Version)
	}
	return rc, nil
}

// requestRecords decodes the records of a FETCH or iPATCH payload.
func (c *Client) requestRecords(r *pool.Message) ([]objects.Record, objects.Format, error) {
	cf, err := r.ContentFormat()
	if err != nil {
		return nil, 0, Status(codes.BadRequest, "a composite request needs a Content-Format")
	}
	f := objects.Format(cf)
	rc, err := c.recordFormat(f, codes.UnsupportedMediaType)
	if err != nil {
		return nil, f, err
	}
	body, err := r.ReadBody()
	if err != nil {
		return nil, f, Status(codes.BadRequest, "cannot read the payload: %v", err)
	}
	recs, err := rc.DecodeRecords(body, c.models)
	if err != nil {
		return nil, f, Status(codes.BadRequest, "%v", err)
	}
	return recs, f, nil
}

// fetch answers Read-Composite and Observe-Composite: the paths of the
// payload (records without values) are read, and the values of those that
// exist are answered in the Accept format (the request's format when
// there is none). A path that does not exist is left out; 4.04 when none
// does.
func (c *Client) fetch(r *pool.Message, p objects.Path) answer {
	obs, obsErr := r.Observe()
	op := "read-composite"
	if obsErr == nil {
		op = "observe-composite"
	}
	if !p.IsRoot() {
		return answer{op: op, code: codes.MethodNotAllowed, diag: "composite operations address the root path"}
	}
	recs, f, err := c.requestRecords(r)
	if err != nil {
		return fail(op, err)
	}
	if a, ok := acceptOf(r); ok {
		f = a
	}
	rc, err := c.recordFormat(f, codes.NotAcceptable)
	if err != nil {
		return fail(op, err)
	}
	paths := make([]objects.Path, 0, len(recs))
	for _, rec := range recs {
		paths = append(paths, rec.Path)
	}
	if len(paths) == 0 {
		return answer{op: op, code: codes.BadRequest, diag: "no path to read"}
	}
	vals, err := c.readComposite(paths)
	if err != nil {
		if obsErr == nil && obs == 1 {
			c.cancelObservation(string(r.Token()))
		}
		return fail(op, err)
	}
	body, err := rc.EncodeRecords(vals, c.models)
	if err != nil {
		return fail(op, Status(codes.NotAcceptable, "%v", err))
	}
	a := answer{op: op, code: codes.Content, format: f, body: body}
	if obsErr == nil {
		switch obs {
		case 0:
			seq := c.observe(r.Token(), paths, f, nil, vals)
			a.opts = []message.Option{{ID: message.Observe, Value: observeValue(seq)}}
		case 1:
			c.cancelObservation(string(r.Token()))
		}
	}
	return a
}

// readComposite reads the values under each path, leaving out the paths
// that do not exist; an unreadable path is an error, and so is a list of
// which none exists.
func (c *Client) readComposite(paths []objects.Path) ([]objects.Record, error) {
	recs := make([]objects.Record, 0, len(paths))
	found := false
	for _, p := range paths {
		if p.IsRoot() {
			for _, id := range c.ids {
				if id == 0 || id == 21 {
					continue
				}
				n, err := c.readNode(objects.NewPath(id))
				if err != nil {
					return nil, err
				}
				recs = append(recs, objects.Flatten(objects.NewPath(id), n)...)
			}
			found = true
			continue
		}
		n, err := c.readNode(p)
		var se *StatusError
		if errors.As(err, &se) && se.Code == codes.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		found = true
		recs = append(recs, objects.Flatten(p, n)...)
	}
	if !found {
		return nil, Status(codes.NotFound, "none of the paths exists")
	}
	return recs, nil
}

// ipatch answers Write-Composite: every record writes a single resource
// or a resource instance, as a partial update of its instance. Each
// target is checked (it exists and is writable) before anything is
// written.
func (c *Client) ipatch(r *pool.Message, p objects.Path) answer {
	const op = "write-composite"
	if !p.IsRoot() {
		return answer{op: op, code: codes.MethodNotAllowed, diag: "composite operations address the root path"}
	}
	recs, _, err := c.requestRecords(r)
	if err != nil {
		return fail(op, err)
	}
	type target struct {
		path objects.Path // the instance
		node *objects.Instance
	}
	var order []objects.Path
	byInst := make(map[objects.Path]*objects.Builder)
	for _, rec := range recs {
		if rec.Path.Len() < 3 || rec.Value.IsNone() {
			return fail(op, Status(codes.BadRequest, "%s: Write-Composite needs a value for a resource or resource instance", rec.Path))
		}
		ip := rec.Path.Truncate(2)
		if _, err := c.object(ip); err != nil {
			return fail(op, err)
		}
		if err := c.exists(ip); err != nil {
			return fail(op, err)
		}
		b := byInst[ip]
		if b == nil {
			b = objects.NewBuilder(ip, c.models)
			byInst[ip] = b
			order = append(order, ip)
		}
		if err := b.Add(rec.Path, rec.Value); err != nil {
			return fail(op, Status(codes.BadRequest, "%v", err))
		}
	}
	targets := make([]target, 0, len(order))
	for _, ip := range order {
		n, err := byInst[ip].Node()
		if err != nil {
			return fail(op, Status(codes.BadRequest, "%v", err))
		}
		in := n.(*objects.Instance)
		o := c.objs[ip.Object()]
		for _, res := range in.Resources {
			def := o.def.Resource(res.ID)
			switch {
			case def == nil:
				return fail(op, Status(codes.NotFound, "object %d has no resource %d", o.id, res.ID))
			case !def.Operations.Writable():
				return fail(op, Status(codes.MethodNotAllowed, "resource %s is not writable", ip.Child(res.ID)))
			}
		}
		targets = append(targets, target{path: ip, node: in})
	}
	for _, t := range targets {
		if err := c.writeNode(t.path, t.node, writePartial); err != nil {
			return fail(op, err)
		}
	}
	return answer{op: op, code: codes.Changed}
}

// Send reports the current values under paths to the server (POST /dp,
// LwM2M Core 1.1 §6.4.6), timestamped now, in Config.SendFormat. It needs
// LwM2M 1.1 or later and the Server object's Mute Send set to false.
func (c *Client) Send(ctx context.Context, paths ...objects.Path) error {
	if len(paths) == 0 {
		return fmt.Errorf("client: send: no path")
	}
	recs, err := c.readComposite(paths)
	if err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	now := float64(time.Now().UnixMilli()) / 1000
	for i := range recs {
		recs[i].Time = now
	}
	return c.SendRecords(ctx, recs)
}

// SendRecords sends records of the caller's own (historical values, for
// example) with POST /dp. A format that cannot carry timestamps (LwM2M
// CBOR) gets the records without them.
func (c *Client) SendRecords(ctx context.Context, recs []objects.Record) error {
	if c.cfg.Version == "1.0" {
		return ErrSendMuted
	}
	if v, ok := c.serverValue(23); !ok || v.Bool() {
		return ErrSendMuted
	}
	if c.State() != StateRegistered || c.cc == nil {
		return ErrNotRegistered
	}
	rc, err := c.recordFormat(c.cfg.SendFormat, codes.NotAcceptable)
	if err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	if c.cfg.SendFormat == objects.FormatLwM2MCBOR {
		recs = append([]objects.Record(nil), recs...)
		for i := range recs {
			recs[i].Time = 0
		}
	}
	body, err := rc.EncodeRecords(recs, c.models)
	if err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.exchangeTimeout())
		defer cancel()
	}
	defer c.exchanging()() // queue mode: a Send wakes the client
	resp, err := c.cc.Post(ctx, "/dp", message.MediaType(c.cfg.SendFormat), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	defer c.cc.ReleaseMessage(resp)
	if resp.Code() != codes.Changed {
		return answerError("send", resp)
	}
	c.stats.sends.Add(1)
	c.emit(Event{Kind: EventSent})
	return nil
}
