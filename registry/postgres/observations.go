package postgres

import (
	"context"
	"fmt"
	"time"

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
	defer rows.Close()
	var out []*registry.Observation
	for rows.Next() {
		var s enc.Observation
		var format int32
		var started time.Time
		if err := rows.Scan(&s.Endpoint, &s.Token, &s.RegistrationID, &s.Paths, &s.Composite, &format, &s.Attributes, &started); err != nil {
			return nil, wrapErr(what, err)
		}
		s.Format, s.Started = uint16(format), started
		obs, err := s.Observation()
		if err != nil {
			return nil, wrapErr(what, err)
		}
		out = append(out, obs)
	}
	return out, wrapErr(what, rows.Err())
}
