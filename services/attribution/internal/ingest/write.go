package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/costplane/costplane/services/attribution/internal/dims"
)

// write stores the batch: the raw lines, the corrected statuses, the new
// dimension sets, then every delta through its staging table.
func (b *batch) write(ctx context.Context, tx pgx.Tx) error {
	steps := []struct {
		what string
		do   func(context.Context, pgx.Tx) error
	}{
		{"writing lines", b.writeLines},
		{"updating corrected lines", b.writeStatus},
		{"writing dimension sets", b.writeDims},
		{"writing rollups", b.writeRollups},
		{"writing steps", b.writeSteps},
		{"writing runs", b.writeRuns},
		{"writing sessions", b.writeSessions},
	}
	for _, s := range steps {
		if err := s.do(ctx, tx); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

func (b *batch) writeLines(ctx context.Context, tx pgx.Tx) error {
	rows := make([][]any, 0, len(b.lines))
	for _, l := range b.lines {
		status := int16(l.msg.GetPricingStatus())
		current := status
		if sc, ok := b.status[l.key()]; ok && sc.inBatch == l {
			current = int16(sc.now)
		}
		rows = append(rows, l.row(status, current))
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"attribution", "lines"}, lineColumns,
		pgx.CopyFromRows(rows))
	return err
}

func (l *line) row(status, current int16) []any {
	ev, msg := l.ev, l.msg
	n := len(msg.GetCostLines())
	kinds, amounts := make([]int16, n), make([]int64, n)
	list, eff := make([]int64, n), make([]int64, n)
	for i, cl := range msg.GetCostLines() {
		kinds[i], amounts[i] = int16(cl.GetKind()), cl.GetAmount()
		list[i], eff[i] = cl.GetListCost().GetNanos(), cl.GetEffectiveCost().GetNanos()
	}
	labels := dims.Set{Labels: ev.GetLabels()}
	var end any
	if ev.GetEndTime() != nil {
		end = ev.GetEndTime().AsTime()
	}
	a := ev.GetAgent()
	return []any{
		l.tenant, l.day, l.pricedID, ev.GetEventId(), l.corrects, msg.GetPriceVersion(),
		l.start, end, status, current, l.currency, msg.GetListCost().GetNanos(),
		msg.GetEffectiveCost().GetNanos(), ev.GetRequestCount(), kinds, amounts, list, eff,
		ev.GetProvider(), ev.GetModel(), ev.GetModelVersion(), ev.GetOperation(),
		ev.GetRegion(), ev.GetServiceTier(), ev.GetInferenceProfile(), ev.GetAccount(),
		ev.GetProject(), ev.GetApiKeyId(), ev.GetApp(), a.GetId(), a.GetName(),
		a.GetVersion(), ev.GetSessionId(), l.runID, l.stepID, ev.GetParentStepId(),
		int16(ev.GetStepKind()), ev.GetToolName(), ev.GetCustomerId(), ev.GetUserId(),
		ev.GetEnvironment(), ev.GetSource().GetName(), ev.GetTraceId(), labels.LabelsJSON(),
	}
}

// writeStatus records the pricing status that corrections left on
// original lines stored before the batch.
func (b *batch) writeStatus(ctx context.Context, tx pgx.Tx) error {
	var q pgx.Batch
	for k, sc := range b.status {
		if sc.old >= 0 && sc.inBatch == nil && sc.now != sc.old {
			q.Queue(updateStatusSQL, k.tenant, sc.day, k.pricedID, int16(sc.now))
		}
	}
	if q.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, &q).Close()
}

// writeDims stores the batch's dimension sets that the store lacks. Most
// batches bring few new ones: asking which are stored costs a key each,
// much less than copying and conflicting every set. A set another batch
// adds meanwhile still meets the insert's ON CONFLICT.
func (b *batch) writeDims(ctx context.Context, tx pgx.Tx) error {
	if err := b.dropStoredDims(ctx, tx); err != nil {
		return err
	}
	rows := make([][]any, 0, len(b.dimsets))
	for k, s := range b.dimsets {
		row := make([]any, 0, len(dims.Columns)+2)
		row = append(row, k.tenant, uuid(k.id))
		for _, v := range s.Values() {
			row = append(row, v)
		}
		rows = append(rows, append(row, s.LabelsJSON()))
	}
	return copyThen(ctx, tx, "stage_dims", stageDimsColumns, rows, insertDimsSQL)
}

// dropStoredDims removes from the batch the dimension sets stored already.
func (b *batch) dropStoredDims(ctx context.Context, tx pgx.Tx) error {
	ids := make(map[string][]pgtype.UUID)
	for k := range b.dimsets {
		ids[k.tenant] = append(ids[k.tenant], uuid(k.id))
	}
	var q pgx.Batch
	for tenant, list := range ids {
		q.Queue(storedDimsSQL, tenant, list)
	}
	br := tx.SendBatch(ctx, &q)
	var (
		k  dimsKey
		id pgtype.UUID
	)
	for range ids {
		rows, err := br.Query()
		if err == nil {
			_, err = pgx.ForEachRow(rows, []any{&k.tenant, &id}, func() error {
				k.id = id.Bytes
				delete(b.dimsets, k)
				return nil
			})
		}
		if err != nil {
			_ = br.Close() // the query's error says more
			return fmt.Errorf("finding stored dimension sets: %w", err)
		}
	}
	return br.Close()
}

var stageDimsColumns = append([]string{"tenant_id", "dims_id"}, dims.Columns...)

func uuid(id dims.ID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// writeRollups stages one hourly delta per dimension set, and one daily
// delta for days already rolled up, and upserts the rollup tables from
// them.
func (b *batch) writeRollups(ctx context.Context, tx pgx.Tx) error {
	w, err := lockWatermark(ctx, tx)
	if err != nil {
		return err
	}
	days := make(map[rollupKey]*agg)
	var rows [][]any
	for k, a := range b.rollups {
		if a.isZero() {
			continue
		}
		bucket := time.Unix(k.hour, 0).UTC()
		rows = append(rows, deltaRow(false, k.tenant, bucket, k.dims, a))
		if !bucket.Before(w) {
			continue // rolled up from the hourly rows once the day is over
		}
		dk := rollupKey{k.tenant, dayOf(bucket).Unix(), k.dims}
		if days[dk] == nil {
			days[dk] = &agg{}
		}
		days[dk].add(a)
	}
	if len(rows) == 0 {
		return nil
	}
	for k, a := range days {
		rows = append(rows, deltaRow(true, k.tenant, time.Unix(k.hour, 0).UTC(), k.dims, a))
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_delta"}, stageDeltaColumns,
		pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	return upsertRollups(ctx, tx, len(days) > 0)
}

// upsertRollups moves the staged deltas into the hourly rollups, and into
// the daily ones when daily deltas are staged.
func upsertRollups(ctx context.Context, tx pgx.Tx, daily bool) error {
	q := pgx.Batch{}
	q.Queue(upsertRollupHourSQL)
	if daily {
		q.Queue(upsertRollupDaySQL)
		q.Queue(upsertKindDaySQL)
	}
	return tx.SendBatch(ctx, &q).Close()
}

func deltaRow(daily bool, tenant string, bucket time.Time, id dims.ID, a *agg) []any {
	row := make([]any, 0, len(stageDeltaColumns))
	row = append(row, daily, tenant, bucket, uuid(id), a.events, a.requests, a.runs,
		a.sessions, a.unpriced, a.list, a.eff)
	for _, q := range a.kindQty[1:] {
		row = append(row, q)
	}
	for _, l := range a.kindList {
		row = append(row, l)
	}
	for _, e := range a.kindEff {
		row = append(row, e)
	}
	return row
}

// writeSteps copies the steps new to the store straight into their table,
// and upserts the stored ones it changes. A step is new when the load
// found no row for it; its run's records are all on one partition, so no
// other consumer writes it meanwhile, and the primary key fails the batch
// if one did.
func (b *batch) writeSteps(ctx context.Context, tx pgx.Tx) error {
	var fresh, stored [][]any
	for _, st := range b.steps {
		switch {
		case !st.stored:
			fresh = append(fresh, st.row())
		case st.first != nil || st.moved || st.touched:
			stored = append(stored, st.row())
		}
	}
	if err := copyInto(ctx, tx, "steps", stepColumns, fresh); err != nil {
		return err
	}
	return copyThen(ctx, tx, "stage_steps", stepColumns, stored, upsertStepsSQL)
}

// copyInto copies rows straight into an attribution table.
func copyInto(ctx context.Context, tx pgx.Tx, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"attribution", table}, cols,
		pgx.CopyFromRows(rows))
	return err
}

var stepColumns = []string{
	"tenant_id", "run_id", "step_id", "trace_id", "event_id", "parent_step_id", "step_kind",
	"own_agent_id", "own_agent_name", "own_agent_version", "own_session_id", "agent_id",
	"agent_name", "agent_version", "session_id", "dims_id", "bucket", "start_time",
	"end_time", "provider", "model", "tool_name", "operation", "status", "currency",
	"events", "requests", "runs", "sessions", "unpriced", "list_nanos", "effective_nanos",
	"kind_quantity", "kind_list", "kind_effective",
}

func (st *step) row() []any {
	var provider, model, tool, op, currency string
	var status int16
	if l := st.first; l != nil {
		ev := l.ev
		provider, model, tool, op = ev.GetProvider(), ev.GetModel(), ev.GetToolName(),
			ev.GetOperation()
		status, currency = int16(ev.GetStatus()), l.currency
	}
	d := &st.delta
	return []any{
		st.key.tenant, st.key.run, st.key.step, st.traceID, st.eventID, st.parent,
		int16(st.kind), st.own.agentID, st.own.agentName, st.own.agentVersion,
		st.own.session, st.res.agentID, st.res.agentName, st.res.agentVersion,
		st.res.session, uuid(st.dims), st.bucket, st.start, st.end, provider, model, tool, op,
		status, currency, d.events, d.requests, d.runs, d.sessions, d.unpriced, d.list, d.eff,
		trimZeros(d.kindQty[:]), trimZeros(d.kindList[:]), trimZeros(d.kindEff[:]),
	}
}

// trimZeros drops trailing zeros: most steps use a few low kinds, and the
// steps' arrays read a missing element as zero (add_arrays, the readers),
// so shorter arrays make narrower rows to write and update.
func trimZeros(xs []int64) []int64 {
	n := len(xs)
	for n > 0 && xs[n-1] == 0 {
		n--
	}
	return xs[:n]
}

var runColumns = []string{
	"tenant_id", "run_id", "trace_id", "agent", "agent_id", "agent_name", "agent_version",
	"session_id", "app", "customer_id", "environment", "dims_id", "start_time", "end_time",
	"currency", "steps", "events", "requests", "errors", "unpriced", "tokens", "list_nanos",
	"effective_nanos",
}

// writeRuns copies new runs into their table and upserts stored ones; as
// with steps, a run's records are all on one partition.
func (b *batch) writeRuns(ctx context.Context, tx pgx.Tx) error {
	var fresh, stored [][]any
	for _, r := range b.runs {
		ev, d := r.first.ev, &r.delta
		rows := &stored
		if !r.stored {
			rows = &fresh
		}
		*rows = append(*rows, []any{
			r.key.tenant, r.key.run, ev.GetTraceId(), r.res.agentKey(), r.res.agentID,
			r.res.agentName, r.res.agentVersion, r.res.session, ev.GetApp(),
			ev.GetCustomerId(), ev.GetEnvironment(), uuid(r.dims), r.start, r.end,
			r.first.currency, r.newSteps, d.events, d.requests, r.errors, d.unpriced,
			d.tokens(), d.list, d.eff,
		})
	}
	if err := copyInto(ctx, tx, "runs", runColumns, fresh); err != nil {
		return err
	}
	return copyThen(ctx, tx, "stage_runs", runColumns, stored, upsertRunsSQL)
}

var sessionColumns = []string{
	"tenant_id", "session_id", "agent", "app", "customer_id", "environment", "dims_id",
	"start_time", "end_time", "currency", "runs", "events", "requests", "unpriced",
	"list_nanos", "effective_nanos",
}

func (b *batch) writeSessions(ctx context.Context, tx pgx.Tx) error {
	rows := make([][]any, 0, len(b.sessions))
	for _, s := range b.sessions {
		if !s.touched && s.runs == 0 && s.delta.isZero() {
			continue
		}
		// A session only losing a run keeps its span: infinity loses
		// every least() and greatest() of the upsert.
		start := pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
		end := pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
		if s.touched {
			start.Time, start.InfinityModifier = s.start, pgtype.Finite
			end.Time, end.InfinityModifier = s.end, pgtype.Finite
		}
		d := &s.delta
		rows = append(rows, []any{
			s.key.tenant, s.key.session, s.agent, s.app, s.customer, s.env, uuid(s.dims),
			start, end, s.currency, s.runs, d.events, d.requests, d.unpriced, d.list, d.eff,
		})
	}
	return copyThen(ctx, tx, "stage_sessions", sessionColumns, rows, upsertSessionsSQL)
}

// copyThen copies rows into a staging table and runs sql, which moves
// them into their table.
func copyThen(ctx context.Context, tx pgx.Tx, stage string, cols []string, rows [][]any,
	sql string,
) error {
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{stage}, cols, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, sql)
	return err
}
