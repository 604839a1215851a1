package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lwm2md/lwm2md/registry/bolt"
)

// runBackup is `lwm2md backup [settings] FILE`: a consistent copy of the
// embedded store, written beside FILE and renamed into place. The copy
// opens like the original (copy it back into a data-dir to restore).
// bbolt allows one process per file, so this runs while lwm2md is
// stopped; PostgreSQL is backed up with its own tools (pg_dump).
func runBackup(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, rest, code := loadCommand("backup", args, env, stderr, nil)
	if cfg == nil {
		return code
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "usage: lwm2md backup [settings] FILE")
		return 2
	}
	if cfg.PostgresURL != "" {
		fmt.Fprintln(stderr, "lwm2md backup: the registry is on PostgreSQL: back it up with pg_dump (see docs/operations.md)")
		return 2
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, bolt.FileName)); err != nil {
		fmt.Fprintln(stderr, "lwm2md backup: no registry in data-dir:", err)
		return 1
	}
	store, err := bolt.Open(cfg.DataDir, bolt.Options{})
	if err != nil {
		fmt.Fprintln(stderr, "lwm2md backup:", err)
		return 1
	}
	defer store.Close()
	n, err := writeAtomic(rest[0], func(w io.Writer) (int64, error) { return store.Backup(ctx, w) })
	if err != nil {
		fmt.Fprintln(stderr, "lwm2md backup:", err)
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%d bytes)\n", store.Path(), rest[0], n)
	return 0
}

// writeAtomic writes a 0600 temporary file beside name with write, syncs
// it and renames it to name, so a failure never leaves a partial file
// under the final name.
func writeAtomic[N any](name string, write func(io.Writer) (N, error)) (N, error) {
	var zero N
	tmp, err := os.CreateTemp(filepath.Dir(name), ".lwm2md-*")
	if err != nil {
		return zero, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return zero, err
	}
	n, err := write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), name)
}
