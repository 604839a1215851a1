package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// observeComposite starts an Observe-Composite (LwM2M Core 1.1 §5.5.1):
// the body lists the paths as for composite/read; the answer is the
// observation (with its token, for the cancel) and the first value of
// each path. Notifications follow on the event stream, with "nodes".
func (a *API) observeComposite(w http.ResponseWriter, r *http.Request, t *target) error {
	paths, err := readPaths(r)
	if err != nil {
		return err
	}
	req := t.request(server.OpObserveComposite)
	req.Paths = paths
	var (
		o     *server.Observation
		nodes map[objects.Path]objects.Node
	)
	answered, err := a.run(w, t, req, func() error {
		var err error
		o, nodes, err = a.srv.ObserveComposite(t.ctx, t.ep, paths, t.opts()...)
		return err
	})
	if !answered {
		return err
	}
	out, err := nodesJSON(paths, nodes)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"observation": obsJSON(o), "nodes": out})
	return nil
}

// cancelObservation ends one observation, single or composite, by its
// token: actively when the device is awake (RFC 7641 §3.6; for a
// composite one the FETCH with Observe 1 of LwM2M Core 1.1 §5.5.2),
// passively when it sleeps (its next notification gets a Reset).
func (a *API) cancelObservation(w http.ResponseWriter, r *http.Request) error {
	ep := endpointParam(r)
	token := urlParam(r, "token")
	ctx, cancel, err := a.timeoutCtx(r)
	if err != nil {
		return err
	}
	defer cancel()
	reg, err := a.srv.Registration(ctx, ep)
	if err != nil {
		return err
	}
	for _, o := range a.srv.Observations(ep) {
		if o.Token != token {
			continue
		}
		if reg.QueueMode && !a.srv.Awake(ep) {
			a.srv.ForgetObservation(o)
		} else if err := a.srv.CancelObservation(ctx, o); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	p := problem(http.StatusNotFound, fmt.Sprintf("device %q has no observation with token %q (see GET %s/clients/%s/observations)", ep, token, Prefix, ep))
	p.Endpoint = ep
	p.Field = "token"
	return p
}

// nodesOfEvent is the "nodes" of a composite notification, in path order.
func nodesOfEvent(nodes map[objects.Path]objects.Node) (json.RawMessage, error) {
	ns, err := nodesJSON(nil, nodes)
	if err != nil {
		return nil, err
	}
	return json.Marshal(ns)
}
