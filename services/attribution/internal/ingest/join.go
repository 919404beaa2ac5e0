package ingest

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/dims"
)

// loadSteps reads the stored steps the lines join with: every step of a
// traced run, and the very step of a line outside traces. Then it adds
// the lines' own steps.
func (b *batch) loadSteps(ctx context.Context, tx pgx.Tx) error {
	runs := newPerTenant()
	for k, r := range b.runs {
		if r.traced {
			runs.add(k.tenant, k.run)
		}
	}
	single := newPerTenant()
	wanted := make(map[stepKey]bool)
	for _, l := range b.lines {
		k := stepKey{l.tenant, l.runID, l.stepID}
		if l.runID != "" && !b.runs[runKey{l.tenant, l.runID}].traced && !wanted[k] {
			wanted[k] = true
			single.add(l.tenant, l.runID, l.stepID)
		}
	}

	if err := b.queryStoredSteps(ctx, tx, runs, joinStepsSQL, nil); err != nil {
		return err
	}
	if err := b.queryStoredSteps(ctx, tx, single, exactStepsSQL, wanted); err != nil {
		return err
	}
	for _, l := range b.lines {
		if l.runID != "" {
			b.addLineStep(l)
		}
	}
	return nil
}

// queryStoredSteps adds the stored steps the query returns; wanted, when
// not nil, keeps only those keys (= ANY over runs and steps returns their
// cross product).
func (b *batch) queryStoredSteps(ctx context.Context, tx pgx.Tx, keys *perTenant, sql string,
	wanted map[stepKey]bool,
) error {
	var (
		st    step
		kind  int16
		start time.Time
		id    pgtype.UUID
	)
	dest := []any{&st.key.tenant, &st.key.run, &st.key.step, &st.traceID, &st.eventID,
		&st.parent, &kind, &start, &st.own.agentID, &st.own.agentName, &st.own.agentVersion,
		&st.own.session, &st.storedRes.agentID, &st.storedRes.agentName,
		&st.storedRes.agentVersion, &st.storedRes.session, &id, &st.bucket, &st.storedRuns}
	return keys.query(ctx, tx, "loading steps", sql, dest, func() error {
		if wanted != nil && !wanted[st.key] {
			return nil
		}
		s := st
		s.stored, s.kind, s.start, s.res = true, eventv1.StepKind(kind), start, st.storedRes
		s.storedDims, s.dims = id.Bytes, id.Bytes
		b.steps[s.key] = &s
		return nil
	})
}

// addLineStep makes sure the step of l is in the batch; a step new to the
// store takes what it is from its first line.
func (b *batch) addLineStep(l *line) {
	k := stepKey{l.tenant, l.runID, l.stepID}
	st, ok := b.steps[k]
	if !ok {
		ev := l.ev
		st = &step{
			key: k, parent: ev.GetParentStepId(), kind: ev.GetStepKind(),
			traceID: ev.GetTraceId(), eventID: ev.GetEventId(), start: l.start, end: l.end,
			own: whoOf(ev.GetAgent(), ev.GetSessionId()),
		}
		st.res = st.own
		b.steps[k] = st
	}
	if st.first == nil {
		st.first = l
	}
}

// resolveAndLoadMoves runs the trace join, decides each run's agent and
// session, notes the sessions the batch touches, and loads the totals of
// the steps that move.
func (b *batch) resolveAndLoadMoves(ctx context.Context, tx pgx.Tx) error {
	byRun := make(map[runKey][]*step)
	for _, st := range b.steps {
		rk := runKey{st.key.tenant, st.key.run}
		byRun[rk] = append(byRun[rk], st)
	}
	b.join(byRun)
	for rk, r := range b.runs {
		r.res = resolveRun(r, byRun[rk])
	}
	b.noteSessions()
	return b.loadMoves(ctx, tx)
}

// join resolves the steps of traced runs against each other with a fresh
// usage.TraceJoin over the stored and new steps, and marks stored steps
// whose resolution changed as moved.
func (b *batch) join(byRun map[runKey][]*step) {
	j := usage.NewTraceJoin(usage.JoinConfig{MaxTraces: len(byRun) + 1, MaxStepsPerTrace: 1 << 30})
	shells := make(map[*step]*eventv1.UsageEvent)
	for rk, steps := range byRun {
		if !b.runs[rk].traced {
			continue
		}
		for _, st := range steps {
			if st.traceID != "" {
				shells[st] = st.shell()
				j.Add(shells[st])
			}
		}
	}
	for st, sh := range shells {
		j.Apply(sh)
		st.res = whoOf(sh.GetAgent(), sh.GetSessionId())
	}
	for _, st := range b.steps {
		st.moved = st.stored && st.res != st.storedRes
	}
}

func (st *step) shell() *eventv1.UsageEvent {
	ev := &eventv1.UsageEvent{
		TenantId: st.key.tenant, TraceId: st.traceID, EventId: st.eventID,
		StepId: st.key.step, ParentStepId: st.parent, StepKind: st.kind,
		StartTime: timestamppb.New(st.start), SessionId: st.own.session,
	}
	if st.own.agentID != "" || st.own.agentName != "" || st.own.agentVersion != "" {
		ev.Agent = &eventv1.Agent{
			Id: st.own.agentID, Name: st.own.agentName, Version: st.own.agentVersion,
		}
	}
	return ev
}

// resolveRun decides a run's agent and session. A traced run belongs to
// its top-level agent: its earliest AGENT step. Without one, or outside
// traces, the stored attribution stands, else the earliest step's.
func resolveRun(r *run, steps []*step) who {
	sortSteps(steps)
	res := r.storedRes
	if r.traced {
		for _, st := range steps {
			if st.kind == eventv1.StepKind_STEP_KIND_AGENT && st.traceID != "" {
				res = st.res
				break
			}
		}
	}
	for _, st := range steps {
		if res.agentKey() == "" && st.res.agentKey() != "" {
			res.agentID, res.agentName, res.agentVersion =
				st.res.agentID, st.res.agentName, st.res.agentVersion
		}
		if res.session == "" {
			res.session = st.res.session
		}
	}
	return res
}

// noteSessions registers every session the batch adds to or takes from.
func (b *batch) noteSessions() {
	for _, l := range b.lines {
		if w := b.resolution(l); w.session != "" {
			b.session(l.tenant, w.session)
		}
	}
	for _, st := range b.steps {
		for _, s := range []string{st.res.session, st.storedRes.session} {
			if st.moved && s != "" {
				b.session(st.key.tenant, s)
			}
		}
	}
	for _, r := range b.runs {
		for _, s := range []string{r.res.session, r.storedRes.session} {
			if s != "" {
				b.session(r.key.tenant, s)
			}
		}
	}
}

// resolution is the attribution of a line: its step's, or its own.
func (b *batch) resolution(l *line) who {
	if l.runID == "" {
		return whoOf(l.ev.GetAgent(), l.ev.GetSessionId())
	}
	return b.steps[stepKey{l.tenant, l.runID, l.stepID}].res
}

// loadMoves reads the totals and dimension sets of the moved steps.
func (b *batch) loadMoves(ctx context.Context, tx pgx.Tx) error {
	keys := newPerTenant()
	for k, st := range b.steps {
		if st.moved {
			keys.add(k.tenant, k.run, k.step)
		}
	}
	var (
		k                  stepKey
		id                 pgtype.UUID
		bucket, start, end time.Time
		a                  agg
		qty, list, eff     []int64
		s                  dims.Set
	)
	dest := []any{&k.tenant, &k.run, &k.step, &id, &bucket, &start, &end, &a.events,
		&a.requests, &a.runs, &a.sessions, &a.unpriced, &a.list, &a.eff, &qty, &list, &eff,
		&s.Currency, &s.Provider, &s.Account, &s.Project, &s.Model, &s.ModelVersion,
		&s.Region, &s.ServiceTier, &s.InferenceProfile, &s.Operation, &s.App, &s.Customer,
		&s.Environment, &s.Source, &s.Labels}
	return keys.query(ctx, tx, "loading moved steps", movedStepsSQL, dest, func() error {
		st := b.steps[k]
		if st == nil || !st.moved {
			return nil
		}
		total := a
		copy(total.kindQty[:], qty)
		copy(total.kindList[:], list)
		copy(total.kindEff[:], eff)
		set := s
		set.Labels = maps.Clone(s.Labels)
		st.movedTotal, st.storedDims, st.movedBase, st.bucket = total, id.Bytes, set, bucket
		st.start, st.end = start, end
		return nil
	})
}

// sortSteps orders steps by start, then id.
func sortSteps(steps []*step) {
	slices.SortFunc(steps, func(a, b *step) int {
		return cmp.Or(a.start.Compare(b.start), cmp.Compare(a.key.step, b.key.step))
	})
}
