package ingest

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/services/attribution/internal/dims"
)

// batch is the work of one handler call: the new lines, and every step,
// run, session, rollup row and dimension set they change.
type batch struct {
	lines    []*line
	byKey    map[lineKey]*line
	steps    map[stepKey]*step
	runs     map[runKey]*run
	sessions map[sessionKey]*session
	rollups  map[rollupKey]*agg
	dimsets  map[dimsKey]*dims.Set
	// status holds, per corrected original line, its pricing status
	// before the batch and the one the batch leaves it with.
	status map[lineKey]*statusChange
}

type dimsKey struct {
	tenant string
	id     dims.ID
}

type statusChange struct {
	day      time.Time
	old, now int32
	inBatch  *line
}

func newBatch() *batch {
	return &batch{
		byKey:    make(map[lineKey]*line),
		steps:    make(map[stepKey]*step),
		runs:     make(map[runKey]*run),
		sessions: make(map[sessionKey]*session),
		rollups:  make(map[rollupKey]*agg),
		dimsets:  make(map[dimsKey]*dims.Set),
		status:   make(map[lineKey]*statusChange),
	}
}

func (b *batch) days() []time.Time {
	seen := make(map[time.Time]bool)
	var out []time.Time
	for _, l := range b.lines {
		if !seen[l.day] {
			seen[l.day] = true
			out = append(out, l.day)
		}
	}
	return out
}

// load reads what the batch needs of the store, in order: which lines are
// stored already (and dropped), the runs and steps the rest touch, the
// trace join's resolution, and what that resolution moves.
func (b *batch) load(ctx context.Context, tx pgx.Tx) error {
	if err := b.dropStored(ctx, tx); err != nil {
		return err
	}
	if len(b.lines) == 0 {
		return nil
	}
	loads := []func(context.Context, pgx.Tx) error{
		b.loadRuns, b.loadSteps, b.resolveAndLoadMoves, b.loadOriginals, b.loadSessions,
	}
	for _, load := range loads {
		if err := load(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// dropStored removes the lines whose priced id is stored already.
func (b *batch) dropStored(ctx context.Context, tx pgx.Tx) error {
	keys := newPerTenant()
	for _, l := range b.lines {
		keys.addDay(l.tenant, l.day, l.pricedID)
	}
	var k lineKey
	stored := 0
	err := keys.query(ctx, tx, "finding stored lines", storedLinesSQL,
		[]any{&k.tenant, &k.pricedID}, func() error {
			if _, ok := b.byKey[k]; ok {
				delete(b.byKey, k)
				stored++
			}
			return nil
		})
	if err != nil || stored == 0 {
		return err
	}

	kept := b.lines[:0]
	for _, l := range b.lines {
		if _, ok := b.byKey[l.key()]; ok {
			kept = append(kept, l)
		}
	}
	b.lines = kept
	return nil
}

// loadRuns reads the stored state of the runs the lines belong to.
func (b *batch) loadRuns(ctx context.Context, tx pgx.Tx) error {
	keys := newPerTenant()
	for _, l := range b.lines {
		if l.runID == "" {
			continue
		}
		k := runKey{l.tenant, l.runID}
		if _, ok := b.runs[k]; !ok {
			b.runs[k] = &run{key: k}
			keys.add(k.tenant, k.run)
		}
		if l.traced {
			b.runs[k].traced = true
		}
	}

	var (
		k     runKey
		agent string
		w     who
	)
	return keys.query(ctx, tx, "loading runs", storedRunsSQL, []any{&k.tenant, &k.run, &agent,
		&w.agentID, &w.agentName, &w.agentVersion, &w.session}, func() error {
		r := b.runs[k]
		r.stored, r.storedRes, r.res = true, w, w
		return nil
	})
}

// loadOriginals reads the current pricing status of the original lines
// that the batch's corrections correct.
func (b *batch) loadOriginals(ctx context.Context, tx pgx.Tx) error {
	keys := newPerTenant()
	for _, l := range b.lines {
		if !l.isCorrection() {
			continue
		}
		k := lineKey{l.tenant, l.corrects}
		if _, ok := b.status[k]; ok {
			continue
		}
		sc := &statusChange{day: l.day, old: -1}
		if orig, ok := b.byKey[k]; ok && !orig.isCorrection() {
			sc.inBatch, sc.old = orig, int32(orig.msg.GetPricingStatus())
		} else {
			keys.addDay(k.tenant, l.day, k.pricedID)
		}
		sc.now = sc.old
		b.status[k] = sc
	}

	var (
		k      lineKey
		status int16
	)
	return keys.query(ctx, tx, "loading corrected lines", originalStatusSQL,
		[]any{&k.tenant, &k.pricedID, &status}, func() error {
			if sc := b.status[k]; sc != nil && sc.inBatch == nil {
				sc.old, sc.now = int32(status), int32(status)
			}
			return nil
		})
}

// loadSessions reads which of the sessions the batch touches exist.
func (b *batch) loadSessions(ctx context.Context, tx pgx.Tx) error {
	keys := newPerTenant()
	for k := range b.sessions {
		keys.add(k.tenant, k.session)
	}
	var k sessionKey
	return keys.query(ctx, tx, "loading sessions", storedSessionsSQL,
		[]any{&k.tenant, &k.session}, func() error {
			b.sessions[k].stored = true
			return nil
		})
}

// session returns the batch's entry for a session, creating it.
func (b *batch) session(tenant, id string) *session {
	k := sessionKey{tenant, id}
	s, ok := b.sessions[k]
	if !ok {
		s = &session{key: k}
		b.sessions[k] = s
	}
	return s
}
