package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
	"github.com/lwm2md/lwm2md/objects/linkformat"
)

// sequence is one bootstrap of one device: BS-Discover, BS-Read (1.1+),
// BS-Delete, BS-Write of each instance, credential provisioning,
// BS-Finish (Core 1.1 §6.1.3 and §5.2.7; Transport 1.1 §6.1).
type sequence struct {
	s         *Server
	cc        mux.Conn
	ep        string
	cfg       *Configuration
	initiator string
	pct       objects.Format

	step      string // the step running, for the failure's record
	dev       device
	hasOSCORE bool
}

func (q *sequence) run(ctx context.Context) error {
	if err := q.discover(ctx); err != nil {
		return err
	}
	if q.dev.version != "1.0" && q.cfg.readFirst() {
		// A refused BS-Read is reported as a step but does not stop the
		// sequence: the read only informs, the writes decide.
		q.read(ctx)
	}
	for _, p := range q.cfg.deletes(&q.dev, q.hasOSCORE) {
		if err := q.delete(ctx, p); err != nil {
			return err
		}
	}
	q.step = StepWrite
	q.dev.cert = peerCertificate(q.cc)
	pl, err := q.cfg.build(q.ep, &q.dev)
	if err != nil {
		q.event(StepWrite, objects.RootPath, 0, 0, err)
		return err
	}
	f := q.writeFormat()
	for _, w := range pl.writes {
		if err := q.write(ctx, w, f); err != nil {
			return err
		}
	}
	if err := q.s.provision(ctx, q.ep, q.cfg, pl, q.initiator); err != nil {
		q.step = StepProvision
		return err
	}
	return q.finish(ctx)
}

// event publishes the result of one step.
func (q *sequence) event(step string, p objects.Path, code codes.Code, d time.Duration, err error) {
	q.s.events.publish(Event{Kind: EventStep, Endpoint: q.ep, Initiator: q.initiator, Step: step, Path: p, Code: uint8(code), Duration: d, Err: err})
}

// exchange sends one confirmable request to the device and checks that
// the answer has code want; the caller releases the answer.
func (q *sequence) exchange(ctx context.Context, step string, code codes.Code, p objects.Path, want codes.Code, set func(*pool.Message)) (*pool.Message, error) {
	q.step = step
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, q.s.cfg.RequestTimeout)
	defer cancel()
	req := q.cc.AcquireMessage(ctx)
	defer q.cc.ReleaseMessage(req)
	token, err := message.GetToken()
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %s: %w", q.ep, err)
	}
	req.SetType(message.Confirmable)
	req.SetCode(code)
	req.SetToken(token)
	uri := p.String()
	if p.IsRoot() {
		uri = "/"
	}
	if err := req.SetPath(uri); err != nil {
		return nil, fmt.Errorf("bootstrap: %s: %s %s: %w", q.ep, step, p, err)
	}
	if set != nil {
		set(req)
	}
	resp, err := q.cc.Do(req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = ctx.Err()
		}
		se := &StepError{Step: step, Path: p, Err: err}
		q.event(step, p, 0, time.Since(start), se)
		return nil, se
	}
	if resp.Code() != want {
		body, _ := resp.ReadBody()
		se := &StepError{Step: step, Path: p, Code: uint8(resp.Code()), Diag: diagnostic(body)}
		q.cc.ReleaseMessage(resp)
		q.event(step, p, codes.Code(se.Code), time.Since(start), se)
		return nil, se
	}
	q.event(step, p, resp.Code(), time.Since(start), nil)
	return resp, nil
}

// discover sends BS-Discover of / (Core 1.1 §5.2.7.3): the device's
// LwM2M version, its object versions, and the Security and OSCORE
// instances of the Bootstrap-Server account, which have no ssid.
func (q *sequence) discover(ctx context.Context) error {
	resp, err := q.exchange(ctx, StepDiscover, codes.GET, objects.RootPath, codes.Content, func(m *pool.Message) {
		m.SetAccept(message.AppLinkFormat)
	})
	if err != nil {
		return err
	}
	defer q.cc.ReleaseMessage(resp)
	body, err := resp.ReadBody()
	if err == nil {
		err = q.parseDiscover(body)
	}
	if err != nil {
		err = &StepError{Step: StepDiscover, Path: objects.RootPath, Code: uint8(resp.Code()), Err: err}
		q.event(StepDiscover, objects.RootPath, resp.Code(), 0, err)
	}
	return err
}

func (q *sequence) parseDiscover(body []byte) error {
	links, err := linkformat.ParseDiscover(objects.RootPath, body)
	if err != nil {
		return fmt.Errorf("BS-Discover answer: %w", err)
	}
	q.dev = device{version: "1.0", keepSecurity: map[uint16]bool{}, keepOSCORE: map[uint16]bool{}}
	announced := make(map[uint16]string)
	for _, l := range links {
		switch {
		case l.Path.IsRoot() && l.Attributes.Has(linkformat.AttrLwM2M):
			v, err := objects.ParseVersion(l.Attributes.LwM2M)
			if err != nil {
				return fmt.Errorf("BS-Discover answer: lwm2m=%q: %w", l.Attributes.LwM2M, err)
			}
			q.dev.version = v.String()
		case l.Path.Len() == 1 && l.Attributes.Has(linkformat.AttrVer):
			announced[l.Path.Object()] = l.Attributes.Ver
		case l.Path.Len() == 2 && l.Path.Object() == 0 && !l.Attributes.Has(linkformat.AttrSSID):
			q.dev.keepSecurity[l.Path.Instance()] = true
		case l.Path.Len() == 2 && l.Path.Object() == 21:
			q.hasOSCORE = true
			if !l.Attributes.Has(linkformat.AttrSSID) {
				q.dev.keepOSCORE[l.Path.Instance()] = true
			}
		}
	}
	q.dev.models = coreVersions(q.s.cfg.Models, q.dev.version, announced)
	return nil
}

// read sends BS-Read of the Server object (Core 1.1 §5.2.7.2), whose
// accounts the step event reports.
func (q *sequence) read(ctx context.Context) {
	f := q.writeFormat()
	if _, ok := content.RecordCodec(f); !ok {
		f = objects.FormatTLV
	}
	p := objects.NewPath(1)
	resp, err := q.exchange(ctx, StepRead, codes.GET, p, codes.Content, func(m *pool.Message) {
		m.SetAccept(message.MediaType(f))
	})
	if err != nil {
		return
	}
	defer q.cc.ReleaseMessage(resp)
	body, err := resp.ReadBody()
	if err == nil {
		if mt, cfErr := resp.ContentFormat(); cfErr == nil {
			f = objects.Format(mt)
		}
		_, err = content.Decode(f, p, body, q.dev.models)
	}
	if err != nil {
		q.event(StepRead, p, resp.Code(), 0, fmt.Errorf("bootstrap: %s: BS-Read answer: %w", q.ep, err))
	}
}

// delete sends BS-Delete of p (Core 1.1 §5.2.7.5). A 4.04 for a path
// the device does not have counts as deleted.
func (q *sequence) delete(ctx context.Context, p objects.Path) error {
	resp, err := q.exchange(ctx, StepDelete, codes.DELETE, p, codes.Deleted, nil)
	var se *StepError
	if errors.As(err, &se) && se.Code == uint8(codes.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	q.cc.ReleaseMessage(resp)
	return nil
}

// writeFormat is the content format of the BS-Writes: the
// configuration's, else the device's preferred one (pct), when it can
// carry an instance in the device's version; else TLV.
func (q *sequence) writeFormat() objects.Format {
	if f, _ := q.cfg.format(); f != 0 && carriesInstance(f, q.dev.version) {
		return f
	}
	if q.pct != 0 && carriesInstance(q.pct, q.dev.version) {
		return q.pct
	}
	return objects.FormatTLV
}

// carriesInstance reports whether format f can carry an object instance
// for a device of LwM2M version ver.
func carriesInstance(f objects.Format, ver string) bool {
	switch f.Canonical() {
	case objects.FormatTLV, objects.FormatJSON:
		return true
	case objects.FormatSenMLJSON, objects.FormatSenMLCBOR:
		return ver != "1.0"
	case objects.FormatLwM2MCBOR:
		return ver != "1.0" && ver != "1.1"
	}
	return false
}

// write sends one BS-Write (Core 1.1 §5.2.7.4): PUT of the instance.
func (q *sequence) write(ctx context.Context, w write, f objects.Format) error {
	body, err := content.Encode(f, w.path, w.inst, q.dev.models)
	if err != nil {
		err = fmt.Errorf("bootstrap: %s: encode %s in %s: %w", q.ep, w.path, f, err)
		q.step = StepWrite
		q.event(StepWrite, w.path, 0, 0, err)
		return err
	}
	resp, err := q.exchange(ctx, StepWrite, codes.PUT, w.path, codes.Changed, func(m *pool.Message) {
		m.SetContentFormat(message.MediaType(f))
		m.SetBody(bytes.NewReader(body))
	})
	if err != nil {
		return err
	}
	q.cc.ReleaseMessage(resp)
	return nil
}

// finish sends BS-Finish (Core 1.1 §5.2.7.6): POST /bs. The device
// answers 2.04 once it has checked the configuration, 4.06 (or 4.00)
// when it is inconsistent, with its reason as diagnostic.
func (q *sequence) finish(ctx context.Context) error {
	resp, err := q.exchange(ctx, StepFinish, codes.POST, objects.RootPath, codes.Changed, func(m *pool.Message) {
		_ = m.SetPath("/bs")
	})
	if err != nil {
		// The StepError already names / (exchange's path), and it went
		// out with the step event: subscribers read it concurrently, so
		// it must not be changed here.
		return err
	}
	q.cc.ReleaseMessage(resp)
	return nil
}

// diagnostic is a device's diagnostic payload, when it is short text.
func diagnostic(b []byte) string {
	if len(b) == 0 || len(b) > 256 || !utf8.Valid(b) {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func bytesReader(b []byte) io.ReadSeeker { return bytes.NewReader(b) }

func cut(s string, sep byte) (string, string, bool) {
	if i := strings.IndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

func contentCodec(f objects.Format) (objects.Codec, bool) { return content.Codec(f) }
