package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

type tags struct{ s *Store }

func (t tags) Set(ctx context.Context, endpoint string, m map[string]string) error {
	if err := enc.CheckTags(endpoint, m); err != nil {
		return err
	}
	keys := enc.SortedKeys(m)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
	}
	p, err := t.s.q()
	if err != nil {
		return err
	}
	_, err = p.Exec(ctx, `
		INSERT INTO tags (endpoint, key, value) SELECT $1, unnest($2::text[]), unnest($3::text[])
		ON CONFLICT (endpoint, key) DO UPDATE SET value = excluded.value`, endpoint, keys, vals)
	return wrapErr(fmt.Sprintf("set tags of %q", endpoint), err)
}

func (t tags) Remove(ctx context.Context, endpoint string, keys ...string) error {
	p, err := t.s.q()
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []string{}
	}
	_, err = p.Exec(ctx, "DELETE FROM tags WHERE endpoint = $1 AND (cardinality($2::text[]) = 0 OR key = ANY($2))", endpoint, keys)
	return wrapErr(fmt.Sprintf("remove tags of %q", endpoint), err)
}

func (t tags) Get(ctx context.Context, endpoint string) (map[string]string, error) {
	p, err := t.s.q()
	if err != nil {
		return nil, err
	}
	rows, err := p.Query(ctx, "SELECT key, value FROM tags WHERE endpoint = $1", endpoint)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("tags of %q", endpoint), err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, wrapErr(fmt.Sprintf("tags of %q", endpoint), err)
		}
		m[k] = v
	}
	return m, wrapErr(fmt.Sprintf("tags of %q", endpoint), rows.Err())
}

func (t tags) Find(ctx context.Context, q registry.TagQuery) ([]string, error) {
	p, err := t.s.q()
	if err != nil {
		return nil, err
	}
	var rows pgx.Rows
	switch {
	case q.Key == "":
		rows, err = p.Query(ctx, "SELECT DISTINCT endpoint FROM tags WHERE endpoint > $1 ORDER BY endpoint LIMIT $2", q.After, limit(q.Limit))
	case q.AnyValue:
		rows, err = p.Query(ctx, "SELECT endpoint FROM tags WHERE key = $1 AND endpoint > $2 ORDER BY endpoint LIMIT $3", q.Key, q.After, limit(q.Limit))
	default:
		rows, err = p.Query(ctx, "SELECT endpoint FROM tags WHERE key = $1 AND value = $2 AND endpoint > $3 ORDER BY endpoint LIMIT $4",
			q.Key, q.Value, q.After, limit(q.Limit))
	}
	if err != nil {
		return nil, wrapErr("find tags", err)
	}
	eps, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return eps, wrapErr("find tags", err)
}
