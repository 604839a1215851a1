package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"
)

// route is one operation of the API: the router and the OpenAPI document
// are both built from the table, so that they cannot disagree.
type route struct {
	method  string
	pattern string // chi pattern under Prefix; also the OpenAPI path
	op      string // OpenAPI operationId, metrics label, audit "op"
	role    Role
	summary string
	query   []string // documented query parameters (see queryParams)
	body    []string // request media types; none: no body
	status  int      // the success status
	h       handlerFunc
}

// Device paths, one pattern per depth (LwM2M Core 1.1 §6.1: an operation
// addresses an object, an object instance, a resource or a resource
// instance).
const (
	pObject   = "/clients/{ep}/{object}"
	pInstance = pObject + "/{instance}"
	pResource = pInstance + "/{resource}"
	pResInst  = pResource + "/{resourceInstance}"
)

var (
	jsonBody = []string{"application/json"}
	nodeBody = []string{"application/json", "text/plain"}
	execBody = []string{"text/plain", "application/json"}
	bulkBody = []string{"text/csv", "application/json", "application/x-ndjson"}
)

func (a *API) routes() []route {
	rs := []route{
		{"GET", "/status", "getStatus", RoleViewer, "Server status and counters", nil, nil, 200, a.getStatus},
		{"GET", "/openapi.json", "getOpenAPI", RoleViewer, "This API's OpenAPI 3.1 description", nil, nil, 200, a.getOpenAPI},
		{"GET", "/events", "streamEvents", RoleViewer, "Server-Sent Events of the server's events", []string{"endpoint", "kind"}, nil, 200, a.streamEvents},
		{"GET", "/clients", "listClients", RoleViewer, "Registered devices", []string{"prefix", "tag", "status", "version", "sort", "limit", "cursor", "offset"}, nil, 200, a.listClients},
		{"GET", "/clients/{ep}", "getClient", RoleViewer, "One device's registration", nil, nil, 200, a.getClient},
		{"GET", "/clients/{ep}/observations", "listObservations", RoleViewer, "The device's observations", nil, nil, 200, a.listObservations},
		{"GET", "/clients/{ep}/values", "listValues", RoleViewer, "The device's last known values (from notifications, Sends and Reads), with device and server time", []string{"path"}, nil, 200, a.listValues},
		{"GET", "/clients/{ep}/requests", "listRequests", RoleViewer, "The device's queued requests", nil, nil, 200, a.listRequests},
		{"GET", "/clients/{ep}/requests/{id}", "getRequest", RoleViewer, "A queued request and its result", nil, nil, 200, a.getRequest},
		{"DELETE", "/clients/{ep}/requests/{id}", "cancelRequest", RoleOperator, "Withdraw a queued request", nil, nil, 204, a.cancelRequest},
		{"POST", "/clients/{ep}/composite/read", "readComposite", RoleViewer, "Read-Composite", []string{"format", "timeout"}, jsonBody, 200, a.device(a.readComposite)},
		{"POST", "/clients/{ep}/composite/write", "writeComposite", RoleOperator, "Write-Composite", []string{"format", "timeout"}, jsonBody, 204, a.device(a.writeComposite)},
		{"POST", "/clients/{ep}/composite/observe", "observeComposite", RoleOperator, "Observe-Composite (body: the paths, as composite/read)", []string{"format", "timeout"}, jsonBody, 200, a.device(a.observeComposite)},
		{"DELETE", "/clients/{ep}/observations/{token}", "cancelObservation", RoleOperator, "Cancel one observation (single or composite) by its token", []string{"timeout"}, nil, 204, a.cancelObservation},

		{"POST", pObject, "createInstance", RoleOperator, "Create an object instance", []string{"format", "timeout"}, jsonBody, 201, a.device(a.create)},
		{"PATCH", pInstance, "writeInstancePartial", RoleOperator, "Write (partial update) an instance", []string{"format", "timeout"}, jsonBody, 204, a.device(a.writePartial)},
		{"DELETE", pInstance, "deleteInstance", RoleOperator, "Delete an object instance", []string{"timeout"}, nil, 204, a.device(a.deleteNode)},
		{"POST", pResource, "execute", RoleOperator, "Execute a resource (body: arguments)", []string{"timeout"}, execBody, 204, a.device(a.execute)},
		{"DELETE", pResInst, "deleteResourceInstance", RoleOperator, "Delete a resource instance (LwM2M 1.1+)", []string{"timeout"}, nil, 204, a.device(a.deleteNode)},
	}
	depths := []struct{ pattern, name string }{
		{pObject, "Object"}, {pInstance, "Instance"}, {pResource, "Resource"}, {pResInst, "ResourceInstance"},
	}
	for i, d := range depths {
		rs = append(rs,
			route{"GET", d.pattern, "read" + d.name, RoleViewer, "Read", []string{"format", "timeout"}, nil, 200, a.device(a.read)},
			route{"PUT", d.pattern + "/attributes", "writeAttributes" + d.name, RoleOperator, "Write-Attributes (query or JSON body)", []string{"pmin", "pmax", "gt", "lt", "st", "epmin", "epmax", "edge", "con", "hqmax", "timeout"}, jsonBody, 204, a.device(a.writeAttributes)},
			route{"POST", d.pattern + "/observe", "observe" + d.name, RoleOperator, "Observe", []string{"format", "timeout"}, nil, 200, a.device(a.observe)},
			route{"DELETE", d.pattern + "/observe", "cancelObserve" + d.name, RoleOperator, "Cancel the observations of the path", []string{"timeout"}, nil, 204, a.device(a.cancelObserve)},
		)
		if i < 3 { // LwM2M Core 1.1 §6.3.2: no Discover of a resource instance
			rs = append(rs, route{"GET", d.pattern + "/discover", "discover" + d.name, RoleViewer, "Discover", []string{"timeout"}, nil, 200, a.device(a.discover)})
		}
		if i > 0 { // Write addresses an instance, a resource or a resource instance
			rs = append(rs, route{"PUT", d.pattern, "write" + d.name, RoleOperator, "Write (replace)", []string{"format", "timeout"}, nodeBody, 204, a.device(a.writeReplace)})
		}
		if i > 1 {
			rs = append(rs, route{"PATCH", d.pattern, "writePartial" + d.name, RoleOperator, "Write (partial update; the same as replace for a resource)", []string{"format", "timeout"}, nodeBody, 204, a.device(a.writePartial)})
		}
	}
	rs = append(rs,
		route{"GET", "/credentials", "listCredentials", RoleAdmin, "Devices with DTLS credentials (keys masked)", []string{"limit", "cursor"}, nil, 200, a.listCredentials},
		route{"GET", "/credentials/{ep}", "getCredentials", RoleAdmin, "A device's DTLS credentials (key masked)", nil, nil, 200, a.getCredentials},
		route{"PUT", "/credentials/{ep}", "putCredentials", RoleAdmin, "Set a device's DTLS credentials", nil, jsonBody, 200, a.putCredentials},
		route{"DELETE", "/credentials/{ep}", "deleteCredentials", RoleAdmin, "Remove a device's DTLS credentials", nil, nil, 204, a.deleteCredentials},
		route{"GET", "/objects", "listObjects", RoleViewer, "Known object models", nil, nil, 200, a.listObjects},
		route{"GET", "/objects/{id}", "getObject", RoleViewer, "One object model (newest version, or ?version=)", []string{"version"}, nil, 200, a.getObject},
		route{"POST", "/import", "importDevices", RoleAdmin, "Import devices (credentials and tags) from CSV or JSON", []string{"dryRun", "replace"}, bulkBody, 200, a.importDevices},
		route{"GET", "/export", "exportDevices", RoleAdmin, "Export devices (credentials and tags)", []string{"format", "secrets"}, nil, 200, a.exportDevices},
		route{"GET", "/bootstrap/configs/{ep}", "getBootstrapConfig", RoleViewer, "An endpoint's own bootstrap configuration (secrets masked)", nil, nil, 200, with(a.needBootstrap, a.getBootstrapConfig)},
		route{"PUT", "/bootstrap/configs/{ep}", "putBootstrapConfig", RoleAdmin, "Set an endpoint's bootstrap configuration", nil, jsonBody, 200, with(a.needBootstrap, a.putBootstrapConfig)},
		route{"DELETE", "/bootstrap/configs/{ep}", "deleteBootstrapConfig", RoleAdmin, "Remove an endpoint's bootstrap configuration", nil, nil, 204, with(a.needBootstrap, a.deleteBootstrapConfig)},
		route{"GET", "/bootstrap/templates", "getBootstrapTemplates", RoleViewer, "The bootstrap templates, in matching order (secrets masked)", nil, nil, 200, with(a.needBootstrap, a.getBootstrapTemplates)},
		route{"PUT", "/bootstrap/templates", "putBootstrapTemplates", RoleAdmin, "Replace the bootstrap templates", nil, jsonBody, 200, with(a.needBootstrap, a.putBootstrapTemplates)},
		route{"GET", "/bootstrap/status", "listBootstrapStatus", RoleViewer, "The last bootstrap of every endpoint since the start", nil, nil, 200, with(a.needBootstrap, a.listBootstrapStatus)},
		route{"GET", "/bootstrap/status/{ep}", "getBootstrapStatus", RoleViewer, "The last bootstrap of an endpoint: state, step, code, reason", nil, nil, 200, with(a.needBootstrap, a.getBootstrapStatus)},
		route{"POST", "/bootstrap/{ep}/start", "startBootstrap", RoleAdmin, "Server-initiated bootstrap of a device connected to the bootstrap server", []string{"timeout"}, nil, 200, with(a.needBootstrap, a.startBootstrap)},
		route{"DELETE", "/bootstrap/factory/{identity}", "revokeFactory", RoleAdmin, "Revoke a factory bootstrap credential", nil, nil, 204, with(a.needBootstrap, a.revokeFactory)},
		route{"GET", "/bootstrap/revoked-cas", "listRevokedCAs", RoleViewer, "Revoked factory CAs: those of bs-revoked-cas and those revoked through the API", nil, nil, 200, with(a.needBootstrap, a.listRevokedCAs)},
		route{"POST", "/bootstrap/revoked-cas", "revokeCA", RoleAdmin, "Revoke a factory CA by subject or SHA-256 fingerprint, kept in the registry (200 when it was revoked already)", nil, jsonBody, 201, with(a.needBootstrap, a.revokeCA)},
		route{"POST", "/jobs", "submitJob", RoleOperator, "Submit a job: one command for a set of devices (the spec of lwm2m.jobs.submit)", nil, jsonBody, 201, with(a.needJobs, a.submitJob)},
		route{"GET", "/jobs", "listJobs", RoleViewer, "Jobs, by ID", []string{"status", "limit", "cursor"}, nil, 200, with(a.needJobs, a.listJobs)},
		route{"GET", "/jobs/{id}", "getJob", RoleViewer, "A job: status, spec, counts and every device's result", nil, nil, 200, with(a.needJobs, a.getJob)},
		route{"DELETE", "/jobs/{id}", "cancelJob", RoleOperator, "Cancel a job: the devices not yet done end as cancelled", nil, nil, 200, with(a.needJobs, a.cancelJob)},
	)
	return rs
}

// with adapts a handler that needs a part the API may run without (the
// bootstrap server, the job runner): need gives it, or the problem to
// answer (501) when it is not there.
func with[T any](need func() (T, error), h func(http.ResponseWriter, *http.Request, T) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := need()
		if err != nil {
			return err
		}
		return h(w, r, v)
	}
}

// router builds the chi router from the route table.
func (a *API) router() *chi.Mux {
	root := chi.NewRouter()
	sub := chi.NewRouter()
	sub.Use(a.cors, a.authenticate, a.limitBody)
	for _, rt := range a.routes() {
		sub.Method(rt.method, rt.pattern, a.wrap(rt))
	}
	sub.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, problem(http.StatusNotFound, "no such resource: "+r.URL.Path+" (see "+Prefix+"/openapi.json)"))
	})
	sub.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		p := problem(http.StatusMethodNotAllowed, r.Method+" is not an operation of "+r.URL.Path)
		p.allow = strings.Join(allowed(sub, r), ", ")
		writeProblem(w, r, p)
	})
	root.Mount(Prefix, sub)
	if a.cfg.UI != nil {
		root.Handle("/*", a.cfg.UI)
	}
	return root
}

// allowed lists the methods the router serves for r's path (RFC 9110
// §15.5.6: a 405 carries Allow).
func allowed(mux *chi.Mux, r *http.Request) []string {
	p := r.URL.EscapedPath()
	p = strings.TrimPrefix(p, Prefix)
	var out []string
	for _, m := range []string{"GET", "PUT", "PATCH", "POST", "DELETE"} {
		if mux.Match(chi.NewRouteContext(), m, p) {
			out = append(out, m)
		}
	}
	return out
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}
