package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// HTTP is a plain HTTP server component, for /metrics, the REST gateway and
// other HTTP endpoints, with the same bounded shutdown as Server.
type HTTP struct {
	name    string
	addr    string
	timeout time.Duration
	logger  *slog.Logger
	srv     *http.Server
}

// NewHTTP returns a component serving h on addr. name appears in logs;
// shutdownTimeout bounds how long open requests may finish on shutdown.
func NewHTTP(name, addr string, h http.Handler, shutdownTimeout time.Duration,
	logger *slog.Logger,
) *HTTP {
	return &HTTP{
		name:    name,
		addr:    addr,
		timeout: shutdownTimeout,
		logger:  logger,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}
}

// Run listens on the address and serves until ctx ends.
func (h *HTTP) Run(ctx context.Context) error {
	lis, err := net.Listen("tcp", h.addr)
	if err != nil {
		return fmt.Errorf("listening for %s on %s: %w", h.name, h.addr, err)
	}
	return h.Serve(ctx, lis)
}

// Serve serves on lis, which it closes, until ctx ends.
func (h *HTTP) Serve(ctx context.Context, lis net.Listener) error {
	served := make(chan error, 1)
	go func() { served <- h.srv.Serve(lis) }()
	h.logger.InfoContext(ctx, "http server listening",
		slog.String("server", h.name), slog.String("addr", lis.Addr().String()))

	select {
	case err := <-served:
		return fmt.Errorf("serving %s: %w", h.name, err)
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.timeout)
	defer cancel()
	if err := h.srv.Shutdown(shutdownCtx); err != nil {
		h.logger.Warn("http requests still open at shutdown timeout; closing them",
			slog.String("server", h.name), slog.Any("error", err))
		_ = h.srv.Close() // The shutdown error above already says what went wrong.
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving %s: %w", h.name, err)
	}
	h.logger.InfoContext(ctx, "http server stopped", slog.String("server", h.name))

	return nil
}
