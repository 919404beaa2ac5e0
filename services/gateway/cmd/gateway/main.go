// Command gateway serves costplane's REST API in front of the gRPC
// services. Settings come from the environment and flags; run with -h to
// list them.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/gateway"
)

// processConfig adds what only the standalone process needs.
type processConfig struct {
	Gateway     gateway.Config
	MetricsAddr string `env:"METRICS_ADDR" default:":9103" help:"/metrics address; empty: none"`
	LogLevel    string `env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error"`
}

func (c processConfig) Validate() error {
	_, err := log.ParseLevel(c.LogLevel)
	return errors.Join(c.Gateway.Validate(), err)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cfg processConfig
	if err := config.Load("gateway", &cfg, os.Args[1:], os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	level, _ := log.ParseLevel(cfg.LogLevel) // Validate has checked it.
	logger := log.New(os.Stderr, level, "gateway")

	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("gateway failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg processConfig, logger *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	gw, err := gateway.New(cfg.Gateway, logger, gateway.WithRegistry(reg))
	if err != nil {
		return err
	}

	g := server.NewGroup(logger, cfg.Gateway.ShutdownTimeout)
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		g.Add("metrics", server.NewHTTP("metrics", cfg.MetricsAddr, mux,
			cfg.Gateway.ShutdownTimeout, logger))
	}
	g.Add("gateway", gw)

	return g.Run(ctx)
}
