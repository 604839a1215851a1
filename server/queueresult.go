package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
	"github.com/lwm2md/lwm2md/registry"
)

// StoredResult returns how a finished queued request of endpoint ended,
// as the registry keeps it (storedResult): its status, its error and, for
// a read, the value. It serves the results whose EventRequestResult a
// caller did not see: published before a restart (a crash included), or
// not yet taken from its subscription. An open or unknown request is an
// error wrapping ErrNoRequest. Observations are not rebuilt (Observations
// lists those in force).
func (s *Server) StoredResult(ctx context.Context, endpoint, id string) (*RequestResult, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("server: queued request %q of %s: %w", id, endpoint, ErrNoRequest)
	}
	r, err := s.q.store.Get(ctx, n)
	if errors.Is(err, registry.ErrNotFound) || (err == nil && (r.Endpoint != endpoint || r.Status.Open())) {
		return nil, fmt.Errorf("server: queued request %s of %s: no result: %w", id, endpoint, ErrNoRequest)
	}
	if err != nil {
		return nil, fmt.Errorf("server: queued request %s of %s: %w", id, endpoint, err)
	}
	res := &RequestResult{ID: id, Endpoint: r.Endpoint, Op: r.Operation, Path: r.Path, Status: r.Status, Err: s.storedErr(r)}
	if len(r.Result.Payload) > 0 && r.Result.Format == storedFormat {
		codec, _ := content.Codec(storedFormat)
		node, err := codec.Decode(r.Path, r.Result.Payload, s.storedModels(endpoint))
		if err != nil {
			return nil, fmt.Errorf("server: queued request %s of %s: stored value: %w", id, endpoint, err)
		}
		res.Node = node
	}
	return res, nil
}

// storedErr rebuilds the error of a finished request from its stored
// text, matching the sentinel errors (and the CoAP code) the live result
// carried, so that callers map it the same way.
func (s *Server) storedErr(r *registry.Request) error {
	var cause error
	switch r.Status {
	case registry.StatusDone:
		return nil
	case registry.StatusExpired:
		cause = errors.Join(ErrExpired, ErrTimeout)
	case registry.StatusCancelled:
		cause = ErrCancelled
	default: // Failed
		if c := Code(r.Result.Code); r.Result.Code != 0 {
			cause = &CoAPError{Op: r.Operation, Endpoint: r.Endpoint, Path: r.Path, Code: c}
		}
	}
	msg := r.Result.Error
	if msg == "" {
		msg = fmt.Sprintf("server: %s %s %s: queued request %d: %s", r.Operation, r.Endpoint, r.Path, r.ID, r.Status)
	}
	return &storedError{msg: msg, cause: cause}
}

// storedModels are the models of the endpoint's registration, or the
// newest ones when it has none any more.
func (s *Server) storedModels(endpoint string) objects.Models {
	if sess, err := s.session(endpoint); err == nil {
		s.mu.RLock()
		reg := sess.reg
		s.mu.RUnlock()
		return s.Models(reg)
	}
	return s.cfg.Models.ForVersions(nil)
}

// storedError is an error read back from the registry: its text as it
// was stored, unwrapping to the sentinel of its kind.
type storedError struct {
	msg   string
	cause error
}

func (e *storedError) Error() string { return e.msg }
func (e *storedError) Unwrap() error { return e.cause }
