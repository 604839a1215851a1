package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/registry/registrytest"
)

var ctx = context.Background()

func testCipher(t testing.TB) *registry.Cipher {
	c, err := registry.NewCipher(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func open(t testing.TB, dir string, opts bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Store {
		return open(t, t.TempDir(), bolt.Options{Cipher: testCipher(t)})
	})
}

// TestConformanceNoBatch runs the suite with group commit off.
func TestConformanceNoBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	registrytest.Run(t, func(t *testing.T) registry.Store {
		return open(t, t.TempDir(), bolt.Options{Cipher: testCipher(t), MaxBatch: 1})
	})
}

// fileWith creates a store in a new directory, puts a few records, closes
// it and returns the directory.
func fileWith(t *testing.T, opts bolt.Options, n int) string {
	dir := t.TempDir()
	s, err := bolt.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		ep := fmt.Sprintf("dev-%05d", i)
		if err := s.Registrations().Put(ctx, &registry.Registration{ID: "id" + ep, Endpoint: ep, Version: "1.1", Params: map[string]string{"pad": strings.Repeat("x", 200)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCorruptFile(t *testing.T) {
	const pageSize = 4096 // os.Getpagesize() on the machines we test on
	cases := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"garbage", func(b []byte) []byte { return bytes.Repeat([]byte("not a database "), 1000) }},
		{"truncated", func(b []byte) []byte { return b[:pageSize+100] }},
		{"both meta pages", func(b []byte) []byte {
			for i := 16; i < 64; i++ {
				b[i], b[pageSize+i] = 0xa5, 0x5a
			}
			return b
		}},
		{"data pages zeroed", func(b []byte) []byte {
			clear(b[4*pageSize:])
			return b
		}},
		{"data pages scrambled", func(b []byte) []byte {
			for i := 4 * pageSize; i < len(b); i++ {
				b[i] ^= byte(i*7 + 3)
			}
			return b
		}},
		{"middle pages scrambled", func(b []byte) []byte {
			for i := 4 * pageSize; i < len(b)/2; i++ {
				b[i] ^= byte(i*13 + 1)
			}
			return b
		}},
		{"one record's pages zeroed", func(b []byte) []byte {
			// bbolt copies a page on write and frees the old copy, so
			// the key may sit in free pages too, and zeroing a free page
			// harms nothing: zero every page that holds it, the live
			// one among them.
			key := []byte(`dev-00150`)
			for off := 0; ; {
				i := bytes.Index(b[off:], key)
				if i < 0 {
					return b
				}
				start := (off + i) / pageSize * pageSize
				clear(b[start : start+pageSize])
				off = start + pageSize
			}
		}},
		{"a record's bytes", func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"lwm2m":"1.1"`))
			if i < 0 {
				t.Fatal("record not found in the file")
			}
			copy(b[i:], `"lwm2m":11.1`)
			return b
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := fileWith(t, bolt.Options{}, 300)
			path := filepath.Join(dir, bolt.FileName)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b = tc.damage(b)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := bolt.Open(dir, bolt.Options{})
			if err == nil {
				s.Close()
				t.Fatal("a damaged file opened")
			}
			if !errors.Is(err, registry.ErrCorrupt) {
				t.Fatalf("error %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			t.Log(err)
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, b) {
				t.Fatal("Open changed the damaged file")
			}
		})
	}
}

func TestFutureSchemaLeavesFile(t *testing.T) {
	dir := fileWith(t, bolt.Options{}, 10)
	s := open(t, dir, bolt.Options{})
	if err := s.ForceSchemaVersion(ctx, bolt.SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, bolt.FileName)
	before, _ := os.ReadFile(path)
	_, err := bolt.Open(dir, bolt.Options{Cipher: testCipher(t)})
	if !errors.Is(err, registry.ErrSchemaTooNew) {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(err.Error(), "schema version 2") {
		t.Fatalf("message: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("Open wrote to a file from the future")
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, bolt.Options{Cipher: testCipher(t)})
	cred := &registry.Credential{Endpoint: "a", PSKIdentity: "a", PSKKey: []byte("0123456789abcdef")}
	if err := s.Credentials().Put(ctx, cred); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Another key: refused at Open, naming the key by its ID only.
	other, _ := registry.NewCipher(bytes.Repeat([]byte{7}, 32))
	_, err := bolt.Open(dir, bolt.Options{Cipher: other})
	if !errors.Is(err, registry.ErrNoKey) {
		t.Fatalf("open with another key: %v", err)
	}
	t.Log(err)
	// The old key kept for opening: accepted, and reads the secret.
	rotated, _ := registry.NewCipher(bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{0x42}, 32))
	s = open(t, dir, bolt.Options{Cipher: rotated})
	got, err := s.Credentials().Get(ctx, "a")
	if err != nil || string(got.PSKKey) != "0123456789abcdef" {
		t.Fatalf("with the old key kept: %v", err)
	}
	s.Close()

	// No key: the store opens (registrations need none), secrets fail.
	s = open(t, dir, bolt.Options{})
	if _, err := s.Credentials().Get(ctx, "a"); !errors.Is(err, registry.ErrNoKey) {
		t.Fatalf("Get without a key: %v", err)
	}
	err = s.Credentials().Put(ctx, &registry.Credential{Endpoint: "b", PSKIdentity: "b", PSKKey: []byte("k")})
	if !errors.Is(err, registry.ErrNoKey) {
		t.Fatalf("Put without a key: %v", err)
	}
	// Certificates need no key.
	if err := s.Credentials().Put(ctx, &registry.Credential{Endpoint: "c", Certificates: []registry.CertBinding{{Fingerprint: strings.Repeat("ab", 32)}}}); err != nil {
		t.Fatal(err)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, bolt.Options{})
	start := time.Now()
	_, err := bolt.Open(dir, bolt.Options{LockTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("waited too long")
	}
}

func TestBackup(t *testing.T) {
	dir := fileWith(t, bolt.Options{}, 50)
	s := open(t, dir, bolt.Options{})
	copyDir := t.TempDir()
	f, err := os.Create(filepath.Join(copyDir, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(ctx, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c := open(t, copyDir, bolt.Options{})
	list, err := c.Registrations().List(ctx, registry.RegistrationFilter{})
	if err != nil || len(list) != 50 {
		t.Fatalf("backup holds %d registrations: %v", len(list), err)
	}
}

func TestNotARegistry(t *testing.T) {
	// A bbolt file of another program.
	dir := t.TempDir()
	db, err := bbolt.Open(filepath.Join(dir, bolt.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("other"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	db.Close()
	_, err = bolt.Open(dir, bolt.Options{})
	if !errors.Is(err, registry.ErrCorrupt) || !strings.Contains(err.Error(), "not an lwm2md registry") {
		t.Fatalf("foreign file: %v", err)
	}
	// An empty file is a new store, as a missing one.
	if err := os.WriteFile(filepath.Join(dir, bolt.FileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, bolt.Options{})
	if _, err := s.Registrations().List(ctx, registry.RegistrationFilter{}); err != nil {
		t.Fatal(err)
	}
}
