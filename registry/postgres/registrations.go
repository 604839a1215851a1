package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

type registrations struct{ s *Store }

// putRegistration stores a registration unless its ID belongs to another
// endpoint, in which case it affects no row (and the transaction goes on).
const putRegistration = `
INSERT INTO registrations (endpoint, id, version, expires_at, updated_at, data)
SELECT $1, $2, $3, $4, $5, $6
WHERE NOT EXISTS (SELECT 1 FROM registrations WHERE id = $2 AND endpoint <> $1)
ON CONFLICT (endpoint) DO UPDATE SET
	id = excluded.id, version = excluded.version, expires_at = excluded.expires_at,
	updated_at = excluded.updated_at, data = excluded.data`

func (r registrations) Put(ctx context.Context, reg *registry.Registration) error {
	if err := reg.Validate(); err != nil {
		return err
	}
	data, err := enc.MarshalRegistration(reg)
	if err != nil {
		return err
	}
	o := op{
		queue: func(b *pgx.Batch) {
			b.Queue(putRegistration, reg.Endpoint, reg.ID, reg.Version, expiresAt(reg), registry.Time(reg.UpdatedAt), data)
		},
		read: func(br pgx.BatchResults) error {
			tag, err := br.Exec()
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return &refused{fmt.Errorf("registration ID %s already used by another endpoint: %w", reg.ID, registry.ErrConflict)}
			}
			return nil
		},
	}
	return wrapErr(fmt.Sprintf("put registration of %q", reg.Endpoint), r.s.update(ctx, o))
}

func (r registrations) get(ctx context.Context, what, where string, arg string) (*registry.Registration, error) {
	p, err := r.s.q()
	if err != nil {
		return nil, err
	}
	var data []byte
	if err := p.QueryRow(ctx, "SELECT data FROM registrations WHERE "+where+" = $1", arg).Scan(&data); err != nil {
		return nil, wrapErr(what, err)
	}
	reg, err := enc.UnmarshalRegistration(data)
	return reg, wrapErr(what, err)
}

func (r registrations) Get(ctx context.Context, endpoint string) (*registry.Registration, error) {
	return r.get(ctx, fmt.Sprintf("registration of %q", endpoint), "endpoint", endpoint)
}

func (r registrations) GetByID(ctx context.Context, id string) (*registry.Registration, error) {
	return r.get(ctx, fmt.Sprintf("registration %q", id), "id", id)
}

func (r registrations) Delete(ctx context.Context, id string) error {
	p, err := r.s.q()
	if err != nil {
		return err
	}
	_, err = p.Exec(ctx, "DELETE FROM registrations WHERE id = $1", id)
	return wrapErr(fmt.Sprintf("delete registration %q", id), err)
}

func (r registrations) List(ctx context.Context, f registry.RegistrationFilter) ([]*registry.Registration, error) {
	p, err := r.s.q()
	if err != nil {
		return nil, err
	}
	rows, err := p.Query(ctx, `
		SELECT data FROM registrations
		WHERE starts_with(endpoint, $1) AND endpoint > $2
		  AND ($3 = '' OR version = $3)
		  AND ($4::timestamptz IS NULL OR expires_at <= $4)
		ORDER BY endpoint LIMIT $5`,
		f.Prefix, f.After, f.Version, nullTime(f.ExpiredBy), limit(f.Limit))
	if err != nil {
		return nil, wrapErr("list registrations", err)
	}
	datas, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, wrapErr("list registrations", err)
	}
	out := make([]*registry.Registration, 0, len(datas))
	for _, d := range datas {
		reg, err := enc.UnmarshalRegistration(d)
		if err != nil {
			return nil, wrapErr("list registrations", err)
		}
		out = append(out, reg)
	}
	return out, nil
}

// expiresAt is the registration's end as List compares it: from the stored
// (microsecond) UpdatedAt.
func expiresAt(r *registry.Registration) *time.Time {
	if r.Lifetime <= 0 {
		return nil
	}
	return nullTime(registry.Time(r.UpdatedAt).Add(r.Lifetime))
}
