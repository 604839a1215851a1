// Command lwm2md is the LwM2M device-management server: the LwM2M and
// bootstrap servers, the REST API and web UI, and the NATS/MQTT bridge in
// one binary.
//
//	lwm2md [serve] [flags]   run the server (the default)
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
	"runtime/debug"
	"syscall"

	"github.com/lwm2md/lwm2md/internal/config"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/objects/ddf"
	"github.com/lwm2md/lwm2md/server"
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
	if len(args) > 0 && (args[0] == "serve" || args[0] == "version" || args[0] == "config") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
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

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs until ctx is cancelled (SIGINT or SIGTERM).
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	log.Info("lwm2md starting", "version", version(), "config_file", cfg.ConfigFile,
		"coap_addr", cfg.CoAPAddr, "coaps_addr", cfg.CoAPSAddr, "http_addr", cfg.HTTPAddr,
		"data_dir", cfg.DataDir, "postgres_url", config.Mask(cfg.PostgresURL))
	models, err := loadModels(cfg.Models)
	if err != nil {
		return err
	}
	log.Info("object models loaded", "objects", len(models.IDs()), "definitions", models.Len(), "models_dir", cfg.Models)
	warnNotServed(cfg, log)
	var srv *server.Server
	if cfg.CoAPAddr != "" {
		srv, err = server.New(server.Config{UDPAddr: cfg.CoAPAddr, Models: models, Logger: log.With("component", "server")})
		if err != nil {
			return err
		}
		if err := srv.Start(ctx); err != nil {
			return fmt.Errorf("LwM2M server on %s: %w", cfg.CoAPAddr, err)
		}
	}
	<-ctx.Done()
	log.Info("lwm2md shutting down", "reason", context.Cause(ctx))
	if srv != nil {
		if err := srv.Close(); err != nil {
			return fmt.Errorf("closing the LwM2M server: %w", err)
		}
	}
	log.Info("lwm2md stopped")
	return nil
}

// warnNotServed names the listeners this build does not run yet, so a
// setting is never ignored silently.
func warnNotServed(cfg *config.Config, log *slog.Logger) {
	for _, l := range []struct{ name, addr string }{
		{"coaps-addr", cfg.CoAPSAddr}, {"bs-coap-addr", cfg.BSCoAPAddr}, {"bs-coaps-addr", cfg.BSCoAPSAddr}, {"http-addr", cfg.HTTPAddr},
	} {
		if l.addr != "" {
			log.Warn("listener not implemented in this build yet; setting ignored", "setting", l.name, "addr", l.addr)
		}
	}
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

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
