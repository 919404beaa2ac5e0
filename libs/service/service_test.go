package service

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
)

func TestBaseValidateNamesTheSetting(t *testing.T) {
	good := Base{DatabaseURL: "postgres://x/y", DatabaseMaxConns: 4, LogLevel: "info"}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v, want nil", good, err)
	}
	cases := map[string]func(*Base){
		"DATABASE_URL":       func(b *Base) { b.DatabaseURL = "" },
		"DATABASE_MAX_CONNS": func(b *Base) { b.DatabaseMaxConns = -1 },
		"LOG_LEVEL":          func(b *Base) { b.LogLevel = "chatty" },
	}
	for setting, spoil := range cases {
		b := good
		spoil(&b)
		if err := b.Validate(); err == nil || !strings.Contains(err.Error(), setting) {
			t.Errorf("Validate with a bad %s = %v, want an error naming it", setting, err)
		}
	}
}

// TestStartHandsOverAMigratedKeyStore checks what every service relies on:
// the pool it gets already holds the key store, and the authenticated gRPC
// server builds on it.
func TestStartHandsOverAMigratedKeyStore(t *testing.T) {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Skip("DATABASE_URL not set")
	}
	base := &Base{DatabaseURL: url, DatabaseMaxConns: 2, LogLevel: "info"}
	ran := false
	err := start(context.Background(), base, log.Discard(),
		func(ctx context.Context, p *Process) error {
			ran = true
			var n int
			if err := p.Pool.QueryRow(ctx, "SELECT count(*) FROM auth.api_keys").Scan(&n); err != nil {
				t.Errorf("key store not migrated: %v", err)
			}
			srv, err := p.GRPC(server.Config{GRPCAddr: "127.0.0.1:0", ShutdownTimeout: 1,
				MaxRecvBytes: 1 << 20}, auth.Config{KeyHeader: "x-key"}, auth.MethodScopes{})
			if err != nil || srv == nil {
				t.Errorf("GRPC: %v", err)
			}
			return nil
		})
	if err != nil || !ran {
		t.Fatalf("start = %v (ran %v), want nil after running", err, ran)
	}
}
