// Command lwm2md is the LwM2M device-management server: the LwM2M and
// bootstrap servers, the REST API and web UI, and the NATS/MQTT bridge in
// one binary.
//
//	lwm2md [serve] [flags]   run the server (the default)
//	lwm2md import FILE       import devices, credentials and tags (CSV or JSON)
//	lwm2md export [FILE]     export them
//	lwm2md backup FILE       copy the embedded store (lwm2md stopped)
//	lwm2md config print      print the effective configuration, secrets masked
//	lwm2md version           print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/lwm2md/lwm2md/internal/config"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/objects/ddf"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/registry/postgres"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
	case "import":
		return runImport(ctx, args, env, os.Stdin, stdout, stderr)
	case "export":
		return runExport(ctx, args, env, stdout, stderr)
	case "backup":
		return runBackup(ctx, args, env, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "lwm2md", version())
		return 0
	case "config":
		if len(args) == 0 || args[0] != "print" {
			fmt.Fprintln(stderr, "usage: lwm2md config print [flags]")
			return 2
		}
		cfg, code := load(args[1:], env, stderr)
		if cfg == nil {
			return code
		}
		cfg.Print(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "lwm2md: unknown command %q (want serve, import, export, backup, config print or version)\n", cmd)
		return 2
	}
	cfg, code := load(args, env, stderr)
	if cfg == nil {
		return code
	}
	log := newLogger(cfg, stderr)
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("lwm2md stopped", "err", err)
		return 1
	}
	return 0
}

func load(args []string, env func(string) (string, bool), stderr io.Writer) (*config.Config, int) {
	cfg, err := config.Load(args, env, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil, 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "lwm2md:", err)
		return nil, 2
	}
	return cfg, 0
}

// openStore opens the registry: PostgreSQL when postgres-url is set, else
// the embedded bbolt file in data-dir. A damaged file, a schema from a
// newer lwm2md, a file locked by another process or the wrong secrets-key
// is an error: lwm2md does not start on a registry it cannot trust.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (registry.Store, error) {
	var cipher *registry.Cipher
	if cfg.SecretsKey != "" {
		key, err := registry.ParseKey(cfg.SecretsKey) // checked by config; the error never holds the key
		if err != nil {
			return nil, fmt.Errorf("secrets-key: %w", err)
		}
		if cipher, err = registry.NewCipher(key); err != nil {
			return nil, fmt.Errorf("secrets-key: %w", err)
		}
	} else {
		log.Warn("no secrets-key: PSK keys and bootstrap configurations cannot be stored", "setting", "secrets-key", "env", config.EnvName("secrets-key"))
	}
	if cfg.PostgresURL != "" {
		s, err := postgres.Open(ctx, cfg.PostgresURL, postgres.Options{Cipher: cipher})
		if err != nil {
			return nil, fmt.Errorf("opening the registry on PostgreSQL %s: %w", config.Mask(cfg.PostgresURL), err)
		}
		log.Info("registry store opened", "store", "postgres", "postgres_url", config.Mask(cfg.PostgresURL),
			"schema_version", postgres.SchemaVersion, "key_id", cipher.KeyID())
		return s, nil
	}
	if cfg.DataDir == "" {
		return nil, errors.New("data-dir is empty and postgres-url is not set: no registry store")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	s, err := bolt.Open(cfg.DataDir, bolt.Options{Cipher: cipher})
	if err != nil {
		return nil, fmt.Errorf("opening the registry: %w", err)
	}
	log.Info("registry store opened", "store", "bolt", "path", filepath.Join(cfg.DataDir, bolt.FileName),
		"schema_version", bolt.SchemaVersion, "key_id", cipher.KeyID())
	return s, nil
}

// loadModels returns the built-in definitions plus the DDF files in dir;
// a DDF file overrides a built-in definition of the same object version.
func loadModels(dir string) (*objects.Registry, error) {
	reg := builtin.Registry()
	if dir == "" {
		return reg, nil
	}
	if _, err := ddf.LoadInto(reg, dir); err != nil {
		return nil, fmt.Errorf("loading --models: %w", err)
	}
	return reg, nil
}

// buildVersion is set by the Makefile's release builds (-X
// main.buildVersion=...); go install versions come from the build info.
var buildVersion string

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
