// Package consumer is the anomaly detector's Kafka handler: it decodes a
// batch of priced usage, runs the real-time detectors over it, and
// writes everything the batch changed — open runs and sessions, spend
// series, baselines, spend seen, watermarks, anomalies and their outbox
// records — in the batch's PostgreSQL transaction, beside the consumed
// offsets (libs/kafka.Runner). A batch therefore takes effect exactly
// once, and an anomaly is queued for Kafka only with the batch that found
// it.
//
// The detector's in-memory state is a cache of what is stored: changes
// are staged per batch and applied only after the commit, and a
// partition newly assigned, or one whose batch did not commit, is read
// back from storage before its next batch.
package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/alert"
	"github.com/costplane/costplane/services/anomaly/internal/detect"
	"github.com/costplane/costplane/services/anomaly/internal/event"
	"github.com/costplane/costplane/services/anomaly/internal/finding"
	"github.com/costplane/costplane/services/anomaly/internal/policy"
	"github.com/costplane/costplane/services/anomaly/internal/store"
)

// Config tunes the consumer.
type Config struct {
	// Group and Topic name the watermarks the consumer records.
	Group string
	Topic string
	// SessionIdle closes a session without events for this long.
	SessionIdle time.Duration
	// SessionSweepEvery is how far event time moves between sweeps of
	// idle sessions.
	SessionSweepEvery time.Duration
	// NewSpendWindow is how long spend on an item counts as new.
	NewSpendWindow time.Duration
	// NewSpendMinAge is how long a scope must have had spend before new
	// items in it alert; younger scopes are launches.
	NewSpendMinAge time.Duration
	// BaselineRefresh is how often baselines are read again, so that the
	// observations of other consumers arrive.
	BaselineRefresh time.Duration
	// SuppressionRefresh is how often suppressions are read again.
	SuppressionRefresh time.Duration
	// ActiveFor is how long, in wall time, a partition's watermark
	// counts after its last batch when sessions are swept.
	ActiveFor time.Duration
}

// DefaultConfig returns the settings the service defaults to.
func DefaultConfig() Config {
	return Config{
		SessionIdle:        30 * time.Minute,
		SessionSweepEvery:  time.Minute,
		NewSpendWindow:     24 * time.Hour,
		NewSpendMinAge:     7 * 24 * time.Hour,
		BaselineRefresh:    time.Minute,
		SuppressionRefresh: 10 * time.Second,
		ActiveFor:          time.Minute,
	}
}

// Consumer handles batches for a kafka.Runner. Handle and Committed run
// on the runner's goroutine; Assigned on franz-go's, serialized with
// them by the runner's blocking rebalances.
type Consumer struct {
	cfg      Config
	det      *detect.Detector
	policies *policy.Cache
	gate     *alert.Gate
	log      *slog.Logger
	metrics  *Metrics
	// onPublish is called after a commit that queued anomaly records.
	onPublish func()
	// now is the wall clock, replaceable in tests.
	now func() time.Time

	mu     sync.Mutex
	reload map[int32]bool // partitions to read back from storage
	// announce holds assigned partitions whose watermark row the next
	// committed batch must make current, see Assigned.
	announce map[int32]bool

	staged   *staged
	oldSpend map[detect.SpendKey]struct{}
	// logged counts the entries of each owned partition's run log since
	// its latest snapshot.
	logged     map[int32]int
	sweptUntil time.Time // event time of the last session sweep
	msg        eventv1.PricedUsage
}

// staged is what a handled batch will change in memory once committed.
type staged struct {
	batch      *detect.Batch
	oldSpend   []detect.SpendKey
	sweptUntil time.Time
	published  int
	findings   []finding.Finding
	events     int
	announced  []int32
	logged     map[int32]int
}

// New returns a consumer over det. onPublish may be nil.
func New(
	cfg Config, det *detect.Detector, policies *policy.Cache, gate *alert.Gate, m *Metrics,
	log *slog.Logger, onPublish func(),
) *Consumer {
	return &Consumer{
		cfg:       cfg,
		det:       det,
		policies:  policies,
		gate:      gate,
		log:       log,
		metrics:   m,
		onPublish: onPublish,
		now:       time.Now,
		reload:    make(map[int32]bool),
		announce:  make(map[int32]bool),
		oldSpend:  make(map[detect.SpendKey]struct{}),
		logged:    make(map[int32]int),
	}
}

// Assigned is the franz-go OnPartitionsAssigned callback: whatever the
// detector holds of those partitions may be stale, since another member
// may have owned them meanwhile.
//
// The partitions are also announced: the spike evaluator judges a bucket
// once every active partition's watermark is past it, and a partition
// with no watermark row yet (consumed for the first time) would not hold
// it back, so its buckets could be judged before its spend is stored.
// An announced partition gets a current row at the epoch until its first
// batch moves it.
func (c *Consumer) Assigned(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ps := range parts[c.cfg.Topic] {
		c.reload[ps] = true
		c.announce[ps] = true
	}
}

// Handle is the kafka.Handler.
func (c *Consumer) Handle(
	ctx context.Context, tx pgx.Tx, recs []*kgo.Record,
) ([]kafka.Reject, error) {
	start := c.now()
	if c.staged != nil {
		// The previous batch did not commit: what it staged is void, and
		// its partitions may hold effects of another member.
		c.log.Debug("previous batch not committed, reloading partitions")
		c.det.DropAll()
		c.staged = nil
	}

	evs, rejects := c.decode(recs)
	if len(evs) == 0 {
		c.staged = &staged{sweptUntil: c.sweptUntil}
		return rejects, c.announcePartitions(ctx, tx, nil, c.staged, start)
	}
	if err := c.prepare(ctx, tx, evs, start); err != nil {
		return nil, err
	}

	st, err := c.detect(ctx, tx, evs, start)
	if err != nil {
		return nil, err
	}
	c.staged = st
	c.metrics.observeBatch(len(evs), st, c.now().Sub(start))
	return rejects, nil
}

// Committed is the kafka.WithOnCommit callback.
func (c *Consumer) Committed(kafka.Commit) {
	st := c.staged
	c.staged = nil
	if st == nil {
		return
	}
	if st.batch != nil {
		c.det.Commit(st.batch)
	}
	for _, k := range st.oldSpend {
		c.oldSpend[k] = struct{}{}
	}
	c.sweptUntil = st.sweptUntil
	maps.Copy(c.logged, st.logged)
	c.mu.Lock()
	for _, p := range st.announced {
		delete(c.announce, p)
	}
	c.mu.Unlock()
	c.metrics.openRuns.Set(float64(c.det.OpenRuns()))
	c.metrics.committed(st)
	if st.published > 0 && c.onPublish != nil {
		c.onPublish()
	}
}

func (c *Consumer) decode(recs []*kgo.Record) ([]event.Event, []kafka.Reject) {
	evs := make([]event.Event, 0, len(recs))
	var rejects []kafka.Reject
	for _, rec := range recs {
		ev, err := event.Decode(rec, &c.msg)
		if err != nil {
			rejects = append(rejects, kafka.Reject{Record: rec, Reason: err.Error()})
			continue
		}
		evs = append(evs, ev)
	}
	return evs, rejects
}

// prepare reads what the batch needs into memory: the open runs of
// partitions the detector does not hold, the tenants' policies, and the
// baselines the batch's runs are judged against.
func (c *Consumer) prepare(ctx context.Context, tx pgx.Tx, evs []event.Event, now time.Time) error {
	if err := c.loadPartitions(ctx, tx, evs); err != nil {
		return err
	}

	tenants := map[string]struct{}{}
	needs := map[detect.Needs]struct{}{}
	for i := range evs {
		tenants[evs[i].Tenant] = struct{}{}
		needs[c.det.NeedsOf(&evs[i])] = struct{}{}
	}
	if err := c.policies.Prepare(ctx, tx, keysOf(tenants), now); err != nil {
		return err
	}

	var keys []detect.Key
	for n := range needs {
		c.det.Keys(n, func(k detect.Key) { keys = append(keys, k) })
	}
	return c.loadBaselines(ctx, tx, keys, now)
}

func (c *Consumer) loadPartitions(ctx context.Context, tx pgx.Tx, evs []event.Event) error {
	c.mu.Lock()
	for p := range c.reload {
		c.det.Drop(p)
	}
	clear(c.reload)
	c.mu.Unlock()

	var need []int32
	for i := range evs {
		if p := evs[i].Partition; !c.det.Owns(p) && !slices.Contains(need, p) {
			need = append(need, p)
		}
	}
	if len(need) == 0 {
		return nil
	}
	runs, logged, err := store.LoadRuns(ctx, tx, need)
	if err != nil {
		return err
	}
	for _, p := range need {
		c.det.Load(p, runs[p])
		c.logged[p] = logged[p]
	}
	c.log.Info("partition state loaded", "partitions", need, "open_runs", c.det.OpenRuns())
	return nil
}

// loadBaselines reads the keys not read within the refresh interval.
func (c *Consumer) loadBaselines(
	ctx context.Context, tx pgx.Tx, keys []detect.Key, now time.Time,
) error {
	bs := c.det.Baselines()
	since := now.Add(-c.cfg.BaselineRefresh)
	var stale []detect.Key
	seen := make(map[detect.Key]bool, len(keys))
	for _, k := range keys {
		if !seen[k] && !bs.Loaded(k, since) {
			stale = append(stale, k)
		}
		seen[k] = true
	}
	if len(stale) == 0 {
		return nil
	}
	today := detect.Day(c.det.Watermark())
	if today == 0 {
		today = detect.Day(now)
	}
	// One day of slack: a batch may reach into the next day.
	after := today - int32(bs.Days) - 1
	return store.LoadBaselines(ctx, tx, bs, stale, after)
}

func keysOf[K comparable](m map[K]struct{}) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// detect runs the detectors over evs and writes the outcome in tx.
func (c *Consumer) detect(
	ctx context.Context, tx pgx.Tx, evs []event.Event, now time.Time,
) (*staged, error) {
	b := c.det.Begin(c.policies, now)
	b.SkipSpend = func(k detect.SpendKey) bool {
		_, old := c.oldSpend[k]
		return old
	}
	for i := range evs {
		b.Apply(&evs[i])
	}
	b.Sweep()

	st := &staged{batch: b, sweptUntil: c.sweptUntil, events: len(evs)}
	if err := c.sessions(ctx, tx, b, st, now); err != nil {
		return nil, err
	}
	if err := c.newSpend(ctx, tx, b, st); err != nil {
		return nil, err
	}
	st.findings = append(st.findings, b.Findings...)
	if err := c.report(ctx, tx, st, now); err != nil {
		return nil, err
	}
	if err := c.save(ctx, tx, b, st, now); err != nil {
		return nil, err
	}
	if err := c.announcePartitions(ctx, tx, b.Marks(), st, now); err != nil {
		return nil, err
	}
	return st, nil
}

// epoch is the watermark of an announced partition: before any bucket.
var epoch = time.Unix(0, 0).UTC()

// announcePartitions writes the rows of announced partitions that the
// batch did not move, see Assigned.
func (c *Consumer) announcePartitions(
	ctx context.Context, tx pgx.Tx, moved map[int32]time.Time, st *staged, now time.Time,
) error {
	c.mu.Lock()
	marks := make(map[int32]time.Time, len(c.announce))
	for p := range c.announce {
		st.announced = append(st.announced, p)
		if _, ok := moved[p]; !ok {
			marks[p] = epoch
		}
	}
	c.mu.Unlock()
	return store.SaveWatermarks(ctx, tx, c.cfg.Group, c.cfg.Topic, marks, now)
}

// sessions adds the batch's spend to its sessions, judges them, and
// closes idle sessions into the baselines.
func (c *Consumer) sessions(
	ctx context.Context, tx pgx.Tx, b *detect.Batch, st *staged, now time.Time,
) error {
	floor := func(tenant string) int64 { return c.policies.For(tenant).SessionFloor }
	rows, err := store.UpsertSessions(ctx, tx, b.Sessions, floor)
	if err != nil {
		return err
	}

	var keys []detect.Key
	for _, s := range rows {
		c.det.Keys(detect.Needs{Tenant: s.Tenant, Agents: [3]string{s.Agent}, App: s.App},
			func(k detect.Key) {
				if k.Subject == detect.SubjectSessionCost {
					keys = append(keys, k)
				}
			})
	}
	if err := c.loadBaselines(ctx, tx, keys, now); err != nil {
		return err
	}

	var alerted []detect.Session
	for _, s := range rows {
		if f, ok := b.CheckSession(s); ok {
			st.findings = append(st.findings, f)
			s.AlertSeverity, s.AlertActual = f.Severity, f.Actual
			alerted = append(alerted, s)
		}
	}
	if err := store.MarkSessionAlerts(ctx, tx, alerted); err != nil {
		return err
	}

	return c.sweepSessions(ctx, tx, b, st, now)
}

// A session's runs sit in any partition, so it is idle only once every
// partition is past its last event: the lowest watermark of the active
// partitions decides, as for the spike evaluator. The highest, which
// this batch alone would give, closed sessions whose runs on a lagging
// partition were still to come, splitting their cost in two.
func (c *Consumer) sweepSessions(
	ctx context.Context, tx pgx.Tx, b *detect.Batch, st *staged, now time.Time,
) error {
	if len(b.Marks()) == 0 {
		return nil
	}
	wm, _, err := store.Watermarks(ctx, tx, now.Add(-c.cfg.ActiveFor))
	if err != nil || wm.Sub(c.sweptUntil) < c.cfg.SessionSweepEvery {
		return err
	}
	closed, err := store.SweepSessions(ctx, tx, wm.Add(-c.cfg.SessionIdle))
	if err != nil {
		return err
	}
	for _, s := range closed {
		b.CloseSession(s, s.AlertSeverity != 0)
	}
	st.sweptUntil = wm
	return nil
}

// report drops muted and suppressed findings and stores the rest.
func (c *Consumer) report(ctx context.Context, tx pgx.Tx, st *staged, now time.Time) error {
	if len(st.findings) == 0 {
		return nil
	}
	kept, err := c.gate.Keep(ctx, tx, st.findings, now)
	if err != nil {
		return err
	}
	changed, err := alert.Upsert(ctx, tx, kept, now)
	if err != nil {
		return err
	}
	st.published = len(changed)
	return nil
}

// compactEvery is how many entries a partition's run log takes before
// a snapshot replaces them: loading a partition reads at most that many
// batches' changes, and a snapshot costs about one batch's.
const compactEvery = 32

// save writes the batch's state changes.
func (c *Consumer) save(
	ctx context.Context, tx pgx.Tx, b *detect.Batch, st *staged, now time.Time,
) error {
	entries, changed := c.runLog(b, st)
	steps := []func() error{
		func() error { return store.AddSeries(ctx, tx, b.Series) },
		func() error { return store.AddBaselines(ctx, tx, b.BaselineAdds()) },
		func() error { return store.WriteRunLog(ctx, tx, entries) },
		func() error {
			return store.SaveWatermarks(ctx, tx, c.cfg.Group, c.cfg.Topic, b.Marks(), now)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("saving detector state: %w", err)
		}
	}
	for _, r := range changed {
		r.MarkPersisted()
	}
	return nil
}

// runLog returns the run log entry of each partition whose runs the
// batch changed or closed, a snapshot when the log is long enough, and
// the runs the entries store.
func (c *Consumer) runLog(b *detect.Batch, st *staged) ([]store.RunLogEntry, []*detect.Run) {
	byPart := make(map[int32]*store.RunLogEntry)
	entry := func(p int32) *store.RunLogEntry {
		e := byPart[p]
		if e == nil {
			e = &store.RunLogEntry{Partition: p}
			byPart[p] = e
		}
		return e
	}
	changed := b.Changed()
	for _, r := range changed {
		e := entry(r.Partition)
		e.Put = append(e.Put, r)
	}
	for _, r := range b.ClosedRuns() {
		e := entry(r.Partition)
		e.Closed = append(e.Closed, r)
	}

	st.logged = make(map[int32]int, len(byPart))
	out := make([]store.RunLogEntry, 0, len(byPart))
	for p, e := range byPart {
		st.logged[p] = c.logged[p] + 1
		if st.logged[p] >= compactEvery {
			e.Snapshot, e.Put, e.Closed = true, b.PartitionRuns(p), nil
			st.logged[p] = 1
		}
		out = append(out, *e)
	}
	return out, changed
}
