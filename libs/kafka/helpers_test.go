package kafka_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
)

// cluster is a broker the tests run against: always kfake, and the real
// Kafka of KAFKA_BROKERS when it is set.
type cluster struct {
	name    string
	brokers []string
}

func clusters(t *testing.T) []cluster {
	t.Helper()
	out := []cluster{{name: "kfake", brokers: fakeCluster(t)}}
	if b := os.Getenv("KAFKA_BROKERS"); b != "" {
		out = append(out, cluster{name: "kafka", brokers: strings.Split(b, ",")})
	}
	return out
}

// forEachCluster runs fn as a subtest per cluster. The kfake cluster is
// made inside the subtest so that it dies with it.
func forEachCluster(t *testing.T, fn func(t *testing.T, brokers []string)) {
	t.Helper()
	t.Run("kfake", func(t *testing.T) { fn(t, fakeCluster(t)) })
	t.Run("kafka", func(t *testing.T) {
		b := os.Getenv("KAFKA_BROKERS")
		if b == "" {
			t.Skip("KAFKA_BROKERS is not set")
		}
		fn(t, strings.Split(b, ","))
	})
}

func fakeCluster(t testing.TB) []string {
	t.Helper()
	return fakeClusterHandle(t).ListenAddrs()
}

// fakeClusterHandle starts a kfake broker that the test may also close
// early, to play an outage.
func fakeClusterHandle(t testing.TB) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func testConfig(brokers []string) kafka.Config {
	cfg := kafka.DefaultConfig()
	cfg.Brokers = brokers
	cfg.TopicPartitions = 3
	cfg.SessionTimeout = 6 * time.Second
	cfg.MaxPollRecords = 100
	return cfg
}

// unique returns prefix plus a random suffix, valid as a topic, group or
// schema name, so that tests sharing a broker or database never collide.
func unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

func newClient(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kafka.NewClient(testConfig(brokers), opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic of n partitions and waits for its leaders.
func createTopic(t testing.TB, brokers []string, n int32) string {
	t.Helper()
	name := unique("test.topic")
	spec := kafka.TopicSpec{Name: name, Partitions: n, ReplicationFactor: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, newClient(t, brokers), spec); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	return name
}

// produceValues writes one record per value to topic, keyed by the value
// so that they spread over partitions, and waits for the acks.
func produceValues(t testing.TB, brokers []string, topic string, values []string) {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}
	}
	cl := newClient(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return out
}

// testDB connects to DATABASE_URL, skipping the test when it is unset.
func testDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Skip("DATABASE_URL is not set")
	}
	db, err := pg.Connect(context.Background(), url, 8)
	if err != nil {
		t.Fatalf("connecting to postgres: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// testSchema creates a schema of its own for the test, with a table that
// logs every record a handler sees. The table has no unique constraint:
// a record applied twice would show as two rows.
func testSchema(t testing.TB, db *pgxpool.Pool) string {
	t.Helper()
	schema := unique("kt")
	ctx := context.Background()
	sql := fmt.Sprintf(`CREATE SCHEMA %[1]s;
CREATE TABLE %[1]s.seen (
	topic text NOT NULL, part integer NOT NULL, off bigint NOT NULL, value text NOT NULL
)`, schema)
	if _, err := db.Exec(ctx, sql); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	return schema
}

// logHandler is a Handler that copies every record into schema.seen.
func logHandler(schema string) kafka.Handler {
	return func(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) ([]kafka.Reject, error) {
		rows := make([][]any, len(recs))
		for i, r := range recs {
			rows[i] = []any{r.Topic, r.Partition, r.Offset, string(r.Value)}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{schema, "seen"},
			[]string{"topic", "part", "off", "value"}, pgx.CopyFromRows(rows))
		return nil, err
	}
}

// seenValues returns the values in schema.seen, sorted, duplicates kept.
func seenValues(t testing.TB, db *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := db.Query(context.Background(),
		"SELECT value FROM "+schema+".seen ORDER BY value")
	if err != nil {
		t.Fatalf("reading seen: %v", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("reading seen: %v", err)
	}
	return got
}

func runnerConfig(schema, topic string) kafka.RunnerConfig {
	return kafka.RunnerConfig{
		Group:        unique("test-group"),
		Topics:       []string{topic},
		OffsetsTable: schema + ".kafka_offsets",
		DLQTopic:     kafka.TopicUsageDLQ,
	}
}

// started is a Runner running in the background.
type started struct {
	r    *kafka.Runner
	stop func()
}

func startRunner(t testing.TB, r *kafka.Runner) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg  sync.WaitGroup
		err error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		err = r.Run(ctx)
	}()

	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return &started{r: r, stop: stop}
}

// waitCaughtUp waits until r's group has committed every record.
func waitCaughtUp(t testing.TB, r *kafka.Runner) {
	t.Helper()
	eventually(t, 60*time.Second, func() (bool, error) {
		lag, err := r.Lag(context.Background())
		return err == nil && lag == 0, err
	})
}

// eventually polls cond until it holds, failing the test at timeout with
// the last error cond returned.
func eventually(t testing.TB, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v (last error: %v)", timeout, last)
}

// metricSum adds up every series of the named metric whose labels include
// want.
func metricSum(
	t testing.TB, reg *prometheus.Registry, name string, want map[string]string,
) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m.GetLabel(), want) {
				continue
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func hasLabels(pairs []*dto.LabelPair, want map[string]string) bool {
	have := make(map[string]string, len(pairs))
	for _, p := range pairs {
		have[p.GetName()] = p.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
