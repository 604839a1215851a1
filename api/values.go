package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/nodejson"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/server"
)

// valueJSON is one last known value: a nodejson record (path, type,
// value, time: the device's, in Unix seconds, absent when it gave none)
// with serverTime, when lwm2md received it (Unix seconds).
type valueJSON struct {
	Path       string          `json:"path"`
	Type       string          `json:"type"`
	Value      json.RawMessage `json:"value"`
	Time       float64         `json:"time,omitempty"`
	ServerTime float64         `json:"serverTime"`
}

// listValues answers GET /clients/{ep}/values[?path=/3303]: the values
// the last-value recorder kept in the registry, sorted by path. They are
// there for a sleeping device too, and after it de-registered; an
// endpoint with neither a registration nor values is 404.
func (a *API) listValues(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Store == nil {
		return problem(http.StatusNotImplemented, "values: last known values need the persistent registry, which this server runs without")
	}
	ep := endpointParam(r)
	prefix := objects.RootPath
	if q := r.URL.Query().Get("path"); q != "" {
		p, err := objects.ParsePath(q)
		if err != nil {
			return badField("path", err.Error())
		}
		prefix = p
	}
	vs, err := a.cfg.Store.Values().Get(r.Context(), ep, prefix)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	if len(vs) == 0 {
		if _, err := a.srv.Registration(r.Context(), ep); errors.Is(err, server.ErrNotRegistered) {
			return problem(http.StatusNotFound, fmt.Sprintf("endpoint %q: no registration and no values", ep))
		}
	}
	out := make([]valueJSON, 0, len(vs))
	for _, v := range vs {
		j, err := toValueJSON(v)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func toValueJSON(v registry.ResourceValue) (valueJSON, error) {
	b, err := nodejson.MarshalRecords([]objects.Record{{Path: v.Path, Value: v.Value}})
	if err != nil {
		return valueJSON{}, fmt.Errorf("api: value %s: %w", v.Path, err)
	}
	var recs []valueJSON
	if err := json.Unmarshal(b, &recs); err != nil || len(recs) != 1 {
		return valueJSON{}, fmt.Errorf("api: value %s: nodejson record %s: %v", v.Path, b, err)
	}
	j := recs[0]
	if !v.DeviceTime.IsZero() {
		j.Time = unixSeconds(v.DeviceTime.UnixMicro())
	}
	j.ServerTime = unixSeconds(v.ServerTime.UnixMicro())
	return j, nil
}

// unixSeconds turns microseconds since the epoch (the registry's
// precision) into seconds.
func unixSeconds(us int64) float64 { return float64(us) / 1e6 }
