package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lwm2md/lwm2md/registry"
)

// ErrNoConfig: no per-endpoint configuration, no template matches the
// endpoint and there is no default template.
var ErrNoConfig = errors.New("no bootstrap configuration for the endpoint")

// templatesKey is the record of registry.BootstrapConfigs that holds the
// templates. It starts with a control character, which CheckEndpointName
// refuses, so that no device can have that name.
const templatesKey = "\x1etemplates"

// Configs keeps the bootstrap configurations: one per endpoint, and the
// templates, in a registry.BootstrapConfigs (sealed at rest by the
// registry's stores), and finds the one in force for an endpoint.
type Configs struct {
	store registry.BootstrapConfigs
	tags  registry.TagReader // nil: templates match by endpoint name only
}

// NewConfigs keeps configurations in store (NewMemoryConfigs() for a
// store of its own), matching template tags with tags (may be nil).
func NewConfigs(store registry.BootstrapConfigs, tags registry.TagReader) *Configs {
	return &Configs{store: store, tags: tags}
}

// CheckEndpointName refuses what cannot be an endpoint name: empty, not
// UTF-8, too long, or holding a control character (which a CoAP query
// can carry but no operator means).
func CheckEndpointName(ep string) error {
	if err := registry.CheckEndpoint(ep); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if strings.IndexFunc(ep, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return fmt.Errorf("bootstrap: endpoint %q holds a control character: %w", ep, registry.ErrInvalid)
	}
	return nil
}

// Put stores the configuration of one endpoint, after checking it.
func (s *Configs) Put(ctx context.Context, ep string, c *Configuration) error {
	if err := CheckEndpointName(ep); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("bootstrap: %s: %w", ep, err)
	}
	if err := s.store.Put(ctx, &registry.BootstrapConfig{Endpoint: ep, Config: data}); err != nil {
		return fmt.Errorf("bootstrap: %s: %w", ep, err)
	}
	return nil
}

// Get returns the configuration stored for the endpoint itself, or an
// error wrapping registry.ErrNotFound.
func (s *Configs) Get(ctx context.Context, ep string) (*Configuration, error) {
	if err := CheckEndpointName(ep); err != nil {
		return nil, err
	}
	rec, err := s.store.Get(ctx, ep)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %s: %w", ep, err)
	}
	c, err := ParseConfiguration(rec.Config)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: stored configuration of %s: %w", ep, err)
	}
	return c, nil
}

// Delete removes the endpoint's own configuration.
func (s *Configs) Delete(ctx context.Context, ep string) error {
	if err := CheckEndpointName(ep); err != nil {
		return err
	}
	return s.store.Delete(ctx, ep)
}

// SetTemplates replaces the templates, after checking them. Their order
// is the order of matching.
func (s *Configs) SetTemplates(ctx context.Context, ts []Template) error {
	if err := ValidateTemplates(ts); err != nil {
		return err
	}
	if ts == nil {
		ts = []Template{}
	}
	data, err := json.Marshal(ts)
	if err != nil {
		return fmt.Errorf("bootstrap: templates: %w", err)
	}
	if err := s.store.Put(ctx, &registry.BootstrapConfig{Endpoint: templatesKey, Config: data}); err != nil {
		return fmt.Errorf("bootstrap: templates: %w", err)
	}
	return nil
}

// Templates returns the templates in matching order (none when never
// set).
func (s *Configs) Templates(ctx context.Context) ([]Template, error) {
	rec, err := s.store.Get(ctx, templatesKey)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bootstrap: templates: %w", err)
	}
	ts, err := ParseTemplates(rec.Config)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: stored templates: %w", err)
	}
	return ts, nil
}

// Resolve returns the configuration in force for ep and where it came
// from: "endpoint" for its own, "template:<name>" for the first template
// that matches it. ErrNoConfig when there is none.
func (s *Configs) Resolve(ctx context.Context, ep string) (*Configuration, string, error) {
	c, err := s.Get(ctx, ep)
	if err == nil {
		return c, "endpoint", nil
	}
	if !errors.Is(err, registry.ErrNotFound) {
		return nil, "", err
	}
	ts, err := s.Templates(ctx)
	if err != nil {
		return nil, "", err
	}
	var tags map[string]string
	if s.tags != nil && needTags(ts) {
		if tags, err = s.tags.Get(ctx, ep); err != nil && !errors.Is(err, registry.ErrNotFound) {
			return nil, "", fmt.Errorf("bootstrap: tags of %s: %w", ep, err)
		}
	}
	for i := range ts {
		if ts[i].matches(ep, tags) {
			return &ts[i].Config, "template:" + ts[i].Name, nil
		}
	}
	return nil, "", fmt.Errorf("bootstrap: %s: %w", ep, ErrNoConfig)
}

func needTags(ts []Template) bool {
	for _, t := range ts {
		if len(t.Tags) > 0 {
			return true
		}
	}
	return false
}

// MemoryConfigs is a registry.BootstrapConfigs in memory, for a bootstrap
// server without a persistent registry and for tests.
type MemoryConfigs struct {
	mu sync.RWMutex
	m  map[string]registry.BootstrapConfig
}

// NewMemoryConfigs returns an empty MemoryConfigs.
func NewMemoryConfigs() *MemoryConfigs {
	return &MemoryConfigs{m: make(map[string]registry.BootstrapConfig)}
}

// Put stores a copy of c.
func (m *MemoryConfigs) Put(_ context.Context, c *registry.BootstrapConfig) error {
	if c == nil || c.Endpoint == "" {
		return fmt.Errorf("bootstrap: configuration without endpoint: %w", registry.ErrInvalid)
	}
	cp := *c
	cp.Config = append(json.RawMessage(nil), c.Config...)
	cp.UpdatedAt = registry.Time(time.Now())
	m.mu.Lock()
	m.m[c.Endpoint] = cp
	m.mu.Unlock()
	return nil
}

// Get returns a copy of the endpoint's record or ErrNotFound.
func (m *MemoryConfigs) Get(_ context.Context, ep string) (*registry.BootstrapConfig, error) {
	m.mu.RLock()
	c, ok := m.m[ep]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("bootstrap: %q: %w", ep, registry.ErrNotFound)
	}
	c.Config = append(json.RawMessage(nil), c.Config...)
	return &c, nil
}

// Delete removes the endpoint's record.
func (m *MemoryConfigs) Delete(_ context.Context, ep string) error {
	m.mu.Lock()
	delete(m.m, ep)
	m.mu.Unlock()
	return nil
}

// Endpoints lists the endpoints with a record, sorted (the templates and
// the revoked CAs left out).
func (m *MemoryConfigs) Endpoints() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.m))
	for ep := range m.m {
		if ep != templatesKey && ep != revokedKey {
			out = append(out, ep)
		}
	}
	sort.Strings(out)
	return out
}
