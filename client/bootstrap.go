package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
	"github.com/lwm2md/lwm2md/objects/linkformat"
)

// ErrBootstrapFailed: client-initiated bootstrap did not end with an
// accepted BS-Finish (or a usable Bootstrap-Pack) after every attempt.
var ErrBootstrapFailed = errors.New("client: bootstrap failed")

// DefaultBootstrapTimeout bounds one bootstrap attempt: from the
// Bootstrap-Request to BS-Finish.
const DefaultBootstrapTimeout = 60 * time.Second

// NewBootstrapSecurity returns the Security object (0) with one
// Bootstrap-Server account (instance 0, NoSec): the factory state of a
// device that bootstraps.
func NewBootstrapSecurity(uri string) *Object {
	return lenient(NewObject(0, "", objects.Instance{ID: 0, Resources: []objects.Resource{
		single(0, str(uri)),
		single(1, objects.BooleanValue(true)),
		single(2, integer(3)),
		single(3, objects.OpaqueValue(nil)),
		single(4, objects.OpaqueValue(nil)),
		single(5, objects.OpaqueValue(nil)),
	}}))
}

// bsConn is the client's association with its Bootstrap-Server.
type bsConn struct {
	sess     *session
	cc       *udpClient.Conn
	finished chan error // BS-Finish arrived: nil when accepted
	initial  bool       // a client-initiated bootstrap is waiting for BS-Finish
	// gotFinish: the attempt ended on a BS-Finish, accepted or refused,
	// whose answer go-coap has still to write. Set and read by the
	// goroutine of bootstrapOnce only.
	gotFinish bool
}

// bsState guards the client's bootstrap association.
type bsState struct {
	mu   sync.Mutex
	conn *bsConn
}

// bootstrapAccount returns the Security instance of the Bootstrap-Server
// account and its URI.
func (c *Client) bootstrapAccount() (uint16, string, bool) {
	sec := c.objs[0]
	for _, id := range sec.Instances() {
		if bs, _ := sec.Get(objects.NewPath(0, id, 1)); bs.Bool() {
			uri, _ := sec.Get(objects.NewPath(0, id, 0))
			return id, uri.Str(), true
		}
	}
	return 0, "", false
}

// protected reports whether instance p (/o/i) belongs to the
// Bootstrap-Server account: its Security instance and the OSCORE
// instance that instance links to. BS-Delete leaves them (Core 1.1
// §5.2.7.5, Core 1.2 §5.2.7.5).
func (c *Client) protected(p objects.Path) bool {
	id, _, ok := c.bootstrapAccount()
	if !ok {
		return false
	}
	switch p.Object() {
	case 0:
		return p.Instance() == id
	case 21:
		if v, ok := c.objs[0].Get(objects.NewPath(0, id, 17)); ok {
			return v.Objlnk().Object == 21 && v.Objlnk().Instance == p.Instance()
		}
	}
	return false
}

// bootstrap runs client-initiated bootstrap (Core 1.1 §6.1.3, Transport
// 1.1 §6.1): Bootstrap-Request, then the Bootstrap-Server's requests until
// BS-Finish; or, for an LwM2M 1.2 client with Config.BootstrapPack, one
// Bootstrap-Pack-Request. Attempts follow Config.Retry's Count and Timer.
func (c *Client) bootstrap(ctx context.Context) error {
	_, uri, ok := c.bootstrapAccount()
	if !ok {
		return fmt.Errorf("client: %s: no LwM2M server account and no Bootstrap-Server account", c.cfg.Endpoint)
	}
	addr, err := serverAddress(uri)
	if err != nil {
		return err
	}
	host := ""
	if u, err := url.Parse(uri); err == nil && u.Scheme == "coaps" {
		if err := c.cfg.DTLS.check(uri); err != nil {
			return fmt.Errorf("client: Bootstrap-Server %s: %w", uri, err)
		}
		host = u.Hostname()
	}
	factory := c.cfg.DTLS // the bootstrap credential, kept for a later bootstrap
	pol := c.retryPolicy()
	for attempt := 1; ; attempt++ {
		c.cfg.DTLS = factory
		err = c.bootstrapOnce(ctx, addr, host)
		if err == nil {
			c.emit(Event{Kind: EventBootstrapped})
			c.dtlsFromSecurity()
			return c.account()
		}
		c.emit(Event{Kind: EventBootstrapFailed, Err: err})
		c.log.Info("bootstrap failed", "err", err, "attempt", attempt)
		if attempt >= pol.Count || ctx.Err() != nil {
			return fmt.Errorf("%w after %d attempts: %w", ErrBootstrapFailed, attempt, err)
		}
		t := time.NewTimer(backoff(pol.Timer, attempt-1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %w", ErrBootstrapFailed, ctx.Err())
		}
	}
}

// bootstrapOnce is one attempt over a fresh association.
func (c *Client) bootstrapOnce(ctx context.Context, addr *net.UDPAddr, dtlsHost string) error {
	timeout := c.cfg.BootstrapTimeout
	if timeout <= 0 {
		timeout = DefaultBootstrapTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var sess *session
	var err error
	if dtlsHost != "" {
		sess, err = newDTLSSession(ctx, addr, c.laddr, c.cfg, dtlsHost, c.faults, c.transportError)
	} else {
		sess, err = newSession(addr, c.laddr, c.cfg.MaxMessageSize, c.faults, c.transportError)
	}
	if err != nil {
		return err
	}
	bc := &bsConn{sess: sess, finished: make(chan error, 1), initial: true}
	bc.cc = dialCoAP(sess, c.cfg, c.bsHandle, func(*udpClient.Conn, *pool.Message) (bool, error) { return false, nil }, c.transportError)
	c.bs.mu.Lock()
	old := c.bs.conn
	c.bs.conn = bc
	c.bs.mu.Unlock()
	if old != nil {
		old.close()
	}
	if c.cfg.BootstrapPack && c.cfg.Version == "1.2" {
		err = c.bootstrapPack(ctx, bc)
	} else {
		err = c.bootstrapRequest(ctx, bc)
	}
	c.bs.mu.Lock()
	bc.initial = false
	c.bs.mu.Unlock()
	switch {
	case err != nil && !bc.gotFinish:
		c.dropBootstrap(bc)
	case err != nil || !c.cfg.KeepBootstrap:
		// The answer to BS-Finish (2.04, or 4.06 when the configuration
		// is refused) is written by go-coap after the handler that
		// signalled the end has returned: the association stays for one
		// exchange more, so that the answer (and the answer to a
		// retransmitted BS-Finish) goes out. Closing at once lost the
		// 4.06 under load, and the Bootstrap-Server saw a timeout instead
		// of the device's refusal.
		time.AfterFunc(c.exchangeTimeout(), func() { c.dropBootstrap(bc) })
	}
	return err
}

// dropBootstrap closes bc unless another association replaced it.
func (c *Client) dropBootstrap(bc *bsConn) {
	c.bs.mu.Lock()
	if c.bs.conn != bc {
		c.bs.mu.Unlock()
		return
	}
	c.bs.conn = nil
	c.bs.mu.Unlock()
	bc.close()
}

func (bc *bsConn) close() {
	_ = bc.cc.Close()
	<-bc.sess.Done()
}

// closeBootstrap ends the association with the Bootstrap-Server (Close).
func (c *Client) closeBootstrap() {
	c.bs.mu.Lock()
	bc := c.bs.conn
	c.bs.conn = nil
	c.bs.mu.Unlock()
	if bc != nil {
		bc.close()
	}
}

// bootstrapRequest sends POST /bs?ep=..(&pct=..) and waits for BS-Finish.
func (c *Client) bootstrapRequest(ctx context.Context, bc *bsConn) error {
	req, err := bc.cc.NewPostRequest(ctx, "/bs", message.TextPlain, nil)
	if err != nil {
		return fmt.Errorf("client: bootstrap-request: %w", err)
	}
	req.AddQuery("ep=" + c.cfg.Endpoint)
	if c.cfg.Version != "1.0" {
		// Core 1.1 §5.2.7.1: the preferred content format of the writes.
		req.AddQuery(fmt.Sprintf("pct=%d", c.cfg.DefaultFormat))
	}
	resp, err := bc.cc.Do(req)
	bc.cc.ReleaseMessage(req)
	if err != nil {
		return fmt.Errorf("client: bootstrap-request: %w", err)
	}
	code := resp.Code()
	if code != codes.Changed {
		err := answerError("bootstrap-request", resp)
		bc.cc.ReleaseMessage(resp)
		return err
	}
	bc.cc.ReleaseMessage(resp)
	select {
	case err := <-bc.finished:
		bc.gotFinish = true
		return err
	case <-ctx.Done():
		return fmt.Errorf("client: bootstrap: no BS-Finish: %w", ctx.Err())
	}
}

// bootstrapPack sends a Bootstrap-Pack-Request (LwM2M 1.2: GET
// /bspack?ep=..) and applies the pack as a BS-Delete of / followed by
// the writes of every instance it holds, checked like a BS-Finish.
func (c *Client) bootstrapPack(ctx context.Context, bc *bsConn) error {
	req, err := bc.cc.NewGetRequest(ctx, "/bspack")
	if err != nil {
		return fmt.Errorf("client: bootstrap-pack-request: %w", err)
	}
	req.AddQuery("ep=" + c.cfg.Endpoint)
	req.SetAccept(message.MediaType(objects.FormatSenMLCBOR))
	resp, err := bc.cc.Do(req)
	bc.cc.ReleaseMessage(req)
	if err != nil {
		return fmt.Errorf("client: bootstrap-pack-request: %w", err)
	}
	defer bc.cc.ReleaseMessage(resp)
	if resp.Code() != codes.Content {
		return answerError("bootstrap-pack-request", resp)
	}
	f := objects.FormatSenMLCBOR
	if cf, err := resp.ContentFormat(); err == nil {
		f = objects.Format(cf)
	}
	body, err := resp.ReadBody()
	if err != nil {
		return fmt.Errorf("client: bootstrap-pack: %w", err)
	}
	rc, ok := content.RecordCodec(f)
	if !ok || !supported(c.cfg.Version, f) {
		return fmt.Errorf("client: bootstrap-pack: content format %v cannot carry a pack", f)
	}
	recs, err := rc.DecodeRecords(body, c.models)
	if err != nil {
		return fmt.Errorf("client: bootstrap-pack: %w", err)
	}
	var roots []objects.Path
	for _, r := range recs {
		if r.Path.Len() < 3 {
			return fmt.Errorf("client: bootstrap-pack: record %s is not a resource", r.Path)
		}
		if root := r.Path.Truncate(2); !slices.Contains(roots, root) {
			roots = append(roots, root)
		}
	}
	nodes, err := objects.NodesFromRecords(roots, recs, c.models)
	if err != nil {
		return fmt.Errorf("client: bootstrap-pack: %w", err)
	}
	for _, p := range roots {
		if c.protected(p) {
			return fmt.Errorf("client: bootstrap-pack: %s would overwrite the Bootstrap-Server account", p)
		}
	}
	if err := c.bsDeletePath(objects.RootPath); err != nil {
		return fmt.Errorf("client: bootstrap-pack: %w", err)
	}
	for _, p := range roots {
		in, ok := nodes[p].(*objects.Instance)
		if !ok {
			return fmt.Errorf("client: bootstrap-pack: %s is not an instance", p)
		}
		if err := c.bsPutInstance(p.Object(), *in); err != nil {
			return fmt.Errorf("client: bootstrap-pack: %w", err)
		}
	}
	return c.bsCheck(true)
}

// bsHandle answers the Bootstrap-Server's requests (Core 1.1 §5.2.7):
// BS-Discover and BS-Read (GET), BS-Write (PUT), BS-Delete (DELETE) and
// BS-Finish (POST /bs).
func (c *Client) bsHandle(w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message) {
	code := r.Code()
	if r.Type() == message.Reset || code == codes.Empty || code >= 32 {
		return
	}
	var a answer
	var p objects.Path
	raw, _ := r.Options().Path()
	switch {
	case code == codes.POST && (raw == "/bs" || raw == "bs"):
		a = c.bsFinish()
	default:
		var err error
		if p, err = requestPath(r); err != nil {
			a = answer{op: "bootstrap", code: codes.BadRequest, diag: err.Error()}
			break
		}
		switch code {
		case codes.GET:
			if f, ok := acceptOf(r); ok && f == objects.FormatLinkFormat {
				a = c.bsDiscover(p)
			} else {
				a = c.bsRead(r, p)
			}
		case codes.PUT:
			a = c.bsWrite(r, p)
		case codes.DELETE:
			a = c.bsDelete(p)
		default:
			a = answer{op: "bootstrap", code: codes.MethodNotAllowed, diag: "not a Bootstrap Interface operation"}
		}
	}
	c.reply(w, a)
	c.stats.requests.Add(1)
	c.emit(Event{Kind: EventRequest, Op: a.op, Path: p, Code: a.code})
}

// bsDiscover answers BS-Discover of / or of an object (Core 1.1
// §5.2.7.3): the enabler version on the root, each object (with ver
// when not 1.0) and instance; Security instances of LwM2M servers carry
// ssid and uri, Server instances ssid, OSCORE instances the ssid of the
// Security instance that links them. The Bootstrap-Server account's
// instances carry neither.
func (c *Client) bsDiscover(p objects.Path) answer {
	const op = "bootstrap-discover"
	if p.Len() > 1 {
		return answer{op: op, code: codes.BadRequest, diag: "BS-Discover targets / or an object"}
	}
	ids := c.ids
	if p.Len() == 1 {
		if c.objs[p.Object()] == nil {
			return answer{op: op, code: codes.NotFound, diag: fmt.Sprintf("no object %d", p.Object())}
		}
		ids = []uint16{p.Object()}
	}
	var links []linkformat.DiscoverLink
	if p.IsRoot() {
		links = append(links, linkformat.DiscoverLink{Path: objects.RootPath,
			Attributes: linkformat.Attributes{Set: linkformat.AttrLwM2M, LwM2M: c.cfg.Version}})
	}
	oscoreSSID := c.oscoreSSIDs()
	for _, id := range ids {
		o := c.objs[id]
		insts := o.Instances()
		if len(insts) == 0 || o.def.Version != "1.0" {
			l := linkformat.DiscoverLink{Path: objects.NewPath(id)}
			if o.def.Version != "1.0" {
				l.Attributes = linkformat.Attributes{Set: linkformat.AttrVer, Ver: o.def.Version}
			}
			links = append(links, l)
		}
		for _, i := range insts {
			ip := objects.NewPath(id, i)
			l := linkformat.DiscoverLink{Path: ip}
			switch {
			case c.protected(ip):
			case id == 0:
				ssid, okS := o.Get(ip.Child(10))
				uri, okU := o.Get(ip.Child(0))
				if okS {
					l.Attributes.Set |= linkformat.AttrSSID
					l.Attributes.SSID = uint16(ssid.Int())
				}
				if okU {
					l.Attributes.Set |= linkformat.AttrURI
					l.Attributes.URI = uri.Str()
				}
			case id == 1:
				if ssid, ok := o.Get(ip.Child(0)); ok {
					l.Attributes = linkformat.Attributes{Set: linkformat.AttrSSID, SSID: uint16(ssid.Int())}
				}
			case id == 21:
				if ssid, ok := oscoreSSID[i]; ok {
					l.Attributes = linkformat.Attributes{Set: linkformat.AttrSSID, SSID: ssid}
				}
			}
			links = append(links, l)
		}
	}
	return answer{op: op, code: codes.Content, format: objects.FormatLinkFormat, body: linkformat.EncodeDiscover(links)}
}

// oscoreSSIDs maps OSCORE instances to the Short Server ID of the
// Security instance that links them.
func (c *Client) oscoreSSIDs() map[uint16]uint16 {
	out := make(map[uint16]uint16)
	sec := c.objs[0]
	for _, id := range sec.Instances() {
		link, ok := sec.Get(objects.NewPath(0, id, 17))
		ssid, okS := sec.Get(objects.NewPath(0, id, 10))
		if ok && okS && link.Objlnk().Object == 21 {
			out[link.Objlnk().Instance] = uint16(ssid.Int())
		}
	}
	return out
}

// bsRead answers BS-Read (Core 1.1 §5.2.7.2, LwM2M 1.1+), which may only
// target the Server and Access Control objects: 4.01 for others.
func (c *Client) bsRead(r *pool.Message, p objects.Path) answer {
	const op = "bootstrap-read"
	if c.cfg.Version == "1.0" {
		return answer{op: op, code: codes.MethodNotAllowed, diag: "LwM2M 1.0 has no BS-Read"}
	}
	if p.IsRoot() || (p.Object() != 1 && p.Object() != 2) {
		return answer{op: op, code: codes.Unauthorized, diag: "BS-Read targets the Server or Access Control object"}
	}
	n, err := c.readNode(p)
	if err != nil {
		return fail(op, err)
	}
	f, ok := acceptOf(r)
	if !ok {
		f = c.defaultFormat(p, n)
	}
	body, err := c.encode(f, p, n)
	if err != nil {
		return fail(op, err)
	}
	return answer{op: op, code: codes.Content, format: f, body: body}
}

// bsWrite answers BS-Write (Core 1.1 §5.2.7.4): PUT of an object (1.0),
// an instance or a resource, creating the instance when it is absent.
// Unlike a server's Write it ignores the access rights (Security and
// OSCORE have none): the Bootstrap-Server may write anything.
func (c *Client) bsWrite(r *pool.Message, p objects.Path) answer {
	const op = "bootstrap-write"
	if p.IsRoot() || p.Len() > 3 {
		return answer{op: op, code: codes.BadRequest, diag: "BS-Write targets an object, instance or resource"}
	}
	o := c.objs[p.Object()]
	if o == nil {
		return answer{op: op, code: codes.NotFound, diag: fmt.Sprintf("no object %d", p.Object())}
	}
	n, _, err := c.decode(r, p)
	if err != nil {
		return fail(op, err)
	}
	switch n := n.(type) {
	case *objects.Object:
		for _, in := range n.Instances {
			if err := c.bsPutInstance(p.Object(), in); err != nil {
				return fail(op, err)
			}
		}
	case *objects.Instance:
		if err := c.bsPutInstance(p.Object(), *n); err != nil {
			return fail(op, err)
		}
	case *objects.Resource:
		if err := c.bsPutResource(p, *n); err != nil {
			return fail(op, err)
		}
	default:
		return answer{op: op, code: codes.BadRequest, diag: "payload does not match the path"}
	}
	return answer{op: op, code: codes.Changed}
}

// bsPutInstance stores in as instance in.ID of object id, replacing it.
// A Server instance gets the executable resources (Disable, Registration
// Update Trigger) the device provides itself.
func (c *Client) bsPutInstance(id uint16, in objects.Instance) error {
	o := c.objs[id]
	if o == nil {
		return Status(codes.NotFound, "no object %d", id)
	}
	in = cloneInstance(&in)
	if id == 1 {
		for _, exec := range []uint16{4, 8} {
			if d := o.def.Resource(exec); d != nil && in.Resource(exec) == nil {
				in.Resources = append(in.Resources, execRes(exec))
			}
		}
	}
	if err := o.conformInstance(&in); err != nil {
		return Status(codes.BadRequest, "%v", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.def.Multiple && len(o.insts) > 0 && o.find(in.ID) == nil {
		return Status(codes.BadRequest, "object %d is single-instance", id)
	}
	o.drop(in.ID)
	o.insts = append(o.insts, in)
	sortInstances(o.insts)
	return nil
}

// bsPutResource stores one resource, creating its instance if needed.
func (c *Client) bsPutResource(p objects.Path, r objects.Resource) error {
	o := c.objs[p.Object()]
	def := o.def.Resource(p.Resource())
	if def == nil {
		return Status(codes.NotFound, "object %d has no resource %d", p.Object(), p.Resource())
	}
	if def.Multiple != r.Multiple {
		return Status(codes.BadRequest, "resource %s is %s", p, shape(def.Multiple))
	}
	if err := checkValues(p, &r, def.Type); err != nil {
		return err
	}
	o.mu.Lock()
	if in := o.mutable(p.Instance()); in != nil {
		setResource(in, cloneResource(&r))
		o.mu.Unlock()
		return nil
	}
	o.mu.Unlock()
	return c.bsPutInstance(p.Object(), objects.Instance{ID: p.Instance(), Resources: []objects.Resource{r}})
}

// bsDelete answers BS-Delete (Core 1.1 §5.2.7.5) of /, an object or an
// instance. The Bootstrap-Server account and the Device object survive a
// delete of / or of their object; naming them is 4.00.
func (c *Client) bsDelete(p objects.Path) answer {
	const op = "bootstrap-delete"
	if err := c.bsDeletePath(p); err != nil {
		return fail(op, err)
	}
	return answer{op: op, code: codes.Deleted}
}

func (c *Client) bsDeletePath(p objects.Path) error {
	switch {
	case p.Len() > 2:
		return Status(codes.BadRequest, "BS-Delete targets /, an object or an instance")
	case p.Len() >= 1 && p.Object() == 3:
		return Status(codes.BadRequest, "the Device object cannot be deleted")
	case p.Len() == 2 && c.protected(p):
		return Status(codes.BadRequest, "%s belongs to the Bootstrap-Server account", p)
	case p.Len() >= 1 && c.objs[p.Object()] == nil:
		return Status(codes.NotFound, "no object %d", p.Object())
	}
	ids := c.ids
	if p.Len() >= 1 {
		ids = []uint16{p.Object()}
	}
	for _, id := range ids {
		if id == 3 {
			continue
		}
		o := c.objs[id]
		for _, i := range o.Instances() {
			ip := objects.NewPath(id, i)
			if (p.Len() == 2 && i != p.Instance()) || c.protected(ip) {
				continue
			}
			o.mu.Lock()
			o.drop(i)
			o.mu.Unlock()
		}
	}
	return nil
}

// bsFinish answers BS-Finish (Core 1.1 §5.2.7.6): 2.04 when the
// configuration is usable, else 4.06 Not Acceptable with the reason.
func (c *Client) bsFinish() answer {
	const op = "bootstrap-finish"
	c.bs.mu.Lock()
	bc := c.bs.conn
	initial := bc != nil && bc.initial
	c.bs.mu.Unlock()
	if err := c.bsCheck(initial); err != nil {
		if bc != nil && initial {
			select {
			case bc.finished <- err:
			default:
			}
		}
		return answer{op: op, code: codes.NotAcceptable, diag: err.Error()}
	}
	if bc != nil && initial {
		select {
		case bc.finished <- nil:
		default:
		}
	} else {
		// Server-initiated bootstrap of a running client: it registers
		// again with what it was given.
		go func() { _ = c.do(context.Background(), cmdBootstrapped) }()
	}
	return answer{op: op, code: codes.Changed}
}

// bsCheck checks the bootstrapped configuration: an LwM2M server
// account (a Security instance that is not the Bootstrap-Server's) whose
// URI the client can use and whose Short Server ID has a Server
// instance. A running client (initial false) must keep the server it is
// registered with: it cannot move its association to another address.
func (c *Client) bsCheck(initial bool) error {
	sec := c.objs[0]
	for _, id := range sec.Instances() {
		if bs, _ := sec.Get(objects.NewPath(0, id, 1)); bs.Bool() {
			continue
		}
		uri, _ := sec.Get(objects.NewPath(0, id, 0))
		addr, err := serverAddress(uri.Str())
		if err != nil {
			return err
		}
		ssid, ok := sec.Get(objects.NewPath(0, id, 10))
		if !ok || c.serverInstance(uint16(ssid.Int())) < 0 {
			return fmt.Errorf("Security instance %d: no Server instance with its Short Server ID", id)
		}
		if !initial && c.raddr != nil && (!addr.IP.Equal(c.raddr.IP) || addr.Port != c.raddr.Port || uint16(ssid.Int()) != c.cfg.ShortServerID) {
			return fmt.Errorf("a running client keeps its LwM2M server (%s, ssid %d)", c.raddr, c.cfg.ShortServerID)
		}
		return nil
	}
	return fmt.Errorf("no LwM2M server account")
}

// securityFor builds the Security object New adds: the LwM2M server
// account of Config.ServerURI (instance 0) and, with Config.BootstrapURI,
// the Bootstrap-Server account (the next instance).
func securityFor(cfg Config) (*Object, error) {
	switch {
	case cfg.ServerURI == "" && cfg.BootstrapURI == "":
		return nil, fmt.Errorf("client: Config.ServerURI and Config.BootstrapURI are empty and Objects has no Security object")
	case cfg.BootstrapURI == "":
		return NewSecurity(cfg.ServerURI, cfg.ShortServerID), nil
	case cfg.ServerURI == "":
		return NewBootstrapSecurity(cfg.BootstrapURI), nil
	}
	sec := NewSecurity(cfg.ServerURI, cfg.ShortServerID)
	bs := NewBootstrapSecurity(cfg.BootstrapURI)
	in := bs.insts[0]
	in.ID = 1
	sec.insts = append(sec.insts, in)
	return sec, nil
}

// dtlsFromSecurity takes the DTLS PSK of the bootstrapped LwM2M server
// account from its Security instance (mode 0: resource 3 the identity,
// 5 the key), as a device uses what the Bootstrap-Server wrote.
func (c *Client) dtlsFromSecurity() {
	sec := c.objs[0]
	for _, id := range sec.Instances() {
		if bs, _ := sec.Get(objects.NewPath(0, id, 1)); bs.Bool() {
			continue
		}
		mode, _ := sec.Get(objects.NewPath(0, id, 2))
		if mode.Int() != 0 {
			return
		}
		identity, _ := sec.Get(objects.NewPath(0, id, 3))
		key, _ := sec.Get(objects.NewPath(0, id, 5))
		c.cfg.DTLS.Certificate = nil
		c.cfg.DTLS.PSKIdentity = string(identity.Bytes())
		c.cfg.DTLS.PSKKey = key.Bytes()
		return
	}
}
