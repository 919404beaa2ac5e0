package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
)

// forwardHandler maps every record v to "out-v" on topic out, rejects the
// values starting with "bad", and fails its first failures calls.
func forwardHandler(out string, failures int32) kafka.TxnHandler {
	var calls atomic.Int32
	return func(_ context.Context, recs []*kgo.Record) ([]*kgo.Record, []kafka.Reject, error) {
		if calls.Add(1) <= failures {
			return nil, nil, errors.New("simulated failure")
		}
		var res []*kgo.Record
		var rejects []kafka.Reject
		for _, r := range recs {
			if strings.HasPrefix(string(r.Value), "bad") {
				rejects = append(rejects, kafka.Reject{Record: r, Reason: "value: bad"})
				continue
			}
			v := append([]byte("out-"), r.Value...)
			res = append(res, &kgo.Record{Topic: out, Key: r.Key, Value: v})
		}
		return res, rejects, nil
	}
}

func newTxnRunner(
	t testing.TB, brokers []string, rc kafka.TxnRunnerConfig, h kafka.TxnHandler,
	opts ...kafka.Option,
) *kafka.TxnRunner {
	t.Helper()
	opts = append(opts, kafka.WithClientOpts(kgo.FetchMaxWait(200*time.Millisecond)))
	r, err := kafka.NewTxnRunner(testConfig(brokers), rc, h, opts...)
	if err != nil {
		t.Fatalf("NewTxnRunner: %v", err)
	}
	return r
}

// runInBackground runs fn until the returned stop is called.
func runInBackground(t testing.TB, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()

	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestTxnRunnerExactlyOnce(t *testing.T) {
	forEachCluster(t, func(t *testing.T, brokers []string) {
		in := createTopic(t, brokers, 3)
		out := createTopic(t, brokers, 3)
		dlq := createTopic(t, brokers, 1)
		rc := kafka.TxnRunnerConfig{
			Group: unique("test-txn-group"), Topics: []string{in},
			TransactionalID: unique("test-txn"), DLQTopic: dlq,
		}

		first := append(values("a", 200), values("bad", 5)...)
		produceValues(t, brokers, in, first)
		reg := prometheus.NewRegistry()
		r := newTxnRunner(t, brokers, rc, forwardHandler(out, 2), kafka.WithRegisterer(reg))
		stop := runInBackground(t, r.Run)
		readExactly(t, brokers, out, 200)
		stop()

		// A new incarnation with the same transactional id resumes
		// from the offsets committed in the transactions.
		second := values("b", 200)
		produceValues(t, brokers, in, second)
		r = newTxnRunner(t, brokers, rc, forwardHandler(out, 0))
		stop = runInBackground(t, r.Run)
		got := readExactly(t, brokers, out, 400)
		stop()

		var want []string
		for _, v := range append(values("a", 200), second...) {
			want = append(want, "out-"+v)
		}
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("output records (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(values("bad", 5), readExactly(t, brokers, dlq, 5)); diff != "" {
			t.Errorf("dead letters (-want +got):\n%s", diff)
		}
		failed := metricSum(t, reg, "costplane_kafka_batches_total",
			map[string]string{"group": rc.Group, "result": "failed"})
		if failed != 2 {
			t.Errorf("failed batches metric = %v, want 2", failed)
		}
	})
}

func TestTxnRunnerRebalance(t *testing.T) {
	forEachCluster(t, func(t *testing.T, brokers []string) {
		in := createTopic(t, brokers, 6)
		out := createTopic(t, brokers, 3)
		group := unique("test-txn-group")
		member := func() func() {
			rc := kafka.TxnRunnerConfig{
				Group: group, Topics: []string{in}, TransactionalID: unique("test-txn"),
			}
			return runInBackground(t, newTxnRunner(t, brokers, rc, forwardHandler(out, 0)).Run)
		}

		var want []string
		produce := func(prefix string) {
			vs := values(prefix, 200)
			produceValues(t, brokers, in, vs)
			for _, v := range vs {
				want = append(want, "out-"+v)
			}
		}

		stopA := member()
		produce("a")
		readExactly(t, brokers, out, len(want))

		stopB := member()
		for i := range 5 {
			produce(fmt.Sprintf("b%d", i))
			time.Sleep(200 * time.Millisecond)
		}
		readExactly(t, brokers, out, len(want))
		stopA()

		produce("c")
		got := readExactly(t, brokers, out, len(want))
		stopB()

		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("output records (-want +got):\n%s", diff)
		}
	})
}

// readExactly reads topic from the start with read_committed until it has
// n records, then keeps reading for a second so that extra records, such
// as duplicates, show. It returns the values sorted.
func readExactly(t testing.TB, brokers []string, topic string, n int) []string {
	t.Helper()
	cl := newClient(t, brokers,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond))

	var got []string
	poll := func(timeout time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		poll(time.Until(deadline))
	}
	if len(got) < n {
		t.Fatalf("read %d of %d records of %s before timing out", len(got), n, topic)
	}
	for extra := time.Now().Add(time.Second); time.Now().Before(extra); {
		poll(time.Until(extra))
	}

	slices.Sort(got)
	return got
}
