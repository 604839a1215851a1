package bolt

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

// Tags live in bTags under (endpoint, key) with the value, and in
// bTagIndex under (key, value, endpoint) for Find.
type tags struct{ s *Store }

func tagIndexKey(k, v, ep string) []byte { return key(k, []byte(v), []byte{0}, []byte(ep)) }

func (t tags) Set(ctx context.Context, endpoint string, m map[string]string) error {
	if err := enc.CheckTags(endpoint, m); err != nil {
		return err
	}
	err := t.s.update(ctx, func(tx *bolt.Tx) error {
		b, idx := tx.Bucket(bTags), tx.Bucket(bTagIndex)
		for _, k := range enc.SortedKeys(m) {
			tk := key(endpoint, []byte(k))
			if old := b.Get(tk); old != nil {
				if err := idx.Delete(tagIndexKey(k, string(old), endpoint)); err != nil {
					return err
				}
			}
			if err := b.Put(tk, []byte(m[k])); err != nil {
				return err
			}
			if err := idx.Put(tagIndexKey(k, m[k], endpoint), nil); err != nil {
				return err
			}
		}
		return nil
	})
	return t.s.wrap(fmt.Sprintf("set tags of %q", endpoint), err)
}

func (t tags) Remove(ctx context.Context, endpoint string, keys ...string) error {
	err := t.s.update(ctx, func(tx *bolt.Tx) error {
		b, idx := tx.Bucket(bTags), tx.Bucket(bTagIndex)
		if len(keys) == 0 {
			p := key(endpoint)
			err := prefix(b, p, nil, func(k, _ []byte) (bool, error) {
				keys = append(keys, string(k[len(p):]))
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		for _, k := range keys {
			tk := key(endpoint, []byte(k))
			old := b.Get(tk)
			if old == nil {
				continue
			}
			if err := idx.Delete(tagIndexKey(k, string(old), endpoint)); err != nil {
				return err
			}
			if err := b.Delete(tk); err != nil {
				return err
			}
		}
		return nil
	})
	return t.s.wrap(fmt.Sprintf("remove tags of %q", endpoint), err)
}

func (t tags) Get(ctx context.Context, endpoint string) (map[string]string, error) {
	m := map[string]string{}
	p := key(endpoint)
	err := t.s.view(func(tx *bolt.Tx) error {
		return prefix(tx.Bucket(bTags), p, nil, func(k, v []byte) (bool, error) {
			m[string(k[len(p):])] = string(v)
			return true, nil
		})
	})
	return m, t.s.wrap(fmt.Sprintf("tags of %q", endpoint), err)
}

func (t tags) Find(ctx context.Context, q registry.TagQuery) ([]string, error) {
	var eps []string
	err := t.s.view(func(tx *bolt.Tx) error {
		switch {
		case q.Key == "":
			var start []byte
			if q.After != "" {
				start = append([]byte(q.After), 1) // past every (After, key)
			}
			return prefix(tx.Bucket(bTags), nil, start, func(k, _ []byte) (bool, error) {
				ep, _, _ := bytes.Cut(k, []byte{0})
				if n := len(eps); n == 0 || eps[n-1] != string(ep) {
					if q.Limit > 0 && n == q.Limit {
						return false, nil
					}
					eps = append(eps, string(ep))
				}
				return true, nil
			})
		case q.AnyValue:
			p := key(q.Key)
			err := prefix(tx.Bucket(bTagIndex), p, nil, func(k, _ []byte) (bool, error) {
				_, ep, _ := bytes.Cut(k[len(p):], []byte{0})
				if string(ep) > q.After {
					eps = append(eps, string(ep))
				}
				return true, nil
			})
			slices.Sort(eps)
			if q.Limit > 0 && len(eps) > q.Limit {
				eps = eps[:q.Limit]
			}
			return err
		default:
			p := key(q.Key, []byte(q.Value), []byte{0})
			var start []byte
			if q.After != "" {
				start = append(append(bytes.Clone(p), q.After...), 0)
			}
			return prefix(tx.Bucket(bTagIndex), p, start, func(k, _ []byte) (bool, error) {
				eps = append(eps, string(k[len(p):]))
				return q.Limit <= 0 || len(eps) < q.Limit, nil
			})
		}
	})
	return eps, t.s.wrap("find tags", err)
}
