// Command costplane-loadgen sends realistic AI agent traffic to costplane:
// OpenTelemetry GenAI traces over OTLP and business outcomes over the
// ingest API, under one tenant's API key. Settings come from the
// environment and flags; run with -h to list them.
//
//	costplane-loadgen -key cp_... -rate 20 -duration 1m -protocol http
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.opentelemetry.io/otel"

	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/services/loadgen"
)

// settings is the configuration of the command.
type settings struct {
	LogLevel string `env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error"`

	Load loadgen.Config
}

// Validate checks the settings.
func (s settings) Validate() error {
	errs := []error{s.Load.Validate()}
	if _, err := log.ParseLevel(s.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	return errors.Join(errs...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var s settings
	if err := config.Load("costplane-loadgen", &s, os.Args[1:], os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	level, _ := log.ParseLevel(s.LogLevel) // Validate has checked it.
	logger := log.New(os.Stderr, level, "costplane-loadgen")
	// The SDK reports export failures to a process-wide handler that writes
	// plain text; the generator logs them itself, so keep them at debug.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Debug("opentelemetry sdk", slog.Any("error", err))
	}))

	if err := loadgen.Run(ctx, s.Load, logger); err != nil {
		logger.Error("load generation failed", slog.Any("error", err))
		os.Exit(1)
	}
}
