package anomaly_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/finding"
)

const usd = 1_000_000_000

// history returns n ordinary runs of agent resolver in app support, ten
// seconds apart from start, costing about 0.10 USD each.
func history(tenant string, start time.Time, n int) []run {
	runs := make([]run, n)
	for i := range runs {
		cost := int64(3+i%4) * usd / 100
		runs[i] = run{
			tenant: tenant, id: fmt.Sprintf("hist-%03d", i), session: fmt.Sprintf("s-%03d", i),
			app: "support", agent: "resolver", start: start.Add(time.Duration(i) * 10 * time.Second),
			steps: []step{llm(cost, 1000), tool("search_kb"), llm(cost, 1400), tool("get_order")},
		}
	}
	return runs
}

func produceRuns(e *env, runs ...run) {
	for _, r := range runs {
		e.produce(r.events()...)
	}
}

func TestRunawayAndLoopsAlertOnceWhileRunning(t *testing.T) {
	forEachCluster(t, func(t *testing.T, brokers []string) {
		e := newEnv(t, brokers)
		_, stop := e.start()
		tenant := unique("tenant")
		start := time.Now().Add(-time.Hour)
		produceRuns(e, history(tenant, start, 30)...)
		e.settle()

		// The runaway is still running: its agent step has not arrived,
		// so it is judged by its session's agent, else its app.
		at := start.Add(31 * 10 * time.Second)
		runaway := run{tenant: tenant, id: "runaway", session: "s-runaway", app: "support",
			agent: "resolver", start: at}
		for i := range 40 {
			runaway.steps = append(runaway.steps, llm(10*usd/100, int64(2000+100*i)))
		}
		loop := run{tenant: tenant, id: "looping", session: "s-loop", app: "support",
			agent: "resolver", start: at}
		for i := range 12 {
			loop.steps = append(loop.steps, tool("search_kb"), llm(usd/1000, int64(900+50*i)))
		}
		retry := run{tenant: tenant, id: "retrying", session: "s-retry", app: "support",
			agent: "resolver", start: at}
		for range 6 {
			s := llm(0, 0)
			s.failed = true
			retry.steps = append(retry.steps, s)
		}
		stepsOnly := func(r run) []*eventv1.PricedUsage {
			evs := r.events()
			return evs[:len(evs)-1]
		}
		e.produce(stepsOnly(runaway)...)
		e.produce(stepsOnly(loop)...)
		e.produce(stepsOnly(retry)...)

		want := map[eventv1.AnomalyKind]string{
			eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN: "runaway",
			eventv1.AnomalyKind_ANOMALY_KIND_TOOL_LOOP:   "looping",
			eventv1.AnomalyKind_ANOMALY_KIND_RETRY_LOOP:  "retrying",
		}
		got := e.alerts(60*time.Second, func(as []*eventv1.Anomaly) bool {
			return len(firstByKind(as)) >= len(want)
		})
		for kind, runID := range firstByKind(got) {
			if want[kind] != a(runID) {
				t.Errorf("%s alert about run %q, want %q", kind, runID, want[kind])
			}
		}
		for _, an := range got {
			if an.GetKind() == eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN {
				wantID := finding.ID(tenant, an.GetKind(), "run=runaway")
				if an.GetAnomalyId() != wantID {
					t.Errorf("runaway anomaly id = %s, want the stable %s", an.GetAnomalyId(), wantID)
				}
			}
			if an.GetStatus() != eventv1.AlertStatus_ALERT_STATUS_OPEN || an.GetRevision() < 1 {
				t.Errorf("anomaly %s: status %s revision %d, want OPEN and >= 1",
					an.GetAnomalyId(), an.GetStatus(), an.GetRevision())
			}
		}

		// A restart replays nothing twice: more of the runaway continues
		// its anomaly with a higher revision, and no (id, revision)
		// appears twice on the topic.
		stop()
		_, _ = e.start()
		more := runaway
		more.id, more.steps = "runaway", nil
		for i := range 80 {
			more.steps = append(more.steps, llm(10*usd/100, int64(90000+i)))
		}
		evs := more.events()
		for i, ev := range evs {
			ev.PricedId = fmt.Sprintf("runaway-more-%03d", i)
		}
		e.produce(evs...)

		got = e.alerts(60*time.Second, func(as []*eventv1.Anomaly) bool {
			for _, an := range as {
				if an.GetKind() == eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN && an.GetRevision() >= 2 {
					return true
				}
			}
			return false
		})
		t.Logf("after restart: %v", summaries(got))
		seen := map[string]int{}
		for _, an := range got {
			seen[fmt.Sprintf("%s@%d", an.GetAnomalyId(), an.GetRevision())]++
		}
		for k, n := range seen {
			if n > 1 {
				t.Errorf("record %s published %d times, want once", k, n)
			}
		}
		if diff := cmp.Diff(len(seen), len(got)); diff != "" {
			t.Errorf("distinct records mismatch (-want +got):\n%s", diff)
		}
	})
}

// a is the run an alert is about.
func a(runID string) string { return runID }

// firstByKind returns, per kind, the run id of the first alert read.
func firstByKind(as []*eventv1.Anomaly) map[eventv1.AnomalyKind]string {
	out := map[eventv1.AnomalyKind]string{}
	for _, an := range as {
		if _, ok := out[an.GetKind()]; !ok {
			out[an.GetKind()] = an.GetScope().GetDimensions()["run_id"]
		}
	}
	return out
}
