package store

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/services/anomaly/internal/detect"
	"github.com/costplane/costplane/services/anomaly/internal/testdb"
)

// TestRunLog checks that the open runs read back are those the log's
// entries leave, across changes, closings, a snapshot, partitions, and
// runs stored one a row before the log.
func TestRunLog(t *testing.T) {
	pool := testdb.New(t)
	ctx := context.Background()
	run := func(p int32, key string, cost int64) *detect.Run {
		return &detect.Run{Tenant: "acme", Key: key, Partition: p, Cost: cost,
			Tools: map[string]int64{"search": cost}}
	}
	write := func(entries ...RunLogEntry) {
		t.Helper()
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error { return WriteRunLog(ctx, tx, entries) })
		if err != nil {
			t.Fatal(err)
		}
	}
	load := func() (map[int32][]string, map[int32]int) {
		t.Helper()
		runs, logged, err := LoadRuns(ctx, pool, []int32{0, 1})
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32][]string{}
		for p, rs := range runs {
			for _, r := range rs {
				if r.Partition != p || !r.Persisted() || r.Tools["search"] != r.Cost {
					t.Errorf("run %s read back as %+v", r.Key, r)
				}
				out[p] = append(out[p], fmt.Sprintf("%s=%d", r.Key, r.Cost))
			}
			slices.Sort(out[p])
		}
		return out, logged
	}
	check := func(wantRuns map[int32][]string, wantLogged map[int32]int) {
		t.Helper()
		runs, logged := load()
		if diff := cmp.Diff(wantRuns, runs); diff != "" {
			t.Errorf("open runs (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantLogged, logged); diff != "" {
			t.Errorf("log entries since the snapshot (-want +got):\n%s", diff)
		}
	}

	legacy := run(0, "old", 7)
	_, err := pool.Exec(ctx, `INSERT INTO anomaly.runs (tenant_id, run_key, partition, state,
		last_time) VALUES ('acme', 'old', 0, $1, now())`, legacy.Encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	write(RunLogEntry{Partition: 0, Put: []*detect.Run{run(0, "a", 1), run(0, "b", 2)}},
		RunLogEntry{Partition: 1, Put: []*detect.Run{run(1, "c", 3)}})
	write(RunLogEntry{Partition: 0, Put: []*detect.Run{run(0, "a", 5)},
		Closed: []*detect.Run{run(0, "b", 2)}})
	check(map[int32][]string{0: {"a=5", "old=7"}, 1: {"c=3"}}, map[int32]int{0: 2, 1: 1})

	write(RunLogEntry{Partition: 0, Snapshot: true, Put: []*detect.Run{run(0, "a", 6)}})
	write(RunLogEntry{Partition: 0, Put: []*detect.Run{run(0, "d", 4)}})
	check(map[int32][]string{0: {"a=6", "d=4"}, 1: {"c=3"}}, map[int32]int{0: 2, 1: 1})
}
