package ingest_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/fake"
	"github.com/costplane/costplane/services/attribution/internal/ingest"
	"github.com/costplane/costplane/services/attribution/internal/testdb"
)

// partitionDays lists the days that have a raw line partition.
func partitionDays(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
SELECT to_char(to_date(substring(c.relname FROM 7), 'YYYYMMDD'), 'YYYY-MM-DD')
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'attribution.lines'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	days, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return days
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestRetentionDropsOldPartitions stores traces on four days, then runs
// the maintenance with three days of raw and hourly retention: the days
// before today are rolled up, the raw partitions of days wholly before
// the cutoff are dropped, partitions are made ahead, old hourly rollups
// and runs are deleted, and the daily rollups, which long-range queries
// read, keep every nano.
func TestRetentionDropsOldPartitions(t *testing.T) {
	pool := testdb.New(t)
	now := testStart.Add(10*24*time.Hour + 12*time.Hour) // 2026-03-11 12:00
	s := ingest.New(ingest.Config{Now: func() time.Time { return now }},
		slog.New(slog.DiscardHandler))

	var sent []*eventv1.PricedUsage
	for i, day := range []int{0, 5, 8, 10} {
		g := fake.New(fake.Options{Tenant: "acme", Seed: uint64(i + 1),
			Start: testStart.Add(time.Duration(day)*24*time.Hour + time.Hour), Span: time.Hour})
		for range 5 {
			sent = append(sent, g.Trace()...)
			sent = append(sent, g.Call())
		}
	}
	apply(t, pool, s, sent)
	wantBefore := []string{"2026-03-01", "2026-03-06", "2026-03-09", "2026-03-11"}
	if diff := cmp.Diff(wantBefore, partitionDays(t, pool)); diff != "" {
		t.Fatalf("partitions before maintenance (-want +got):\n%s", diff)
	}
	all := rollupTotals(t, pool, "acme", "hour")

	keep := 3 * 24 * time.Hour
	m := ingest.NewMaintainer(pool, ingest.Retention{Raw: keep, Hourly: keep, Runs: keep}, 2,
		slog.New(slog.DiscardHandler))
	if err := m.Maintain(context.Background(), now); err != nil {
		t.Fatalf("Maintain: %v", err)
	}

	// The cutoff is 2026-03-08 00:00: the 1st and the 6th go, the 9th stays;
	// the 10th (yesterday) and the 12th and 13th (ahead) are created.
	wantAfter := []string{"2026-03-09", "2026-03-10", "2026-03-11", "2026-03-12", "2026-03-13"}
	if diff := cmp.Diff(wantAfter, partitionDays(t, pool)); diff != "" {
		t.Errorf("partitions after maintenance (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(all, rollupTotals(t, pool, "acme", "store")); diff != "" {
		t.Errorf("totals changed by roll-up and retention (-before +after):\n%s", diff)
	}
	if n := count(t, pool, `SELECT count(*) FROM attribution.rollup_day
		WHERE bucket >= '2026-03-11'`); n != 0 {
		t.Errorf("today rolled up: %d daily rows", n)
	}
	cutoff := "'" + now.Add(-keep).Format(time.RFC3339) + "'"
	checks := []struct {
		what string
		sql  string
		want int64
	}{
		{"raw lines before the cutoff",
			`SELECT count(*) FROM attribution.lines WHERE day < '2026-03-08'`, 0},
		{"hourly rollups before the cutoff",
			`SELECT count(*) FROM attribution.rollup_hour WHERE bucket < ` + cutoff, 0},
		{"runs ended before the cutoff",
			`SELECT count(*) FROM attribution.runs WHERE end_time < ` + cutoff, 0},
		{"steps ended before the cutoff",
			`SELECT count(*) FROM attribution.steps WHERE end_time < ` + cutoff, 0},
		{"sessions ended before the cutoff",
			`SELECT count(*) FROM attribution.sessions WHERE end_time < ` + cutoff, 0},
		{"runs of the last two days", `SELECT count(*) FROM attribution.runs`, 10},
	}
	for _, c := range checks {
		if got := count(t, pool, c.sql); got != c.want {
			t.Errorf("%s: %d, want %d", c.what, got, c.want)
		}
	}
	if count(t, pool, `SELECT count(*) FROM attribution.lines`) == 0 {
		t.Error("maintenance dropped the raw lines of the kept days")
	}

	// Maintenance is idempotent.
	if err := m.Maintain(context.Background(), now); err != nil {
		t.Fatalf("second Maintain: %v", err)
	}
	if diff := cmp.Diff(wantAfter, partitionDays(t, pool)); diff != "" {
		t.Errorf("partitions after a second round (-want +got):\n%s", diff)
	}
}
