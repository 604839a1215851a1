package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

type observations struct{ s *Store }

func (o observations) Put(ctx context.Context, obs *registry.Observation) error {
	if err := enc.CheckObservation(obs); err != nil {
		return err
	}
	data, err := json.Marshal(enc.FromObservation(obs))
	if err != nil {
		return err
	}
	k := key(obs.Endpoint, obs.Token)
	err = o.s.update(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bObs).Put(k, data) })
	return o.s.wrap(fmt.Sprintf("put observation of %q", obs.Endpoint), err)
}

func (o observations) Delete(ctx context.Context, endpoint string, token []byte) error {
	k := key(endpoint, token)
	err := o.s.update(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bObs).Delete(k) })
	return o.s.wrap(fmt.Sprintf("delete observation of %q", endpoint), err)
}

func (o observations) DeleteAll(ctx context.Context, endpoint string) error {
	err := o.s.update(ctx, func(tx *bolt.Tx) error { return deletePrefix(tx.Bucket(bObs), key(endpoint)) })
	return o.s.wrap(fmt.Sprintf("delete observations of %q", endpoint), err)
}

func (o observations) List(ctx context.Context, endpoint string) ([]*registry.Observation, error) {
	var out []*registry.Observation
	err := o.s.view(func(tx *bolt.Tx) error {
		return prefix(tx.Bucket(bObs), key(endpoint), nil, func(k, v []byte) (bool, error) {
			obs, err := decodeObservation(v)
			if err != nil {
				return false, err
			}
			out = append(out, obs)
			return true, nil
		})
	})
	return out, o.s.wrap(fmt.Sprintf("observations of %q", endpoint), err)
}

func decodeObservation(v []byte) (*registry.Observation, error) {
	var s enc.Observation
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("stored observation: %v: %w", err, registry.ErrCorrupt)
	}
	return s.Observation()
}
