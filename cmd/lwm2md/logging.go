package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/lwm2md/lwm2md/internal/config"
)

// newLogger returns the process's logger: log-format on w, at log-level,
// with the components named in log-levels at their own level.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))    // validated by config
	names, _ := config.ParseLogLevels(cfg.LogLevels) // validated by config
	levels := map[string]slog.Level{}
	lowest := level
	for comp, name := range names {
		var l slog.Level
		_ = l.UnmarshalText([]byte(name))
		levels[comp] = l
		lowest = min(lowest, l)
	}
	// The base handler lets everything through down to the lowest level
	// in use; levelHandler filters by component.
	opts := &slog.HandlerOptions{Level: lowest}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(&levelHandler{h: h, level: level, levels: levels})
}

// levelHandler filters at the level of the component a logger was made
// for (logger.With("component", "server")), or the default level.
type levelHandler struct {
	h      slog.Handler
	level  slog.Level
	levels map[string]slog.Level // by component
}

func (l *levelHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= l.level && l.h.Enabled(ctx, level)
}

func (l *levelHandler) Handle(ctx context.Context, r slog.Record) error { return l.h.Handle(ctx, r) }

func (l *levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *l
	n.h = l.h.WithAttrs(attrs)
	for _, a := range attrs {
		if a.Key != "component" {
			continue
		}
		if lv, ok := l.levels[a.Value.String()]; ok {
			n.level = lv
		}
	}
	return &n
}

func (l *levelHandler) WithGroup(name string) slog.Handler {
	n := *l
	n.h = l.h.WithGroup(name)
	return &n
}
