package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/postgres"
	"github.com/lwm2md/lwm2md/registry/registrytest"
)

var ctx = context.Background()

// postgresURL is the test database, from LWM2MD_TEST_POSTGRES.
func postgresURL(t testing.TB) string {
	url := os.Getenv("LWM2MD_TEST_POSTGRES")
	if url == "" {
		t.Skip("LWM2MD_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	return url
}

func testCipher(t testing.TB) *registry.Cipher {
	c, err := registry.NewCipher(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newSchema returns a fresh schema name, dropped when the test ends (after
// the stores using it are closed: cleanups run last first).
func newSchema(t testing.TB) string {
	url := postgresURL(t)
	var b [6]byte
	rand.Read(b[:])
	name := "lwm2md_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

func open(t testing.TB, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(ctx, postgresURL(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	postgresURL(t)
	registrytest.Run(t, func(t *testing.T) registry.Store {
		return open(t, postgres.Options{Cipher: testCipher(t), Schema: newSchema(t), MaxConns: 8})
	})
}

func TestConformanceNoBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	postgresURL(t)
	registrytest.Run(t, func(t *testing.T) registry.Store {
		return open(t, postgres.Options{Cipher: testCipher(t), Schema: newSchema(t), MaxConns: 8, MaxBatch: 1})
	})
}

func TestMigrations(t *testing.T) {
	schema := newSchema(t)
	url := postgresURL(t)
	// Several nodes starting at once migrate once.
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, postgres.Options{Schema: schema})
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != postgres.SchemaVersion {
		t.Fatalf("schema version %d, %v", v, err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&n); err != nil || n != postgres.SchemaVersion {
		t.Fatalf("%d migrations recorded: %v", n, err)
	}

	// A database from the future is refused, and left as it was.
	if err := s.ForceSchemaVersion(ctx, postgres.SchemaVersion+5); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = postgres.Open(ctx, url, postgres.Options{Schema: schema, Cipher: testCipher(t)})
	if !errors.Is(err, registry.ErrSchemaTooNew) {
		t.Fatalf("future schema: %v", err)
	}
	t.Log(err)
	var keyChecks int
	conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "meta"}.Sanitize()).Scan(&keyChecks)
	if keyChecks != 0 {
		t.Fatal("the refused Open wrote a key check")
	}
}

func TestKeys(t *testing.T) {
	schema := newSchema(t)
	s := open(t, postgres.Options{Schema: schema, Cipher: testCipher(t)})
	if err := s.Credentials().Put(ctx, &registry.Credential{Endpoint: "a", PSKIdentity: "a", PSKKey: []byte("0123456789abcdef")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	other, _ := registry.NewCipher(bytes.Repeat([]byte{7}, 32))
	_, err := postgres.Open(ctx, postgresURL(t), postgres.Options{Schema: schema, Cipher: other})
	if !errors.Is(err, registry.ErrNoKey) {
		t.Fatalf("open with another key: %v", err)
	}
	s = open(t, postgres.Options{Schema: schema})
	if _, err := s.Credentials().Get(ctx, "a"); !errors.Is(err, registry.ErrNoKey) {
		t.Fatalf("Get without a key: %v", err)
	}
}

func TestBadURL(t *testing.T) {
	_, err := postgres.Open(ctx, "postgres://user:hunter2@[::1", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad URL: %v", err)
	}
}

// TestSharedDatabase: two stores (two lwm2md nodes) on one schema see each
// other's writes and split a job's work.
func TestSharedDatabase(t *testing.T) {
	schema := newSchema(t)
	a := open(t, postgres.Options{Schema: schema, Cipher: testCipher(t)})
	b := open(t, postgres.Options{Schema: schema, Cipher: testCipher(t)})
	if err := a.Registrations().Put(ctx, &registry.Registration{ID: "1", Endpoint: "dev"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Registrations().GetByID(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Credentials().Put(ctx, &registry.Credential{Endpoint: "x", PSKIdentity: "id", PSKKey: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	err := a.Credentials().Put(ctx, &registry.Credential{Endpoint: "y", PSKIdentity: "id", PSKKey: []byte("k")})
	if !errors.Is(err, registry.ErrDuplicateIdentity) {
		t.Fatalf("duplicate across nodes: %v", err)
	}
}
