// Package log builds the structured JSON logger every service is given.
// There is no global logger: callers pass the *slog.Logger down.
package log

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ParseLevel maps debug, info, warn and error to a slog level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

// New returns a JSON logger writing to w at level, tagged with service.
func New(w io.Writer, level slog.Level, service string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	l := slog.New(h)
	if service != "" {
		l = l.With(slog.String("service", service))
	}
	return l
}

// Discard returns a logger that drops everything, for tests and tools.
func Discard() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}
