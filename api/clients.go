package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/server"
)

// objectLinkJSON is an announced object, resolved to its model's name.
type objectLinkJSON struct {
	ID        uint16   `json:"id"`
	Version   string   `json:"version"`
	Name      string   `json:"name,omitempty"`
	Instances []uint16 `json:"instances"`
}

// clientJSON is a registration as the API shows it.
type clientJSON struct {
	Endpoint       string            `json:"endpoint"`
	RegistrationID string            `json:"registrationId"`
	Status         string            `json:"status"` // online, sleeping, offline (an ended registration)
	Version        string            `json:"version"`
	Lifetime       int64             `json:"lifetime"` // seconds; 0: never expires
	Binding        string            `json:"binding"`
	QueueMode      bool              `json:"queueMode"`
	SMSNumber      string            `json:"smsNumber,omitempty"`
	Address        string            `json:"address"`
	Root           string            `json:"root"`
	Formats        []string          `json:"formats"`
	Objects        []objectLinkJSON  `json:"objects"`
	Params         map[string]string `json:"params,omitempty"`
	RegisteredAt   time.Time         `json:"registeredAt"`
	UpdatedAt      time.Time         `json:"updatedAt"`
	ExpiresAt      *time.Time        `json:"expiresAt,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
}

// status is "online" or "sleeping" for a registration in force.
func (a *API) status(reg *server.Registration) string {
	if reg.QueueMode && !a.srv.Awake(reg.Endpoint) {
		return "sleeping"
	}
	return "online"
}

// clientJSON describes reg; kind is the event it comes with (0 for a
// plain read), which decides the status of an ended registration.
func (a *API) clientJSON(reg *server.Registration, kind server.EventKind) clientJSON {
	c := clientJSON{
		Endpoint: reg.Endpoint, RegistrationID: reg.ID, Version: reg.Version,
		Lifetime: int64(reg.Lifetime / time.Second), Binding: reg.Binding, QueueMode: reg.QueueMode,
		SMSNumber: reg.SMSNumber, Address: reg.Addr.String(), Root: reg.Root,
		Formats: []string{}, Objects: []objectLinkJSON{}, Params: reg.Params,
		RegisteredAt: reg.RegisteredAt.UTC(), UpdatedAt: reg.UpdatedAt.UTC(),
	}
	switch kind {
	case server.EventDeregistered, server.EventExpired:
		c.Status = "offline"
	case server.EventSleeping:
		c.Status = "sleeping"
	case server.EventAwake:
		c.Status = "online"
	default:
		c.Status = a.status(reg)
	}
	if reg.Lifetime > 0 {
		t := reg.ExpiresAt(0).UTC()
		c.ExpiresAt = &t
	}
	for _, f := range reg.Formats {
		c.Formats = append(c.Formats, f.String())
	}
	models := a.srv.Models(reg)
	for _, o := range reg.Objects {
		l := objectLinkJSON{ID: o.ID, Version: o.Version, Instances: o.Instances}
		if l.Instances == nil {
			l.Instances = []uint16{}
		}
		if v, ok := reg.ObjectVersions[o.ID]; ok {
			l.Version = v
		}
		if def := models.Object(o.ID); def != nil {
			l.Name = def.Name
		}
		c.Objects = append(c.Objects, l)
	}
	return c
}

func (a *API) getClient(w http.ResponseWriter, r *http.Request) error {
	ep := endpointParam(r)
	reg, err := a.srv.Registration(r.Context(), ep)
	if err != nil {
		return err
	}
	c := a.clientJSON(reg, 0)
	if a.cfg.Store != nil {
		tags, err := a.cfg.Store.Tags().Get(r.Context(), ep)
		if err != nil {
			return err
		}
		if len(tags) > 0 {
			c.Tags = tags
		}
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// listQuery is the parsed query of GET /clients.
type listQuery struct {
	prefix, status, version string
	tagKey, tagValue        string
	hasTag, tagAnyValue     bool
	sort                    string
	desc                    bool
	limit, offset           int
}

const (
	defaultLimit = 100
	maxLimit     = 1000
)

var sortKeys = []string{"endpoint", "registeredAt", "updatedAt", "version"}

func parseListQuery(r *http.Request) (listQuery, error) {
	q := r.URL.Query()
	l := listQuery{prefix: q.Get("prefix"), version: q.Get("version"), sort: "endpoint", limit: defaultLimit}
	if s := q.Get("status"); s != "" {
		if s != "online" && s != "sleeping" {
			return l, badField("status", fmt.Sprintf("%q is not online or sleeping", s))
		}
		l.status = s
	}
	if l.version != "" {
		if _, err := objects.ParseVersion(l.version); err != nil {
			return l, badField("version", fmt.Sprintf("%q is not an LwM2M version (1.0, 1.1, 1.2)", l.version))
		}
	}
	if s := q.Get("tag"); s != "" {
		k, v, hasValue := strings.Cut(s, "=")
		if err := registry.CheckTag(k, v); err != nil || k == "" {
			return l, badField("tag", fmt.Sprintf("%q is not key or key=value", s))
		}
		l.hasTag, l.tagKey, l.tagValue, l.tagAnyValue = true, k, v, !hasValue
	}
	if s := q.Get("sort"); s != "" {
		l.desc = strings.HasPrefix(s, "-")
		l.sort = strings.TrimPrefix(s, "-")
		if !slices.Contains(sortKeys, l.sort) {
			return l, badField("sort", fmt.Sprintf("%q is not one of %s (with - for descending)", s, strings.Join(sortKeys, ", ")))
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return l, badField("limit", fmt.Sprintf("%q is not a number from 1 to %d", s, maxLimit))
		}
		l.limit = n
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return l, badField("offset", fmt.Sprintf("%q is not a number from 0", s))
		}
		l.offset = n
	}
	if s := q.Get("cursor"); s != "" {
		n, err := decodeCursor(s)
		if err != nil {
			return l, badField("cursor", "not a cursor this API returned")
		}
		l.offset = n
	}
	return l, nil
}

// A cursor is the offset of the next page in the same sort, opaque to
// clients so that the paging scheme may change.
func encodeCursor(off int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(off)))
}

func decodeCursor(s string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), "o:") {
		return 0, fmt.Errorf("bad cursor")
	}
	n, err := strconv.Atoi(string(b[2:]))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad cursor")
	}
	return n, nil
}

func (a *API) listClients(w http.ResponseWriter, r *http.Request) error {
	l, err := parseListQuery(r)
	if err != nil {
		return err
	}
	regs, err := a.srv.Registrations(r.Context())
	if err != nil {
		return err
	}
	var tagged map[string]bool
	if l.hasTag {
		if a.cfg.Store == nil {
			return problem(http.StatusNotImplemented, "tag: device tags need the persistent registry")
		}
		eps, err := a.cfg.Store.Tags().Find(r.Context(), registry.TagQuery{Key: l.tagKey, Value: l.tagValue, AnyValue: l.tagAnyValue})
		if err != nil {
			return err
		}
		tagged = make(map[string]bool, len(eps))
		for _, ep := range eps {
			tagged[ep] = true
		}
	}
	list := make([]clientJSON, 0, len(regs))
	for _, reg := range regs {
		if !strings.HasPrefix(reg.Endpoint, l.prefix) || tagged != nil && !tagged[reg.Endpoint] {
			continue
		}
		if l.version != "" && objects.CompareVersions(reg.Version, l.version) != 0 {
			continue
		}
		c := a.clientJSON(reg, 0)
		if l.status != "" && c.Status != l.status {
			continue
		}
		list = append(list, c)
	}
	sortClients(list, l.sort, l.desc)
	total := len(list)
	page := list[min(l.offset, total):min(l.offset+l.limit, total)]
	out := map[string]any{"clients": page, "total": total}
	if l.offset+l.limit < total {
		out["next"] = encodeCursor(l.offset + l.limit)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func sortClients(list []clientJSON, key string, desc bool) {
	less := func(i, j int) bool {
		a, b := list[i], list[j]
		switch key {
		case "registeredAt":
			if !a.RegisteredAt.Equal(b.RegisteredAt) {
				return a.RegisteredAt.Before(b.RegisteredAt)
			}
		case "updatedAt":
			if !a.UpdatedAt.Equal(b.UpdatedAt) {
				return a.UpdatedAt.Before(b.UpdatedAt)
			}
		case "version":
			if c := objects.CompareVersions(a.Version, b.Version); c != 0 {
				return c < 0
			}
		}
		return a.Endpoint < b.Endpoint
	}
	sort.SliceStable(list, func(i, j int) bool {
		if desc {
			return less(j, i)
		}
		return less(i, j)
	})
}
