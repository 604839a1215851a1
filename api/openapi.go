package api

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
)

// queryParams document the query parameters routes name.
var queryParams = map[string]string{
	"format":   "Content format on the wire to the device: text, opaque, tlv, json, senml-json, senml-cbor, lwm2m-cbor, cbor, or its number.",
	"timeout":  "How long to wait for the device (a Go duration such as 30s, or seconds); for a sleeping device, the queued request's deadline.",
	"endpoint": "Only events of these endpoints (comma-separated).",
	"kind":     "Only events of these kinds (comma-separated): " + strings.Join(EventKinds, ", ") + ".",
	"prefix":   "Endpoint names starting with this prefix.",
	"tag":      "Devices with this tag: key (any value) or key=value.",
	"status":   "Devices: online or sleeping. Jobs: pending, running, done or cancelled.",
	"version":  "An LwM2M version (1.0, 1.1, 1.2); for /objects/{id}, the object version.",
	"sort":     "endpoint, registeredAt, updatedAt or version; prefix - for descending.",
	"limit":    "Page size, 1 to 1000 (default 100).",
	"cursor":   "The next value of the previous page.",
	"offset":   "Skip this many entries.",
	"dryRun":   "true: check every line, store nothing.",
	"replace":  "true: a line may replace existing credentials.",
	"secrets":  "true: include PSK keys (hex).",
	"pmin":     "Minimum period, seconds.", "pmax": "Maximum period, seconds.",
	"gt": "Greater-than threshold.", "lt": "Less-than threshold.", "st": "Step.",
	"epmin": "Minimum evaluation period, seconds.", "epmax": "Maximum evaluation period, seconds.",
	"edge": "Edge (0 or 1, LwM2M 1.2).", "con": "Confirmable notifications (0 or 1, LwM2M 1.2).",
	"hqmax": "Historical queue maximum (LwM2M 1.2).",
	"path":  "Only the values at or under this LwM2M path (/3303, /3303/0/5700).",
}

var pathParam = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// pathParams describe the path parameters.
var pathParams = map[string]map[string]any{
	"ep":               {"description": "Endpoint client name (URL-escaped).", "schema": map[string]any{"type": "string"}},
	"object":           {"description": "Object ID.", "schema": idSchema},
	"instance":         {"description": "Object instance ID.", "schema": idSchema},
	"resource":         {"description": "Resource ID.", "schema": idSchema},
	"resourceInstance": {"description": "Resource instance ID.", "schema": idSchema},
	"id":               {"description": "Object ID, queued request ID, or job ID.", "schema": map[string]any{"type": "string"}},
}

var idSchema = map[string]any{"type": "integer", "minimum": 0, "maximum": 65535}

// openAPI builds the OpenAPI 3.1 document from the route table.
func (a *API) openAPI() map[string]any {
	paths := map[string]any{}
	for _, rt := range a.routes() {
		item, _ := paths[rt.pattern].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.pattern] = item
		}
		item[strings.ToLower(rt.method)] = operation(rt)
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "lwm2md REST API",
			"version":     "v1",
			"description": "The operator API of the lwm2md LwM2M server. Values are nodejson nodes; errors are RFC 9457 problem+json. See docs/api.md.",
		},
		"servers":  []any{map[string]any{"url": Prefix}},
		"security": []any{map[string]any{"bearer": []any{}}},
		"paths":    paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer",
				"description": "An API token; its role (viewer, operator, admin) is x-role of each operation."}},
			"schemas": map[string]any{
				"Problem": map[string]any{"type": "object", "properties": map[string]any{
					"type": str, "title": str, "status": map[string]any{"type": "integer"}, "detail": str,
					"instance": str, "field": str, "endpoint": str, "state": str, "coapCode": str,
				}},
				"Node": map[string]any{"type": "object", "description": "A nodejson node (objects/nodejson).", "properties": map[string]any{
					"path": str, "id": map[string]any{"type": "integer"}, "type": str, "value": map[string]any{},
					"instances": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/Node"}},
					"resources": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/Node"}},
				}},
			},
			"responses": map[string]any{
				"Problem": map[string]any{"description": "An error (RFC 9457).", "content": map[string]any{
					"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}},
			},
		},
	}
}

var str = map[string]any{"type": "string"}

func operation(rt route) map[string]any {
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(rt.pattern, -1) {
		p := map[string]any{"name": m[1], "in": "path", "required": true}
		for k, v := range pathParams[m[1]] {
			p[k] = v
		}
		params = append(params, p)
	}
	for _, q := range rt.query {
		params = append(params, map[string]any{"name": q, "in": "query", "description": queryParams[q], "schema": str})
	}
	if rt.op == "streamEvents" {
		params = append(params, map[string]any{"name": "Last-Event-ID", "in": "header", "description": "Resume after this event ID.", "schema": str})
	}
	responses := map[string]any{
		itoa(rt.status): map[string]any{"description": http.StatusText(rt.status)},
		"default":       map[string]any{"$ref": "#/components/responses/Problem"},
	}
	if strings.Contains(rt.pattern, "{object}") || strings.Contains(rt.op, "omposite") {
		responses["202"] = map[string]any{"description": "The device sleeps: the request is queued; poll the Location."}
	}
	op := map[string]any{
		"operationId": rt.op,
		"summary":     rt.summary,
		"x-role":      rt.role.String(),
		"tags":        []any{tagOf(rt.pattern)},
		"responses":   responses,
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if len(rt.body) > 0 {
		content := map[string]any{}
		for _, mt := range rt.body {
			content[mt] = map[string]any{"schema": map[string]any{}}
		}
		// Write-Attributes may take its attributes from the query, and
		// Execute may have no arguments.
		optional := strings.HasPrefix(rt.op, "writeAttributes") || rt.op == "execute"
		op["requestBody"] = map[string]any{"required": !optional, "content": content}
	}
	return op
}

func tagOf(pattern string) string {
	seg := strings.Split(strings.TrimPrefix(pattern, "/"), "/")[0]
	seg = strings.TrimSuffix(seg, ".json")
	if strings.HasPrefix(pattern, "/clients/{ep}/") && !strings.Contains(pattern, "requests") && !strings.Contains(pattern, "observations") {
		return "operations"
	}
	return seg
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func (a *API) getOpenAPI(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, a.openAPI())
	return nil
}
