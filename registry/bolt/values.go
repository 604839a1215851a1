package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

// Values live in bValues under (endpoint, path key).
type values struct{ s *Store }

// pathKey is a path's IDs, two big-endian bytes each: byte order is
// objects.Path.Compare's order, and a path's key is a prefix of its
// descendants' keys.
func pathKey(p objects.Path) []byte {
	b := make([]byte, 0, 2*p.Len())
	for i := 0; i < p.Len(); i++ {
		b = binary.BigEndian.AppendUint16(b, p.ID(i))
	}
	return b
}

func parsePathKey(b []byte) (objects.Path, error) {
	if len(b)%2 != 0 || len(b) > 8 {
		return objects.Path{}, fmt.Errorf("path key of %d bytes: %w", len(b), registry.ErrCorrupt)
	}
	ids := make([]uint16, len(b)/2)
	for i := range ids {
		ids[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return objects.NewPath(ids...), nil
}

func (v values) Put(ctx context.Context, endpoint string, vs []registry.ResourceValue) error {
	if err := enc.CheckValues(endpoint, vs); err != nil {
		return err
	}
	stored := make([]*enc.Value, len(vs))
	for i, rv := range vs {
		s, err := enc.FromValue(rv)
		if err != nil {
			return err
		}
		stored[i] = s
	}
	err := v.s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bValues)
		for i, s := range stored {
			k := key(endpoint, pathKey(vs[i].Path))
			if old := b.Get(k); old != nil && !s.DeviceTime.IsZero() {
				var o enc.Value
				if err := json.Unmarshal(old, &o); err != nil {
					return fmt.Errorf("stored value: %v: %w", err, registry.ErrCorrupt)
				}
				if !enc.Newer(s.DeviceTime, o.DeviceTime) {
					continue
				}
			}
			data, err := json.Marshal(s)
			if err != nil {
				return err
			}
			if err := b.Put(k, data); err != nil {
				return err
			}
		}
		return nil
	})
	return v.s.wrap(fmt.Sprintf("put values of %q", endpoint), err)
}

func (v values) Get(ctx context.Context, endpoint string, p objects.Path) ([]registry.ResourceValue, error) {
	var out []registry.ResourceValue
	ep := key(endpoint)
	err := v.s.view(func(tx *bolt.Tx) error {
		return prefix(tx.Bucket(bValues), key(endpoint, pathKey(p)), nil, func(k, data []byte) (bool, error) {
			path, err := parsePathKey(k[len(ep):])
			if err != nil {
				return false, err
			}
			var s enc.Value
			if err := json.Unmarshal(data, &s); err != nil {
				return false, fmt.Errorf("stored value at %s: %v: %w", path, err, registry.ErrCorrupt)
			}
			rv, err := s.Value(path)
			if err != nil {
				return false, err
			}
			out = append(out, rv)
			return true, nil
		})
	})
	return out, v.s.wrap(fmt.Sprintf("values of %q under %s", endpoint, p), err)
}

func (v values) Delete(ctx context.Context, endpoint string, p objects.Path) error {
	err := v.s.update(ctx, func(tx *bolt.Tx) error {
		return deletePrefix(tx.Bucket(bValues), key(endpoint, pathKey(p)))
	})
	return v.s.wrap(fmt.Sprintf("delete values of %q under %s", endpoint, p), err)
}
