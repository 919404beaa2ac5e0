// Command crashconsumer is the victim of the SIGKILL tests of package
// kafka: it consumes events with a Runner into PostgreSQL, or with a
// TxnRunner into another topic, until it is killed. The test kills it at
// random points, restarts it, and checks that every event took effect
// exactly once.
//
// Events carry their id as the key and an integer as the decimal value.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
)

type settings struct {
	Kafka       kafka.Config
	DatabaseURL string        `env:"DATABASE_URL" default:"" help:"PostgreSQL (mode pg)"`
	Mode        string        `env:"CRASH_MODE" default:"pg" help:"pg or txn"`
	Topic       string        `env:"CRASH_TOPIC" default:"" help:"topic to consume"`
	Group       string        `env:"CRASH_GROUP" default:"" help:"consumer group"`
	Schema      string        `env:"CRASH_SCHEMA" default:"" help:"schema of the events table"`
	OutTopic    string        `env:"CRASH_OUT_TOPIC" default:"" help:"output topic (mode txn)"`
	TxnID       string        `env:"CRASH_TXN_ID" default:"" help:"transactional id (mode txn)"`
	BatchDelay  time.Duration `env:"CRASH_BATCH_DELAY" default:"0s" help:"pause inside each batch"`
}

func main() {
	logger := log.New(os.Stderr, slog.LevelInfo, "crashconsumer")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := run(ctx, logger); err != nil {
		logger.Error("crashconsumer failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	var s settings
	if err := config.Load("crashconsumer", &s, os.Args[1:], os.LookupEnv); err != nil {
		return err
	}

	switch s.Mode {
	case "pg":
		return runPG(ctx, s, logger)
	case "txn":
		return runTxn(ctx, s, logger)
	}
	return fmt.Errorf("CRASH_MODE %q: want pg or txn", s.Mode)
}

func runPG(ctx context.Context, s settings, logger *slog.Logger) error {
	db, err := pg.Connect(ctx, s.DatabaseURL, 4)
	if err != nil {
		return err
	}
	defer db.Close()

	rc := kafka.RunnerConfig{
		Group:        s.Group,
		Topics:       []string{s.Topic},
		OffsetsTable: s.Schema + ".kafka_offsets",
	}
	r, err := kafka.NewRunner(s.Kafka, db, rc, insertEvents(s), kafka.WithLogger(logger))
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// insertEvents copies each batch into schema.events, which has no unique
// constraint so that a duplicate would be visible, then waits BatchDelay
// inside the open transaction to make a kill mid-transaction likely.
func insertEvents(s settings) kafka.Handler {
	table := pgx.Identifier{s.Schema, "events"}
	cols := []string{"id", "value", "part", "off"}
	return func(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) ([]kafka.Reject, error) {
		rows := make([][]any, 0, len(recs))
		var rejects []kafka.Reject
		for _, r := range recs {
			v, err := strconv.ParseInt(string(r.Value), 10, 64)
			if err != nil {
				rejects = append(rejects, kafka.Reject{Record: r, Reason: "value: not an integer"})
				continue
			}
			rows = append(rows, []any{string(r.Key), v, r.Partition, r.Offset})
		}
		if _, err := tx.CopyFrom(ctx, table, cols, pgx.CopyFromRows(rows)); err != nil {
			return nil, fmt.Errorf("copying events: %w", err)
		}
		return rejects, pause(ctx, s.BatchDelay)
	}
}

func runTxn(ctx context.Context, s settings, logger *slog.Logger) error {
	if s.OutTopic == "" {
		return errors.New("CRASH_OUT_TOPIC is required in mode txn")
	}
	rc := kafka.TxnRunnerConfig{
		Group:           s.Group,
		Topics:          []string{s.Topic},
		TransactionalID: s.TxnID,
	}
	forward := func(
		ctx context.Context, recs []*kgo.Record,
	) ([]*kgo.Record, []kafka.Reject, error) {
		out := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			out[i] = &kgo.Record{Topic: s.OutTopic, Key: r.Key, Value: r.Value}
		}
		return out, nil, pause(ctx, s.BatchDelay)
	}

	r, err := kafka.NewTxnRunner(s.Kafka, rc, forward, kafka.WithLogger(logger))
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
