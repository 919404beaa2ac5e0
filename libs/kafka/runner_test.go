package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
)

func newRunner(
	t testing.TB, brokers []string, db *pgxpool.Pool, rc kafka.RunnerConfig,
	h kafka.Handler, opts ...kafka.Option,
) *kafka.Runner {
	t.Helper()
	// A partition whose start offset is still being looked up waits for
	// the in-flight fetch of the others, up to the fetch max wait; a
	// short wait keeps the tests quick.
	opts = append(opts, kafka.WithClientOpts(kgo.FetchMaxWait(200*time.Millisecond)))
	r, err := kafka.NewRunner(testConfig(brokers), db, rc, h, opts...)
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	return r
}

// TestRunnerResumesAfterRestart stops a runner, produces more, and starts
// a new one in the same group: it must pick up exactly where the first
// stopped.
func TestRunnerResumesAfterRestart(t *testing.T) {
	db := testDB(t)
	forEachCluster(t, func(t *testing.T, brokers []string) {
		schema := testSchema(t, db)
		topic := createTopic(t, brokers, 3)
		rc := runnerConfig(schema, topic)

		first := values("a", 150)
		produceValues(t, brokers, topic, first)
		s := startRunner(t, newRunner(t, brokers, db, rc, logHandler(schema)))
		waitCaughtUp(t, s.r)
		s.stop()

		second := values("b", 150)
		produceValues(t, brokers, topic, second)
		s = startRunner(t, newRunner(t, brokers, db, rc, logHandler(schema)))
		waitCaughtUp(t, s.r)
		s.stop()

		want := append(first, second...)
		if diff := cmp.Diff(want, seenValues(t, db, schema)); diff != "" {
			t.Errorf("records applied (-want +got):\n%s", diff)
		}
	})
}

// TestRunnerStartsFromStoredOffset stores offsets in PostgreSQL and
// commits different ones to Kafka: the stored ones must win, and a
// partition with no stored offset starts at the beginning.
func TestRunnerStartsFromStoredOffset(t *testing.T) {
	db := testDB(t)
	forEachCluster(t, func(t *testing.T, brokers []string) {
		schema := testSchema(t, db)
		topic := createTopic(t, brokers, 2)
		rc := runnerConfig(schema, topic)

		// Partition 0 gets p0-00..09, partition 1 gets p1-00..09.
		var recs []*kgo.Record
		for p := range int32(2) {
			for i := range 10 {
				v := fmt.Sprintf("p%d-%02d", p, i)
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)})
			}
		}
		cl := newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		ctx := context.Background()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("producing: %v", err)
		}

		storeOffset(t, db, rc, topic, 0, 7)
		var kafkaOffsets kadm.Offsets
		kafkaOffsets.AddOffset(topic, 0, 2, -1)
		kafkaOffsets.AddOffset(topic, 1, 5, -1)
		if _, err := kadm.NewClient(cl).CommitOffsets(ctx, rc.Group, kafkaOffsets); err != nil {
			t.Fatalf("committing decoy offsets to kafka: %v", err)
		}

		s := startRunner(t, newRunner(t, brokers, db, rc, logHandler(schema)))
		waitCaughtUp(t, s.r)
		s.stop()

		want := []string{"p0-07", "p0-08", "p0-09"}
		for i := range 10 {
			want = append(want, fmt.Sprintf("p1-%02d", i))
		}
		if diff := cmp.Diff(want, seenValues(t, db, schema)); diff != "" {
			t.Errorf("records applied (-want +got):\n%s", diff)
		}
	})
}

// storeOffset writes a stored offset as an earlier run would have.
func storeOffset(
	t testing.TB, db *pgxpool.Pool, rc kafka.RunnerConfig, topic string, p int32, next int64,
) {
	t.Helper()
	ctx := context.Background()
	sql := fmt.Sprintf(`CREATE TABLE %s (
	consumer_group text, topic text, partition integer, next_offset bigint,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (consumer_group, topic, partition))`, rc.OffsetsTable)
	if _, err := db.Exec(ctx, sql); err != nil {
		t.Fatalf("creating offsets table: %v", err)
	}
	_, err := db.Exec(ctx,
		"INSERT INTO "+rc.OffsetsTable+" (consumer_group, topic, partition, next_offset) "+
			"VALUES ($1, $2, $3, $4)", rc.Group, topic, p, next)
	if err != nil {
		t.Fatalf("storing offset: %v", err)
	}
}

// TestRunnerDeadLetters rejects some records and checks that they reach
// the dead-letter topic intact, with the reason and origin in headers,
// while the others are applied.
func TestRunnerDeadLetters(t *testing.T) {
	db := testDB(t)
	forEachCluster(t, func(t *testing.T, brokers []string) {
		schema := testSchema(t, db)
		topic := createTopic(t, brokers, 3)
		dlq := createTopic(t, brokers, 1)
		rc := runnerConfig(schema, topic)
		rc.DLQTopic = dlq

		// Old records: their dead letters must still be sent in time.
		old := time.Now().Add(-time.Hour)
		var recs []*kgo.Record
		for i := range 40 {
			v := fmt.Sprintf("good-%02d", i)
			if i%10 == 3 {
				v = fmt.Sprintf("bad-%02d", i)
			}
			recs = append(recs, &kgo.Record{
				Topic: topic, Key: []byte("k" + v), Value: []byte(v), Timestamp: old,
				Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}},
			})
		}
		err := newClient(t, brokers).ProduceSync(context.Background(), recs...).FirstErr()
		if err != nil {
			t.Fatalf("producing: %v", err)
		}

		reg := prometheus.NewRegistry()
		h := rejectingHandler(schema, "bad-")
		s := startRunner(t, newRunner(t, brokers, db, rc, h, kafka.WithRegisterer(reg)))
		waitCaughtUp(t, s.r)
		s.stop()

		if got := len(seenValues(t, db, schema)); got != 36 {
			t.Errorf("applied %d records, want 36", got)
		}
		checkDeadLetters(t, brokers, dlq, topic, rc.Group)
		rejected := metricSum(t, reg, "costplane_kafka_rejected_records_total",
			map[string]string{"group": rc.Group, "topic": topic})
		if rejected != 4 {
			t.Errorf("rejected metric = %v, want 4", rejected)
		}
	})
}

// rejectingHandler logs records like logHandler but rejects those whose
// value starts with prefix.
func rejectingHandler(schema, prefix string) kafka.Handler {
	log := logHandler(schema)
	return func(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) ([]kafka.Reject, error) {
		var good []*kgo.Record
		var rejects []kafka.Reject
		for _, r := range recs {
			if strings.HasPrefix(string(r.Value), prefix) {
				reason := "value: starts with " + prefix
				rejects = append(rejects, kafka.Reject{Record: r, Reason: reason})
				continue
			}
			good = append(good, r)
		}
		if len(good) == 0 {
			return rejects, nil
		}
		_, err := log(ctx, tx, good)
		return rejects, err
	}
}

func checkDeadLetters(t *testing.T, brokers []string, dlq, topic, group string) {
	t.Helper()
	cl := newClient(t, brokers,
		kgo.ConsumeTopics(dlq),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var got []*kgo.Record
	for len(got) < 4 && ctx.Err() == nil {
		got = append(got, cl.PollFetches(ctx).Records()...)
	}
	if len(got) != 4 {
		t.Fatalf("dead-letter topic holds %d records, want 4", len(got))
	}

	for _, r := range got {
		v := string(r.Value)
		want := map[string]string{
			"origin":                       "test",
			kafka.HeaderDLQReason:          "value: starts with bad-",
			kafka.HeaderDLQSourceTopic:     topic,
			kafka.HeaderDLQSourcePartition: "",
			kafka.HeaderDLQSourceOffset:    "",
			kafka.HeaderDLQConsumer:        group,
		}
		have := make(map[string]string)
		for _, h := range r.Headers {
			have[h.Key] = string(h.Value)
		}
		// Partition and offset vary; they must be numbers.
		for _, k := range []string{kafka.HeaderDLQSourcePartition, kafka.HeaderDLQSourceOffset} {
			if _, err := strconv.Atoi(have[k]); err != nil {
				t.Errorf("%s: header %s = %q, want a number", v, k, have[k])
			}
			have[k] = ""
		}
		if diff := cmp.Diff(want, have); diff != "" {
			t.Errorf("%s: headers (-want +got):\n%s", v, diff)
		}
		if !strings.HasPrefix(v, "bad-") || string(r.Key) != "k"+v {
			t.Errorf("dead letter key %q value %q, want a bad- record with its key", r.Key, v)
		}
	}
}

// TestRunnerRetriesFailedBatches fails the handler a few times: the
// records must be applied once each, none skipped.
func TestRunnerRetriesFailedBatches(t *testing.T) {
	db := testDB(t)
	forEachCluster(t, func(t *testing.T, brokers []string) {
		schema := testSchema(t, db)
		topic := createTopic(t, brokers, 3)
		rc := runnerConfig(schema, topic)
		want := values("v", 300)
		produceValues(t, brokers, topic, want)

		var calls atomic.Int32
		log := logHandler(schema)
		h := func(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) ([]kafka.Reject, error) {
			// Write first, then fail: the rollback must undo the write.
			if _, err := log(ctx, tx, recs); err != nil {
				return nil, err
			}
			if calls.Add(1) <= 3 {
				return nil, errors.New("simulated failure")
			}
			return nil, nil
		}
		reg := prometheus.NewRegistry()
		s := startRunner(t, newRunner(t, brokers, db, rc, h, kafka.WithRegisterer(reg)))
		waitCaughtUp(t, s.r)
		s.stop()

		if diff := cmp.Diff(want, seenValues(t, db, schema)); diff != "" {
			t.Errorf("records applied (-want +got):\n%s", diff)
		}
		failed := metricSum(t, reg, "costplane_kafka_batches_total",
			map[string]string{"group": rc.Group, "result": "failed"})
		if failed != 3 {
			t.Errorf("failed batches metric = %v, want 3", failed)
		}
	})
}

// TestRunnerRebalance runs two members of one group, adds the second while
// the first works and stops the first while the second works. Every
// record must be applied exactly once, and both members must have
// committed batches.
func TestRunnerRebalance(t *testing.T) {
	db := testDB(t)
	forEachCluster(t, func(t *testing.T, brokers []string) {
		schema := testSchema(t, db)
		topic := createTopic(t, brokers, 6)
		rc := runnerConfig(schema, topic)

		var commits [2]atomic.Int64
		member := func(i int) *started {
			count := kafka.WithOnCommit(func(c kafka.Commit) { commits[i].Add(int64(c.Records)) })
			return startRunner(t, newRunner(t, brokers, db, rc, logHandler(schema), count))
		}

		var want []string
		produce := func(prefix string) {
			vs := values(prefix, 300)
			produceValues(t, brokers, topic, vs)
			want = append(want, vs...)
		}

		a := member(0)
		produce("a")
		waitCaughtUp(t, a.r)

		b := member(1)
		for i := range 5 {
			produce(fmt.Sprintf("b%d", i))
			time.Sleep(200 * time.Millisecond)
		}
		waitCaughtUp(t, b.r)
		a.stop()

		produce("c")
		waitCaughtUp(t, b.r)
		b.stop()

		slices.Sort(want)
		if diff := cmp.Diff(want, seenValues(t, db, schema)); diff != "" {
			t.Errorf("records applied (-want +got):\n%s", diff)
		}
		if commits[0].Load() == 0 || commits[1].Load() == 0 {
			t.Errorf("records committed per member = %d, %d; want both > 0",
				commits[0].Load(), commits[1].Load())
		}
	})
}

// TestRunnerFenced plays a second member that stores an offset for a
// partition while the runner holds a batch of it. The runner's batch must
// be dropped, and it must continue from the other member's offset.
func TestRunnerFenced(t *testing.T) {
	db := testDB(t)
	forEachCluster(t, func(t *testing.T, brokers []string) {
		schema := testSchema(t, db)
		topic := createTopic(t, brokers, 1)
		rc := runnerConfig(schema, topic)
		produceValues(t, brokers, topic, values("v", 100))

		var fenced atomic.Bool
		log := logHandler(schema)
		h := func(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) ([]kafka.Reject, error) {
			if fenced.CompareAndSwap(false, true) {
				// Another member, in its own transaction, got to
				// offset 60 first.
				_, err := db.Exec(ctx, "INSERT INTO "+rc.OffsetsTable+
					" (consumer_group, topic, partition, next_offset) VALUES ($1, $2, 0, 60)",
					rc.Group, topic)
				if err != nil {
					return nil, err
				}
			}
			return log(ctx, tx, recs)
		}
		reg := prometheus.NewRegistry()
		s := startRunner(t, newRunner(t, brokers, db, rc, h, kafka.WithRegisterer(reg)))
		waitCaughtUp(t, s.r)
		s.stop()

		// Values are keyed by themselves onto one partition, so their
		// order is the produce order: v-00060 is at offset 60.
		want := values("v", 100)[60:]
		if diff := cmp.Diff(want, seenValues(t, db, schema)); diff != "" {
			t.Errorf("records applied (-want +got):\n%s", diff)
		}
		n := metricSum(t, reg, "costplane_kafka_batches_total",
			map[string]string{"group": rc.Group, "result": "fenced"})
		if n != 1 {
			t.Errorf("fenced batches metric = %v, want 1", n)
		}
	})
}

// TestRunnerReadCommitted writes an aborted and a committed transaction:
// only the committed records are applied, and the runner still catches up
// past the transaction markers.
func TestRunnerReadCommitted(t *testing.T) {
	db := testDB(t)
	forEachCluster(t, func(t *testing.T, brokers []string) {
		schema := testSchema(t, db)
		topic := createTopic(t, brokers, 2)
		rc := runnerConfig(schema, topic)

		txnProduce(t, brokers, topic, values("aborted", 20), kgo.TryAbort)
		txnProduce(t, brokers, topic, values("committed", 20), kgo.TryCommit)

		s := startRunner(t, newRunner(t, brokers, db, rc, logHandler(schema)))
		waitCaughtUp(t, s.r)
		s.stop()

		if diff := cmp.Diff(values("committed", 20), seenValues(t, db, schema)); diff != "" {
			t.Errorf("records applied (-want +got):\n%s", diff)
		}
	})
}

func txnProduce(
	t testing.TB, brokers []string, topic string, vs []string, end kgo.TransactionEndTry,
) {
	t.Helper()
	cl := newClient(t, brokers, kgo.TransactionalID(unique("test-txn")))
	ctx := context.Background()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("beginning transaction: %v", err)
	}
	recs := make([]*kgo.Record, len(vs))
	for i, v := range vs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing in transaction: %v", err)
	}
	if err := cl.EndTransaction(ctx, end); err != nil {
		t.Fatalf("ending transaction: %v", err)
	}
}

// TestRunnerSurvivesPostgresDisconnects terminates the runner's database
// connections again and again while it works, as a failover or a network
// cut would: no record may be lost or applied twice.
func TestRunnerSurvivesPostgresDisconnects(t *testing.T) {
	admin := testDB(t)
	forEachCluster(t, func(t *testing.T, brokers []string) {
		schema := testSchema(t, admin)
		topic := createTopic(t, brokers, 3)
		rc := runnerConfig(schema, topic)
		want := values("v", 3000)
		produceValues(t, brokers, topic, want)

		app := unique("runner")
		db := appDB(t, app)
		log := logHandler(schema)
		slow := func(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) ([]kafka.Reject, error) {
			time.Sleep(5 * time.Millisecond) // so that kills land mid-batch
			return log(ctx, tx, recs)
		}
		reg := prometheus.NewRegistry()
		s := startRunner(t, newRunner(t, brokers, db, rc, slow, kafka.WithRegisterer(reg)))

		// Keep cutting the consumer's connections until some batch has
		// failed mid-way: how soon the group starts consuming depends on
		// the broker and the machine's load, so a fixed number of kills
		// may all land before the first batch.
		failedBatches := func() float64 {
			return metricSum(t, reg, "costplane_kafka_batches_total",
				map[string]string{"group": rc.Group, "result": "failed"})
		}
		var kills int64
		deadline := time.Now().Add(30 * time.Second)
		for failedBatches() < 3 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			var n int64
			err := admin.QueryRow(context.Background(),
				`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE application_name = $1`, app).Scan(&n)
			if err != nil {
				t.Fatalf("terminating connections: %v", err)
			}
			kills += n
		}
		waitCaughtUp(t, s.r)
		s.stop()

		failed := failedBatches()
		t.Logf("terminated %d connections, %v batches failed", kills, failed)
		if failed == 0 {
			t.Errorf("no batch failed; the test proved nothing")
		}
		if diff := cmp.Diff(want, seenValues(t, admin, schema)); diff != "" {
			t.Errorf("records applied (-want +got):\n%s", diff)
		}
	})
}

// appDB opens a pool whose connections carry application_name app, so
// that a test can find and terminate them.
func appDB(t testing.TB, app string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		t.Fatalf("parsing DATABASE_URL: %v", err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	db, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// TestRunnerSurvivesBrokerRestart stops the broker while the runner works
// and starts it again on the same port and data: the runner must log,
// back off, and carry on, with no record lost or applied twice.
func TestRunnerSurvivesBrokerRestart(t *testing.T) {
	db := testDB(t)
	dir := t.TempDir()
	port := freePort(t)
	broker := restartableFake(t, dir, port)
	brokers := broker.ListenAddrs()

	schema := testSchema(t, db)
	topic := createTopic(t, brokers, 3)
	rc := runnerConfig(schema, topic)
	first := values("a", 500)
	produceValues(t, brokers, topic, first)

	s := startRunner(t, newRunner(t, brokers, db, rc, logHandler(schema)))
	waitCaughtUp(t, s.r)

	broker.Close()
	time.Sleep(2 * time.Second) // the runner sees fetch errors meanwhile
	broker = restartableFake(t, dir, port)
	second := values("b", 500)
	produceValues(t, brokers, topic, second)
	waitCaughtUp(t, s.r)
	s.stop()

	if diff := cmp.Diff(append(first, second...), seenValues(t, db, schema)); diff != "" {
		t.Errorf("records applied (-want +got):\n%s", diff)
	}
}

func restartableFake(t *testing.T, dir string, port int) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
