// Command costplane runs every costplane service in one process, on an
// embedded Kafka-protocol broker and a private PostgreSQL cluster unless
// KAFKA_BROKERS and DATABASE_URL point at real ones. Run with -h to list
// the settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/services/costplane"
	"github.com/costplane/costplane/services/costplane/internal/devpg"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cfg costplane.Config
	if err := config.Load("costplane", &cfg, os.Args[1:], os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	level, _ := log.ParseLevel(cfg.LogLevel) // Validate has checked it.
	logger := log.New(os.Stderr, level, "costplane")

	if err := costplane.Run(ctx, cfg, logger, os.Stdout); err != nil {
		if errors.Is(err, devpg.ErrNoBinaries) {
			fmt.Fprintln(os.Stderr, "costplane:", err)
			os.Exit(1)
		}
		logger.Error("costplane stopped", slog.Any("error", err))
		os.Exit(1)
	}
}
