package api

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/nodejson"
	"github.com/lwm2md/lwm2md/registry"
)

// resourceDefJSON is a resource of an object model.
type resourceDefJSON struct {
	ID          uint16 `json:"id"`
	Name        string `json:"name"`
	Operations  string `json:"operations"` // "R", "W", "RW", "E" or ""
	Multiple    bool   `json:"multiple"`
	Mandatory   bool   `json:"mandatory"`
	Type        string `json:"type,omitempty"` // nodejson type name; none for executables
	Range       string `json:"range,omitempty"`
	Units       string `json:"units,omitempty"`
	Description string `json:"description,omitempty"`
}

// objectDefJSON is an object model; Resources only for one object.
type objectDefJSON struct {
	ID           uint16            `json:"id"`
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Versions     []string          `json:"versions"`
	LwM2MVersion string            `json:"lwm2mVersion,omitempty"`
	URN          string            `json:"urn,omitempty"`
	Multiple     bool              `json:"multiple"`
	Mandatory    bool              `json:"mandatory"`
	Description  string            `json:"description,omitempty"`
	Resources    []resourceDefJSON `json:"resources,omitempty"`
}

func (a *API) defJSON(d *objects.ObjectDef, full bool) objectDefJSON {
	o := objectDefJSON{ID: d.ID, Name: d.Name, Version: d.Version, Versions: a.cfg.Models.Versions(d.ID),
		LwM2MVersion: d.LwM2MVersion, URN: d.URN, Multiple: d.Multiple, Mandatory: d.Mandatory}
	if !full {
		return o
	}
	o.Description = d.Description
	o.Resources = make([]resourceDefJSON, 0, len(d.Resources))
	for _, r := range d.Resources {
		o.Resources = append(o.Resources, resourceDefJSON{ID: r.ID, Name: r.Name, Operations: r.Operations.String(),
			Multiple: r.Multiple, Mandatory: r.Mandatory, Type: nodejson.TypeName(r.Type), Range: r.Range,
			Units: r.Units, Description: r.Description})
	}
	return o
}

func (a *API) listObjects(w http.ResponseWriter, r *http.Request) error {
	ids := a.cfg.Models.IDs()
	out := make([]objectDefJSON, 0, len(ids))
	for _, id := range ids {
		out = append(out, a.defJSON(a.cfg.Models.Object(id), false))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getObject(w http.ResponseWriter, r *http.Request) error {
	s := urlParam(r, "id")
	id, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return badField("id", fmt.Sprintf("%q is not an object ID from 0 to 65535", s))
	}
	d := a.cfg.Models.Object(uint16(id))
	if v := r.URL.Query().Get("version"); v != "" && d != nil {
		if _, err := objects.ParseVersion(v); err != nil {
			return badField("version", fmt.Sprintf("%q is not an object version (1.0, 1.1, ...)", v))
		}
		// Lookup picks what a device announcing v gets (the nearest).
		d = a.cfg.Models.Lookup(uint16(id), v)
	}
	if d == nil {
		return problem(http.StatusNotFound, fmt.Sprintf("no model of object %d (load its DDF with --models)", id))
	}
	writeJSON(w, http.StatusOK, a.defJSON(d, true))
	return nil
}

// bulkFormat picks CSV or JSON from the Content-Type.
func bulkFormat(r *http.Request) (registry.BulkFormat, error) {
	switch mediaType(r) {
	case "text/csv":
		return registry.CSV, nil
	case "application/json", "application/x-ndjson", "application/jsonl":
		return registry.JSON, nil
	}
	return "", problem(http.StatusUnsupportedMediaType, "import takes text/csv or application/json (an array, or JSON Lines)")
}

func boolParam(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badField(name, fmt.Sprintf("%q is not true or false", s))
	}
	return b, nil
}

// importDevices stores each device of the file independently and answers
// the line-by-line report (registry.Import).
func (a *API) importDevices(w http.ResponseWriter, r *http.Request) error {
	if err := a.needStore("imports"); err != nil {
		return err
	}
	f, err := bulkFormat(r)
	if err != nil {
		return err
	}
	dry, err := boolParam(r, "dryRun")
	if err != nil {
		return err
	}
	replace, err := boolParam(r, "replace")
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	rep, err := registry.Import(r.Context(), a.cfg.Store, bytes.NewReader(body), f, registry.ImportOptions{DryRun: dry, Replace: replace})
	if err != nil {
		// The file could not be read to its end; the lines before the
		// failure are stored (each device is its own transaction).
		accepted := 0
		if rep != nil {
			accepted = rep.Accepted
		}
		p := badField("body", fmt.Sprintf("%s (%d devices before it were stored)", strings.TrimPrefix(err.Error(), "registry: "), accepted))
		return p
	}
	type rejection struct {
		Line     int    `json:"line"`
		Endpoint string `json:"endpoint,omitempty"`
		Reason   string `json:"reason"`
	}
	out := struct {
		Accepted int         `json:"accepted"`
		Rejected []rejection `json:"rejected"`
		DryRun   bool        `json:"dryRun"`
	}{Accepted: rep.Accepted, Rejected: []rejection{}, DryRun: dry}
	for _, rj := range rep.Rejected {
		out.Rejected = append(out.Rejected, rejection{rj.Line, rj.Endpoint, rj.Reason})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) exportDevices(w http.ResponseWriter, r *http.Request) error {
	if err := a.needStore("exports"); err != nil {
		return err
	}
	f := registry.JSON
	ctype, ext := "application/json", "json"
	switch s := r.URL.Query().Get("format"); s {
	case "", "json":
	case "csv":
		f, ctype, ext = registry.CSV, "text/csv; charset=utf-8", "csv"
	default:
		return badField("format", fmt.Sprintf("%q is not csv or json", s))
	}
	secrets, err := boolParam(r, "secrets")
	if err != nil {
		return err
	}
	// Buffered, so that a store error is still a problem answer rather
	// than a truncated file.
	var buf bytes.Buffer
	if _, err := registry.Export(r.Context(), a.cfg.Store, &buf, f, registry.ExportOptions{Secrets: secrets}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="lwm2md-devices.`+ext+`"`)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
	return nil
}

func (a *API) getStatus(w http.ResponseWriter, r *http.Request) error {
	st := a.srv.Stats()
	addr := map[string]string{}
	if u := a.srv.Addr(); u != nil {
		addr["udp"] = u.String()
	}
	if d := a.srv.DTLSAddr(); d != nil {
		addr["dtls"] = d.String()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"version":       a.cfg.Version,
		"startedAt":     a.start.UTC(),
		"uptimeSeconds": int64(time.Since(a.start) / time.Second),
		"registrations": st.Registrations,
		"addresses":     addr,
		"registry":      a.cfg.Store != nil,
		"lastEventId":   a.events.newest(),
		"stats": map[string]any{
			"registrations": st.Registrations, "associations": st.Associations, "observations": st.Observations,
			"associationsRefused": st.AssociationsRefused, "requestsDropped": st.RequestsDropped,
			"resets": st.Resets, "foreignNotify": st.ForeignNotify, "notifications": st.Notifications,
			"sends": st.Sends, "eventsDropped": st.EventsDropped, "transportErrors": st.TransportErrors,
			"oversized": st.Oversized,
		},
	})
	return nil
}
