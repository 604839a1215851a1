package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/lwm2md/lwm2md/objects/nodejson"
	"github.com/lwm2md/lwm2md/server"
)

// results keeps the outcome of the most recent queued requests, from the
// server's EventRequestResult events, so that a client polling the
// Location of a 202 finds it. The oldest are forgotten first.
type results struct {
	mu    sync.Mutex
	max   int
	m     map[string]*server.RequestResult
	order []string
}

func newResults(max int) *results {
	return &results{max: max, m: map[string]*server.RequestResult{}}
}

func (rs *results) put(r *server.RequestResult) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if _, ok := rs.m[r.ID]; !ok {
		rs.order = append(rs.order, r.ID)
	}
	rs.m[r.ID] = r
	for len(rs.order) > rs.max {
		delete(rs.m, rs.order[0])
		rs.order = rs.order[1:]
	}
}

func (rs *results) get(id string) *server.RequestResult {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.m[id]
}

// queuedJSON is an open request of a device's queue.
type queuedJSON struct {
	ID        string    `json:"id"`
	Endpoint  string    `json:"endpoint"`
	Op        string    `json:"op"`
	Path      string    `json:"path"`
	Status    string    `json:"status"`
	Deadline  time.Time `json:"deadline"`
	CreatedAt time.Time `json:"createdAt"`
	Attempts  int       `json:"attempts"`
}

func queued(q server.QueuedRequest) queuedJSON {
	return queuedJSON{ID: q.ID, Endpoint: q.Endpoint, Op: q.Op, Path: q.Path.String(), Status: q.Status.String(),
		Deadline: q.Deadline.UTC(), CreatedAt: q.CreatedAt.UTC(), Attempts: q.Attempts}
}

func (a *API) listRequests(w http.ResponseWriter, r *http.Request) error {
	ep := endpointParam(r)
	qs, err := a.srv.Queue(r.Context(), ep)
	if err != nil {
		return err
	}
	out := make([]queuedJSON, 0, len(qs))
	for _, q := range qs {
		out = append(out, queued(q))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getRequest answers 200 with the result of a finished request, 202 with
// the request while it waits in the queue, 404 when it is unknown.
func (a *API) getRequest(w http.ResponseWriter, r *http.Request) error {
	ep, id := endpointParam(r), urlParam(r, "id")
	if res := a.results.get(id); res != nil && res.Endpoint == ep {
		out, err := a.resultJSON(res)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	qs, err := a.srv.Queue(r.Context(), ep)
	if err != nil {
		return err
	}
	for _, q := range qs {
		if q.ID == id {
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusAccepted, queued(q))
			return nil
		}
	}
	// It may have finished between the two looks, its result still on
	// its way to the results table, or before a restart: the registry
	// keeps it.
	res := a.results.get(id)
	if res == nil || res.Endpoint != ep {
		if res, err = a.srv.StoredResult(r.Context(), ep, id); errors.Is(err, server.ErrNoRequest) {
			return problem(http.StatusNotFound, "no queued request "+id+" for "+ep+" (finished requests are kept for the queue-timeout)")
		} else if err != nil {
			return err
		}
	}
	out, err := a.resultJSON(res)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) cancelRequest(w http.ResponseWriter, r *http.Request) error {
	ep, id := endpointParam(r), urlParam(r, "id")
	if err := a.srv.CancelQueued(r.Context(), ep, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// resultJSON is how a queued request ended: its status, what the device
// answered, and as "problem" the error the API would have answered.
func (a *API) resultJSON(res *server.RequestResult) (map[string]any, error) {
	out := map[string]any{
		"id": res.ID, "endpoint": res.Endpoint, "op": res.Op, "path": res.Path.String(), "status": res.Status.String(),
	}
	if res.Node != nil {
		b, err := nodejson.Marshal(res.Path, res.Node)
		if err != nil {
			return nil, err
		}
		out["node"] = json.RawMessage(b)
	}
	if res.Nodes != nil {
		ns, err := nodesJSON(nil, res.Nodes)
		if err != nil {
			return nil, err
		}
		out["nodes"] = ns
	}
	if res.Links != nil {
		out["links"] = linksJSON(res.Links)
	}
	if !res.Created.IsRoot() {
		out["created"] = res.Created.String()
	}
	if res.Observation != nil {
		out["observation"] = obsJSON(res.Observation)
	}
	if res.Err != nil {
		p := a.toProblem("queued "+res.Op+" "+res.Path.String(), res.Endpoint, res.Err)
		out["error"] = res.Err.Error()
		out["problem"] = p
	}
	return out, nil
}
