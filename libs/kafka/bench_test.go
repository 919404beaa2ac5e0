package kafka_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
)

// The benchmarks count b.N as records, so run them with a fixed count,
// for example -benchtime 200000x. Each lib figure has its raw franz-go
// baseline beside it, measured in the same run on the same broker.

const (
	benchRecordSize = 400
	benchBatch      = 1000 // records per Produce call and per raw ProduceSync
	benchPoll       = 5000 // MaxPollRecords of the consumers under test
)

var benchValue = []byte(strings.Repeat("x", benchRecordSize))

// benchClusters is kfake, plus the real broker when KAFKA_BROKERS is set.
func benchClusters(b *testing.B, fn func(b *testing.B, brokers []string)) {
	b.Run("kfake", func(b *testing.B) { fn(b, fakeCluster(b)) })
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		b.Run("kafka", func(b *testing.B) { fn(b, strings.Split(v, ",")) })
	}
}

func reportThroughput(b *testing.B, n int, elapsed time.Duration) {
	secs := elapsed.Seconds()
	b.ReportMetric(float64(n)/secs, "records/s")
	b.ReportMetric(float64(n*benchRecordSize)/1e6/secs, "MB/s")
}

func benchRecords(topic string, n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: benchValue}
	}
	return recs
}

// BenchmarkProduce compares Producer.Produce with franz-go's ProduceSync
// on the same batches, and with unbounded asynchronous producing.
func BenchmarkProduce(b *testing.B) {
	benchClusters(b, func(b *testing.B, brokers []string) {
		b.Run("lib", func(b *testing.B) {
			topic := createTopic(b, brokers, 6)
			p, err := kafka.NewProducer(testConfig(brokers))
			if err != nil {
				b.Fatalf("NewProducer: %v", err)
			}
			defer p.Close()
			produceBatches(b, topic, func(ctx context.Context, recs []*kgo.Record) error {
				return p.Produce(ctx, recs...)
			})
		})
		b.Run("raw-sync", func(b *testing.B) {
			topic := createTopic(b, brokers, 6)
			cl := newClient(b, brokers)
			produceBatches(b, topic, func(ctx context.Context, recs []*kgo.Record) error {
				return cl.ProduceSync(ctx, recs...).FirstErr()
			})
		})
		b.Run("raw-async", func(b *testing.B) {
			topic := createTopic(b, brokers, 6)
			cl := newClient(b, brokers)
			recs := benchRecords(topic, b.N)
			start := time.Now()
			rawProduceAsync(b, cl, recs)
			reportThroughput(b, b.N, time.Since(start))
		})
	})
}

func produceBatches(
	b *testing.B, topic string, produce func(context.Context, []*kgo.Record) error,
) {
	b.Helper()
	recs := benchRecords(topic, b.N)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(recs); i += benchBatch {
		if err := produce(ctx, recs[i:min(i+benchBatch, len(recs))]); err != nil {
			b.Fatalf("producing: %v", err)
		}
	}
	reportThroughput(b, b.N, time.Since(start))
}

func rawProduceAsync(b *testing.B, cl *kgo.Client, recs []*kgo.Record) {
	b.Helper()
	var failed atomic.Int64
	for _, r := range recs {
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil || failed.Load() > 0 {
		b.Fatalf("producing: flush %v, %d records failed", err, failed.Load())
	}
}

// prefill writes n records to a new topic, outside the timer.
func prefill(b *testing.B, brokers []string, n int) string {
	b.Helper()
	topic := createTopic(b, brokers, 6)
	rawProduceAsync(b, newClient(b, brokers), benchRecords(topic, n))
	return topic
}

// BenchmarkConsume reads b.N records with the Runner (no-op handler; one
// PostgreSQL transaction per batch for the offsets), the TxnRunner
// (forwarding every record to another topic, one Kafka transaction per
// batch), and franz-go's PollFetches.
func BenchmarkConsume(b *testing.B) {
	benchClusters(b, func(b *testing.B, brokers []string) {
		b.Run("raw-poll", func(b *testing.B) {
			topic := prefill(b, brokers, b.N)
			cl := newClient(b, brokers,
				kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			b.ResetTimer()
			start := time.Now()
			for n := 0; n < b.N; {
				n += cl.PollFetches(context.Background()).NumRecords()
			}
			reportThroughput(b, b.N, time.Since(start))
		})
		b.Run("runner-noop", func(b *testing.B) {
			db := testDB(b)
			topic := prefill(b, brokers, b.N)
			schema := testSchema(b, db)
			noop := func(context.Context, pgx.Tx, []*kgo.Record) ([]kafka.Reject, error) {
				return nil, nil
			}
			runUntilConsumed(b, b.N, func(opt kafka.Option) func(context.Context) error {
				return benchRunner(b, brokers, db, runnerConfig(schema, topic), noop, opt).Run
			})
		})
		b.Run("txnrunner-forward", func(b *testing.B) {
			topic := prefill(b, brokers, b.N)
			out := createTopic(b, brokers, 6)
			rc := kafka.TxnRunnerConfig{
				Group: unique("bench-group"), Topics: []string{topic},
				TransactionalID: unique("bench-txn"),
			}
			runUntilConsumed(b, b.N, func(opt kafka.Option) func(context.Context) error {
				cfg := testConfig(brokers)
				cfg.MaxPollRecords = benchPoll
				r, err := kafka.NewTxnRunner(cfg, rc, forwardHandler(out, 0), opt)
				if err != nil {
					b.Fatalf("NewTxnRunner: %v", err)
				}
				return r.Run
			})
		})
	})
}

// BenchmarkRunnerIntoPostgres copies b.N records into a table with the
// Runner, beside franz-go PollFetches plus a plain COPY per poll, with no
// offsets stored and no exactly-once.
func BenchmarkRunnerIntoPostgres(b *testing.B) {
	benchClusters(b, func(b *testing.B, brokers []string) {
		b.Run("runner-copy", func(b *testing.B) {
			db := testDB(b)
			topic := prefill(b, brokers, b.N)
			schema := testSchema(b, db)
			runUntilConsumed(b, b.N, func(opt kafka.Option) func(context.Context) error {
				rc := runnerConfig(schema, topic)
				return benchRunner(b, brokers, db, rc, logHandler(schema), opt).Run
			})
		})
		b.Run("raw-poll-copy", func(b *testing.B) {
			db := testDB(b)
			topic := prefill(b, brokers, b.N)
			schema := testSchema(b, db)
			cl := newClient(b, brokers,
				kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			copyRecords := logHandler(schema)
			b.ResetTimer()
			start := time.Now()
			for n := 0; n < b.N; {
				recs := cl.PollRecords(context.Background(), benchPoll).Records()
				rawCopy(b, db, copyRecords, recs)
				n += len(recs)
			}
			reportThroughput(b, b.N, time.Since(start))
		})
	})
}

func rawCopy(b *testing.B, db *pgxpool.Pool, h kafka.Handler, recs []*kgo.Record) {
	b.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		b.Fatalf("beginning: %v", err)
	}
	if _, err := h(ctx, tx, recs); err != nil {
		b.Fatalf("copying: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatalf("committing: %v", err)
	}
}

func benchRunner(
	b *testing.B, brokers []string, db *pgxpool.Pool, rc kafka.RunnerConfig,
	h kafka.Handler, opt kafka.Option,
) *kafka.Runner {
	b.Helper()
	cfg := testConfig(brokers)
	cfg.MaxPollRecords = benchPoll
	r, err := kafka.NewRunner(cfg, db, rc, h, opt)
	if err != nil {
		b.Fatalf("NewRunner: %v", err)
	}
	return r
}

// runUntilConsumed times a runner from start until it has committed n
// records. build gets the option that counts commits.
func runUntilConsumed(b *testing.B, n int, build func(kafka.Option) func(context.Context) error) {
	b.Helper()
	var done atomic.Int64
	finished := make(chan struct{})
	count := kafka.WithOnCommit(func(c kafka.Commit) {
		if done.Add(int64(c.Records)) >= int64(n) && done.Load()-int64(c.Records) < int64(n) {
			close(finished)
		}
	})
	run := build(count)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()

	select {
	case <-finished:
	case err := <-errc:
		b.Fatalf("runner stopped early: %v", err)
	case <-time.After(10 * time.Minute):
		b.Fatalf("consumed %d of %d records in 10 minutes", done.Load(), n)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-errc; err != nil {
		b.Errorf("Run: %v", err)
	}
	reportThroughput(b, n, elapsed)
}
