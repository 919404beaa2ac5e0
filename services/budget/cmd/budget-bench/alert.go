package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/services/budget/internal/loadtest"
)

// benchAlert creates one budget per crossing, then produces, one by one
// and alert-gap apart, an event that takes each budget past its 100 %
// threshold, among background events that cross nothing. A crossing's
// latency runs from Kafka's acknowledgement of its event to the alert's
// arrival at a reader of the alert topic.
func benchAlert(ctx context.Context, r *rig, o options) error {
	for i := range o.alerts {
		b := &budgetv1.Budget{
			BudgetId: fmt.Sprintf("a-%d", i),
			Scope: &budgetv1.Scope{Filters: []*budgetv1.ScopeFilter{
				{Dimension: "customer", Include: []string{fmt.Sprintf("c-%d", i)}},
			}},
			Amount:    &eventv1.Money{CurrencyCode: "USD", Nanos: 1e9},
			Period:    budgetv1.Period_PERIOD_MONTHLY,
			StartTime: timestamppb.New(time.Now().UTC().AddDate(0, 0, -1)),
			Thresholds: []*budgetv1.Threshold{
				{Kind: eventv1.BudgetThresholdKind_BUDGET_THRESHOLD_KIND_ACTUAL, BasisPoints: 10000},
			},
		}
		if _, err := r.client.CreateBudget(r.authed(ctx),
			&budgetv1.CreateBudgetRequest{Budget: b}); err != nil {
			return fmt.Errorf("creating budget %d: %w", i, err)
		}
	}

	reader, err := kafka.NewClient(r.kcfg, kgo.ConsumeTopics(r.kcfg.Topics.BudgetAlerts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer reader.Close()
	prod, err := kafka.NewProducer(r.kcfg)
	if err != nil {
		return err
	}
	defer prod.Close()

	var (
		mu    sync.Mutex
		acked = make(map[string]time.Time, o.alerts)
		lat   []time.Duration
		dups  int
		seen  = make(map[string]bool)
	)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for rctx.Err() == nil {
			reader.PollFetches(rctx).EachRecord(func(rec *kgo.Record) {
				got := time.Now()
				var a eventv1.BudgetAlert
				if protojson.Unmarshal(rec.Value, &a) != nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if seen[a.GetAlertId()] {
					dups++
					return
				}
				seen[a.GetAlertId()] = true
				if t, ok := acked[a.GetBudgetId()]; ok {
					lat = append(lat, got.Sub(t))
				}
			})
		}
	}()

	fmt.Printf("alert latency: %d crossings, one every %s, on %v\n", o.alerts, o.alertGap,
		r.kcfg.Brokers)
	for i := range o.alerts {
		recs := []*kgo.Record{crossing(r.kcfg.Topics.UsagePriced, i)}
		for j := range 4 {
			recs = append(recs, background(r.kcfg.Topics.UsagePriced, i, j))
		}
		if err := prod.Produce(ctx, recs...); err != nil {
			return err
		}
		mu.Lock()
		acked[fmt.Sprintf("a-%d", i)] = time.Now()
		mu.Unlock()
		time.Sleep(o.alertGap)
	}

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= o.alerts {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // catch duplicates
	stop()
	<-done

	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("alerts received %d of %d, duplicates %d\n", len(lat), o.alerts, dups)
	fmt.Println(loadtest.Summary("latency", lat))
	return nil
}

func crossing(topic string, i int) *kgo.Record {
	return pricedRecord(topic, fmt.Sprintf("cross-%d", i), fmt.Sprintf("c-%d", i), 1_500_000_000)
}

func background(topic string, i, j int) *kgo.Record {
	return pricedRecord(topic, fmt.Sprintf("bg-%d-%d", i, j), "nobody", 10_000_000)
}

func pricedRecord(topic, id, customer string, nanos int64) *kgo.Record {
	pu := &eventv1.PricedUsage{
		PricedId: id,
		Usage: &eventv1.UsageEvent{EventId: id, TenantId: "bench", Provider: "openai",
			Model: "gpt-4o", CustomerId: customer, StartTime: timestamppb.Now()},
		EffectiveCost: &eventv1.Money{CurrencyCode: "USD", Nanos: nanos},
		PricingStatus: eventv1.PricingStatus_PRICING_STATUS_PRICED,
	}
	rec, err := kafka.ProtoRecord(topic, []byte("bench/"+id), pu)
	if err != nil {
		panic(err) // a PricedUsage always encodes
	}
	return rec
}
