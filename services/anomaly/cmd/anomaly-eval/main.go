// Command anomaly-eval measures the anomaly detectors: it generates weeks
// of labeled agent traffic with injected anomalies and benign
// look-alikes, sends it through Kafka (an in-process kfake broker unless
// -brokers or KAFKA_BROKERS is set) to the real anomaly service on
// PostgreSQL, and prints precision, recall and detection latency per
// anomaly kind. It exits 1 when a target is missed.
//
//	go run ./services/anomaly/cmd/anomaly-eval -weeks 3 -rate 60
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/services/anomaly"
	"github.com/costplane/costplane/services/anomaly/internal/eval"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	report, err := eval.Run(ctx, cfg)
	if err != nil {
		cfg.Log.Error("evaluation failed", slog.Any("error", err))
		os.Exit(1)
	}
	report.Print(os.Stdout)
	if cfg.Verbose {
		report.PrintLabels(os.Stdout)
	}
	if !report.Pass() {
		os.Exit(1)
	}
}

func parse(args []string) (eval.Config, error) {
	w := eval.DefaultWorkload()
	cfg := eval.Config{Workload: w, Settings: anomaly.DefaultSettings()}
	fs := flag.NewFlagSet("anomaly-eval", flag.ContinueOnError)
	fs.Uint64Var(&cfg.Workload.Seed, "seed", w.Seed, "workload seed")
	fs.IntVar(&cfg.Workload.Tenants, "tenants", w.Tenants, "tenants")
	fs.IntVar(&cfg.Workload.Weeks, "weeks", w.Weeks, "weeks of traffic (at least 2)")
	fs.Float64Var(&cfg.Workload.Rate, "rate", w.Rate, "mean agent runs per hour per tenant")
	fs.IntVar(&cfg.Workload.Runaways, "runaways", w.Runaways, "runaway runs per tenant")
	fs.IntVar(&cfg.Workload.ToolLoops, "tool-loops", w.ToolLoops, "tool loops per tenant")
	fs.IntVar(&cfg.Workload.RetryLoops, "retry-loops", w.RetryLoops, "retry loops per tenant")
	fs.IntVar(&cfg.Workload.Sessions, "sessions", w.Sessions, "runaway sessions per tenant")
	fs.IntVar(&cfg.Workload.Spikes, "spikes", w.Spikes, "spend spikes per tenant")
	fs.IntVar(&cfg.Workload.Shifts, "shifts", w.Shifts, "level shifts per tenant")
	fs.IntVar(&cfg.Workload.NewSpend, "new-spend", w.NewSpend, "new models or providers per tenant")
	fs.IntVar(&cfg.Workload.Bursts, "bursts", w.Bursts, "benign bursts per tenant")
	fs.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"),
		"PostgreSQL server; a database is created there and dropped after")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the evaluation database")
	brokers := fs.String("brokers", os.Getenv("KAFKA_BROKERS"),
		"Kafka brokers (default KAFKA_BROKERS); empty: an in-process kfake broker")
	partitions := fs.Int("partitions", 6, "partitions of the priced topic")
	fs.IntVar(&cfg.MaxLag, "max-lag", 20000, "records the producer may run ahead of the detector")
	fs.BoolVar(&cfg.Verbose, "v", false, "print every label and the first alert that found it")
	level := fs.String("log-level", "warn", "log level")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}

	if cfg.DatabaseURL == "" {
		return cfg, fmt.Errorf("-database-url (or DATABASE_URL) is required")
	}
	if cfg.Workload.Weeks < 2 {
		return cfg, fmt.Errorf("-weeks must be at least 2: spikes need a week of history")
	}
	if *brokers != "" {
		cfg.Brokers = strings.Split(*brokers, ",")
	}
	cfg.Partitions = int32(*partitions)
	lvl, err := log.ParseLevel(*level)
	if err != nil {
		return cfg, fmt.Errorf("-log-level: %w", err)
	}
	cfg.Log = log.New(os.Stderr, lvl, "anomaly-eval")
	return cfg, nil
}
