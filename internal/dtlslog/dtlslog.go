// Package dtlslog sends pion/dtls's log lines to log/slog, at debug level:
// pion logs per-handshake failures that a peer can cause at will, and its
// default logger writes them to stdout.
package dtlslog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// Factory is a pion logging.LoggerFactory over a slog.Logger.
type Factory struct{ Log *slog.Logger }

// NewLogger returns the logger of one pion scope ("dtls", "udp", ...).
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{log: f.Log.With("pion", scope)}
}

// logger logs pion's trace and debug lines at slog's debug level minus
// four (off unless asked for), and its info, warning and error lines at
// debug level.
type logger struct{ log *slog.Logger }

const levelTrace = slog.LevelDebug - 4

func (l logger) at(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l logger) atf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l logger) Trace(msg string)                  { l.at(levelTrace, msg) }
func (l logger) Tracef(format string, args ...any) { l.atf(levelTrace, format, args...) }
func (l logger) Debug(msg string)                  { l.at(levelTrace, msg) }
func (l logger) Debugf(format string, args ...any) { l.atf(levelTrace, format, args...) }
func (l logger) Info(msg string)                   { l.at(slog.LevelDebug, msg) }
func (l logger) Infof(format string, args ...any)  { l.atf(slog.LevelDebug, format, args...) }
func (l logger) Warn(msg string)                   { l.at(slog.LevelDebug, msg) }
func (l logger) Warnf(format string, args ...any)  { l.atf(slog.LevelDebug, format, args...) }
func (l logger) Error(msg string)                  { l.at(slog.LevelDebug, msg) }
func (l logger) Errorf(format string, args ...any) { l.atf(slog.LevelDebug, format, args...) }
