package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"

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

// listAllPage is how many observations ListAll reads per read
// transaction: fn runs outside it, since a write (fn may Delete) that
// has to grow the file waits for every open read transaction.
const listAllPage = 1000

func (o observations) ListAll(ctx context.Context, fn func(*registry.Observation) error) error {
	var start []byte
	for {
		if err := ctx.Err(); err != nil {
			return o.s.wrap("all observations", err)
		}
		page, last, err := o.page(start)
		if err != nil {
			return o.s.wrap("all observations", err)
		}
		for _, obs := range page {
			if err := fn(obs); err != nil {
				return err
			}
		}
		if len(page) < listAllPage {
			return nil
		}
		start = append(last, 0) // the first key after last
	}
}

// page reads up to listAllPage observations from the first key at or
// after start, and returns them with the last key read. The values are
// copied out of the transaction and decoded after it, on every core:
// JSON decoding is most of a restore's time, which a List per endpoint
// used to spread over several goroutines.
func (o observations) page(start []byte) ([]*registry.Observation, []byte, error) {
	raw := make([][]byte, 0, listAllPage)
	var last []byte
	err := o.s.view(func(tx *bolt.Tx) error {
		err := prefix(tx.Bucket(bObs), nil, start, func(k, v []byte) (bool, error) {
			raw = append(raw, bytes.Clone(v))
			last = k
			return len(raw) < listAllPage, nil
		})
		last = bytes.Clone(last) // k is valid only inside the transaction
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	page, err := decodeObservations(raw)
	return page, last, err
}

// decodeObservations decodes raw on up to GOMAXPROCS goroutines.
func decodeObservations(raw [][]byte) ([]*registry.Observation, error) {
	out := make([]*registry.Observation, len(raw))
	workers := min(runtime.GOMAXPROCS(0), len(raw)/64+1)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(raw); i += workers {
				obs, err := decodeObservation(raw[i])
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = obs
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func decodeObservation(v []byte) (*registry.Observation, error) {
	var s enc.Observation
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("stored observation: %v: %w", err, registry.ErrCorrupt)
	}
	return s.Observation()
}
