package pricer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/internal/testenv"
)

// TestConsumer runs the pricer in a kafka.TxnRunner, as the service does,
// on kfake and on the real broker when KAFKA_BROKERS is set. It needs no
// database: every usage record yields one priced record, and a record
// that does not decode goes to the DLQ with its reason.
func TestConsumer(t *testing.T) {
	testenv.Clusters(t, func(t *testing.T, brokers []string) {
		kcfg := testenv.KafkaConfig(brokers)
		testenv.EnsureTopics(t, kcfg)

		const n = 300
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, testenv.UsageRecord(t, kcfg.Topics.Usage, sonnet("disc", fmt.Sprintf("ev-%03d", i))))
		}
		recs = append(recs, &kgo.Record{Topic: kcfg.Topics.Usage, Key: []byte("x"), Value: []byte("junk")})
		testenv.Produce(t, brokers, recs...)

		rc := kafka.TxnRunnerConfig{
			Group: testenv.Unique("pricing"), Topics: []string{kcfg.Topics.Usage},
			TransactionalID: testenv.Unique("pricing-txn"), DLQTopic: kcfg.Topics.UsageDLQ,
		}
		p := newPricerTo(t, kcfg.Topics.UsagePriced, fakeRates{}, prometheus.NewRegistry())
		r, err := kafka.NewTxnRunner(kcfg, rc, p.Handle,
			kafka.WithClientOpts(kgo.FetchMaxWait(200*time.Millisecond)))
		if err != nil {
			t.Fatalf("NewTxnRunner: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()

		seen := map[string]int{}
		for _, rec := range testenv.ReadAtLeast(t, brokers, kcfg.Topics.UsagePriced, n, time.Second) {
			pu := &eventv1.PricedUsage{}
			if err := kafka.UnmarshalProto(rec, pu); err != nil {
				t.Fatalf("decoding: %v", err)
			}
			seen[pu.GetPricedId()]++
			if pu.GetEffectiveCost().GetNanos() != 18_600_000 {
				t.Errorf("%s costs %d, want 18600000", pu.GetPricedId(), pu.GetEffectiveCost().GetNanos())
			}
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("%s priced %d times", id, c)
			}
		}
		if len(seen) != n {
			t.Errorf("%d events priced, want %d", len(seen), n)
		}
		dlq := testenv.ReadAtLeast(t, brokers, kcfg.Topics.UsageDLQ, 1, 0)
		if reason, _ := kafka.Header(dlq[0], kafka.HeaderDLQReason); reason == "" {
			t.Errorf("dead letter without a reason")
		}
	})
}
