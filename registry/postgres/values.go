package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

type values struct{ s *Store }

// putValues upserts one row per path; a value replaces the stored one
// unless both have a device time and the stored one is later.
const putValues = `
INSERT INTO resource_values (endpoint, path, type, value, device_time, server_time)
SELECT $1, string_to_array(ltrim(p, '/'), '/')::integer[], t, v, d, s
FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[]) AS u(p, t, v, d, s)
ON CONFLICT (endpoint, path) DO UPDATE SET
	type = excluded.type, value = excluded.value, device_time = excluded.device_time, server_time = excluded.server_time
WHERE excluded.device_time IS NULL OR resource_values.device_time IS NULL OR excluded.device_time >= resource_values.device_time`

func (v values) Put(ctx context.Context, endpoint string, vs []registry.ResourceValue) error {
	if err := enc.CheckValues(endpoint, vs); err != nil {
		return err
	}
	// One statement cannot change a row twice: keep, for each path, the
	// value that would be left after applying vs in order.
	last := make(map[objects.Path]int, len(vs))
	var order []objects.Path
	for i, rv := range vs {
		j, seen := last[rv.Path]
		if !seen {
			order = append(order, rv.Path)
		}
		if !seen || enc.Newer(registry.Time(rv.DeviceTime), registry.Time(vs[j].DeviceTime)) {
			last[rv.Path] = i
		}
	}
	n := len(order)
	paths, types, texts := make([]string, n), make([]string, n), make([]string, n)
	dts, sts := make([]*time.Time, n), make([]time.Time, n)
	for i, p := range order {
		s, err := enc.FromValue(vs[last[p]])
		if err != nil {
			return err
		}
		paths[i], types[i], texts[i], dts[i], sts[i] = p.String(), s.Type, s.Text, nullTime(s.DeviceTime), s.ServerTime
	}
	o := op{
		queue: func(b *pgx.Batch) { b.Queue(putValues, endpoint, paths, types, texts, dts, sts) },
		read: func(br pgx.BatchResults) error {
			_, err := br.Exec()
			return err
		},
	}
	return wrapErr(fmt.Sprintf("put values of %q", endpoint), v.s.update(ctx, o))
}

// ids is p's IDs as PostgreSQL integers.
func ids(p objects.Path) []int32 {
	out := make([]int32, p.Len())
	for i := range out {
		out[i] = int32(p.ID(i))
	}
	return out
}

func (v values) Get(ctx context.Context, endpoint string, p objects.Path) ([]registry.ResourceValue, error) {
	what := fmt.Sprintf("values of %q under %s", endpoint, p)
	pool, err := v.s.q()
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `
		SELECT path, type, value, device_time, server_time FROM resource_values
		WHERE endpoint = $1 AND path[1:$2] = $3::integer[] ORDER BY path`, endpoint, p.Len(), ids(p))
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	var out []registry.ResourceValue
	for rows.Next() {
		var path []int32
		var s enc.Value
		var dt *time.Time
		if err := rows.Scan(&path, &s.Type, &s.Text, &dt, &s.ServerTime); err != nil {
			return nil, wrapErr(what, err)
		}
		s.DeviceTime = fromNull(dt)
		if len(path) > 4 {
			return nil, wrapErr(what, fmt.Errorf("stored path %v: %w", path, registry.ErrCorrupt))
		}
		pids := make([]uint16, len(path))
		for i, id := range path {
			pids[i] = uint16(id)
		}
		rv, err := s.Value(objects.NewPath(pids...))
		if err != nil {
			return nil, wrapErr(what, err)
		}
		out = append(out, rv)
	}
	return out, wrapErr(what, rows.Err())
}

func (v values) Delete(ctx context.Context, endpoint string, p objects.Path) error {
	pool, err := v.s.q()
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, "DELETE FROM resource_values WHERE endpoint = $1 AND path[1:$2] = $3::integer[]", endpoint, p.Len(), ids(p))
	return wrapErr(fmt.Sprintf("delete values of %q under %s", endpoint, p), err)
}
