package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	certs, err := json.Marshal(stored.Certificates)
	if err != nil {
		return err
	}
	var identity *string
	if cred.PSKIdentity != "" {
		identity = &cred.PSKIdentity
	}
	var fps []string
	for _, b := range cred.Certificates {
		fps = append(fps, b.Fingerprint)
	}
	// A duplicate identity or fingerprint violates a unique constraint and
	// rolls the whole change back.
	err = c.s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM cert_bindings WHERE endpoint = $1", cred.Endpoint); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO credentials (endpoint, psk_identity, psk_key, certificates, updated_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (endpoint) DO UPDATE SET psk_identity = excluded.psk_identity,
				psk_key = excluded.psk_key, certificates = excluded.certificates, updated_at = excluded.updated_at`,
			cred.Endpoint, identity, stored.PSKKeySealed, certs, c.s.now())
		if err != nil {
			return err
		}
		if len(fps) > 0 {
			_, err = tx.Exec(ctx, "INSERT INTO cert_bindings (fingerprint, endpoint) SELECT unnest($1::text[]), $2", fps, cred.Endpoint)
		}
		return err
	})
	return wrapErr(fmt.Sprintf("put credentials of %q", cred.Endpoint), err)
}

func (c credentials) Delete(ctx context.Context, endpoint string) error {
	p, err := c.s.q()
	if err != nil {
		return err
	}
	_, err = p.Exec(ctx, "DELETE FROM credentials WHERE endpoint = $1", endpoint)
	return wrapErr(fmt.Sprintf("delete credentials of %q", endpoint), err)
}

const credentialColumns = "endpoint, coalesce(psk_identity, ''), psk_key, certificates, updated_at"

func (c credentials) scan(row pgx.Row) (*registry.Credential, error) {
	var s enc.Credential
	var certs []byte
	if err := row.Scan(&s.Endpoint, &s.PSKIdentity, &s.PSKKeySealed, &certs, &s.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(certs, &s.Certificates); err != nil {
		return nil, fmt.Errorf("stored certificates: %v: %w", err, registry.ErrCorrupt)
	}
	return s.Open(c.s.opts.Cipher)
}

func (c credentials) one(ctx context.Context, what, where string, arg string) (*registry.Credential, error) {
	p, err := c.s.q()
	if err != nil {
		return nil, err
	}
	cred, err := c.scan(p.QueryRow(ctx, "SELECT "+credentialColumns+" FROM credentials WHERE "+where, arg))
	return cred, wrapErr(what, err)
}

func (c credentials) Get(ctx context.Context, endpoint string) (*registry.Credential, error) {
	return c.one(ctx, fmt.Sprintf("credentials of %q", endpoint), "endpoint = $1", endpoint)
}

func (c credentials) ByPSKIdentity(ctx context.Context, identity string) (*registry.Credential, error) {
	return c.one(ctx, fmt.Sprintf("credentials of PSK identity %q", identity), "psk_identity = $1", identity)
}

func (c credentials) ByCertificate(ctx context.Context, fingerprint string) (*registry.Credential, error) {
	fp, err := registry.NormalizeFingerprint(fingerprint)
	if err != nil {
		return nil, wrapErr("credentials by certificate", err)
	}
	return c.one(ctx, "credentials of certificate "+fp,
		"endpoint = (SELECT endpoint FROM cert_bindings WHERE fingerprint = $1)", fp)
}

func (c credentials) List(ctx context.Context, after string, n int) ([]*registry.Credential, error) {
	p, err := c.s.q()
	if err != nil {
		return nil, err
	}
	rows, err := p.Query(ctx, "SELECT "+credentialColumns+" FROM credentials WHERE endpoint > $1 ORDER BY endpoint LIMIT $2", after, limit(n))
	if err != nil {
		return nil, wrapErr("list credentials", err)
	}
	defer rows.Close()
	var out []*registry.Credential
	for rows.Next() {
		cred, err := c.scan(rows)
		if err != nil {
			return nil, wrapErr("list credentials", err)
		}
		out = append(out, cred)
	}
	return out, wrapErr("list credentials", rows.Err())
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
	p, err := b.s.q()
	if err != nil {
		return err
	}
	_, err = p.Exec(ctx, `
		INSERT INTO bootstrap_configs (endpoint, config, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (endpoint) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`,
		cfg.Endpoint, sealed, b.s.now())
	return wrapErr(fmt.Sprintf("put bootstrap configuration of %q", cfg.Endpoint), err)
}

func (b bootstrapConfigs) Get(ctx context.Context, endpoint string) (*registry.BootstrapConfig, error) {
	what := fmt.Sprintf("bootstrap configuration of %q", endpoint)
	p, err := b.s.q()
	if err != nil {
		return nil, err
	}
	var sealed []byte
	var updated time.Time
	if err := p.QueryRow(ctx, "SELECT config, updated_at FROM bootstrap_configs WHERE endpoint = $1", endpoint).Scan(&sealed, &updated); err != nil {
		return nil, wrapErr(what, err)
	}
	plain, err := b.s.opts.Cipher.Open("bootstrap", endpoint, sealed)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	return &registry.BootstrapConfig{Endpoint: endpoint, Config: plain, UpdatedAt: updated.UTC()}, nil
}

func (b bootstrapConfigs) Delete(ctx context.Context, endpoint string) error {
	p, err := b.s.q()
	if err != nil {
		return err
	}
	_, err = p.Exec(ctx, "DELETE FROM bootstrap_configs WHERE endpoint = $1", endpoint)
	return wrapErr(fmt.Sprintf("delete bootstrap configuration of %q", endpoint), err)
}
