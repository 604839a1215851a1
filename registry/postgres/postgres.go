// Package postgres is the PostgreSQL registry store (pgx v5, pgxpool), for
// production and for several lwm2md nodes sharing one database.
//
// Open applies the embedded migrations (migrations/NNNN_name.sql) in one
// transaction, under an advisory lock so that nodes starting together
// migrate once, and records them in schema_migrations; a database whose
// schema is newer than this binary knows is refused untouched. Changes that
// span rows are transactions; concurrent registration and value writes
// are committed together (group commit, one pgx.Batch per transaction);
// upserts and SELECT ... FOR UPDATE SKIP LOCKED make it safe for several
// nodes to write and claim work at once.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/batch"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

var migrations = func() []migration {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != len(ms)+1 {
			panic("registry/postgres: migration " + e.Name() + " is out of sequence")
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	return ms
}()

// SchemaVersion is the newest schema this package knows.
var SchemaVersion = len(migrations)

// Options configure a Store.
type Options struct {
	// Cipher seals PSK keys and bootstrap configurations.
	Cipher *registry.Cipher
	// Schema is the PostgreSQL schema the tables live in, created when
	// missing; empty uses the connection's search_path (public).
	Schema string
	// MaxConns bounds the pool (default: pgxpool's, 4 or the CPU count).
	MaxConns int32
	// MaxBatch bounds how many writes one group commit carries (default
	// 512); 1 turns group commit off.
	MaxBatch int
	// BatchDelay is how long a batch waits for more writes (default 0).
	BatchDelay time.Duration
	// Committers is how many group commits may be in flight at once
	// (default 1). On the 2-core test machine one is fastest (17k
	// puts/s against 12k with two and four); a larger database server
	// may take more.
	Committers int
	// WriteTimeout bounds one group commit (default 30s).
	WriteTimeout time.Duration
}

// Store is the PostgreSQL registry store.
type Store struct {
	url    string
	opts   Options
	pool   *pgxpool.Pool
	writes *batch.Batcher[op]
	closed atomic.Bool
}

// op is one write of a group commit: queue adds its statements to the
// batch, read reads their results in the same order. read returns a
// *refused for an error of this op alone (the transaction goes on), any
// other error fails the transaction.
type op struct {
	queue func(b *pgx.Batch)
	read  func(br pgx.BatchResults) error
}

// refused is an op's own failure that leaves the transaction usable.
type refused struct{ err error }

func (r *refused) Error() string { return r.err.Error() }
func (r *refused) Unwrap() error { return r.err }

// Open connects to url, migrates the schema and returns the store. The
// URL is never part of an error message: it may hold a password.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 512
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("registry: postgres: the connection URL does not parse")
	}
	if opts.Schema != "" {
		if err := registry.CheckText("schema name", opts.Schema); err != nil {
			return nil, err
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("registry: postgres: %w", err)
	}
	s := &Store{url: url, opts: opts, pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("registry: postgres: %w", err)
	}
	if opts.MaxBatch > 1 {
		s.writes = batch.New(s.commit, opts.Committers, opts.MaxBatch, opts.BatchDelay)
	}
	return s, nil
}

// migrateLock is the advisory lock key under which nodes migrate (with the
// schema name, so that test schemas migrate in parallel).
const migrateLock = "lwm2md registry migrate "

// migrate brings the schema to SchemaVersion in one transaction and checks
// the encryption key.
func (s *Store) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", migrateLock+s.opts.Schema); err != nil {
			return err
		}
		if s.opts.Schema != "" {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.opts.Schema}.Sanitize()); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`)
		if err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return err
		}
		if current > SchemaVersion {
			return fmt.Errorf("schema version %d, this lwm2md knows up to %d: upgrade lwm2md: %w", current, SchemaVersion, registry.ErrSchemaTooNew)
		}
		for _, m := range migrations[current:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return err
			}
		}
		return s.checkKey(ctx, tx)
	})
}

// checkKey verifies the key check value, or stores one for a new key.
func (s *Store) checkKey(ctx context.Context, tx pgx.Tx) error {
	if s.opts.Cipher == nil {
		return nil
	}
	var check []byte
	err := tx.QueryRow(ctx, "SELECT value FROM meta WHERE key = 'key_check'").Scan(&check)
	if err == nil {
		return s.opts.Cipher.VerifyCheck(check)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	check, err = s.opts.Cipher.NewCheck()
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT (key) DO NOTHING", check)
	return err
}

// commit runs a group of ops in one transaction; when that fails, each op
// runs in its own, so that one op's failure is its own.
func (s *Store) commit(ops []op) []error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
	defer cancel()
	errs := make([]error, len(ops))
	if len(ops) > 1 {
		if err := s.runBatch(ctx, ops, errs); err == nil {
			return errs
		}
		clear(errs)
	}
	for i := range ops {
		if err := s.runBatch(ctx, ops[i:i+1], errs[i:i+1]); err != nil {
			errs[i] = err
		}
	}
	return errs
}

// runBatch runs ops in one transaction, one round trip for all their
// statements. It sets errs[i] for the ops that were refused and returns
// the error that failed the transaction, if one did.
func (s *Store) runBatch(ctx context.Context, ops []op, errs []error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, o := range ops {
			o.queue(b)
		}
		br := tx.SendBatch(ctx, b)
		for i, o := range ops {
			err := o.read(br)
			var r *refused
			if errors.As(err, &r) {
				errs[i] = r.err
				continue
			}
			if err != nil {
				br.Close()
				return err
			}
		}
		return br.Close()
	})
}

// update queues a write for the next group commit and waits until it is
// committed.
func (s *Store) update(ctx context.Context, o op) error {
	if s.closed.Load() {
		return registry.ErrClosed
	}
	if s.writes == nil { // group commit off: one transaction per call
		errs := make([]error, 1)
		if err := s.runBatch(ctx, []op{o}, errs); err != nil {
			return err
		}
		return errs[0]
	}
	err := s.writes.Do(ctx, o)
	if errors.Is(err, batch.ErrClosed) {
		return registry.ErrClosed
	}
	return err
}

// tx runs fn in a transaction.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if s.closed.Load() {
		return registry.ErrClosed
	}
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// q is the pool, or an error when the store is closed.
func (s *Store) q() (*pgxpool.Pool, error) {
	if s.closed.Load() {
		return nil, registry.ErrClosed
	}
	return s.pool, nil
}

// Close waits for queued writes and closes the pool.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.writes != nil {
		s.writes.Close()
	}
	s.pool.Close()
	return nil
}

// Reopen closes the store and opens it again with the same URL and
// options.
func (s *Store) Reopen(ctx context.Context) (registry.Store, error) {
	s.Close()
	return Open(ctx, s.url, s.opts)
}

// SchemaVersion returns the database's schema version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	p, err := s.q()
	if err != nil {
		return 0, err
	}
	var v int
	err = p.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	return v, wrapErr("schema version", err)
}

// ForceSchemaVersion records v as the database's schema version without
// migrating anything, as golang-migrate's force does: for repairs, and for
// tests that fake a database written by a newer lwm2md.
func (s *Store) ForceSchemaVersion(ctx context.Context, v int) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM schema_migrations WHERE version > $1", v); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, 'forced') ON CONFLICT (version) DO NOTHING", v)
		return err
	})
	return wrapErr("force schema version", err)
}

// tables are the store's tables, for RawDump.
var tables = []string{"meta", "registrations", "credentials", "cert_bindings", "bootstrap_configs", "observations",
	"queue", "jobs", "job_results", "tags", "resource_values"}

// RawDump returns every row of every table in PostgreSQL's text form, for
// tests that check what is stored (registrytest: no key in clear).
func (s *Store) RawDump(ctx context.Context) ([]byte, error) {
	p, err := s.q()
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, t := range tables {
		rows, err := p.Query(ctx, "SELECT t::text FROM "+t+" t")
		if err != nil {
			return nil, wrapErr("dump", err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, wrapErr("dump", err)
		}
		for _, text := range texts {
			out = append(out, t+" "+text+"\n"...)
		}
	}
	return out, nil
}

func (s *Store) Registrations() registry.Registrations { return registrations{s} }
func (s *Store) Credentials() registry.Credentials     { return credentials{s} }
func (s *Store) Bootstrap() registry.BootstrapConfigs  { return bootstrapConfigs{s} }
func (s *Store) Observations() registry.Observations   { return observations{s} }
func (s *Store) Queue() registry.Queue                 { return queue{s} }
func (s *Store) Jobs() registry.Jobs                   { return jobs{s} }
func (s *Store) Tags() registry.Tags                   { return tags{s} }
func (s *Store) Values() registry.Values               { return values{s} }

func (s *Store) now() time.Time { return registry.Time(time.Now()) }

// wrapErr names the operation and maps PostgreSQL's errors to the
// registry's.
func wrapErr(what string, err error) error {
	if err == nil || errors.Is(err, registry.ErrClosed) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		err = registry.ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505" && slices.Contains([]string{"credentials_psk_identity_key", "cert_bindings_pkey"}, pe.ConstraintName):
			err = fmt.Errorf("%s already belongs to another endpoint: %w", identityOf(pe), registry.ErrDuplicateIdentity)
		case pe.Code == "23505":
			err = fmt.Errorf("%s: %w", pe.Detail, registry.ErrConflict)
		case pe.Code == "22P05" || pe.Code == "22021": // untranslatable character, bad encoding
			err = fmt.Errorf("%s: %w", pe.Message, registry.ErrInvalid)
		}
	}
	return fmt.Errorf("registry: postgres: %s: %w", what, err)
}

func identityOf(pe *pgconn.PgError) string {
	if pe.ConstraintName == "cert_bindings_pkey" {
		return "the certificate"
	}
	return "the PSK identity"
}

// nullTime is t, or NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = registry.Time(t)
	return &t
}

func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// limit is LIMIT's argument: NULL (no limit) for 0.
func limit(n int) *int {
	if n <= 0 {
		return nil
	}
	return &n
}
