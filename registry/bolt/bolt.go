// Package bolt is the embedded registry store, the default: one bbolt file
// (registry.db) in the data directory, nothing to install.
//
// Each concern has its own buckets (see docs/registry.md); records are
// the JSON of registry/internal/enc, keys are endpoint names, NUL, and
// the rest of the key. Every write goes through one writer goroutine that
// commits whatever has queued up in one transaction (group commit), and a
// transaction is on disk (fsync) before the calls it holds return. Open
// refuses a damaged file, a file from a newer lwm2md, or the wrong
// encryption key, before it writes anything.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/batch"
)

// FileName is the store's file in the data directory.
const FileName = "registry.db"

// SchemaVersion is the layout this package writes. Open upgrades older
// files and refuses newer ones.
const SchemaVersion = 1

// Options configure a Store. The zero value is usable: no encryption key
// (storing a PSK key then fails with registry.ErrNoKey).
type Options struct {
	// Cipher seals PSK keys and bootstrap configurations.
	Cipher *registry.Cipher
	// MaxBatch bounds how many writes one transaction commits (default
	// 512); 1 turns group commit off.
	MaxBatch int
	// BatchDelay is how long a batch waits for more writes (default 0:
	// it takes what queued while the previous batch committed).
	BatchDelay time.Duration
	// LockTimeout is how long Open waits for another process to release
	// the file (default 1s).
	LockTimeout time.Duration
	// SkipVerify skips reading every record at Open. Open then only checks
	// the file's header and schema version.
	SkipVerify bool
}

// Store is the bbolt registry store.
type Store struct {
	dir    string
	opts   Options
	db     *bolt.DB
	writes *batch.Batcher[op]
	closed atomic.Bool

	regs   registrations
	creds  credentials
	boot   bootstrapConfigs
	obs    observations
	queue  queue
	jobs   jobs
	tags   tags
	values values
}

// op is one write: it changes tx and returns an error that rolls the
// change back. It may run more than once (after a rollback of its batch),
// so it must only set results its caller reads after Do returned nil.
type op func(tx *bolt.Tx) error

// Bucket names.
var (
	bMeta       = []byte("meta")
	bRegs       = []byte("registrations")
	bRegIDs     = []byte("registration_ids")
	bCreds      = []byte("credentials")
	bPSKIDs     = []byte("psk_identities")
	bCertFPs    = []byte("cert_fingerprints")
	bBoot       = []byte("bootstrap")
	bObs        = []byte("observations")
	bQueue      = []byte("queue")
	bQueueEP    = []byte("queue_by_endpoint")
	bQueueOpen  = []byte("queue_open")
	bQueueDL    = []byte("queue_deadlines")
	bJobs       = []byte("jobs")
	bJobResults = []byte("job_results")
	bJobOpen    = []byte("job_open")
	bTags       = []byte("tags")
	bTagIndex   = []byte("tag_index")
	bValues     = []byte("values")

	allBuckets = [][]byte{bMeta, bRegs, bRegIDs, bCreds, bPSKIDs, bCertFPs, bBoot, bObs,
		bQueue, bQueueEP, bQueueOpen, bQueueDL, bJobs, bJobResults, bJobOpen, bTags, bTagIndex, bValues}

	kSchema   = []byte("schema_version")
	kKeyCheck = []byte("key_check")
	kCreated  = []byte("created")
)

// Open opens or creates the store in dir (created with mode 0700 when
// missing).
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 512
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("registry: bolt: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := openFile(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, opts: opts, db: db}
	if err := s.prepare(); err != nil {
		db.Close()
		return nil, fmt.Errorf("registry: bolt: %s: %w", path, err)
	}
	if opts.MaxBatch > 1 {
		s.writes = batch.New(s.commit, 1, opts.MaxBatch, opts.BatchDelay) // bbolt has one writer
	}
	s.regs = registrations{s}
	s.creds = credentials{s}
	s.boot = bootstrapConfigs{s}
	s.obs = observations{s}
	s.queue = queue{s}
	s.jobs = jobs{s}
	s.tags = tags{s}
	s.values = values{s}
	return s, nil
}

func openFile(path string, opts Options) (db *bolt.DB, err error) {
	// bbolt trusts the pages it maps; a damaged file can make it panic or
	// fault, which guard turns into an error here as in every transaction.
	err = guard(func() error {
		var e error
		db, e = bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType})
		return e
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("registry: bolt: %s is locked by another process", path)
	case errors.Is(err, registry.ErrCorrupt): // from guard
		return nil, fmt.Errorf("registry: bolt: %s: %w", path, err)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
		errors.Is(err, bolterrors.ErrVersionMismatch),
		strings.Contains(err.Error(), "file size too small"): // bbolt has no error value for it
		return nil, fmt.Errorf("registry: bolt: %s is damaged or not a registry file (%v): %w", path, err, registry.ErrCorrupt)
	}
	return nil, fmt.Errorf("registry: bolt: %s: %w", path, err)
}

// prepare checks the file and, for a new one, creates the buckets. It
// writes nothing to a file it refuses.
func (s *Store) prepare() error {
	var version uint64
	var fresh, needCheck bool
	err := s.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if meta == nil {
			empty := true
			tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("not an lwm2md registry (no meta bucket): %w", registry.ErrCorrupt)
			}
			fresh = true
			return nil
		}
		v := meta.Get(kSchema)
		if len(v) != 8 {
			return fmt.Errorf("no schema version: %w", registry.ErrCorrupt)
		}
		version = binary.BigEndian.Uint64(v)
		if version > SchemaVersion {
			return fmt.Errorf("schema version %d, this lwm2md knows up to %d: upgrade lwm2md: %w", version, SchemaVersion, registry.ErrSchemaTooNew)
		}
		if version == 0 {
			return fmt.Errorf("schema version 0: %w", registry.ErrCorrupt)
		}
		if check := meta.Get(kKeyCheck); check != nil {
			if s.opts.Cipher != nil {
				if err := s.opts.Cipher.VerifyCheck(check); err != nil {
					return err
				}
			}
		} else {
			needCheck = s.opts.Cipher != nil
		}
		if !s.opts.SkipVerify {
			return verify(tx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !fresh && version == SchemaVersion && !needCheck {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return guard(func() error {
			if fresh {
				for _, name := range allBuckets {
					if _, err := tx.CreateBucket(name); err != nil {
						return err
					}
				}
				meta := tx.Bucket(bMeta)
				meta.Put(kSchema, binary.BigEndian.AppendUint64(nil, SchemaVersion))
				created, _ := time.Now().UTC().MarshalText()
				meta.Put(kCreated, created)
			}
			// Migrations from older schema versions go here, in this
			// transaction, when there are any.
			if fresh || needCheck {
				if s.opts.Cipher != nil {
					check, err := s.opts.Cipher.NewCheck()
					if err != nil {
						return err
					}
					return tx.Bucket(bMeta).Put(kKeyCheck, check)
				}
			}
			return nil
		})
	})
}

// guard runs fn, turning a panic or a memory fault (a damaged page of the
// mapped file) into an error wrapping registry.ErrCorrupt.
func guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if p := recover(); p != nil {
			err = fmt.Errorf("damaged file: %v: %w", p, registry.ErrCorrupt)
		}
	}()
	return fn()
}

// view runs a read transaction.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	if s.closed.Load() {
		return registry.ErrClosed
	}
	err := s.db.View(func(tx *bolt.Tx) error { return guard(func() error { return fn(tx) }) })
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return registry.ErrClosed
	}
	return err
}

// update queues a write for the next group commit and waits until it is
// on disk.
func (s *Store) update(ctx context.Context, o op) error {
	if s.closed.Load() {
		return registry.ErrClosed
	}
	if s.writes == nil { // group commit off: one transaction per call
		if err := ctx.Err(); err != nil {
			return err
		}
		return s.commit([]op{o})[0]
	}
	err := s.writes.Do(ctx, o)
	if errors.Is(err, batch.ErrClosed) {
		return registry.ErrClosed
	}
	return err
}

// commit runs a batch of ops in one transaction. When one op fails the
// transaction is rolled back and each op runs alone, so that one op's
// failure is its own.
func (s *Store) commit(ops []op) []error {
	errs := make([]error, len(ops))
	failed := -1
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i, o := range ops {
			if err := guard(func() error { return o(tx) }); err != nil {
				failed = i
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil:
	case failed < 0: // the commit itself failed: nothing was written
		for i := range errs {
			errs[i] = fmt.Errorf("registry: bolt: commit: %w", err)
		}
	case len(ops) == 1:
		errs[0] = err
	default:
		for i, o := range ops {
			errs[i] = s.db.Update(func(tx *bolt.Tx) error { return guard(func() error { return o(tx) }) })
		}
	}
	return errs
}

// Close waits for queued writes and closes the file.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.writes != nil {
		s.writes.Close()
	}
	return s.db.Close()
}

// Path is the store's file.
func (s *Store) Path() string { return filepath.Join(s.dir, FileName) }

// Backup writes a consistent copy of the store's file to w while the
// store keeps serving; the copy opens with Open like the original.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// RawDump returns the file's bytes as stored, for tests that check what
// reaches the disk (registrytest: no key in clear).
func (s *Store) RawDump(ctx context.Context) ([]byte, error) {
	var buf bytes.Buffer
	_, err := s.Backup(ctx, &buf)
	return buf.Bytes(), err
}

// Reopen closes the store and opens it again on the same file with the
// same options.
func (s *Store) Reopen(ctx context.Context) (registry.Store, error) {
	if err := s.Close(); err != nil {
		return nil, err
	}
	return Open(s.dir, s.opts)
}

// SchemaVersion returns the file's schema version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v uint64
	err := s.view(func(tx *bolt.Tx) error {
		v = binary.BigEndian.Uint64(tx.Bucket(bMeta).Get(kSchema))
		return nil
	})
	return int(v), err
}

// ForceSchemaVersion overwrites the file's schema version without
// migrating anything, as golang-migrate's force does: for repairs, and for
// tests that fake a file written by a newer lwm2md.
func (s *Store) ForceSchemaVersion(ctx context.Context, v int) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bMeta).Put(kSchema, binary.BigEndian.AppendUint64(nil, uint64(v)))
	})
}

func (s *Store) Registrations() registry.Registrations { return s.regs }
func (s *Store) Credentials() registry.Credentials     { return s.creds }
func (s *Store) Bootstrap() registry.BootstrapConfigs  { return s.boot }
func (s *Store) Observations() registry.Observations   { return s.obs }
func (s *Store) Queue() registry.Queue                 { return s.queue }
func (s *Store) Jobs() registry.Jobs                   { return s.jobs }
func (s *Store) Tags() registry.Tags                   { return s.tags }
func (s *Store) Values() registry.Values               { return s.values }
func (s *Store) now() time.Time                        { return registry.Time(time.Now()) }
func (s *Store) wrap(what string, err error) error     { return wrapErr(what, err) }
func wrapErr(what string, err error) error {
	if err == nil || errors.Is(err, registry.ErrClosed) {
		return err
	}
	return fmt.Errorf("registry: bolt: %s: %w", what, err)
}

// key joins an endpoint (or another NUL-free name) and the rest of a key.
func key(name string, rest ...[]byte) []byte {
	n := len(name) + 1
	for _, r := range rest {
		n += len(r)
	}
	k := make([]byte, 0, n)
	k = append(k, name...)
	k = append(k, 0)
	for _, r := range rest {
		k = append(k, r...)
	}
	return k
}

// prefix iterates the keys of b that start with p, from the first at or
// after start (p when nil), until fn returns false or an error.
func prefix(b *bolt.Bucket, p, start []byte, fn func(k, v []byte) (bool, error)) error {
	if start == nil || bytes.Compare(start, p) < 0 {
		start = p
	}
	c := b.Cursor()
	for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		more, err := fn(k, v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// deletePrefix removes every key of b that starts with p.
func deletePrefix(b *bolt.Bucket, p []byte) error {
	var keys [][]byte
	err := prefix(b, p, nil, func(k, _ []byte) (bool, error) {
		keys = append(keys, bytes.Clone(k))
		return true, nil
	})
	for _, k := range keys {
		if err == nil {
			err = b.Delete(k)
		}
	}
	return err
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// timeKey orders times as bytes: microseconds since the epoch with the
// sign bit flipped, big-endian.
func timeKey(t time.Time) []byte { return u64(uint64(t.UnixMicro()) ^ 1<<63) }
