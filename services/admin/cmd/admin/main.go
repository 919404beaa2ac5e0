// Command admin serves costplane's AdminService (tenants and API keys) over
// gRPC. Settings come from the environment and flags; run with -h to list
// them.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/admin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cfg admin.Config
	if err := config.Load("admin", &cfg, os.Args[1:], os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	level, _ := log.ParseLevel(cfg.LogLevel) // Validate has checked it.
	logger := log.New(os.Stderr, level, "admin")

	if err := run(ctx, cfg, logger, os.Stdout); err != nil {
		logger.Error("admin failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg admin.Config, logger *slog.Logger, stdout io.Writer) error {
	pool, err := pg.Connect(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := auth.Migrate(ctx, pool); err != nil {
		return err
	}

	store := auth.NewStore(pool)
	if cfg.BootstrapTenant != "" {
		token, err := store.Bootstrap(ctx, cfg.BootstrapTenant, cfg.DevAPIKey)
		if err != nil {
			return err
		}
		if token != "" {
			// Shown on stdout, never logged: it is a secret.
			fmt.Fprintf(stdout, "development API key for tenant %s: %s\n",
				cfg.BootstrapTenant, token)
		}
	}

	authn := auth.NewAuthenticator(auth.NewVerifier(store, cfg.Auth.CacheTTL), admin.Scopes(),
		cfg.Auth.KeyHeader, logger)
	srv, err := server.New(cfg.Server, logger,
		server.WithUnaryInterceptors(authn.Unary()), server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		return err
	}
	srv.Register(admin.New(store, logger))

	return srv.Run(ctx)
}
