package postgres

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

type observations struct{ s *Store }

func (o observations) Put(ctx context.Context, obs *registry.Observation) error {
	if err := enc.CheckObservation(obs); err != nil {
		return err
	}
	s := enc.FromObservation(obs)
	attrs := s.Attributes
	if attrs == nil {
		attrs = []string{}
	}
	p, err := o.s.q()
	if err != nil {
		return err
	}
	_, err = p.Exec(ctx, `
		INSERT INTO observations (endpoint, token, registration_id, paths, composite, format, attributes, started)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (endpoint, token) DO UPDATE SET registration_id = excluded.registration_id,
			paths = excluded.paths, composite = excluded.composite, format = excluded.format,
			attributes = excluded.attributes, started = excluded.started`,
		s.Endpoint, s.Token, s.RegistrationID, s.Paths, s.Composite, int32(s.Format), attrs, s.Started)
	return wrapErr(fmt.Sprintf("put observation of %q", obs.Endpoint), err)
}

func (o observations) Delete(ctx context.Context, endpoint string, token []byte) error {
	p, err := o.s.q()
	if err != nil {
		return err
	}
	_, err = p.Exec(ctx, "DELETE FROM observations WHERE endpoint = $1 AND token = $2", endpoint, token)
	return wrapErr(fmt.Sprintf("delete observation of %q", endpoint), err)
}

func (o observations) DeleteAll(ctx context.Context, endpoint string) error {
	p, err := o.s.q()
	if err != nil {
		return err
	}
	_, err = p.Exec(ctx, "DELETE FROM observations WHERE endpoint = $1", endpoint)
	return wrapErr(fmt.Sprintf("delete observations of %q", endpoint), err)
}

func (o observations) List(ctx context.Context, endpoint string) ([]*registry.Observation, error) {
	what := fmt.Sprintf("observations of %q", endpoint)
	p, err := o.s.q()
	if err != nil {
		return nil, err
	}
	rows, err := p.Query(ctx, `
		SELECT endpoint, token, registration_id, paths, composite, format, attributes, started
		FROM observations WHERE endpoint = $1 ORDER BY token`, endpoint)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	out, err := scanObservations(rows)
	return out, wrapErr(what, err)
}

// listAllPage is how many observations ListAll reads per query: fn runs
// between queries, so that it may use the pool (and the connection the
// page was read on is back in it).
const listAllPage = 1000

func (o observations) ListAll(ctx context.Context, fn func(*registry.Observation) error) error {
	const what = "all observations"
	const cols = `SELECT endpoint, token, registration_id, paths, composite, format, attributes, started FROM observations`
	var after *registry.Observation
	for {
		p, err := o.s.q()
		if err != nil {
			return err
		}
		// Keyset paging on the primary key (endpoint, token): each page
		// starts after the last row of the one before, an index range
		// scan whatever the page.
		var rows pgx.Rows
		if after == nil {
			rows, err = p.Query(ctx, cols+` ORDER BY endpoint, token LIMIT $1`, listAllPage)
		} else {
			rows, err = p.Query(ctx, cols+` WHERE (endpoint, token) > ($1, $2) ORDER BY endpoint, token LIMIT $3`,
				after.Endpoint, after.Token, listAllPage)
		}
		if err != nil {
			return wrapErr(what, err)
		}
		page, err := scanObservations(rows)
		if err != nil {
			return wrapErr(what, err)
		}
		if len(page) == listAllPage {
			// The key of the last row, before fn may change the row.
			last := page[len(page)-1]
			after = &registry.Observation{Endpoint: last.Endpoint, Token: bytes.Clone(last.Token)}
		}
		for _, obs := range page {
			if err := fn(obs); err != nil {
				return err
			}
		}
		if len(page) < listAllPage {
			return nil
		}
	}
}

// scanObservations reads the rows of a SELECT of every observations
// column, in the table's order, and closes them.
func scanObservations(rows pgx.Rows) ([]*registry.Observation, error) {
	defer rows.Close()
	var out []*registry.Observation
	for rows.Next() {
		var s enc.Observation
		var format int32
		var started time.Time
		if err := rows.Scan(&s.Endpoint, &s.Token, &s.RegistrationID, &s.Paths, &s.Composite, &format, &s.Attributes, &started); err != nil {
			return nil, err
		}
		s.Format, s.Started = uint16(format), started
		obs, err := s.Observation()
		if err != nil {
			return nil, err
		}
		out = append(out, obs)
	}
	return out, rows.Err()
}
