package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/registry"
)

// The bootstrap resources (/bootstrap/...) are built on a
// *bootstrap.Server (Config.Bootstrap): per-endpoint configurations and
// templates in the JSON shape of docs/bootstrap.md (secrets masked when
// read), the last outcome per endpoint, server-initiated bootstrap and
// the revocation of factory credentials and factory CAs.

// needBootstrap answers 501 when the API runs without a bootstrap server.
func (a *API) needBootstrap() (*bootstrap.Server, error) {
	if a.cfg.Bootstrap == nil {
		return nil, problem(http.StatusNotImplemented, "bootstrap: this server runs without a bootstrap server")
	}
	return a.cfg.Bootstrap, nil
}

// bootstrapEndpoint reads and checks {ep}.
func bootstrapEndpoint(r *http.Request) (string, error) {
	ep := endpointParam(r)
	if err := bootstrap.CheckEndpointName(ep); err != nil {
		return "", badField("ep", strings.TrimPrefix(err.Error(), "bootstrap: "))
	}
	return ep, nil
}

func (a *API) getBootstrapConfig(w http.ResponseWriter, r *http.Request, bs *bootstrap.Server) error {
	ep, err := bootstrapEndpoint(r)
	if err != nil {
		return err
	}
	c, err := bs.Configs().Get(r.Context(), ep)
	if errors.Is(err, registry.ErrNotFound) {
		return noBootstrapConfig(ep)
	}
	if err != nil {
		return err
	}
	out, err := maskConfig(c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) putBootstrapConfig(w http.ResponseWriter, r *http.Request, bs *bootstrap.Server) error {
	ep, err := bootstrapEndpoint(r)
	if err != nil {
		return err
	}
	body, err := readUnmasked(r)
	if err != nil {
		return err
	}
	c, err := bootstrap.ParseConfiguration(body)
	if err != nil {
		return configProblem(err)
	}
	if err := bs.Configs().Put(r.Context(), ep, c); err != nil {
		return configProblem(err)
	}
	out, err := maskConfig(c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) deleteBootstrapConfig(w http.ResponseWriter, r *http.Request, bs *bootstrap.Server) error {
	ep, err := bootstrapEndpoint(r)
	if err != nil {
		return err
	}
	if _, err := bs.Configs().Get(r.Context(), ep); errors.Is(err, registry.ErrNotFound) {
		return noBootstrapConfig(ep)
	}
	if err := bs.Configs().Delete(r.Context(), ep); err != nil && !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) getBootstrapTemplates(w http.ResponseWriter, r *http.Request, bs *bootstrap.Server) error {
	ts, err := bs.Configs().Templates(r.Context())
	if err != nil {
		return err
	}
	out, err := maskTemplates(ts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) putBootstrapTemplates(w http.ResponseWriter, r *http.Request, bs *bootstrap.Server) error {
	body, err := readUnmasked(r)
	if err != nil {
		return err
	}
	ts, err := bootstrap.ParseTemplates(body)
	if err != nil {
		return configProblem(err)
	}
	if err := bs.Configs().SetTemplates(r.Context(), ts); err != nil {
		return configProblem(err)
	}
	out, err := maskTemplates(ts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// bootstrapStatusJSON is an endpoint's last bootstrap.
type bootstrapStatusJSON struct {
	Endpoint  string     `json:"endpoint"`
	State     string     `json:"state"`
	Initiator string     `json:"initiator,omitempty"`
	Source    string     `json:"source,omitempty"`
	Step      string     `json:"step,omitempty"`
	Code      string     `json:"code,omitempty"` // the device's error answer, "4.04"
	Reason    string     `json:"reason,omitempty"`
	Started   time.Time  `json:"started"`
	Ended     *time.Time `json:"ended,omitempty"`
	Attempts  int        `json:"attempts"`
	Retries   int        `json:"retries"`
	// Registered: the device has a registration at the LwM2M server now.
	Registered bool `json:"registered"`
}

func statusJSON(st bootstrap.Status) bootstrapStatusJSON {
	out := bootstrapStatusJSON{Endpoint: st.Endpoint, State: st.State, Initiator: st.Initiator, Source: st.Source,
		Step: st.Step, Code: coapCode(st.Code), Reason: st.Error, Started: st.Started.UTC(), Attempts: st.Attempts, Retries: st.Retries}
	if !st.Ended.IsZero() {
		e := st.Ended.UTC()
		out.Ended = &e
	}
	return out
}

// coapCode writes class*32+detail as "4.04"; "" for none.
func coapCode(c uint8) string {
	if c == 0 {
		return ""
	}
	return fmt.Sprintf("%d.%02d", c>>5, c&0x1f)
}

func (a *API) listBootstrapStatus(w http.ResponseWriter, r *http.Request, bs *bootstrap.Server) error {
	sts := bs.Statuses()
	out := make([]bootstrapStatusJSON, len(sts))
	for i, st := range sts {
		out[i] = statusJSON(st)
		out[i].Registered = a.registered(r, st.Endpoint)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getBootstrapStatus(w http.ResponseWriter, r *http.Request, bs *bootstrap.Server) error {
	ep, err := bootstrapEndpoint(r)
	if err != nil {
		return err
	}
	st, ok := bs.Status(ep)
	if !ok {
		p := problem(http.StatusNotFound, fmt.Sprintf("bootstrap: endpoint %q has no bootstrap on record", ep))
		p.Endpoint = ep
		return p
	}
	out := statusJSON(st)
	out.Registered = a.registered(r, ep)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// registered reports whether ep has a registration at the LwM2M server,
// so that an operator sees in one place whether a device bootstrapped,
// registered, or failed.
func (a *API) registered(r *http.Request, ep string) bool {
	if a.cfg.Server == nil {
		return false
	}
	_, err := a.cfg.Server.Registration(r.Context(), ep)
	return err == nil
}

// startBootstrap runs a server-initiated bootstrap (LwM2M Core 1.1
// §6.1.4) over the association of the device's last Bootstrap-Request,
// and answers its outcome once the sequence has ended.
func (a *API) startBootstrap(w http.ResponseWriter, r *http.Request, bs *bootstrap.Server) error {
	ep, err := bootstrapEndpoint(r)
	if err != nil {
		return err
	}
	ctx, cancel, err := a.timeoutCtx(r)
	if err != nil {
		return err
	}
	defer cancel()
	if err := bs.Bootstrap(ctx, ep); err != nil {
		return bootstrapProblem(ctx, ep, err)
	}
	st, _ := bs.Status(ep)
	writeJSON(w, http.StatusOK, statusJSON(st))
	return nil
}

// bootstrapProblem maps the errors of bootstrap.Server.Bootstrap.
func bootstrapProblem(ctx context.Context, ep string, err error) *Problem {
	dev := func(status int, state, detail string) *Problem {
		p := problem(status, detail)
		p.Endpoint, p.State = ep, state
		return p
	}
	var se *bootstrap.StepError
	switch {
	case errors.Is(err, bootstrap.ErrNotConnected):
		return dev(http.StatusConflict, "not connected", fmt.Sprintf("device %q has no open association with the bootstrap server: it must send a Bootstrap-Request first (and keep the association)", ep))
	case errors.Is(err, bootstrap.ErrNoConfig):
		return dev(http.StatusConflict, "no configuration", fmt.Sprintf("no bootstrap configuration or template applies to %q", ep))
	case errors.Is(err, bootstrap.ErrInvalidConfig):
		var p *Problem
		errors.As(configProblem(err), &p)
		return p
	case errors.As(err, &se) && se.Code != 0:
		p := dev(http.StatusBadGateway, "bootstrap failed", strings.TrimPrefix(err.Error(), "bootstrap: "))
		p.CoAPCode = coapCode(se.Code)
		return p
	case errors.Is(err, bootstrap.ErrClosed):
		return problem(http.StatusServiceUnavailable, "the bootstrap server is shutting down")
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.As(err, &se):
		return dev(http.StatusGatewayTimeout, "no answer", strings.TrimPrefix(err.Error(), "bootstrap: "))
	}
	return dev(http.StatusBadGateway, "bootstrap failed", strings.TrimPrefix(err.Error(), "bootstrap: "))
}

func (a *API) revokeFactory(w http.ResponseWriter, r *http.Request, bs *bootstrap.Server) error {
	id := urlParam(r, "identity")
	ok, err := bs.RevokeFactory(r.Context(), id)
	if err != nil {
		return err
	}
	if !ok {
		p := problem(http.StatusNotFound, fmt.Sprintf("bootstrap: no factory credential with identity %q (or it is already revoked)", id))
		p.Field = "identity"
		return p
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// revokeCARequest is the body of POST /bootstrap/revoked-cas.
type revokeCARequest struct {
	CA string `json:"ca"`
}

func (a *API) listRevokedCAs(w http.ResponseWriter, r *http.Request, bs *bootstrap.Server) error {
	rs, err := bs.RevokedCAs(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"revokedCAs": rs})
	return nil
}

// revokeCA stores the revocation in the registry (bootstrap.Server.
// RevokeCA): 201 for a new one, 200 with the existing one when the CA was
// revoked already, so that a script may repeat the call.
func (a *API) revokeCA(w http.ResponseWriter, r *http.Request, bs *bootstrap.Server) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var req revokeCARequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badField("body", `not {"ca":"<subject or SHA-256 fingerprint>"}: `+err.Error())
	}
	if strings.TrimSpace(req.CA) == "" {
		return badField("ca", "give the CA's subject (CN=Factory CA,O=Acme) or the SHA-256 fingerprint of its certificate (hex)")
	}
	rev, added, err := bs.RevokeCA(r.Context(), req.CA)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if added {
		status = http.StatusCreated
	}
	writeJSON(w, status, rev)
	return nil
}

// configField finds the field a bootstrap error names: "bootstrap:
// servers[0].security.mode: ...", "bootstrap: templates[1] (meters):
// bootstrap: servers[0].uri: ...".
var configField = regexp.MustCompile(`^bootstrap: ((?:templates\[\d+\]|servers\[\d+\]|instances\[\d+\]|delete\[\d+\]|[a-zA-Z]+)[\w.\[\]]*)(?: \([^)]*\))?: `)

// configProblem turns a configuration error into a 400 naming the
// field; other errors (the store's) go to the API's usual mapping.
func configProblem(err error) error {
	if !errors.Is(err, bootstrap.ErrInvalidConfig) {
		return err
	}
	msg := err.Error()
	detail := strings.TrimPrefix(msg, "bootstrap: ")
	var field string
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &ute):
		field = ute.Field
	case errors.As(err, &se):
		field = "body"
	case strings.Contains(msg, "json: unknown field "):
		_, f, _ := strings.Cut(msg, "json: unknown field ")
		field = strings.Trim(strings.TrimSpace(f), `"`)
	default:
		rest := msg
		for {
			m := configField.FindStringSubmatch(rest)
			if m == nil {
				break
			}
			if field != "" {
				field += ".config." // a template's configuration
			}
			field += m[1]
			rest = rest[len(m[0]):]
		}
	}
	if field == "" || field == "configuration" || field == "templates" {
		field = "body"
	}
	p := badField(field, detail)
	p.Detail = detail
	return p
}

// maskConfig is the JSON of c with its secrets (PSK keys, private keys,
// OSCORE master secrets) masked.
func maskConfig(c *bootstrap.Configuration) (map[string]any, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	servers, _ := m["servers"].([]any)
	for _, s := range servers {
		sm, _ := s.(map[string]any)
		maskKeys(sm["security"], "pskKey", "privateKey")
		maskKeys(sm["oscore"], "masterSecret")
	}
	return m, nil
}

func maskKeys(v any, keys ...string) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" {
			m[k] = maskedKey
		}
	}
}

func maskTemplates(ts []bootstrap.Template) ([]map[string]any, error) {
	out := make([]map[string]any, len(ts))
	for i := range ts {
		cfg, err := maskConfig(&ts[i].Config)
		if err != nil {
			return nil, err
		}
		t := map[string]any{"name": ts[i].Name, "config": cfg}
		if len(ts[i].Endpoints) > 0 {
			t["endpoints"] = ts[i].Endpoints
		}
		if len(ts[i].Tags) > 0 {
			t["tags"] = ts[i].Tags
		}
		out[i] = t
	}
	return out, nil
}

// maskedField finds a masked secret written back in a body (the JSON
// path of the first one), "" when there is none or the body is not JSON
// (the parser then says what is wrong).
func maskedField(body []byte) string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return findMasked(v, "")
}

func findMasked(v any, at string) string {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if at != "" {
				p = at + "." + k
			}
			if s, ok := e.(string); ok && s == maskedKey {
				return p
			}
			if f := findMasked(e, p); f != "" {
				return f
			}
		}
	case []any:
		for i, e := range x {
			if f := findMasked(e, fmt.Sprintf("%s[%d]", at, i)); f != "" {
				return f
			}
		}
	}
	return ""
}

// pumpBootstrap copies the bootstrap server's events into the stream.
func (a *API) pumpBootstrap() {
	defer close(a.bsDone)
	for e := range a.bsSub.C {
		a.events.add(bootstrapEventJSON(e))
	}
}

// bootstrapEventJSON is the stream's form of a bootstrap event, of kind
// "bootstrap-started", "-step", "-finished", "-failed" or "-retry".
func bootstrapEventJSON(e bootstrap.Event) stored {
	k := "bootstrap-" + e.Kind.String()
	m := map[string]any{"kind": k, "time": e.Time.UTC(), "endpoint": e.Endpoint}
	code := e.Code
	var se *bootstrap.StepError
	if code == 0 && errors.As(e.Err, &se) {
		code = se.Code // a failed or retried sequence: the refused step's code
	}
	for name, v := range map[string]string{"initiator": e.Initiator, "source": e.Source, "step": e.Step, "code": coapCode(code)} {
		if v != "" {
			m[name] = v
		}
	}
	if e.Kind == bootstrap.EventStep {
		m["path"] = e.Path.String()
		m["durationMs"] = float64(e.Duration.Microseconds()) / 1000
	}
	if e.Err != nil {
		m["error"] = e.Err.Error()
	}
	data, err := json.Marshal(m)
	if err != nil {
		data, _ = json.Marshal(map[string]any{"kind": k, "endpoint": e.Endpoint, "error": err.Error()})
	}
	return stored{kind: k, endpoint: e.Endpoint, data: data}
}

func noBootstrapConfig(ep string) error {
	return problem(http.StatusNotFound, fmt.Sprintf("bootstrap: endpoint %q has no configuration of its own", ep))
}

// readUnmasked reads a configuration body and refuses one that carries
// the mask a GET puts in place of a secret.
func readUnmasked(r *http.Request) ([]byte, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if f := maskedField(body); f != "" {
		return nil, badField(f, "the masked value of a GET cannot be written back: give the secret again (or generatePsk)")
	}
	return body, nil
}
