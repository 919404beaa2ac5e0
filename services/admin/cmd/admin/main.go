// Command admin serves costplane's AdminService (tenants and API keys) over
// gRPC. Settings come from the environment and flags; run with -h to list
// them.
package main

import (
	"context"
	"fmt"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/service"
	"github.com/costplane/costplane/services/admin"
)

func main() {
	var cfg admin.Config
	service.Main("admin", &cfg, &cfg.Base, func(ctx context.Context, p *service.Process) error {
		return run(ctx, cfg, p)
	})
}

func run(ctx context.Context, cfg admin.Config, p *service.Process) error {
	store := auth.NewStore(p.Pool)
	if cfg.BootstrapTenant != "" {
		token, err := store.Bootstrap(ctx, cfg.BootstrapTenant, cfg.DevAPIKey)
		if err != nil {
			return err
		}
		if token != "" {
			// Shown on stdout, never logged: it is a secret.
			fmt.Fprintf(p.Stdout, "development API key for tenant %s: %s\n",
				cfg.BootstrapTenant, token)
		}
	}

	srv, err := p.GRPC(cfg.Server, cfg.Auth, admin.Scopes(), admin.New(store, p.Logger))
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
