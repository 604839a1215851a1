package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lwm2md/lwm2md/internal/config"
	"github.com/lwm2md/lwm2md/registry"
)

// runImport is `lwm2md import [flags] FILE|-`: it stores the devices,
// credentials and tags of a CSV or JSON file in the configured registry
// and prints one line per rejected device. The exit code is 0 when every
// device was accepted, 1 when some were rejected or the import stopped,
// and 2 for a usage error.
func runImport(ctx context.Context, args []string, env func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	var opts registry.ImportOptions
	var format string
	cfg, rest, code := loadCommand("import", args, env, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&opts.DryRun, "dry-run", false, "check every device against the file and the store, store nothing")
		fs.BoolVar(&opts.Replace, "replace", false, "replace the credentials of endpoints that already have some")
		fs.StringVar(&format, "format", "", "csv or json (default: from the file name's extension)")
	})
	if cfg == nil {
		return code
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "usage: lwm2md import [--dry-run] [--replace] [--format csv|json] [settings] FILE|-")
		return 2
	}
	f, err := bulkFormat(format, rest[0])
	if err != nil {
		fmt.Fprintln(stderr, "lwm2md import:", err)
		return 2
	}
	in, closeIn, err := openInput(rest[0], stdin)
	if err != nil {
		fmt.Fprintln(stderr, "lwm2md import:", err)
		return 1
	}
	defer closeIn()
	log := newLogger(cfg, stderr)
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "lwm2md import:", err)
		return 1
	}
	defer store.Close()
	rep, err := registry.Import(ctx, store, in, f, opts)
	for _, r := range rep.Rejected {
		fmt.Fprintln(stdout, "rejected:", r)
	}
	verb := "imported"
	if opts.DryRun {
		verb = "would import"
	}
	fmt.Fprintf(stdout, "%s %d devices, rejected %d\n", verb, rep.Accepted, len(rep.Rejected))
	if err != nil {
		fmt.Fprintln(stderr, "lwm2md import:", err)
		return 1
	}
	if len(rep.Rejected) > 0 {
		return 1
	}
	return 0
}

// runExport is `lwm2md export [flags] [FILE]`: it writes every device
// with credentials or tags to FILE (created with mode 0600, since it may
// hold keys) or to standard output.
func runExport(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	var opts registry.ExportOptions
	var format string
	cfg, rest, code := loadCommand("export", args, env, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&opts.Secrets, "secrets", false, "include the PSK keys (treat the file like the secrets-key)")
		fs.StringVar(&format, "format", "", "csv or json (default: from the file name's extension, csv on standard output)")
	})
	if cfg == nil {
		return code
	}
	if len(rest) > 1 {
		fmt.Fprintln(stderr, "usage: lwm2md export [--secrets] [--format csv|json] [settings] [FILE]")
		return 2
	}
	name := "-"
	if len(rest) == 1 {
		name = rest[0]
	}
	f, err := bulkFormat(format, name)
	if err != nil {
		fmt.Fprintln(stderr, "lwm2md export:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "lwm2md export:", err)
		return 1
	}
	defer store.Close()
	if name == "-" {
		n, err := registry.Export(ctx, store, stdout, f, opts)
		return exportDone(stderr, n, err)
	}
	n, err := exportFile(ctx, store, name, f, opts)
	return exportDone(stderr, n, err)
}

// exportFile writes the export through writeAtomic: a failed export
// never leaves a half-written file under the final name.
func exportFile(ctx context.Context, store registry.Store, name string, f registry.BulkFormat, opts registry.ExportOptions) (int, error) {
	return writeAtomic(name, func(w io.Writer) (int, error) { return registry.Export(ctx, store, w, f, opts) })
}

func exportDone(stderr io.Writer, n int, err error) int {
	if err != nil {
		fmt.Fprintln(stderr, "lwm2md export:", err)
		return 1
	}
	fmt.Fprintf(stderr, "exported %d devices\n", n)
	return 0
}

// bulkFormat picks the format from the flag, else from the file name.
func bulkFormat(flagValue, name string) (registry.BulkFormat, error) {
	v := strings.ToLower(flagValue)
	if v == "" {
		switch strings.ToLower(filepath.Ext(name)) {
		case ".json", ".jsonl", ".ndjson":
			v = "json"
		case ".csv", "":
			v = "csv"
		default:
			return "", fmt.Errorf("cannot tell the format of %q from its extension: set --format csv or json", name)
		}
	}
	switch v {
	case "csv":
		return registry.CSV, nil
	case "json":
		return registry.JSON, nil
	}
	return "", fmt.Errorf("--format %q: want csv or json", flagValue)
}

func openInput(name string, stdin io.Reader) (io.Reader, func(), error) {
	if name == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// loadCommand loads the settings for a subcommand with its own flags; a
// nil config means stop with the returned code.
func loadCommand(name string, args []string, env func(string) (string, bool), stderr io.Writer, extra func(*flag.FlagSet)) (*config.Config, []string, int) {
	cfg, rest, err := config.LoadCommand("lwm2md "+name, args, env, stderr, extra)
	if errors.Is(err, flag.ErrHelp) {
		return nil, nil, 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "lwm2md:", err)
		return nil, nil, 2
	}
	return cfg, rest, 0
}
