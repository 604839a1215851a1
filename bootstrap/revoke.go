package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/lwm2md/lwm2md/registry"
)

// revokedKey is the record of registry.BootstrapConfigs that holds the
// factory CAs and factory PSKs revoked at run time, so that a revocation
// survives a restart and reaches every node sharing the registry. Like
// templatesKey it starts with a control character, which no endpoint
// name holds.
const revokedKey = "\x1erevoked"

// The values of RevokedCA.Kind and RevokedCA.Source.
const (
	RevokedBySubject     = "subject"
	RevokedByFingerprint = "fingerprint"
	RevokedInRegistry    = "registry"
	RevokedInConfig      = "config"
)

// RevokedCA is a withdrawn factory CA.
type RevokedCA struct {
	// CA is the SHA-256 fingerprint of the CA certificate in lower-case
	// hex, or its subject as pkix.Name.String() writes it ("CN=Factory
	// CA,O=Acme").
	CA   string `json:"ca"`
	Kind string `json:"kind"` // RevokedBySubject or RevokedByFingerprint
	// Source is RevokedInRegistry (Server.RevokeCA, kept in the Configs'
	// store) or RevokedInConfig (Config.RevokedCAs).
	Source    string    `json:"source"`
	RevokedAt time.Time `json:"revokedAt,omitzero"` // registry only
}

// revokedRecord is the stored form: the CAs by revocationKey, the
// factory PSKs by identity.
type revokedRecord struct {
	CAs     []storedRevocation `json:"cas,omitempty"`
	Factory []storedRevocation `json:"factory,omitempty"`
}

type storedRevocation struct {
	ID        string    `json:"id"`
	RevokedAt time.Time `json:"revokedAt"`
}

// The kinds of stored revocation.
const (
	revokedCAKind      = "cas"
	revokedFactoryKind = "factory"
)

// list is the record's list of kind.
func (r *revokedRecord) list(kind string) *[]storedRevocation {
	if kind == revokedFactoryKind {
		return &r.Factory
	}
	return &r.CAs
}

func revokedCA(key, source string, at time.Time) RevokedCA {
	kind := RevokedBySubject
	if _, err := registry.NormalizeFingerprint(key); err == nil {
		kind = RevokedByFingerprint
	}
	return RevokedCA{CA: key, Kind: kind, Source: source, RevokedAt: at}
}

// revoked reads the stored revocations (none when never stored).
func (s *Configs) revoked(ctx context.Context) (revokedRecord, error) {
	var rec revokedRecord
	raw, err := s.store.Get(ctx, revokedKey)
	if errors.Is(err, registry.ErrNotFound) {
		return rec, nil
	}
	if err != nil {
		return rec, fmt.Errorf("bootstrap: revocations: %w", err)
	}
	if err := json.Unmarshal(raw.Config, &rec); err != nil {
		return rec, fmt.Errorf("bootstrap: stored revocations: %w", err)
	}
	return rec, nil
}

// revoke adds id to the stored revocations of kind and returns it; the
// one stored before and false when it is there.
func (s *Configs) revoke(ctx context.Context, kind, id string, at time.Time) (storedRevocation, bool, error) {
	rec, err := s.revoked(ctx)
	if err != nil {
		return storedRevocation{}, false, err
	}
	l := rec.list(kind)
	for _, r := range *l {
		if r.ID == id {
			return r, false, nil
		}
	}
	r := storedRevocation{ID: id, RevokedAt: at.UTC()}
	*l = append(*l, r)
	data, err := json.Marshal(rec)
	if err != nil {
		return r, false, fmt.Errorf("bootstrap: revocations: %w", err)
	}
	if err := s.store.Put(ctx, &registry.BootstrapConfig{Endpoint: revokedKey, Config: data}); err != nil {
		return r, false, fmt.Errorf("bootstrap: revocations: %w", err)
	}
	return r, true, nil
}

// revocations are the stored revocations as sets.
type revocations struct {
	cas     map[string]bool // by revocationKey
	factory map[string]bool // by identity
}

// revokedCache holds the stored revocations as last read, for
// Config.RevocationRefresh, so that a storm of handshakes reads the store
// about once a refresh rather than once a handshake.
type revokedCache struct {
	mu   sync.Mutex
	sets *revocations // nil: read again
	read time.Time
	// write makes this node's revocations one at a time: each is a
	// read-modify-write of one record.
	write sync.Mutex
}

// storedRevocations returns the stored revocations; the sets are not
// changed afterwards (a revocation drops them for new ones).
func (s *Server) storedRevocations(ctx context.Context) (*revocations, error) {
	c := &s.revoked
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sets != nil && time.Since(c.read) < s.cfg.RevocationRefresh {
		return c.sets, nil
	}
	rec, err := s.cfg.Configs.revoked(ctx)
	if err != nil {
		s.log.Warn("bootstrap: revocations not read: refusing certificates and factory PSKs", "err", err)
		return nil, err
	}
	sets := &revocations{cas: make(map[string]bool, len(rec.CAs)), factory: make(map[string]bool, len(rec.Factory))}
	for _, r := range rec.CAs {
		sets.cas[revocationKey(r.ID)] = true
	}
	for _, r := range rec.Factory {
		sets.factory[r.ID] = true
	}
	c.sets, c.read = sets, time.Now()
	return sets, nil
}

// storeRevocation stores a revocation of kind, one at a time on this
// node, and makes the next handshake read the store again.
func (s *Server) storeRevocation(ctx context.Context, kind, id string) (storedRevocation, bool, error) {
	c := &s.revoked
	c.write.Lock()
	defer c.write.Unlock()
	r, added, err := s.cfg.Configs.revoke(ctx, kind, id, time.Now())
	if err != nil {
		return r, false, err
	}
	c.mu.Lock()
	c.sets = nil
	c.mu.Unlock()
	return r, added, nil
}

// configRevoked reports whether Config.RevokedCAs holds key.
func (s *Server) configRevoked(key string) bool {
	for _, r := range s.cfg.RevokedCAs {
		if revocationKey(r) == key {
			return true
		}
	}
	return false
}

// RevokeCA withdraws a factory CA, by subject ("CN=Factory CA,O=Acme",
// as pkix.Name.String() writes it) or by the SHA-256 fingerprint of its
// certificate (hex, any case, colons allowed). The revocation is stored
// in the Configs' store (the registry, with cmd/lwm2md), so that it
// survives a restart and every node sharing the registry applies it:
// handshakes with certificates it issued fail from this node's next one
// on (another node's within Config.RevocationRefresh), and sessions
// opened with them can no longer bootstrap. It returns the revocation
// and false when the CA was revoked already (stored, or in
// Config.RevokedCAs).
func (s *Server) RevokeCA(ctx context.Context, subjectOrFingerprint string) (RevokedCA, bool, error) {
	k := revocationKey(subjectOrFingerprint)
	if k == "" {
		return RevokedCA{}, false, fmt.Errorf("bootstrap: revoke CA: no subject or fingerprint: %w", registry.ErrInvalid)
	}
	if s.configRevoked(k) {
		return revokedCA(k, RevokedInConfig, time.Time{}), false, nil
	}
	r, added, err := s.storeRevocation(ctx, revokedCAKind, k)
	if err != nil {
		return RevokedCA{}, false, fmt.Errorf("bootstrap: revoke CA %q: %w", k, err)
	}
	if added {
		s.log.Info("bootstrap: factory CA revoked", "ca", k)
	}
	return revokedCA(k, RevokedInRegistry, r.RevokedAt), added, nil
}

// RevokedCAs lists the revoked factory CAs: those of Config.RevokedCAs,
// then the stored ones in the order of their revocation.
func (s *Server) RevokedCAs(ctx context.Context) ([]RevokedCA, error) {
	out := []RevokedCA{}
	seen := make(map[string]bool)
	for _, r := range s.cfg.RevokedCAs {
		if k := revocationKey(r); !seen[k] {
			seen[k] = true
			out = append(out, revokedCA(k, RevokedInConfig, time.Time{}))
		}
	}
	rec, err := s.cfg.Configs.revoked(ctx)
	if err != nil {
		return nil, err
	}
	stored := make([]RevokedCA, 0, len(rec.CAs))
	for _, r := range rec.CAs {
		stored = append(stored, revokedCA(r.ID, RevokedInRegistry, r.RevokedAt))
	}
	sort.SliceStable(stored, func(i, j int) bool { return stored[i].RevokedAt.Before(stored[j].RevokedAt) })
	return append(out, stored...), nil
}

// RevokeFactory withdraws a factory credential (Config.Factory) by its
// identity. The revocation is stored with the CAs' (see RevokeCA), so
// that it survives a restart, where Config.Factory names the credential
// again, and every node sharing the registry applies it: handshakes with
// it fail from this node's next one on (another node's within
// Config.RevocationRefresh), and sessions opened with it can no longer
// bootstrap. It returns false when no factory credential has that
// identity or it was revoked already.
func (s *Server) RevokeFactory(ctx context.Context, identity string) (bool, error) {
	if !s.configFactory(identity) {
		return false, nil
	}
	_, added, err := s.storeRevocation(ctx, revokedFactoryKind, identity)
	if err != nil {
		return false, fmt.Errorf("bootstrap: revoke factory credential %q: %w", identity, err)
	}
	if added {
		s.log.Info("bootstrap: factory credential revoked", "identity", identity)
	}
	return added, nil
}

// configFactory reports whether Config.Factory has the identity.
func (s *Server) configFactory(identity string) bool {
	for _, f := range s.cfg.Factory {
		if f.Identity == identity {
			return true
		}
	}
	return false
}
