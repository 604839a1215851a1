package bolt

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

// verify reads every record of every bucket and decodes it, so that a
// damaged file is refused at Open rather than at the call that meets the
// damage. Touching every page also makes bbolt check each page's header
// (guard catches its panics). Secrets are not opened: that needs the key,
// which VerifyCheck tests once.
func verify(tx *bolt.Tx) error {
	known := make(map[string]bool, len(allBuckets))
	for _, name := range allBuckets {
		known[string(name)] = true
		if tx.Bucket(name) == nil {
			return fmt.Errorf("bucket %s is missing: %w", name, registry.ErrCorrupt)
		}
	}
	err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if !known[string(name)] {
			return fmt.Errorf("unknown bucket %q: %w", name, registry.ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range allBuckets {
		check := checkers[string(name)]
		err := tx.Bucket(name).ForEach(func(k, v []byte) error {
			if v == nil && !bytes.Equal(name, bMeta) && !isIndex(name) {
				return fmt.Errorf("nested bucket %q in %s", k, name)
			}
			if check == nil {
				return nil
			}
			return check(k, v)
		})
		if err != nil {
			return fmt.Errorf("bucket %s: %v: %w", name, err, registry.ErrCorrupt)
		}
	}
	return nil
}

func isIndex(name []byte) bool {
	for _, n := range [][]byte{bQueueEP, bQueueOpen, bQueueDL, bJobOpen, bTagIndex} {
		if bytes.Equal(n, name) {
			return true
		}
	}
	return false
}

// decodeInto checks that v is the JSON of T and converts it.
func decodeInto[T any](convert func(*T) error) func(k, v []byte) error {
	return func(k, v []byte) error {
		var s T
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("key %q: %v", k, err)
		}
		if convert != nil {
			if err := convert(&s); err != nil {
				return fmt.Errorf("key %q: %v", k, err)
			}
		}
		return nil
	}
}

func keyLen(n int) func(k, v []byte) error {
	return func(k, v []byte) error {
		if len(k) != n {
			return fmt.Errorf("key %q of %d bytes, want %d", k, len(k), n)
		}
		return nil
	}
}

// splitKey checks an (name, rest) key whose rest is n bytes long (-1: any).
func splitKey(n int) func(k, v []byte) error {
	return func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 1 || (n >= 0 && len(k)-i-1 != n) {
			return fmt.Errorf("key %q is not a name and %d bytes", k, n)
		}
		return nil
	}
}

var checkers = map[string]func(k, v []byte) error{
	string(bRegs): decodeInto(func(s *enc.Registration) error { _, err := s.Registration(); return err }),
	string(bCreds): decodeInto(func(s *enc.Credential) error {
		if len(s.PSKKeySealed) > 0 && (len(s.PSKKeySealed) < 33 || s.PSKKeySealed[0] != 1) {
			return fmt.Errorf("sealed key of %q is malformed", s.Endpoint)
		}
		return nil
	}),
	string(bBoot): decodeInto[enc.BootstrapConfig](nil),
	string(bObs):  decodeInto(func(s *enc.Observation) error { _, err := s.Observation(); return err }),
	string(bQueue): func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("request key of %d bytes", len(k))
		}
		_, err := decodeRequest(v)
		return err
	},
	string(bQueueEP):    splitKey(8),
	string(bQueueOpen):  splitKey(8),
	string(bQueueDL):    keyLen(16),
	string(bJobs):       decodeInto(func(s *enc.Job) error { _, err := s.Job(); return err }),
	string(bJobResults): decodeInto(func(s *enc.JobResult) error { _, err := s.JobResult(); return err }),
	string(bJobOpen):    splitKey(-1),
	string(bTags):       splitKey(-1),
	string(bValues): func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 1 {
			return fmt.Errorf("value key %q has no endpoint", k)
		}
		p, err := parsePathKey(k[i+1:])
		if err != nil {
			return err
		}
		var s enc.Value
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("value at %s: %v", p, err)
		}
		_, err = s.Value(p)
		return err
	},
}
