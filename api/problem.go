package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/nodejson"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/server"
)

// Problem is an RFC 9457 problem detail. Type is "about:blank" (the
// title is the HTTP status text, RFC 9457 §4.2.1); the extension members
// say which input field or which device state is to blame.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Field names the input at fault: a query parameter, a JSON member
	// ("/3/0/9: value"), a path segment.
	Field string `json:"field,omitempty"`
	// Endpoint and State describe the device when it is to blame
	// ("not registered", "sleeping").
	Endpoint string `json:"endpoint,omitempty"`
	State    string `json:"state,omitempty"`
	// CoAPCode is the device's answer ("4.04") when it refused.
	CoAPCode string `json:"coapCode,omitempty"`

	allow string // the Allow header of a 405
}

func (p *Problem) Error() string { return p.Detail }

// problem builds a Problem of status with a detail.
func problem(status int, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

// badField is a 400 naming the input at fault.
func badField(field, detail string) *Problem {
	p := problem(http.StatusBadRequest, field+": "+detail)
	p.Field = field
	return p
}

// writeProblem answers with p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" {
		p.Instance = r.URL.Path
	}
	if p.allow != "" {
		w.Header().Set("Allow", p.allow)
	}
	if p.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// toProblem maps an error of the server, the registry or the input
// checks to the answer an operator can act on.
func (a *API) toProblem(where, ep string, err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var je *nodejson.Error
	if errors.As(err, &je) {
		field := je.Path.String()
		if je.Field != "" {
			field += ": " + je.Field
		}
		p := problem(http.StatusBadRequest, strings.TrimPrefix(je.Error(), "nodejson: "))
		p.Field = field
		return p
	}
	var ce *server.CoAPError
	if errors.As(err, &ce) {
		return deviceProblem(ep, ce)
	}
	dev := func(status int, state, detail string) *Problem {
		p := problem(status, detail)
		p.Endpoint, p.State = ep, state
		return p
	}
	switch {
	case errors.Is(err, server.ErrNotRegistered):
		return dev(http.StatusNotFound, "not registered", fmt.Sprintf("device %q is not registered", ep))
	case errors.Is(err, server.ErrExpired):
		return dev(http.StatusGatewayTimeout, "sleeping", fmt.Sprintf("device %q did not wake before the request's deadline", ep))
	case errors.Is(err, server.ErrSleeping):
		return dev(http.StatusServiceUnavailable, "sleeping", fmt.Sprintf("device %q is sleeping (queue mode)", ep))
	case errors.Is(err, server.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return dev(http.StatusGatewayTimeout, "no answer", fmt.Sprintf("device %q did not answer in time", ep))
	case errors.Is(err, server.ErrCancelled):
		return dev(http.StatusConflict, "cancelled", "the queued request was cancelled")
	case errors.Is(err, server.ErrNoRequest):
		return problem(http.StatusNotFound, "no such queued request for "+ep)
	case errors.Is(err, server.ErrNoDTLSSession):
		return dev(http.StatusServiceUnavailable, "no DTLS session", fmt.Sprintf("device %q has no DTLS session; the request must wait for its next handshake", ep))
	case errors.Is(err, server.ErrNotObserved):
		return dev(http.StatusBadGateway, "observe refused", fmt.Sprintf("device %q did not accept the observation", ep))
	case errors.Is(err, server.ErrInvalidRequest):
		return problem(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "server: "))
	case errors.Is(err, server.ErrClosed), errors.Is(err, registry.ErrClosed):
		return problem(http.StatusServiceUnavailable, "the server is shutting down")
	case errors.Is(err, registry.ErrNotFound):
		return problem(http.StatusNotFound, "not found: "+ep)
	case errors.Is(err, registry.ErrConflict):
		return problem(http.StatusConflict, strings.TrimPrefix(err.Error(), "registry: "))
	case errors.Is(err, registry.ErrInvalid):
		return problem(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "registry: "))
	case errors.Is(err, registry.ErrNoKey):
		return problem(http.StatusServiceUnavailable, "the registry has no encryption key, so it cannot store secrets (set the registry key)")
	case errors.Is(err, objects.ErrMalformed), errors.Is(err, objects.ErrType), errors.Is(err, objects.ErrRange), errors.Is(err, objects.ErrUTF8):
		return problem(http.StatusBadRequest, err.Error())
	}
	a.log.Error("api: internal error", "where", where, "endpoint", ep, "err", err)
	return problem(http.StatusInternalServerError, "internal error; see the server log")
}

// deviceProblem maps a device's CoAP error answer (LwM2M Core 1.1 §6.1,
// Table "Response codes") to HTTP. 4.01 is the device refusing this
// server the operation (its access control), which no API token can fix:
// 403. Codes without an HTTP twin become 502, the device being the
// upstream.
func deviceProblem(ep string, ce *server.CoAPError) *Problem {
	status := http.StatusBadGateway
	switch ce.Code.String() {
	case "4.00":
		status = http.StatusBadRequest
	case "4.01", "4.03":
		status = http.StatusForbidden
	case "4.04":
		status = http.StatusNotFound
	case "4.05":
		status = http.StatusMethodNotAllowed
	case "4.06":
		status = http.StatusNotAcceptable
	case "4.08", "4.12":
		status = http.StatusPreconditionFailed
	case "4.13":
		status = http.StatusRequestEntityTooLarge
	case "4.15":
		status = http.StatusUnsupportedMediaType
	}
	detail := fmt.Sprintf("device %q answered %s %s to %s %s", ep, ce.Code, codeText(ce.Code.String()), ce.Op, ce.Path)
	if ce.Diagnostic != "" {
		detail += ": " + ce.Diagnostic
	}
	p := problem(status, detail)
	p.Endpoint, p.CoAPCode = ep, ce.Code.String()
	return p
}

func codeText(c string) string {
	return map[string]string{
		"4.00": "Bad Request", "4.01": "Unauthorized", "4.02": "Bad Option", "4.03": "Forbidden",
		"4.04": "Not Found", "4.05": "Method Not Allowed", "4.06": "Not Acceptable",
		"4.08": "Request Entity Incomplete", "4.12": "Precondition Failed",
		"4.13": "Request Entity Too Large", "4.15": "Unsupported Content-Format",
		"5.00": "Internal Server Error", "5.01": "Not Implemented", "5.03": "Service Unavailable",
	}[c]
}

// parseTimeout reads a Go duration ("30s") or whole seconds ("30").
func parseTimeout(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
