package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

type credentials struct{ s *Store }

func (c credentials) Put(ctx context.Context, cred *registry.Credential) error {
	if err := cred.Validate(); err != nil {
		return err
	}
	stored, err := enc.SealCredential(cred, c.s.opts.Cipher)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("put credentials of %q", cred.Endpoint)
	ep := []byte(cred.Endpoint)
	err = c.s.update(ctx, func(tx *bolt.Tx) error {
		creds, psk, certs := tx.Bucket(bCreds), tx.Bucket(bPSKIDs), tx.Bucket(bCertFPs)
		if id := cred.PSKIdentity; id != "" {
			if owner := psk.Get([]byte(id)); owner != nil && string(owner) != cred.Endpoint {
				return fmt.Errorf("PSK identity %q already belongs to endpoint %q: %w", id, owner, registry.ErrDuplicateIdentity)
			}
		}
		for _, b := range cred.Certificates {
			if owner := certs.Get([]byte(b.Fingerprint)); owner != nil && string(owner) != cred.Endpoint {
				return fmt.Errorf("certificate %s already belongs to endpoint %q: %w", b.Fingerprint, owner, registry.ErrDuplicateIdentity)
			}
		}
		if err := unindexCredential(tx, ep); err != nil {
			return err
		}
		s := *stored
		s.UpdatedAt = c.s.now()
		data, err := json.Marshal(&s)
		if err != nil {
			return err
		}
		if err := creds.Put(ep, data); err != nil {
			return err
		}
		if cred.PSKIdentity != "" {
			if err := psk.Put([]byte(cred.PSKIdentity), ep); err != nil {
				return err
			}
		}
		for _, b := range cred.Certificates {
			if err := certs.Put([]byte(b.Fingerprint), ep); err != nil {
				return err
			}
		}
		return nil
	})
	return c.s.wrap(what, err)
}

// unindexCredential removes the identity and fingerprint index entries of
// an endpoint's stored credentials.
func unindexCredential(tx *bolt.Tx, ep []byte) error {
	data := tx.Bucket(bCreds).Get(ep)
	if data == nil {
		return nil
	}
	var old enc.Credential
	if err := json.Unmarshal(data, &old); err != nil {
		return fmt.Errorf("stored credentials of %q: %v: %w", ep, err, registry.ErrCorrupt)
	}
	if old.PSKIdentity != "" {
		if err := tx.Bucket(bPSKIDs).Delete([]byte(old.PSKIdentity)); err != nil {
			return err
		}
	}
	for _, b := range old.Certificates {
		if err := tx.Bucket(bCertFPs).Delete([]byte(b.Fingerprint)); err != nil {
			return err
		}
	}
	return nil
}

func (c credentials) Delete(ctx context.Context, endpoint string) error {
	ep := []byte(endpoint)
	err := c.s.update(ctx, func(tx *bolt.Tx) error {
		if err := unindexCredential(tx, ep); err != nil {
			return err
		}
		return tx.Bucket(bCreds).Delete(ep)
	})
	return c.s.wrap(fmt.Sprintf("delete credentials of %q", endpoint), err)
}

func (c credentials) Get(ctx context.Context, endpoint string) (*registry.Credential, error) {
	cred, err := c.load(func(tx *bolt.Tx) []byte { return []byte(endpoint) })
	return cred, c.s.wrap(fmt.Sprintf("credentials of %q", endpoint), err)
}

func (c credentials) ByPSKIdentity(ctx context.Context, identity string) (*registry.Credential, error) {
	cred, err := c.load(func(tx *bolt.Tx) []byte { return tx.Bucket(bPSKIDs).Get([]byte(identity)) })
	return cred, c.s.wrap(fmt.Sprintf("credentials of PSK identity %q", identity), err)
}

func (c credentials) ByCertificate(ctx context.Context, fingerprint string) (*registry.Credential, error) {
	fp, err := registry.NormalizeFingerprint(fingerprint)
	if err != nil {
		return nil, c.s.wrap("credentials by certificate", err)
	}
	cred, err := c.load(func(tx *bolt.Tx) []byte { return tx.Bucket(bCertFPs).Get([]byte(fp)) })
	return cred, c.s.wrap("credentials of certificate "+fp, err)
}

// load reads the credentials of the endpoint that find returns (nil: not
// found).
func (c credentials) load(find func(tx *bolt.Tx) []byte) (*registry.Credential, error) {
	var cred *registry.Credential
	err := c.s.view(func(tx *bolt.Tx) error {
		ep := find(tx)
		if ep == nil {
			return registry.ErrNotFound
		}
		data := tx.Bucket(bCreds).Get(ep)
		if data == nil {
			return registry.ErrNotFound
		}
		var err error
		cred, err = c.decode(data)
		return err
	})
	return cred, err
}

func (c credentials) decode(data []byte) (*registry.Credential, error) {
	var s enc.Credential
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("stored credentials: %v: %w", err, registry.ErrCorrupt)
	}
	return s.Open(c.s.opts.Cipher)
}

func (c credentials) List(ctx context.Context, after string, limit int) ([]*registry.Credential, error) {
	var out []*registry.Credential
	var start []byte
	if after != "" {
		start = append([]byte(after), 0)
	}
	err := c.s.view(func(tx *bolt.Tx) error {
		return prefix(tx.Bucket(bCreds), nil, start, func(k, v []byte) (bool, error) {
			cred, err := c.decode(v)
			if err != nil {
				return false, err
			}
			out = append(out, cred)
			return limit <= 0 || len(out) < limit, nil
		})
	})
	return out, c.s.wrap("list credentials", err)
}

type bootstrapConfigs struct{ s *Store }

func (b bootstrapConfigs) Put(ctx context.Context, cfg *registry.BootstrapConfig) error {
	if cfg == nil {
		return fmt.Errorf("registry: nil bootstrap configuration: %w", registry.ErrInvalid)
	}
	if err := registry.CheckEndpoint(cfg.Endpoint); err != nil {
		return err
	}
	if !json.Valid(cfg.Config) {
		return fmt.Errorf("registry: bootstrap configuration of %q is not JSON: %w", cfg.Endpoint, registry.ErrInvalid)
	}
	sealed, err := b.s.opts.Cipher.Seal("bootstrap", cfg.Endpoint, cfg.Config)
	if err != nil {
		return err
	}
	err = b.s.update(ctx, func(tx *bolt.Tx) error {
		data, err := json.Marshal(&enc.BootstrapConfig{Endpoint: cfg.Endpoint, ConfigSealed: sealed, UpdatedAt: b.s.now()})
		if err != nil {
			return err
		}
		return tx.Bucket(bBoot).Put([]byte(cfg.Endpoint), data)
	})
	return b.s.wrap(fmt.Sprintf("put bootstrap configuration of %q", cfg.Endpoint), err)
}

func (b bootstrapConfigs) Get(ctx context.Context, endpoint string) (*registry.BootstrapConfig, error) {
	var cfg *registry.BootstrapConfig
	err := b.s.view(func(tx *bolt.Tx) error {
		data := tx.Bucket(bBoot).Get([]byte(endpoint))
		if data == nil {
			return registry.ErrNotFound
		}
		var s enc.BootstrapConfig
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("%v: %w", err, registry.ErrCorrupt)
		}
		plain, err := b.s.opts.Cipher.Open("bootstrap", endpoint, s.ConfigSealed)
		if err != nil {
			return err
		}
		cfg = &registry.BootstrapConfig{Endpoint: s.Endpoint, Config: plain, UpdatedAt: s.UpdatedAt.UTC()}
		return nil
	})
	return cfg, b.s.wrap(fmt.Sprintf("bootstrap configuration of %q", endpoint), err)
}

func (b bootstrapConfigs) Delete(ctx context.Context, endpoint string) error {
	err := b.s.update(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bBoot).Delete([]byte(endpoint)) })
	return b.s.wrap(fmt.Sprintf("delete bootstrap configuration of %q", endpoint), err)
}
