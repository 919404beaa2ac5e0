// Package service is the frame of a standalone costplane service process:
// signals, settings, the JSON logger, the PostgreSQL pool with the shared
// key store migrated, the metrics registry and the authenticated gRPC
// server. Each service's main wires only what is its own.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
)

// Base holds the settings every standalone service shares. Embed it in a
// service's settings struct; config.Load fills it like any other field.
type Base struct {
	DatabaseURL string `env:"DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/costplane?sslmode=disable" help:"PostgreSQL URL"`
	// DatabaseMaxConns of 0 keeps the driver's default.
	DatabaseMaxConns int32  `env:"DATABASE_MAX_CONNS" default:"10" help:"connection limit; 0: the driver default"`
	LogLevel         string `env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error"`
}

// Validate checks the shared settings.
func (b Base) Validate() error {
	var errs []error
	if b.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL must not be empty"))
	}
	if b.DatabaseMaxConns < 0 {
		errs = append(errs, errors.New("DATABASE_MAX_CONNS must not be negative"))
	}
	if _, err := log.ParseLevel(b.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	return errors.Join(errs...)
}

// Process is what Main hands a service's run function.
type Process struct {
	Logger *slog.Logger
	// Pool is open, and the key store's schema is migrated on it, since
	// every service authenticates callers against it.
	Pool *pgxpool.Pool
	// Registry collects the process's metrics, Go runtime ones included.
	Registry *prometheus.Registry
	// Stdout is where a service may print what must not be logged, such
	// as a bootstrap key.
	Stdout io.Writer
}

// Main runs a service process and is the only place it exits: 2 for bad
// settings, 1 when run fails. cfg is a pointer to the service's settings
// struct and base points at the Base inside it.
func Main(name string, cfg any, base *Base, run func(context.Context, *Process) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := config.Load(name, cfg, os.Args[1:], os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	level, _ := log.ParseLevel(base.LogLevel) // Validate has checked it.
	logger := log.New(os.Stderr, level, name)

	if err := start(ctx, base, logger, run); err != nil {
		logger.Error(name+" failed", slog.Any("error", err))
		stop()
		os.Exit(1)
	}
}

func start(ctx context.Context, base *Base, logger *slog.Logger,
	run func(context.Context, *Process) error,
) error {
	pool, err := pg.Connect(ctx, base.DatabaseURL, base.DatabaseMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := auth.Migrate(ctx, pool); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return run(ctx, &Process{Logger: logger, Pool: pool, Registry: reg, Stdout: os.Stdout})
}

// GRPC builds the service's gRPC server: callers authenticated by API key
// against the key store with the scopes each method needs, calls counted
// in the process's registry, and services registered.
func (p *Process) GRPC(scfg server.Config, acfg auth.Config, scopes auth.MethodScopes,
	services ...server.Service,
) (*server.Server, error) {
	verifier := auth.NewVerifier(auth.NewStore(p.Pool), acfg.CacheTTL)
	authn := auth.NewAuthenticator(verifier, scopes, acfg.KeyHeader, p.Logger)
	srv, err := server.New(scfg, p.Logger, server.WithRegistry(p.Registry),
		server.WithUnaryInterceptors(authn.Unary()), server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		return nil, err
	}
	srv.Register(services...)
	return srv, nil
}
