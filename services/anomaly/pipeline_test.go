package anomaly_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	anomalyv1 "github.com/costplane/costplane/proto/gen/go/costplane/anomaly/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// priced is one priced model call of its own run, as pricing publishes it.
func priced(tenant, id string, at time.Time, model string, cost int64) *eventv1.PricedUsage {
	return &eventv1.PricedUsage{
		PricedId: id,
		Usage: &eventv1.UsageEvent{
			EventId: id, TenantId: tenant, RunId: "run-" + id, Provider: "openai", Model: model,
			Project: "p1", App: "support", StepKind: eventv1.StepKind_STEP_KIND_LLM,
			StartTime: timestamppb.New(at.Add(-time.Second)), EndTime: timestamppb.New(at),
			Quantities: []*eventv1.Quantity{{Kind: eventv1.QuantityKind_QUANTITY_KIND_INPUT,
				Unit: eventv1.Unit_UNIT_TOKENS, Amount: 100}},
		},
		EffectiveCost: &eventv1.Money{CurrencyCode: "USD", Nanos: cost},
		PricingStatus: eventv1.PricingStatus_PRICING_STATUS_PRICED,
	}
}

// seriesSum returns the stored spend of a series at one resolution.
func (e *env) seriesSum(res, tenant, key string) (cost, buckets int64) {
	e.t.Helper()
	err := e.pool.QueryRow(context.Background(), fmt.Sprintf(`SELECT coalesce(sum(cost_nanos), 0),
		count(*) FROM anomaly.series_%s WHERE tenant_id = $1 AND series_key = $2`, res),
		tenant, key).Scan(&cost, &buckets)
	if err != nil {
		e.t.Fatalf("reading series: %v", err)
	}
	return cost, buckets
}

func TestSeriesSurviveRestartAndNewModelAlerts(t *testing.T) {
	forEachCluster(t, func(t *testing.T, brokers []string) {
		e := newEnv(t, brokers)
		// Scopes mature after two hours, and spend is new for one: the
		// defaults (a week, a day) scaled down.
		e.cfg.NewSpendMinAge, e.cfg.NewSpendWindow = 2*time.Hour, time.Hour
		_, stop := e.start()
		tenant := unique("tenant")
		start := time.Now().Add(-6 * time.Hour).Truncate(time.Hour)

		// Two hours of gpt-4o, one call every ten minutes: twelve
		// 5-minute buckets in two hourly ones.
		var want int64
		for i := range 12 {
			at := start.Add(time.Duration(i) * 10 * time.Minute)
			e.produce(priced(tenant, fmt.Sprintf("a%02d", i), at, "gpt-4o", usd/2))
			want += usd / 2
		}
		e.settle()
		stop()

		// After a restart, more spend lands in the same buckets, and a
		// model the tenant never used appears four hours later.
		_, _ = e.start()
		for i := range 12 {
			at := start.Add(time.Duration(i)*10*time.Minute + time.Second)
			e.produce(priced(tenant, fmt.Sprintf("b%02d", i), at, "gpt-4o", usd/4))
			want += usd / 4
		}
		for i := range 3 {
			at := start.Add(4*time.Hour + time.Duration(i)*time.Minute)
			e.produce(priced(tenant, fmt.Sprintf("c%02d", i), at, "o3", usd/2))
			want += usd / 2
		}
		e.settle()

		checks := []struct {
			res, key     string
			cost, points int64
		}{
			{"5m", "", want, 12 + 1},
			{"1h", "", want, 2 + 1},
			{"5m", "model=gpt-4o", want - 3*usd/2, 12},
			{"1h", "model=o3", 3 * usd / 2, 1},
		}
		for _, c := range checks {
			cost, points := e.seriesSum(c.res, tenant, c.key)
			if cost != c.cost || points != c.points {
				t.Errorf("series %q at %s: %d nanos in %d buckets, want %d in %d", c.key, c.res,
					cost, points, c.cost, c.points)
			}
		}

		got := e.alerts(60*time.Second, func(as []*eventv1.Anomaly) bool {
			for _, a := range as {
				if a.GetKind() == eventv1.AnomalyKind_ANOMALY_KIND_NEW_SPEND {
					return true
				}
			}
			return false
		})
		var news []*eventv1.Anomaly
		for _, a := range got {
			if a.GetKind() == eventv1.AnomalyKind_ANOMALY_KIND_NEW_SPEND && a.GetTenantId() == tenant {
				news = append(news, a)
			}
		}
		// New to the whole tenant, it alerts once, at the tenant, not
		// again in its project and app.
		if len(news) != 1 {
			t.Fatalf("new-spend alerts: %v, want one", summaries(news))
		}
		wantScope := map[string]string{"model": "o3", "provider": "openai"}
		if diff := cmp.Diff(wantScope, news[0].GetScope().GetDimensions()); diff != "" {
			t.Errorf("new-spend scope (-want +got):\n%s", diff)
		}
		if n := news[0].GetActual().GetNanos(); n < usd {
			t.Errorf("new-spend actual %d, want at least the 1 USD floor", n)
		}
	})
}

func TestSpendSpikeThroughThePipeline(t *testing.T) {
	forEachCluster(t, func(t *testing.T, brokers []string) {
		e := newEnv(t, brokers)
		svc, _ := e.start()
		tenant := unique("tenant")
		_, err := svc.UpdateAnomalySettings(as(tenant), &anomalyv1.UpdateAnomalySettingsRequest{
			Settings: &anomalyv1.AnomalySettings{
				DimensionSets: []*anomalyv1.DimensionSet{{}}, // the tenant's total only
			}})
		if err != nil {
			t.Fatalf("UpdateAnomalySettings: %v", err)
		}

		// Nine days of spend every ten minutes, busier by day, then an
		// hour at six times the usual rate, then an ordinary half hour
		// that carries the watermark past it.
		end := time.Now().Truncate(time.Hour).Add(-2 * time.Hour)
		spikeAt := end.Add(-time.Hour)
		var evs []*eventv1.PricedUsage
		last := end.Add(30 * time.Minute)
		for at := end.Add(-9 * 24 * time.Hour); at.Before(last); at = at.Add(10 * time.Minute) {
			h := float64(at.Hour())
			cost := usd * (1 + math.Sin(h/24*2*math.Pi)) * (1 + 0.03*math.Sin(float64(at.Unix())))
			if !at.Before(spikeAt) && at.Before(end) {
				cost *= 6
			}
			evs = append(evs, priced(tenant, fmt.Sprintf("e%d", at.Unix()), at, "gpt-4o",
				int64(cost)))
		}
		for i := 0; i < len(evs); i += 500 {
			e.produce(evs[i:min(i+500, len(evs))]...)
		}
		e.settle()

		got := e.alerts(90*time.Second, func(as []*eventv1.Anomaly) bool {
			return slices.ContainsFunc(as, func(a *eventv1.Anomaly) bool {
				return a.GetKind() == eventv1.AnomalyKind_ANOMALY_KIND_SPEND_SPIKE
			})
		})
		var spikes []*eventv1.Anomaly
		for _, a := range got {
			if a.GetKind() == eventv1.AnomalyKind_ANOMALY_KIND_SPEND_SPIKE {
				spikes = append(spikes, a)
			}
		}
		first := spikes[0]
		ws, we := first.GetWindowStart().AsTime(), first.GetWindowEnd().AsTime()
		if ws.Before(spikeAt.Add(-time.Hour)) || we.After(end.Add(time.Hour)) {
			t.Errorf("spike alert window %s..%s, want around the spike hour %s", ws, we, spikeAt)
		}
		if len(first.GetScope().GetDimensions()) != 0 {
			t.Errorf("spike scope %v, want the tenant's total", first.GetScope().GetDimensions())
		}
		// The first revision may come from a boundary whose hour holds
		// only the start of the spike; it is over its expectation by the
		// relative threshold at least.
		if a, x := first.GetActual().GetNanos(), first.GetExpected().GetNanos(); 2*a < 3*x {
			t.Errorf("spike actual %d, expected %d: want at least 1.5 times", a, x)
		}
		for _, s := range spikes {
			if s.GetAnomalyId() != first.GetAnomalyId() {
				t.Errorf("a second spike episode %s: %s", s.GetAnomalyId(), s.GetSummary())
			}
		}
	})
}
