package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
)

const (
	crashEvents = 100_000
	// crashBadEvents are undecodable events mixed in, which the consumer
	// rejects: the dead-letter topic must end with every one of them.
	crashBadEvents = 200
)

// TestRunnerExactlyOnceAcrossSIGKILL is the proof of DESIGN §5 for
// consumers that write PostgreSQL. A consumer process applies 100,000
// events to a table without a unique constraint and is killed with
// SIGKILL five times mid-stream, mostly inside an open transaction, and
// restarted each time. In the end the table must hold every event once,
// the stored offsets must be at the end of every partition, and every
// rejected event must be on the dead-letter topic (repeats allowed).
func TestRunnerExactlyOnceAcrossSIGKILL(t *testing.T) {
	brokers := realBrokers(t)
	db := testDB(t)
	start := time.Now()

	bin := buildCrashConsumer(t)
	topic := createTopic(t, brokers, 6)
	dlq := createTopic(t, brokers, 1)
	schema := unique("crash")
	createEventsTable(t, db, schema)
	wantSum := produceEvents(t, brokers, topic, crashEvents, crashBadEvents)
	t.Logf("produced %d events in %v", crashEvents, time.Since(start).Round(time.Millisecond))

	env := crashEnv(brokers, topic, "pg",
		"CRASH_GROUP="+unique("crash-group"),
		"CRASH_SCHEMA="+schema,
		"KAFKA_TOPIC_USAGE_DLQ="+dlq,
		"DATABASE_URL="+os.Getenv("DATABASE_URL"),
		"KAFKA_MAX_POLL_RECORDS=500",
		"CRASH_BATCH_DELAY=15ms",
	)
	progress := func() (int64, error) {
		var n int64
		err := db.QueryRow(context.Background(), "SELECT count(*) FROM "+schema+".events").Scan(&n)
		return n, err
	}
	kills := killRepeatedly(t, bin, env, progress, crashEvents)

	var count, distinct, sum int64
	err := db.QueryRow(context.Background(),
		"SELECT count(*), count(DISTINCT id), coalesce(sum(value), 0) FROM "+schema+".events",
	).Scan(&count, &distinct, &sum)
	if err != nil {
		t.Fatalf("reading events: %v", err)
	}
	t.Logf("%d kills; rows %d, distinct ids %d, sum %d (want %d); took %v",
		kills, count, distinct, sum, wantSum, time.Since(start).Round(time.Millisecond))
	if count != crashEvents || distinct != crashEvents || sum != wantSum {
		t.Errorf("events table: rows %d, distinct ids %d, sum %d; want %d, %d, %d",
			count, distinct, sum, crashEvents, crashEvents, wantSum)
		logDuplicates(t, db, schema)
	}
	checkStoredOffsets(t, brokers, db, schema, topic)
	checkCrashDeadLetters(t, brokers, dlq)
}

// checkCrashDeadLetters wants every rejected event on the dead-letter
// topic; a kill between the dead letter's ack and the commit repeats it,
// which is allowed.
func checkCrashDeadLetters(t *testing.T, brokers []string, dlq string) {
	t.Helper()
	seen := make(map[string]int)
	for _, r := range readRecords(t, brokers, dlq, crashBadEvents) {
		seen[string(r.Key)]++
	}
	var missing []string
	for i := range crashBadEvents {
		if id := fmt.Sprintf("bad-%06d", i); seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	t.Logf("dead letters: %d distinct of %d rejected", len(seen), crashBadEvents)
	if len(missing) > 0 || len(seen) != crashBadEvents {
		t.Errorf("dead-letter topic: %d distinct keys, missing %v; want all %d",
			len(seen), missing, crashBadEvents)
	}
}

// checkStoredOffsets compares the offsets the runner stored with the end
// of every partition: after the last event, each must point past it.
func checkStoredOffsets(t *testing.T, brokers []string, db *pgxpool.Pool, schema, topic string) {
	t.Helper()
	ends, err := kadm.NewClient(newClient(t, brokers)).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatalf("listing end offsets: %v", err)
	}
	want := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })

	rows, err := db.Query(context.Background(),
		"SELECT partition, next_offset FROM "+schema+".kafka_offsets WHERE topic = $1", topic)
	if err != nil {
		t.Fatalf("reading stored offsets: %v", err)
	}
	got := make(map[int32]int64)
	var (
		p    int32
		next int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&p, &next}, func() error {
		got[p] = next
		return nil
	}); err != nil {
		t.Fatalf("reading stored offsets: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored offsets per partition (-end offsets +stored):\n%s", diff)
	}
}

// TestTxnRunnerExactlyOnceAcrossSIGKILL does the same for the Kafka to
// Kafka stage: the output topic, read with read_committed, must hold every
// event once.
func TestTxnRunnerExactlyOnceAcrossSIGKILL(t *testing.T) {
	brokers := realBrokers(t)
	start := time.Now()
	const n = crashEvents / 2

	bin := buildCrashConsumer(t)
	in := createTopic(t, brokers, 6)
	out := createTopic(t, brokers, 6)
	wantSum := produceEvents(t, brokers, in, n, 0)

	env := crashEnv(brokers, in, "txn",
		"CRASH_GROUP="+unique("crash-group"),
		"CRASH_OUT_TOPIC="+out,
		"CRASH_TXN_ID="+unique("crash-txn"),
		"KAFKA_MAX_POLL_RECORDS=500",
		"CRASH_BATCH_DELAY=15ms",
	)
	adm := kadm.NewClient(newClient(t, brokers))
	progress := func() (int64, error) {
		// Committed output, transaction markers included: close
		// enough to pace the kills.
		ends, err := adm.ListCommittedOffsets(context.Background(), out)
		var total int64
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		return total, err
	}
	kills := killRepeatedly(t, bin, env, progress, n)

	ids := make(map[string]int, n)
	var sum, dups int64
	for _, r := range readRecords(t, brokers, out, n) {
		ids[string(r.Key)]++
		if ids[string(r.Key)] > 1 {
			dups++
		}
		v, _ := strconv.ParseInt(string(r.Value), 10, 64)
		sum += v
	}
	t.Logf("%d kills; distinct ids %d, duplicates %d, sum %d (want %d); took %v",
		kills, len(ids), dups, sum, wantSum, time.Since(start).Round(time.Millisecond))
	if len(ids) != n || dups != 0 || sum != wantSum {
		t.Errorf("output topic: distinct ids %d, duplicates %d, sum %d; want %d, 0, %d",
			len(ids), dups, sum, n, wantSum)
	}
}

func realBrokers(t *testing.T) []string {
	t.Helper()
	b := os.Getenv("KAFKA_BROKERS")
	if b == "" {
		t.Skip("KAFKA_BROKERS is not set")
	}
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	return strings.Split(b, ",")
}

func buildCrashConsumer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "crashconsumer")
	cmd := exec.Command("go", "build", "-o", bin, "./internal/crashconsumer")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building crashconsumer: %v\n%s", err, out)
	}
	return bin
}

func crashEnv(brokers []string, topic, mode string, extra ...string) []string {
	env := append(os.Environ(),
		"KAFKA_BROKERS="+strings.Join(brokers, ","),
		"KAFKA_SESSION_TIMEOUT=6s",
		"CRASH_MODE="+mode,
		"CRASH_TOPIC="+topic,
	)
	return append(env, extra...)
}

func createEventsTable(t *testing.T, db *pgxpool.Pool, schema string) {
	t.Helper()
	// No primary key and no unique index: a duplicate must show.
	sql := fmt.Sprintf(`CREATE SCHEMA %[1]s;
CREATE TABLE %[1]s.events (id text NOT NULL, value bigint NOT NULL, part integer, off bigint)`,
		schema)
	if _, err := db.Exec(context.Background(), sql); err != nil {
		t.Fatalf("creating events table: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
}

// produceEvents writes n events with unique ids and random values through
// the package's Producer, plus bad undecodable ones spread among them,
// and returns the sum of the values.
func produceEvents(t *testing.T, brokers []string, topic string, n, bad int) int64 {
	t.Helper()
	p, err := kafka.NewProducer(testConfig(brokers))
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	defer p.Close()

	var sum int64
	const chunk = 5000
	for i := 0; i < n; i += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for j := i; j < min(i+chunk, n); j++ {
			v := rand.Int64N(1_000_000)
			sum += v
			recs = append(recs, &kgo.Record{
				Topic: topic,
				Key:   fmt.Appendf(nil, "ev-%06d", j),
				Value: strconv.AppendInt(nil, v, 10),
			})
		}
		for j := i * bad / n; j < min(i+chunk, n)*bad/n; j++ {
			recs = append(recs, &kgo.Record{
				Topic: topic, Key: fmt.Appendf(nil, "bad-%06d", j), Value: []byte("NaN"),
			})
		}
		if err := p.Produce(context.Background(), recs...); err != nil {
			t.Fatalf("producing events: %v", err)
		}
	}
	return sum
}

// killRepeatedly runs the consumer, kills it with SIGKILL each time
// progress passes another fifth of total, restarts it, and after the last
// kill lets it finish. It returns the number of kills.
func killRepeatedly(
	t *testing.T, bin string, env []string, progress func() (int64, error), total int64,
) int {
	t.Helper()
	thresholds := []float64{0.1, 0.3, 0.5, 0.7, 0.9}
	var kills int
	for _, f := range thresholds {
		proc := startProcess(t, bin, env)
		waitProgress(t, proc, progress, int64(f*float64(total)))
		// A random extra moment so that kills do not all land at the
		// same point of a batch.
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
		proc.kill(t)
		kills++
		done, _ := progress()
		t.Logf("SIGKILL %d at %d of %d", kills, done, total)
	}

	proc := startProcess(t, bin, env)
	waitProgress(t, proc, progress, total)
	// Let a last batch that might double-apply have its chance.
	time.Sleep(time.Second)
	proc.kill(t)

	return kills
}

type process struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func startProcess(t *testing.T, bin string, env []string) *process {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting crashconsumer: %v", err)
	}
	p := &process{cmd: cmd, out: &out}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return p
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("killing crashconsumer: %v", err)
	}
	_ = p.cmd.Wait() // "signal: killed" is the expected outcome
}

func waitProgress(t *testing.T, p *process, progress func() (int64, error), want int64) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		n, err := progress()
		if err == nil && n >= want {
			return
		}
		if p.cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("progress did not reach %d; consumer output:\n%s", want, tail(p.out.String(), 40))
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(parts[max(0, len(parts)-lines):], "\n")
}

func logDuplicates(t *testing.T, db *pgxpool.Pool, schema string) {
	t.Helper()
	rows, err := db.Query(context.Background(),
		"SELECT id, count(*) FROM "+schema+".events GROUP BY id HAVING count(*) > 1 LIMIT 10")
	if err != nil {
		t.Logf("listing duplicates: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err == nil {
			t.Logf("duplicate id %s: %d rows", id, n)
		}
	}
}

// readRecords reads n records of topic from the start with read_committed,
// then a second more so that extra records show.
func readRecords(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, brokers,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond))

	var got []*kgo.Record
	poll := func(until time.Time) {
		ctx, cancel := context.WithDeadline(context.Background(), until)
		defer cancel()
		got = append(got, cl.PollFetches(ctx).Records()...)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		poll(deadline)
	}
	for extra := time.Now().Add(time.Second); time.Now().Before(extra); {
		poll(extra)
	}
	return got
}
