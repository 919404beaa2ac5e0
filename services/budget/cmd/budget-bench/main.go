// Command budget-bench measures the budget service end to end, in process,
// on a PostgreSQL database of its own (created on DATABASE_URL's server
// and dropped afterwards) and KAFKA_BROKERS, or an in-process kfake broker
// when that is unset:
//
//	budget-bench -mode check   CheckBudget over real gRPC on loopback, with
//	                           API-key authentication, at a fixed rate
//	budget-bench -mode alert   time from a crossing event's acknowledgement
//	                           by Kafka to its alert on the alert topic
//
// Run with -h for the sizes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/budget"
)

type options struct {
	mode     string
	rate     int
	duration time.Duration
	conns    int
	workers  int
	budgets  int
	alerts   int
	alertGap time.Duration
	baseline bool
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "check", "check or alert")
	flag.IntVar(&o.rate, "rate", 5000, "check: calls per second")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "check: measuring time")
	flag.IntVar(&o.conns, "conns", 4, "check: gRPC connections")
	flag.IntVar(&o.workers, "workers", 64, "check: concurrent callers")
	flag.IntVar(&o.budgets, "budgets", 50, "check: budgets of the tenant")
	flag.BoolVar(&o.baseline, "baseline", false, "check: also load the gRPC health check")
	flag.IntVar(&o.alerts, "alerts", 200, "alert: crossings to time")
	flag.DurationVar(&o.alertGap, "alert-gap", 50*time.Millisecond, "alert: time between crossings")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	flag.Parse()

	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "budget-bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "budget-bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "budget-bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// rig is the service under test and what it runs on.
type rig struct {
	pool   *pgxpool.Pool
	kcfg   kafka.Config
	addr   string
	token  string
	client budgetv1.BudgetServiceClient
	closes []func()
}

func (r *rig) close() {
	for i := len(r.closes) - 1; i >= 0; i-- {
		r.closes[i]()
	}
}

func run(ctx context.Context, o options) error {
	r, err := setup(ctx)
	if r != nil {
		defer r.close()
	}
	if err != nil {
		return err
	}
	switch o.mode {
	case "check":
		return benchCheck(ctx, r, o)
	case "alert":
		return benchAlert(ctx, r, o)
	}
	return fmt.Errorf("unknown mode %q", o.mode)
}

func setup(ctx context.Context) (*rig, error) {
	r := &rig{}
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return r, errors.New("DATABASE_URL is not set: run deploy/local/postgres.sh start " +
			"and export $(deploy/local/env.sh)")
	}
	pool, drop, err := freshDatabase(ctx, url)
	if err != nil {
		return r, err
	}
	r.closes = append(r.closes, drop, pool.Close)
	r.pool = pool
	if err := auth.Migrate(ctx, pool); err != nil {
		return r, err
	}
	if err := budget.Migrate(ctx, pool); err != nil {
		return r, err
	}

	brokers := os.Getenv("KAFKA_BROKERS")
	r.kcfg = kafka.DefaultConfig()
	if brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return r, err
		}
		r.closes = append(r.closes, c.Close)
		r.kcfg.Brokers = c.ListenAddrs()
	} else {
		r.kcfg.Brokers = strings.Split(brokers, ",")
	}
	suffix := time.Now().Format("20060102150405.000000")
	r.kcfg.Topics.UsagePriced = "bench.budget.priced." + suffix
	r.kcfg.Topics.BudgetAlerts = "bench.budget.alerts." + suffix
	r.kcfg.Topics.UsageDLQ = "bench.budget.dlq." + suffix
	if err := ensureTopics(ctx, r.kcfg); err != nil {
		return r, err
	}

	return r, r.serve(ctx)
}

// serve starts the service and its gRPC server with authentication, as
// the standalone binary does, and a client with a fresh key.
func (r *rig) serve(ctx context.Context) error {
	logger := log.New(os.Stderr, slog.LevelWarn, "budget")
	cfg := budget.DefaultSettings()
	cfg.PublishInterval = 500 * time.Millisecond
	svc, err := budget.New(cfg, budget.Deps{Pool: r.pool, Kafka: r.kcfg, Logger: logger})
	if err != nil {
		return err
	}
	store := auth.NewStore(r.pool)
	authn := auth.NewAuthenticator(auth.NewVerifier(store, 5*time.Second), budget.Scopes(),
		"x-costplane-key", logger)
	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0", ShutdownTimeout: time.Second,
		MaxRecvBytes: 1 << 20}, logger, server.WithUnaryInterceptors(authn.Unary()))
	if err != nil {
		return err
	}
	srv.Register(svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.addr = lis.Addr().String()

	sctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = srv.Serve(sctx, lis) }()
	go func() { defer wg.Done(); _ = svc.Run(sctx) }()
	r.closes = append(r.closes, func() { cancel(); wg.Wait() })

	if _, err := store.CreateTenant(ctx, auth.Tenant{ID: "bench", Name: "bench"}); err != nil {
		return err
	}
	_, token, err := store.CreateKey(ctx, "bench", "bench", auth.AllScopes)
	if err != nil {
		return err
	}
	r.token = token
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	r.closes = append(r.closes, func() { conn.Close() })
	r.client = budgetv1.NewBudgetServiceClient(conn)
	return nil
}

func (r *rig) authed(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+r.token)
}

// freshDatabase creates a database on url's server and returns a pool on
// it and a function dropping it.
func freshDatabase(ctx context.Context, url string) (*pgxpool.Pool, func(), error) {
	name := fmt.Sprintf("budget_bench_%d", time.Now().UnixNano())
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to DATABASE_URL: %w", err)
	}
	defer admin.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		return nil, nil, fmt.Errorf("creating database: %w", err)
	}
	drop := func() {
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		drop()
		return nil, nil, err
	}
	cfg.ConnConfig.Database = name
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		drop()
		return nil, nil, err
	}
	return pool, drop, nil
}

func ensureTopics(ctx context.Context, kcfg kafka.Config) error {
	cl, err := kafka.NewClient(kcfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return kafka.EnsureTopics(tctx, cl, kcfg.TopicSpec(kcfg.Topics.UsagePriced),
		kcfg.TopicSpec(kcfg.Topics.BudgetAlerts), kcfg.TopicSpec(kcfg.Topics.UsageDLQ))
}
