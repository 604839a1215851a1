package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lwm2md/lwm2md/registry"
)

// The last bootstrap of each endpoint is kept in the endpoint's tags
// (Config.StatusStore, registry.Tags), so that it survives a restart and
// an operator finds the devices that have not bootstrapped with a tag
// query (bootstrap=failed). TagState is "ok", "failed" or "running"; the
// others describe the outcome and are "" when they do not apply.
const (
	TagState     = "bootstrap"
	TagStep      = "bootstrap.step"
	TagCode      = "bootstrap.code" // the device's error answer, "4.06"
	TagReason    = "bootstrap.reason"
	TagTime      = "bootstrap.time" // RFC 3339, UTC: the end, or the start while running
	TagStarted   = "bootstrap.started"
	TagInitiator = "bootstrap.initiator"
	TagSource    = "bootstrap.source"
	// TagAttempts counts the sequences started for the endpoint, across
	// restarts of the bootstrap server, so that a device bootstrapping in
	// a loop shows (Status.Attempts).
	TagAttempts = "bootstrap.attempts"
)

// The values of TagState.
const (
	TagOK      = "ok"
	TagFailed  = "failed"
	TagRunning = "running"
)

// statusTimeout bounds a status write or read in the store.
const statusTimeout = 5 * time.Second

// maxReason bounds the reason kept in a tag (registry.MaxTagValueLen).
const maxReason = 1024

// statusTags is st as tags.
func statusTags(st Status) map[string]string {
	tags := map[string]string{TagStep: st.Step, TagReason: st.Error, TagCode: "", TagInitiator: st.Initiator, TagSource: st.Source,
		TagAttempts: strconv.Itoa(st.Attempts)}
	if len(tags[TagReason]) > maxReason {
		tags[TagReason] = tags[TagReason][:maxReason]
	}
	if st.Code != 0 {
		tags[TagCode] = fmt.Sprintf("%d.%02d", st.Code>>5, st.Code&31)
	}
	at := st.Ended
	switch st.State {
	case StateFinished:
		tags[TagState] = TagOK
	case StateFailed:
		tags[TagState] = TagFailed
	default:
		tags[TagState], at = TagRunning, st.Started
	}
	tags[TagTime] = at.UTC().Format(time.RFC3339Nano)
	tags[TagStarted] = st.Started.UTC().Format(time.RFC3339Nano)
	return tags
}

// statusFromTags reads a Status back; false when the tags have none. A
// sequence the store says is running but this server does not run was
// cut off by a stop of the server that ran it: it counts as failed.
func statusFromTags(ep string, tags map[string]string) (Status, bool) {
	state, ok := tags[TagState]
	if !ok {
		return Status{}, false
	}
	st := Status{Endpoint: ep, Step: tags[TagStep], Error: tags[TagReason], Initiator: tags[TagInitiator], Source: tags[TagSource]}
	at, _ := time.Parse(time.RFC3339Nano, tags[TagTime])
	st.Started, _ = time.Parse(time.RFC3339Nano, tags[TagStarted])
	switch state {
	case TagOK:
		st.State, st.Ended = StateFinished, at
	case TagFailed:
		st.State, st.Ended = StateFailed, at
	default:
		st.State, st.Started = StateFailed, at
		st.Error = "interrupted: the bootstrap server stopped during the sequence"
	}
	if n, err := strconv.Atoi(tags[TagAttempts]); err == nil && n > 0 {
		st.Attempts = n
	}
	if c, d, ok := strings.Cut(tags[TagCode], "."); ok {
		class, err1 := strconv.Atoi(c)
		detail, err2 := strconv.Atoi(d)
		if err1 == nil && err2 == nil && class < 8 && detail < 32 {
			st.Code = uint8(class<<5 | detail)
		}
	}
	return st, true
}

// persist writes st to Config.StatusStore. A failure to write is logged:
// the bootstrap itself has happened either way.
func (s *Server) persist(st Status) {
	if s.cfg.StatusStore == nil || st.Endpoint == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	if err := s.cfg.StatusStore.Set(ctx, st.Endpoint, statusTags(st)); err != nil {
		s.log.Warn("bootstrap status not stored", "ep", st.Endpoint, "err", err)
	}
}

// seedAttempts gives a new in-memory status of ep the attempts the store
// keeps, so that the count goes on across restarts instead of starting
// again at 1. An endpoint this server already has a status of is left
// alone; the store is read outside s.mu.
func (s *Server) seedAttempts(ep string) {
	if s.cfg.StatusStore == nil || ep == "" {
		return
	}
	st, ok := s.Status(ep) // this server's, else the stored one
	if !ok || st.Attempts == 0 {
		return
	}
	s.mu.Lock()
	if s.status[ep] == nil {
		s.status[ep] = &Status{Endpoint: ep, Attempts: st.Attempts}
	}
	s.mu.Unlock()
}

// ours reports whether a refused request's endpoint has a configuration:
// only then is the refusal written to the registry, so that a peer on the
// NoSec port cannot fill it with names of its choosing.
func (s *Server) ours(ep string, err error) bool {
	if s.cfg.StatusStore == nil || errors.Is(err, ErrNoConfig) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	_, _, rerr := s.cfg.Configs.Resolve(ctx, ep)
	return rerr == nil
}

// current is a copy of the endpoint's status in memory.
func (s *Server) current(ep string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.status[ep]; ok {
		return *st, true
	}
	return Status{}, false
}

// persistCurrent writes the endpoint's status as it is in memory.
func (s *Server) persistCurrent(ep string) {
	if st, ok := s.current(ep); ok {
		s.persist(st)
	}
}

// Status returns the state of the endpoint's last bootstrap: the one this
// server ran, else the one Config.StatusStore keeps; false when there is
// none.
func (s *Server) Status(ep string) (Status, bool) {
	if st, ok := s.current(ep); ok || s.cfg.StatusStore == nil {
		return st, ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	tags, err := s.cfg.StatusStore.Get(ctx, ep)
	if err != nil {
		if !errors.Is(err, registry.ErrNotFound) {
			s.log.Warn("bootstrap status not read", "ep", ep, "err", err)
		}
		return Status{}, false
	}
	return statusFromTags(ep, tags)
}

// Statuses returns every endpoint's Status, sorted by endpoint: those of
// Config.StatusStore, replaced by what this server ran since it started.
func (s *Server) Statuses() []Status {
	byEP := make(map[string]Status)
	if s.cfg.StatusStore != nil {
		if err := s.storedStatuses(byEP); err != nil {
			s.log.Warn("bootstrap statuses not read", "err", err)
		}
	}
	s.mu.Lock()
	for ep, st := range s.status {
		byEP[ep] = *st
	}
	s.mu.Unlock()
	out := make([]Status, 0, len(byEP))
	for _, st := range byEP {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out
}

// storedStatuses reads every endpoint tagged with a bootstrap status,
// a page at a time.
func (s *Server) storedStatuses(into map[string]Status) error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*statusTimeout)
	defer cancel()
	const page = 500
	after := ""
	for {
		eps, err := s.cfg.StatusStore.Find(ctx, registry.TagQuery{Key: TagState, AnyValue: true, After: after, Limit: page})
		if err != nil {
			return fmt.Errorf("bootstrap: statuses: %w", err)
		}
		for _, ep := range eps {
			tags, err := s.cfg.StatusStore.Get(ctx, ep)
			if err != nil {
				return fmt.Errorf("bootstrap: status of %q: %w", ep, err)
			}
			if st, ok := statusFromTags(ep, tags); ok {
				into[ep] = st
			}
		}
		if len(eps) < page {
			return nil
		}
		after = eps[len(eps)-1]
	}
}
