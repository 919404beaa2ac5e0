package alert_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/costplane/costplane/libs/pg"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/alert"
	"github.com/costplane/costplane/services/anomaly/internal/finding"
	"github.com/costplane/costplane/services/anomaly/internal/policy"
	"github.com/costplane/costplane/services/anomaly/internal/testdb"
)

const usd = 1_000_000_000

var now = time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)

// runaway is a runaway-run finding of run in tenant, of cost actual.
func runaway(tenant, run string, actual int64, sev eventv1.Severity) finding.Finding {
	return finding.Finding{
		Tenant: tenant, Kind: eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN, Pattern: "run=" + run,
		Scope:       map[string]string{"run_id": run, "agent": "resolver"},
		WindowStart: now.Add(-time.Minute), WindowEnd: now, Actual: actual, Expected: usd / 10,
		Currency: "USD", Severity: sev, Runs: []string{run}, Summary: "run " + run,
		Suppression: finding.SuppressionKey{Scope: map[string]string{"agent": "resolver"},
			Measure: finding.MeasureCost},
		Measure: actual,
	}
}

func upsert(t *testing.T, pool *pgxpool.Pool, fs ...finding.Finding) []*eventv1.Anomaly {
	t.Helper()
	var out []*eventv1.Anomaly
	err := pg.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		var err error
		out, err = alert.Upsert(context.Background(), tx, fs, now)
		return err
	})
	if err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	return out
}

// outbox returns the records queued for Kafka, oldest first.
func outbox(t *testing.T, pool *pgxpool.Pool) []*eventv1.Anomaly {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT record_key, payload FROM anomaly.outbox ORDER BY seq`)
	if err != nil {
		t.Fatalf("reading the outbox: %v", err)
	}
	var out []*eventv1.Anomaly
	var key, payload []byte
	_, err = pgx.ForEachRow(rows, []any{&key, &payload}, func() error {
		a := &eventv1.Anomaly{}
		if err := protojson.Unmarshal(payload, a); err != nil {
			return err
		}
		if string(key) != string(alert.RecordKey(a.GetTenantId(), a.GetAnomalyId())) {
			t.Errorf("record key %q for anomaly %s", key, a.GetAnomalyId())
		}
		out = append(out, a)
		return nil
	})
	if err != nil {
		t.Fatalf("reading the outbox: %v", err)
	}
	return out
}

func TestUpsertUpdatesTheSameAnomalyOnlyWhenMaterial(t *testing.T) {
	pool := testdb.New(t)
	first := upsert(t, pool, runaway("t1", "r1", 2*usd, eventv1.Severity_SEVERITY_WARNING))
	if len(first) != 1 {
		t.Fatalf("first detection stored %d anomalies, want 1", len(first))
	}
	a := first[0]
	want := &eventv1.Anomaly{
		AnomalyId: finding.ID("t1", eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN, "run=r1"),
		TenantId:  "t1", Kind: eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN,
		Scope:    &eventv1.Scope{Dimensions: map[string]string{"run_id": "r1", "agent": "resolver"}},
		Actual:   &eventv1.Money{CurrencyCode: "USD", Nanos: 2 * usd},
		Expected: &eventv1.Money{CurrencyCode: "USD", Nanos: usd / 10},
		Severity: eventv1.Severity_SEVERITY_WARNING, Status: eventv1.AlertStatus_ALERT_STATUS_OPEN,
		ExampleRunIds: []string{"r1"}, ExampleSessionIds: []string{}, Summary: "run r1",
		Revision: 1,
	}
	ignoreTimes := protocmp.IgnoreFields(&eventv1.Anomaly{}, "window_start", "window_end",
		"detect_time", "update_time")
	if diff := cmp.Diff(want, a, protocmp.Transform(), ignoreTimes); diff != "" {
		t.Errorf("stored anomaly (-want +got):\n%s", diff)
	}

	// Re-detections: 2.5 USD is no material change, 3 USD is (half as
	// much again), and so is a higher severity.
	steps := []struct {
		actual  int64
		sev     eventv1.Severity
		wantRev int64 // 0: no new revision
	}{
		{5 * usd / 2, eventv1.Severity_SEVERITY_WARNING, 0},
		{3 * usd, eventv1.Severity_SEVERITY_WARNING, 2},
		{3 * usd, eventv1.Severity_SEVERITY_CRITICAL, 3},
		{3 * usd, eventv1.Severity_SEVERITY_WARNING, 0},
	}
	for _, s := range steps {
		got := upsert(t, pool, runaway("t1", "r1", s.actual, s.sev))
		switch {
		case s.wantRev == 0 && len(got) != 0:
			t.Errorf("%d nanos %s: new revision %d, want none", s.actual, s.sev, got[0].Revision)
		case s.wantRev != 0 && (len(got) != 1 || got[0].Revision != s.wantRev ||
			got[0].AnomalyId != a.AnomalyId):
			t.Errorf("%d nanos %s: got %v, want revision %d of %s", s.actual, s.sev, got,
				s.wantRev, a.AnomalyId)
		}
	}

	queued := outbox(t, pool)
	var revs []int64
	for _, q := range queued {
		revs = append(revs, q.GetRevision())
	}
	if diff := cmp.Diff([]int64{1, 2, 3}, revs); diff != "" {
		t.Errorf("revisions queued for Kafka (-want +got):\n%s", diff)
	}

	// The same run in another tenant is another anomaly, and neither
	// tenant sees the other's.
	other := upsert(t, pool, runaway("t2", "r1", 2*usd, eventv1.Severity_SEVERITY_WARNING))
	if len(other) != 1 || other[0].AnomalyId == a.AnomalyId {
		t.Errorf("another tenant's anomaly of the same run: %v", other)
	}
	_, err := alert.Get(context.Background(), pool, "t2", a.AnomalyId)
	if !errors.Is(err, alert.ErrNotFound) {
		t.Errorf("Get of t1's anomaly as t2: %v, want ErrNotFound", err)
	}
}

func setStatus(
	t *testing.T, pool *pgxpool.Pool, id string, to eventv1.AlertStatus,
) (*eventv1.Anomaly, error) {
	t.Helper()
	var a *eventv1.Anomaly
	err := pg.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		var err error
		a, err = alert.SetStatus(context.Background(), tx, "t1", id, to, "note", now)
		return err
	})
	return a, err
}

func TestStatusTransitions(t *testing.T) {
	pool := testdb.New(t)
	a := upsert(t, pool, runaway("t1", "r1", 2*usd, eventv1.Severity_SEVERITY_WARNING))[0]
	const (
		open  = eventv1.AlertStatus_ALERT_STATUS_OPEN
		acked = eventv1.AlertStatus_ALERT_STATUS_ACKNOWLEDGED
		done  = eventv1.AlertStatus_ALERT_STATUS_RESOLVED
	)
	steps := []struct {
		to      eventv1.AlertStatus
		wantErr error
		wantRev int64
	}{
		{acked, nil, 2},
		{acked, nil, 2}, // again: nothing changes
		{done, nil, 3},
		{acked, alert.ErrTransition, 0},
	}
	for _, s := range steps {
		got, err := setStatus(t, pool, a.AnomalyId, s.to)
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("to %s: error %v, want %v", s.to, err, s.wantErr)
		}
		if err == nil && (got.Status != s.to || got.Revision != s.wantRev) {
			t.Errorf("to %s: status %s revision %d, want revision %d", s.to, got.Status,
				got.Revision, s.wantRev)
		}
	}
	if _, err := setStatus(t, pool, "an_missing", acked); !errors.Is(err, alert.ErrNotFound) {
		t.Errorf("unknown anomaly: %v, want ErrNotFound", err)
	}

	// A resolved anomaly that escalates opens again.
	got := upsert(t, pool, runaway("t1", "r1", 2*usd, eventv1.Severity_SEVERITY_CRITICAL))
	if len(got) != 1 || got[0].Status != open {
		t.Errorf("escalation of a resolved anomaly: %v, want it open again", got)
	}
}

func TestFalsePositiveSuppressesThePattern(t *testing.T) {
	pool := testdb.New(t)
	ctx := context.Background()
	a := upsert(t, pool, runaway("t1", "r1", 2*usd, eventv1.Severity_SEVERITY_WARNING))[0]

	var supp alert.Suppression
	err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		var err error
		_, supp, err = alert.MarkFalsePositive(ctx, tx, "t1", a.AnomalyId, "batch job", now)
		return err
	})
	if err != nil {
		t.Fatalf("MarkFalsePositive: %v", err)
	}
	if supp.Limit != 4*usd || supp.Measure != finding.MeasureCost ||
		!supp.ExpireTime.Equal(now.Add(30*24*time.Hour)) {
		t.Errorf("suppression = %+v, want a limit of twice the 2 USD, expiring in 30 days", supp)
	}

	// The false positive itself no longer changes.
	worse := runaway("t1", "r1", 9*usd, eventv1.Severity_SEVERITY_CRITICAL)
	if got := upsert(t, pool, worse); len(got) != 0 {
		t.Errorf("a false positive was updated: %v", got)
	}

	gate := alert.NewGate(policy.NewCache(time.Minute), time.Minute, nil)
	fs := []finding.Finding{
		runaway("t1", "r2", 3*usd, eventv1.Severity_SEVERITY_WARNING),  // same pattern, under
		runaway("t1", "r3", 5*usd, eventv1.Severity_SEVERITY_CRITICAL), // same pattern, over
		runaway("t2", "r4", 3*usd, eventv1.Severity_SEVERITY_WARNING),  // another tenant
	}
	other := runaway("t1", "r5", 3*usd, eventv1.Severity_SEVERITY_WARNING)
	other.Suppression.Scope = map[string]string{"agent": "planner"}
	fs = append(fs, other)
	kept, err := gate.Keep(ctx, pool, fs, now.Add(time.Hour))
	if err != nil {
		t.Fatalf("Keep: %v", err)
	}
	var runs []string
	for _, f := range kept {
		runs = append(runs, f.Runs[0])
	}
	if diff := cmp.Diff([]string{"r3", "r4", "r5"}, runs); diff != "" {
		t.Errorf("findings kept (-want +got):\n%s", diff)
	}

	// Suppressions expire.
	kept, err = alert.NewGate(policy.NewCache(time.Minute), time.Minute, nil).
		Keep(ctx, pool, fs[:1], now.Add(31*24*time.Hour))
	if err != nil || len(kept) != 1 {
		t.Errorf("after expiry kept %v (%v), want the finding", kept, err)
	}
}

func TestMutedFindingsAreDropped(t *testing.T) {
	pool := testdb.New(t)
	ctx := context.Background()
	cache := policy.NewCache(time.Minute)
	cache.Set("t1", policy.Settings{Mutes: []policy.Mute{{
		Kinds: []int32{int32(eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN)},
		Scope: map[string]string{"agent": "resolver"}, Until: now.Add(time.Hour),
	}}}, now)
	gate := alert.NewGate(cache, time.Minute, nil)
	fs := []finding.Finding{runaway("t1", "r1", 2*usd, eventv1.Severity_SEVERITY_CRITICAL)}

	if kept, err := gate.Keep(ctx, pool, fs, now); err != nil || len(kept) != 0 {
		t.Errorf("while muted kept %d findings (%v), want none", len(kept), err)
	}
	if kept, err := gate.Keep(ctx, pool, fs, now.Add(2*time.Hour)); err != nil || len(kept) != 1 {
		t.Errorf("after the mute kept %d findings (%v), want 1", len(kept), err)
	}
}
