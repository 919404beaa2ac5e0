package budget_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/kafka"
)

// spentOf returns a budget's spend in its current period.
func spentOf(ctx context.Context, e *env, id string) (int64, *budgetv1.BudgetStatus, error) {
	st, err := e.client.GetBudgetStatus(ctx, &budgetv1.GetBudgetStatusRequest{BudgetId: id})
	if err != nil {
		return 0, nil, err
	}
	return st.GetStatus().GetSpent().GetNanos(), st.GetStatus(), nil
}

func waitSpent(t *testing.T, ctx context.Context, e *env, id string, want int64) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		got, _, err := spentOf(ctx, e, id)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("spent = %d, want %d", got, want)
		}
		return nil
	})
}

// collectAlerts reads the alert topic until want alerts arrived, then a
// little longer to catch duplicates.
func collectAlerts(t *testing.T, r *alertReader, want int) []*eventv1.BudgetAlert {
	t.Helper()
	var got []*eventv1.BudgetAlert
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		got = append(got, r.read(t, 500*time.Millisecond)...)
	}
	return append(got, r.read(t, 1500*time.Millisecond)...)
}

func thresholdsOf(as []*eventv1.BudgetAlert) []string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s/%s/%d", a.GetBudgetId(),
			a.GetThresholdKind(), a.GetThresholdBasisPoints()))
	}
	slices.Sort(out)
	return out
}

// Spend is counted once whatever duplicates, other tenants, other scopes
// and other currencies arrive; corrections move it; each threshold alerts
// once, and a restarted service neither recounts nor realerts.
func TestSpendAndAlertsExactlyOnce(t *testing.T) {
	forEachBroker(t, func(t *testing.T, brokers []string) {
		e := newEnv(t, brokers)
		e.start(testSettings(), true)
		ctx := e.tenantCtx("acme")
		e.tenantCtx("globex")
		alerts := e.alertReader()

		b := validBudget("team-a")
		b.Thresholds = b.Thresholds[:3] // actual 50, 80, 100 %
		if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b}); err != nil {
			t.Fatal(err)
		}

		day := today()
		a := func(id string, units float64) priced {
			return priced{tenant: "acme", id: id, day: day, nanos: usd(units), project: "a"}
		}
		noise := []priced{
			{tenant: "acme", id: "other-project", day: day, nanos: usd(500), project: "b"},
			{tenant: "globex", id: "other-tenant", day: day, nanos: usd(500), project: "a"},
			{tenant: "acme", id: "other-currency", day: day, nanos: usd(500), project: "a",
				currency: "EUR"},
			{tenant: "acme", id: "before-start", day: day.AddDate(0, 0, -10), nanos: usd(500),
				project: "a"},
		}
		e.produce(append(noise, a("e1", 30), a("e1", 30), a("e2", 25))...)
		e.produceRaw(&kgo.Record{Topic: e.kcfg.Topics.UsagePriced, Value: []byte("garbage")})
		waitSpent(t, ctx, e, "team-a", usd(55))

		correction := a("e3-v2", -10)
		correction.corrects = "e3"
		e.produce(a("e3", 30), correction, a("e4", 30))
		waitSpent(t, ctx, e, "team-a", usd(105))

		got := collectAlerts(t, alerts, 3)
		want := []string{
			"team-a/BUDGET_THRESHOLD_KIND_ACTUAL/10000",
			"team-a/BUDGET_THRESHOLD_KIND_ACTUAL/5000",
			"team-a/BUDGET_THRESHOLD_KIND_ACTUAL/8000",
		}
		if diff := cmp.Diff(want, thresholdsOf(got)); diff != "" {
			t.Fatalf("alerts (-want +got):\n%s", diff)
		}

		// A new member takes over; duplicates of counted records and a new
		// one arrive.
		e.stop(0)
		e.start(testSettings(), true)
		e.produce(a("e4", 30), a("e1", 30), a("e5", 1))
		waitSpent(t, ctx, e, "team-a", usd(106))
		if more := alerts.read(t, 2*time.Second); len(more) > 0 {
			t.Errorf("alerts after the restart: %v, want none", thresholdsOf(more))
		}

		_, st, err := spentOf(ctx, e, "team-a")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.GetAlerts()) != 3 {
			t.Errorf("status lists %d alerts, want 3", len(st.GetAlerts()))
		}
		for _, a := range got {
			if a.GetTenantId() != "acme" || a.GetBudgetAmount().GetNanos() != usd(100) ||
				a.GetScope().GetDimensions()["project"] != "a" || a.GetAlertId() == "" {
				t.Errorf("alert = %v", a)
			}
		}
	})
}

func (e *env) produceRaw(recs ...*kgo.Record) {
	e.t.Helper()
	p, err := kafka.NewProducer(e.kcfg)
	if err != nil {
		e.t.Fatal(err)
	}
	defer p.Close()
	if err := p.Produce(e.ctx, recs...); err != nil {
		e.t.Fatal(err)
	}
}

// Two members share the partitions; one leaves mid-stream and the other
// takes its partitions over. Spend is still counted once and every
// threshold alerts once.
func TestMembersShareAndHandOver(t *testing.T) {
	forEachBroker(t, func(t *testing.T, brokers []string) {
		e := newEnv(t, brokers)
		e.start(testSettings(), true)
		e.start(testSettings(), true)
		ctx := e.tenantCtx("acme")
		alerts := e.alertReader()

		b := validBudget("all")
		b.Scope = nil
		b.Amount.Nanos = usd(200)
		b.Thresholds = nil
		for bp := int32(2500); bp <= 12500; bp += 2500 {
			b.Thresholds = append(b.Thresholds, &budgetv1.Threshold{Kind: actual, BasisPoints: bp})
		}
		if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b}); err != nil {
			t.Fatal(err)
		}

		batch := func(from, n int) []priced {
			var ps []priced
			for i := from; i < from+n; i++ {
				ps = append(ps, priced{tenant: "acme", id: fmt.Sprintf("ev-%d", i), day: today(),
					nanos: usd(0.5), project: fmt.Sprintf("p%d", i%7)})
			}
			return ps
		}
		for i := 0; i < 300; i += 50 {
			e.produce(batch(i, 50)...)
		}
		waitSpent(t, ctx, e, "all", usd(150))

		e.stop(0)
		for i := 300; i < 600; i += 50 {
			e.produce(append(batch(i, 50), batch(i-300, 5)...)...) // with duplicates
		}
		waitSpent(t, ctx, e, "all", usd(300))

		got := collectAlerts(t, alerts, 5)
		var want []string
		for bp := 2500; bp <= 12500; bp += 2500 {
			want = append(want, fmt.Sprintf("all/BUDGET_THRESHOLD_KIND_ACTUAL/%d", bp))
		}
		slices.Sort(want)
		if diff := cmp.Diff(want, thresholdsOf(got)); diff != "" {
			t.Errorf("alerts (-want +got):\n%s", diff)
		}
	})
}

// failOnceSQL makes the first write of a period total fail, after the
// batch has already written its daily spend in the same transaction. The
// sequence is not transactional, so the failure happens once and the
// retry passes.
const failOnceSQL = `
CREATE SEQUENCE budget.test_fail_once;
CREATE FUNCTION budget.test_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('budget.test_fail_once') = 1 THEN
		RAISE EXCEPTION 'injected failure';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER test_fail_once BEFORE INSERT OR UPDATE ON budget.budget_periods
	FOR EACH ROW EXECUTE FUNCTION budget.test_fail_once();`

// Spend is exactly-once in effect through a batch that fails after part
// of its writes, and through a restart after which only the offsets kept
// in PostgreSQL stand between the new member and a recount: the record-id
// memory is wiped first. Repricing corrections move the totals both ways,
// and each threshold alerts once.
func TestExactlyOnceThroughFailureAndRestart(t *testing.T) {
	forEachBroker(t, func(t *testing.T, brokers []string) {
		e := newEnv(t, brokers)
		e.start(testSettings(), true)
		ctx := e.tenantCtx("acme")
		alerts := e.alertReader()

		b := validBudget("team-a")
		b.Thresholds = b.Thresholds[:3] // actual 50, 80, 100 %
		if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(e.ctx, failOnceSQL); err != nil {
			t.Fatal(err)
		}

		day := today()
		a := func(id string, units float64, corrects string) priced {
			return priced{tenant: "acme", id: id, day: day, nanos: usd(units), project: "a",
				corrects: corrects}
		}
		e.produce(a("e1", 30, ""), a("e2", 25, ""), a("e2@v2", -5, "e2"))
		waitSpent(t, ctx, e, "team-a", usd(50))

		var calls int64
		err := e.pool.QueryRow(e.ctx, `SELECT last_value FROM budget.test_fail_once`).Scan(&calls)
		if err != nil || calls < 2 {
			t.Fatalf("injected failure did not happen: %d calls, %v", calls, err)
		}

		e.stop(0)
		if _, err := e.pool.Exec(e.ctx, `DELETE FROM budget.seen_events`); err != nil {
			t.Fatal(err)
		}
		e.start(testSettings(), true)
		e.produce(a("e3", 30, ""), a("e3@v2", 5, "e3"))
		waitSpent(t, ctx, e, "team-a", usd(85))

		got := collectAlerts(t, alerts, 2)
		want := []string{
			"team-a/BUDGET_THRESHOLD_KIND_ACTUAL/5000",
			"team-a/BUDGET_THRESHOLD_KIND_ACTUAL/8000",
		}
		if diff := cmp.Diff(want, thresholdsOf(got)); diff != "" {
			t.Errorf("alerts (-want +got):\n%s", diff)
		}

		// The daily store, which backfills new budgets, agrees: the
		// failed batch left nothing behind.
		later := validBudget("later")
		later.Thresholds = nil
		_, err = e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: later})
		if err != nil {
			t.Fatal(err)
		}
		if spent, _, err := spentOf(ctx, e, "later"); err != nil || spent != usd(85) {
			t.Errorf("backfilled spend = %d, %v; want %d", spent, err, usd(85))
		}
	})
}

// A daily budget alerts once per threshold in each period: the next day's
// crossing is a new alert, while late duplicates of the first day's
// records and its further spend raise nothing more.
func TestAlertsOncePerPeriod(t *testing.T) {
	e := newEnv(t, brokers(t, "kfake"))
	e.start(testSettings(), true)
	ctx := e.tenantCtx("acme")
	alerts := e.alertReader()

	b := validBudget("daily")
	b.Period = budgetv1.Period_PERIOD_DAILY
	b.StartTime = nil // today
	b.Thresholds = []*budgetv1.Threshold{{Kind: actual, BasisPoints: 5000}}
	if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b}); err != nil {
		t.Fatal(err)
	}
	day1 := today()
	ev := func(id string, day time.Time, units float64) priced {
		return priced{tenant: "acme", id: id, day: day, nanos: usd(units), project: "a"}
	}
	e.produce(ev("d1-a", day1, 60), ev("d1-b", day1, 30))
	waitSpent(t, ctx, e, "daily", usd(90))
	first := collectAlerts(t, alerts, 1)

	// The next day: the clock moves on, and the day's spend crosses again.
	e.now.mu.Lock()
	e.now.offset = 24 * time.Hour
	e.now.mu.Unlock()
	day2 := day1.AddDate(0, 0, 1)
	e.produce(ev("d1-a", day1, 60), ev("d1-c", day1, 40), ev("d2-a", day2, 55))
	waitSpent(t, ctx, e, "daily", usd(55))
	second := collectAlerts(t, alerts, 1)

	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("alerts: first day %v, second day %v; want one each",
			thresholdsOf(first), thresholdsOf(second))
	}
	p1, p2 := first[0].GetPeriodStart().AsTime(), second[0].GetPeriodStart().AsTime()
	if !p1.Equal(day1) || !p2.Equal(day2) || first[0].GetAlertId() == second[0].GetAlertId() {
		t.Errorf("periods %s and %s, ids %s and %s; want %s and %s with distinct ids",
			p1, p2, first[0].GetAlertId(), second[0].GetAlertId(), day1, day2)
	}
}
