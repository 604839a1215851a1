package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/objects/nodejson"
	"github.com/lwm2md/lwm2md/server"
)

// target is what every device operation starts from: the registration,
// its models, the LwM2M path of the URL and the call's options.
type target struct {
	ep     string
	reg    *server.Registration
	models objects.Models
	path   objects.Path
	format objects.Format
	forced bool
	ctx    context.Context
	cancel context.CancelFunc
}

// opts are the server call options: the forced format, and NoQueue so
// that a device that fell asleep meanwhile is queued by the API (202)
// rather than held in this HTTP request.
func (t *target) opts() []server.Option {
	o := []server.Option{server.NoQueue()}
	if t.forced {
		o = append(o, server.WithFormat(t.format))
	}
	return o
}

// request is the queue form of the call.
func (t *target) request(op string) server.Request {
	r := server.Request{Op: op, Path: t.path, Format: t.format, ForceFormat: t.forced}
	if d, ok := t.ctx.Deadline(); ok {
		r.Deadline = d
	}
	return r
}

// begin reads the registration, the path and the query options.
func (a *API) begin(r *http.Request) (*target, error) {
	t := &target{ep: endpointParam(r)}
	p, err := pathOf(r)
	if err != nil {
		return nil, err
	}
	t.path = p
	if s := r.URL.Query().Get("format"); s != "" {
		f, err := objects.ParseFormat(s)
		if err != nil || f == objects.FormatLinkFormat {
			return nil, badField("format", fmt.Sprintf("%q is not a content format for values (text, opaque, tlv, json, senml-json, senml-cbor, lwm2m-cbor, cbor or a number)", s))
		}
		t.format, t.forced = f, true
	}
	var qerr error
	if !r.URL.Query().Has("timeout") {
		t.ctx, t.cancel = r.Context(), func() {}
	} else if t.ctx, t.cancel, qerr = a.timeoutCtx(r); qerr != nil {
		return nil, qerr
	}
	reg, err := a.srv.Registration(t.ctx, t.ep)
	if err != nil {
		t.cancel()
		return nil, err
	}
	t.reg, t.models = reg, a.srv.Models(reg)
	return t, nil
}

// pathOf builds the LwM2M path from the URL's segments, naming the one
// that is not an ID.
func pathOf(r *http.Request) (objects.Path, error) {
	var ids []uint16
	for _, name := range []string{"object", "instance", "resource", "resourceInstance"} {
		s := urlParam(r, name)
		if s == "" {
			break
		}
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return objects.Path{}, badField(name, fmt.Sprintf("%q is not an ID from 0 to 65535", s))
		}
		ids = append(ids, uint16(n))
	}
	return objects.NewPath(ids...), nil
}

// sleeping reports whether the device is in queue mode and asleep, so
// that its request is queued (LwM2M Core 1.1 §6.5, queue mode).
func (a *API) sleeping(t *target) bool {
	return t.reg.QueueMode && !a.srv.Awake(t.ep)
}

// queue enqueues req and answers 202 Accepted with where to poll.
func (a *API) queue(w http.ResponseWriter, t *target, req server.Request) error {
	id, err := a.srv.Enqueue(t.ctx, t.ep, req)
	if err != nil {
		return err
	}
	loc := Prefix + "/clients/" + url.PathEscape(t.ep) + "/requests/" + url.PathEscape(id)
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusAccepted, map[string]string{
		"id": id, "endpoint": t.ep, "op": req.Op, "path": req.Path.String(), "status": "pending", "location": loc,
	})
	return nil
}

// device adapts a handler of one device's path: begin reads the
// target, and its context (the timeout) ends with the handler.
func (a *API) device(h func(w http.ResponseWriter, r *http.Request, t *target) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		t, err := a.begin(r)
		if err != nil {
			return err
		}
		defer t.cancel()
		return h(w, r, t)
	}
}

// run makes the blocking call, or queues req when the device sleeps
// (before the call, or because it fell asleep meanwhile). answered says
// the device answered the call without error: the handler writes the
// answer then, and must not when the request was queued (202 written).
func (a *API) run(w http.ResponseWriter, t *target, req server.Request, call func() error) (answered bool, err error) {
	if a.sleeping(t) {
		return false, a.queue(w, t, req)
	}
	err = call()
	if errors.Is(err, server.ErrSleeping) && !errors.Is(err, server.ErrTimeout) {
		return false, a.queue(w, t, req)
	}
	return err == nil, err
}

// runNoContent is run for an operation whose answer has no body: 204
// when the device answered.
func (a *API) runNoContent(w http.ResponseWriter, t *target, req server.Request, call func() error) error {
	answered, err := a.run(w, t, req, call)
	if answered {
		w.WriteHeader(http.StatusNoContent)
	}
	return err
}

func (a *API) read(w http.ResponseWriter, r *http.Request, t *target) error {
	var n objects.Node
	answered, err := a.run(w, t, t.request(server.OpRead), func() error {
		var err error
		n, err = a.srv.Read(t.ctx, t.ep, t.path, t.opts()...)
		return err
	})
	if !answered || n == nil {
		return err
	}
	return writeNode(w, t.path, n)
}

func writeNode(w http.ResponseWriter, p objects.Path, n objects.Node) error {
	b, err := nodejson.Marshal(p, n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, json.RawMessage(b))
	return nil
}

func (a *API) writeReplace(w http.ResponseWriter, r *http.Request, t *target) error {
	return a.write(w, r, t, true)
}

func (a *API) writePartial(w http.ResponseWriter, r *http.Request, t *target) error {
	return a.write(w, r, t, false)
}

func (a *API) write(w http.ResponseWriter, r *http.Request, t *target, replace bool) error {
	n, err := a.nodeBody(r, t)
	if err != nil {
		return err
	}
	req := t.request(server.OpWrite)
	req.Node, req.Replace = n, replace
	return a.runNoContent(w, t, req, func() error {
		return a.srv.Write(t.ctx, t.ep, t.path, n, replace, t.opts()...)
	})
}

// nodeBody reads the node to write: nodejson, or for a single value the
// text form of LwM2M Core Appendix C (text/plain), checked the same way.
func (a *API) nodeBody(r *http.Request, t *target) (objects.Node, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	switch mediaType(r) {
	case "", "application/json":
		return nodejson.Unmarshal(body, t.path, t.models)
	case "text/plain":
		if t.path.Len() < 3 {
			return nil, problem(http.StatusUnsupportedMediaType, "text/plain carries one value: write a resource or resource instance, or send application/json")
		}
		if !utf8.Valid(body) {
			return nil, badField("body", "text is not valid UTF-8")
		}
		v, err := objects.ParseText(objects.TypeOf(t.models, t.path), string(body))
		if err != nil {
			return nil, badField(t.path.String()+": value", err.Error())
		}
		var n objects.Node = &objects.ResourceInstance{ID: t.path.ResourceInstance(), Value: v}
		if t.path.Len() == 3 {
			res := objects.NewSingle(t.path.Resource(), v)
			n = &res
		}
		// Through nodejson, so that the text meets the same model checks
		// (single or multiple, range) as JSON does.
		b, err := nodejson.Marshal(t.path, n)
		if err != nil {
			return nil, badField(t.path.String()+": value", err.Error())
		}
		return nodejson.Unmarshal(b, t.path, t.models)
	}
	return nil, problem(http.StatusUnsupportedMediaType, "the body must be application/json (or text/plain for one value)")
}

func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "invalid"
	}
	return mt
}

// readBody reads the body within MaxBody.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", mbe.Limit))
	}
	if err != nil {
		return nil, problem(http.StatusBadRequest, "reading the body: "+err.Error())
	}
	return b, nil
}

func (a *API) execute(w http.ResponseWriter, r *http.Request, t *target) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	args := string(body)
	if mediaType(r) == "application/json" && len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &args); err != nil {
			return badField("body", "a JSON body of Execute is a string of arguments, e.g. \"0='v',1\"")
		}
	}
	if !utf8.ValidString(args) {
		return badField("body", "arguments are not valid UTF-8")
	}
	if def := objects.ResourceOf(t.models, t.path); def != nil && !def.Operations.Executable() {
		p := problem(http.StatusMethodNotAllowed, fmt.Sprintf("resource %s (%s) is not executable", t.path, def.Name))
		p.allow = allowFor(def.Operations)
		return p
	}
	req := t.request(server.OpExecute)
	req.Args = args
	return a.runNoContent(w, t, req, func() error {
		return a.srv.Execute(t.ctx, t.ep, t.path, args)
	})
}

// allowFor is the Allow header of a resource whose model refuses the
// method: the HTTP methods of the operations it does allow.
func allowFor(ops objects.Operations) string {
	var m []string
	if ops.Readable() {
		m = append(m, "GET")
	}
	if ops.Writable() {
		m = append(m, "PUT", "PATCH")
	}
	if ops.Executable() {
		m = append(m, "POST")
	}
	return strings.Join(m, ", ")
}

func (a *API) create(w http.ResponseWriter, r *http.Request, t *target) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if mt := mediaType(r); mt != "" && mt != "application/json" {
		return problem(http.StatusUnsupportedMediaType, "Create takes the new instance as application/json")
	}
	// The new instance's ID: LwM2M Core 1.1 §6.3.6 lets the server name it,
	// and lwm2md always does, so the body must.
	var head struct {
		Path string  `json:"path"`
		ID   *uint16 `json:"id"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return badField("body", "not a JSON object: "+err.Error())
	}
	var ip objects.Path
	switch {
	case head.Path != "":
		ip, err = objects.ParsePath(head.Path)
		if err != nil || ip.Len() != 2 || ip.Object() != t.path.Object() {
			return badField("path", fmt.Sprintf("%q is not an instance of %s", head.Path, t.path))
		}
	case head.ID != nil:
		ip = t.path.Child(*head.ID)
	default:
		return badField("id", "the new instance needs an id (or a path /o/i)")
	}
	n, err := nodejson.Unmarshal(body, ip, t.models)
	if err != nil {
		return err
	}
	inst := n.(*objects.Instance)
	req := t.request(server.OpCreate)
	req.Instance = inst
	var created objects.Path
	answered, err := a.run(w, t, req, func() error {
		var err error
		created, err = a.srv.Create(t.ctx, t.ep, t.path, inst, t.opts()...)
		return err
	})
	if !answered {
		return err
	}
	w.Header().Set("Location", Prefix+"/clients/"+url.PathEscape(t.ep)+created.String())
	writeJSON(w, http.StatusCreated, map[string]string{"path": created.String()})
	return nil
}

func (a *API) deleteNode(w http.ResponseWriter, r *http.Request, t *target) error {
	return a.runNoContent(w, t, t.request(server.OpDelete), func() error {
		return a.srv.Delete(t.ctx, t.ep, t.path)
	})
}

// linkJSON is one link of a Discover answer.
type linkJSON struct {
	Path       string         `json:"path"`
	Attributes map[string]any `json:"attributes,omitempty"`
	Params     map[string]any `json:"params,omitempty"`
}

func linksJSON(links []linkformat.DiscoverLink) []linkJSON {
	out := make([]linkJSON, 0, len(links))
	for _, l := range links {
		j := linkJSON{Path: l.Path.String(), Attributes: attrsJSON(l.Attributes)}
		for _, p := range l.Other {
			if j.Params == nil {
				j.Params = map[string]any{}
			}
			if p.HasValue {
				j.Params[p.Name] = p.Value
			} else {
				j.Params[p.Name] = true
			}
		}
		out = append(out, j)
	}
	return out
}

// attrsJSON writes attributes as JSON numbers (strings for ver, lwm2m
// and uri).
func attrsJSON(at linkformat.Attributes) map[string]any {
	q := at.Query()
	if len(q) == 0 {
		return nil
	}
	m := make(map[string]any, len(q))
	for _, kv := range q {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			m[k] = nil
		case k == "ver" || k == "lwm2m" || k == "uri":
			m[k] = v
		default:
			if _, err := strconv.ParseFloat(v, 64); err == nil {
				m[k] = json.Number(v)
			} else {
				m[k] = v
			}
		}
	}
	return m
}

func (a *API) discover(w http.ResponseWriter, r *http.Request, t *target) error {
	var links []linkformat.DiscoverLink
	answered, err := a.run(w, t, t.request(server.OpDiscover), func() error {
		var err error
		links, err = a.srv.Discover(t.ctx, t.ep, t.path)
		return err
	})
	if !answered {
		return err
	}
	writeJSON(w, http.StatusOK, linksJSON(links))
	return nil
}

// attrQuery collects the attributes of Write-Attributes from the query
// (LwM2M Core 1.1 §5.1.2: "?pmin=10&gt") or a JSON object
// ({"pmin":10,"gt":null}, null unsetting the attribute).
func attrQuery(r *http.Request) ([]string, error) {
	var q []string
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if k == "timeout" {
			continue
		}
		u, err := url.QueryUnescape(kv)
		if err != nil {
			return nil, badField("query", fmt.Sprintf("%q is not a valid query parameter", kv))
		}
		q = append(q, u)
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return q, nil
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, badField("body", "attributes are a JSON object such as {\"pmin\":10,\"gt\":null}")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		raw := strings.TrimSpace(string(m[k]))
		switch {
		case raw == "null":
			q = append(q, k)
		case raw == "true":
			q = append(q, k+"=1")
		case raw == "false":
			q = append(q, k+"=0")
		case strings.HasPrefix(raw, `"`):
			var s string
			_ = json.Unmarshal(m[k], &s)
			q = append(q, k+"="+s)
		default:
			q = append(q, k+"="+raw)
		}
	}
	return q, nil
}

func (a *API) writeAttributes(w http.ResponseWriter, r *http.Request, t *target) error {
	q, err := attrQuery(r)
	if err != nil {
		return err
	}
	attrs, err := linkformat.ParseQuery(q)
	if err == nil {
		err = attrs.Validate()
	}
	if err != nil {
		return badField("attributes", strings.TrimPrefix(err.Error(), "linkformat: "))
	}
	if attrs.IsZero() {
		return badField("attributes", "no attribute given (pmin, pmax, gt, lt, st, epmin, epmax, edge, con, hqmax)")
	}
	req := t.request(server.OpWriteAttributes)
	req.Attrs = attrs
	return a.runNoContent(w, t, req, func() error {
		return a.srv.WriteAttributes(t.ctx, t.ep, t.path, attrs)
	})
}

// observationJSON describes an observation.
type observationJSON struct {
	Path    string    `json:"path"`
	Token   string    `json:"token"`
	Format  string    `json:"format"`
	Started time.Time `json:"started"`
	// Composite and Paths describe an Observe-Composite (Path is "/").
	Composite bool     `json:"composite,omitempty"`
	Paths     []string `json:"paths,omitempty"`
}

func obsJSON(o *server.Observation) observationJSON {
	j := observationJSON{Path: o.Path.String(), Token: o.Token, Format: o.Format.String(), Started: o.Started.UTC(), Composite: o.Composite}
	for _, p := range o.Paths {
		j.Paths = append(j.Paths, p.String())
	}
	return j
}

func (a *API) observe(w http.ResponseWriter, r *http.Request, t *target) error {
	var (
		o *server.Observation
		n objects.Node
	)
	answered, err := a.run(w, t, t.request(server.OpObserve), func() error {
		var err error
		o, n, err = a.srv.Observe(t.ctx, t.ep, t.path, t.opts()...)
		return err
	})
	if !answered {
		return err
	}
	out := map[string]any{"observation": obsJSON(o)}
	if n != nil {
		b, err := nodejson.Marshal(t.path, n)
		if err != nil {
			return err
		}
		out["node"] = json.RawMessage(b)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// cancelObserve ends every observation of the path: actively (a GET with
// Observe 1, RFC 7641 §3.6) when the device is awake, passively when it
// sleeps (its next notification gets a Reset).
func (a *API) cancelObserve(w http.ResponseWriter, r *http.Request, t *target) error {
	found := 0
	for _, o := range a.srv.Observations(t.ep) {
		if o.Path != t.path {
			continue
		}
		found++
		if a.sleeping(t) {
			a.srv.ForgetObservation(o)
			continue
		}
		if err := a.srv.CancelObservation(t.ctx, o); err != nil {
			return err
		}
	}
	if found == 0 {
		p := problem(http.StatusNotFound, fmt.Sprintf("device %q has no observation of %s", t.ep, t.path))
		p.Endpoint = t.ep
		return p
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listObservations(w http.ResponseWriter, r *http.Request) error {
	ep := endpointParam(r)
	if _, err := a.srv.Registration(r.Context(), ep); err != nil {
		return err
	}
	obs := a.srv.Observations(ep)
	out := make([]observationJSON, 0, len(obs))
	for _, o := range obs {
		out = append(out, obsJSON(o))
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Path < out[j].Path || out[i].Path == out[j].Path && out[i].Token < out[j].Token
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}

// compositePaths reads the paths of a Read-Composite: {"paths":[...]} or
// a nodejson record array without values.
func compositePaths(body []byte) ([]objects.Path, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		recs, err := nodejson.UnmarshalRecords(body, nil)
		if err != nil {
			return nil, err
		}
		paths := make([]objects.Path, len(recs))
		for i, rec := range recs {
			if !rec.Value.IsNone() {
				return nil, badField(fmt.Sprintf("[%d].value", i), "Read-Composite takes paths only")
			}
			paths[i] = rec.Path
		}
		return nonEmpty(paths)
	}
	var in struct {
		Paths []string `json:"paths"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, badField("body", "Read-Composite takes {\"paths\":[\"/3/0/0\",...]}: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	paths := make([]objects.Path, len(in.Paths))
	for i, s := range in.Paths {
		p, err := objects.ParsePath(s)
		if err != nil || p.IsRoot() {
			return nil, badField(fmt.Sprintf("paths[%d]", i), fmt.Sprintf("%q is not an object, instance or resource path", s))
		}
		paths[i] = p
	}
	return nonEmpty(paths)
}

func nonEmpty(paths []objects.Path) ([]objects.Path, error) {
	if len(paths) == 0 {
		return nil, badField("paths", "no path given")
	}
	return paths, nil
}

// readPaths reads the body of a composite read or observe: its paths.
func readPaths(r *http.Request) ([]objects.Path, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	return compositePaths(body)
}

func (a *API) readComposite(w http.ResponseWriter, r *http.Request, t *target) error {
	paths, err := readPaths(r)
	if err != nil {
		return err
	}
	req := t.request(server.OpReadComposite)
	req.Paths = paths
	var nodes map[objects.Path]objects.Node
	answered, err := a.run(w, t, req, func() error {
		var err error
		nodes, err = a.srv.ReadComposite(t.ctx, t.ep, paths, t.opts()...)
		return err
	})
	if !answered {
		return err
	}
	out, err := nodesJSON(paths, nodes)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": out})
	return nil
}

// nodesJSON lists the nodes of a composite answer in the order asked
// (all of them, in path order, when order is nil).
func nodesJSON(order []objects.Path, nodes map[objects.Path]objects.Node) ([]json.RawMessage, error) {
	if order == nil {
		for p := range nodes {
			order = append(order, p)
		}
		sort.Slice(order, func(i, j int) bool { return order[i].Compare(order[j]) < 0 })
	}
	out := []json.RawMessage{}
	for _, p := range order {
		n, ok := nodes[p]
		if !ok {
			continue
		}
		b, err := nodejson.Marshal(p, n)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (a *API) writeComposite(w http.ResponseWriter, r *http.Request, t *target) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	recs, err := nodejson.UnmarshalRecords(body, t.models)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return badField("body", "no record given")
	}
	for i, rec := range recs {
		if rec.Value.IsNone() || rec.Path.Len() < 3 {
			return badField(fmt.Sprintf("[%d]", i), "Write-Composite needs a value at a resource or resource-instance path")
		}
	}
	req := t.request(server.OpWriteComposite)
	req.Records = recs
	return a.runNoContent(w, t, req, func() error {
		return a.srv.WriteComposite(t.ctx, t.ep, recs, t.opts()...)
	})
}
