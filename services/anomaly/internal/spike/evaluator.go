package spike

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/costplane/costplane/libs/pg"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/alert"
	"github.com/costplane/costplane/services/anomaly/internal/detect"
	"github.com/costplane/costplane/services/anomaly/internal/finding"
	"github.com/costplane/costplane/services/anomaly/internal/lead"
	"github.com/costplane/costplane/services/anomaly/internal/policy"
	"github.com/costplane/costplane/services/anomaly/internal/store"
)

// Config tunes the evaluator.
type Config struct {
	// Window is the spend judged at each 5-minute boundary: the window
	// ending there.
	Window time.Duration
	// MinHistory is the history a series needs before it is judged.
	MinHistory time.Duration
	// Cooldown is how long a series must stay normal to end an episode;
	// until then, new spikes update the episode's anomaly.
	Cooldown time.Duration
	// Lateness is how long after a bucket's end its events may arrive.
	Lateness time.Duration
	// Weeks of history feed the baseline.
	Weeks int
	// Interval is how often the evaluator looks for closed buckets.
	Interval time.Duration
	// ActiveFor is how long after its last batch a partition's watermark
	// still holds the evaluator back.
	ActiveFor time.Duration
	// Retention5m and Retention1h bound the stored series, behind the
	// evaluated time; BaselineDays bounds the baselines likewise.
	Retention5m, Retention1h time.Duration
	BaselineDays             int
}

const step5m = detect.SeriesStep

// chunk is how much event time one transaction of the evaluator covers.
const chunk = 6 * time.Hour

type seriesID struct {
	Tenant, Key, Currency string
}

type episode struct {
	anomalyID     string
	start         time.Time
	lastAnomalous time.Time
	dirty, closed bool
}

// Evaluator judges every spend series at each closed 5-minute boundary,
// in event time, once every active partition's watermark is past it.
// One instance leads at a time.
type Evaluator struct {
	cfg       Config
	model     Model
	pool      *pgxpool.Pool
	policies  *policy.Cache
	gate      *alert.Gate
	log       *slog.Logger
	onPublish func()
	wake      chan struct{}
	lag       prometheus.Gauge

	// State while leading.
	done      time.Time // last boundary judged
	hist      map[seriesID]*Series
	histStart time.Time // hour of index 0
	histLen   int       // hours loaded
	recent    map[seriesID]map[int64]int64
	recentTo  time.Time
	episodes  map[seriesID]*episode
	pruned    time.Time
}

// New returns an evaluator. onPublish is called after a commit that
// queued anomaly records; reg may be nil.
func New(
	cfg Config, pool *pgxpool.Pool, policies *policy.Cache, gate *alert.Gate,
	log *slog.Logger, onPublish func(), reg prometheus.Registerer,
) (*Evaluator, error) {
	e := &Evaluator{
		cfg: cfg, model: Model{Weeks: cfg.Weeks}, pool: pool, policies: policies, gate: gate,
		log: log, onPublish: onPublish, wake: make(chan struct{}, 1),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "costplane_anomaly_spike_lag_seconds",
			Help: "Event time between the consumers' watermark and the last judged boundary.",
		}),
	}
	if reg != nil {
		if err := reg.Register(e.lag); err != nil {
			return nil, fmt.Errorf("registering evaluator metrics: %w", err)
		}
	}
	return e, nil
}

// Notify asks the evaluator to look for closed buckets now.
func (e *Evaluator) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run evaluates while this process leads, until ctx ends.
func (e *Evaluator) Run(ctx context.Context) error {
	delay := time.Second
	for ctx.Err() == nil {
		err := e.lead(ctx)
		if ctx.Err() != nil {
			break
		}
		e.log.Warn("spike evaluator failed, will retry", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
	return nil
}

func (e *Evaluator) lead(ctx context.Context) error {
	l, err := lead.Await(ctx, e.pool, "spike-evaluator", e.cfg.Interval)
	if err != nil {
		return err
	}
	defer l.Release(ctx)
	if err := e.start(ctx); err != nil {
		return err
	}
	e.log.Info("spike evaluator leading", "evaluated_to", e.done)

	for {
		if err := e.cycle(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
		case <-time.After(e.cfg.Interval):
		}
		if err := l.Check(ctx); err != nil {
			return err
		}
	}
}

const loadStateSQL = `SELECT evaluated_to FROM anomaly.evaluator WHERE name = 'spike'`

const loadEpisodesSQL = `SELECT tenant_id, series_key, currency, anomaly_id, start_time,
	last_anomalous FROM anomaly.spike_episodes`

// start reads where a previous leader stopped.
func (e *Evaluator) start(ctx context.Context) error {
	e.done, e.hist, e.histLen, e.histStart = time.Time{}, map[seriesID]*Series{}, 0, time.Time{}
	e.recent, e.recentTo = map[seriesID]map[int64]int64{}, time.Time{}
	e.episodes = map[seriesID]*episode{}

	err := e.pool.QueryRow(ctx, loadStateSQL).Scan(&e.done)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("reading evaluator state: %w", err)
	}
	rows, err := e.pool.Query(ctx, loadEpisodesSQL)
	if err != nil {
		return fmt.Errorf("reading spike episodes: %w", err)
	}
	var (
		id seriesID
		ep episode
	)
	_, err = pgx.ForEachRow(rows,
		[]any{&id.Tenant, &id.Key, &id.Currency, &ep.anomalyID, &ep.start, &ep.lastAnomalous},
		func() error {
			c := ep
			e.episodes[id] = &c
			return nil
		})
	if err != nil {
		return fmt.Errorf("reading spike episodes: %w", err)
	}
	return nil
}

// cycle judges every boundary the watermarks allow, a chunk per
// transaction.
func (e *Evaluator) cycle(ctx context.Context) error {
	now := time.Now()
	lo, _, err := store.Watermarks(ctx, e.pool, now.Add(-e.cfg.ActiveFor))
	if err != nil {
		return err
	}
	if lo.IsZero() {
		// No partition moved for ActiveFor: nothing is in flight, so all
		// spend up to the furthest watermark is in. Without this, an
		// evaluator behind when traffic stops would wait for it to
		// resume before judging the last buckets.
		if _, lo, err = store.Watermarks(ctx, e.pool, time.Time{}); err != nil || lo.IsZero() {
			return err
		}
	}
	limit := lo.Add(-e.cfg.Lateness).Truncate(step5m)
	if e.done.IsZero() {
		first, err := store.FirstBucket(ctx, e.pool)
		if err != nil || first.IsZero() {
			return err
		}
		// Nothing can be judged before the first series has history.
		e.done = first.Add(e.cfg.MinHistory).Truncate(step5m).Add(-step5m)
	}

	for e.done.Before(limit) && ctx.Err() == nil {
		to := e.done.Add(chunk)
		if to.After(limit) {
			to = limit
		}
		if err := e.judgeUntil(ctx, to); err != nil {
			return err
		}
	}
	e.lag.Set(lo.Sub(e.done).Seconds())
	return e.prune(ctx)
}

// judgeUntil judges the boundaries after e.done up to to, and stores the
// outcome with the new position in one transaction.
func (e *Evaluator) judgeUntil(ctx context.Context, to time.Time) error {
	if err := e.loadRecent(ctx, to); err != nil {
		return err
	}
	if err := e.loadHistory(ctx, to.Add(-e.cfg.Window).Truncate(time.Hour)); err != nil {
		return err
	}
	if err := e.policies.Prepare(ctx, e.pool, e.tenants(), time.Now()); err != nil {
		return err
	}

	var fs []finding.Finding
	for b := e.done.Add(step5m); !b.After(to); b = b.Add(step5m) {
		fs = append(fs, e.judge(b)...)
	}

	published := 0
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		now := time.Now()
		kept, err := e.gate.Keep(ctx, tx, fs, now)
		if err != nil {
			return err
		}
		changed, err := alert.Upsert(ctx, tx, kept, now)
		if err != nil {
			return err
		}
		published = len(changed)
		if err := e.saveEpisodes(ctx, tx); err != nil {
			return err
		}
		return saveState(ctx, tx, to)
	})
	if err != nil {
		// The episodes in memory are ahead of storage now: the caller
		// starts over from storage.
		return fmt.Errorf("storing spike judgements: %w", err)
	}

	e.done = to
	e.forget()
	if published > 0 && e.onPublish != nil {
		e.onPublish()
	}
	return nil
}

func (e *Evaluator) tenants() []string {
	seen := map[string]struct{}{}
	for id := range e.recent {
		seen[id.Tenant] = struct{}{}
	}
	return keys(seen)
}

func keys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// judge judges every series at boundary b and returns the findings.
//
// TODO: one window length (ANOMALY_SPIKE_WINDOW) is judged, so a sharp
// burst much shorter than the window is diluted and detection takes most
// of the window; judging a short and a long window together would catch
// both sooner. Runaway runs and loops, the urgent cases, do not wait for
// it.
func (e *Evaluator) judge(b time.Time) []finding.Finding {
	winStart := b.Add(-e.cfg.Window)
	end := int(winStart.Truncate(time.Hour).Sub(e.histStart) / time.Hour)
	minHistory := int(e.cfg.MinHistory / time.Hour)

	var out []finding.Finding
	window := make([]Bucket, 0, int(e.cfg.Window/step5m))
	for id, spend := range e.recent {
		// Every bucket of the window counts, empty ones too: the
		// expectation is summed over the buckets, so leaving out the
		// quiet ones of a sparse series would halve it.
		window = window[:0]
		var total int64
		for t := winStart; t.Before(b); t = t.Add(step5m) {
			c := spend[t.Unix()]
			total += c
			window = append(window, Bucket{Start: t, Cost: c})
		}
		s := e.hist[id]
		if total == 0 || s == nil {
			continue
		}
		pol := e.policies.For(id.Tenant)
		th := Thresholds{Floor: pol.SpikeFloor, Relative: pol.SpikeRelative, Z: pol.SpikeZ}
		v := e.model.Judge(s, end, minHistory, window, th)
		if !v.Anomalous {
			continue
		}
		out = append(out, e.spiked(id, b, winStart, v))
	}

	for _, ep := range e.episodes {
		if !ep.closed && b.Sub(ep.lastAnomalous) > e.cfg.Cooldown {
			ep.closed, ep.dirty = true, true
		}
	}
	return out
}

// spiked continues the series' episode, or opens one, and returns its
// finding.
func (e *Evaluator) spiked(id seriesID, b, winStart time.Time, v Verdict) finding.Finding {
	ep := e.episodes[id]
	if ep == nil || ep.closed {
		pattern := fmt.Sprintf("%s|%s|%d", id.Key, id.Currency, winStart.Unix())
		ep = &episode{
			anomalyID: finding.ID(id.Tenant, eventv1.AnomalyKind_ANOMALY_KIND_SPEND_SPIKE, pattern),
			start:     winStart,
		}
		e.episodes[id] = ep
	}
	ep.lastAnomalous, ep.dirty = b, true

	dims := policy.ParseSeriesKey(id.Key)
	ratio := float64(v.Actual) / math.Max(float64(v.Expected), 1)
	return finding.Finding{
		Tenant:      id.Tenant,
		Kind:        eventv1.AnomalyKind_ANOMALY_KIND_SPEND_SPIKE,
		Pattern:     fmt.Sprintf("%s|%s|%d", id.Key, id.Currency, ep.start.Unix()),
		Scope:       maps.Clone(dims),
		WindowStart: ep.start.UTC(),
		WindowEnd:   b.UTC(),
		Actual:      v.Actual,
		Expected:    v.Expected,
		Currency:    id.Currency,
		Severity:    v.Severity,
		Summary: fmt.Sprintf("spend of %s was %s in the %s to %s, expected %s (%.1fx, z %.1f)",
			describe(dims), finding.FormatMoney(v.Actual, id.Currency), e.cfg.Window,
			b.UTC().Format(time.RFC3339), finding.FormatMoney(v.Expected, id.Currency),
			ratio, v.Z),
		Suppression: finding.SuppressionKey{Scope: dims, Measure: finding.MeasureRatio},
		Measure:     int64(math.Round(ratio * 1000)),
	}
}

func describe(dims map[string]string) string {
	if len(dims) == 0 {
		return "the tenant"
	}
	parts := make([]string, 0, len(dims))
	for _, k := range sortedKeys(dims) {
		parts = append(parts, k+" "+dims[k])
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]string) []string {
	ks := keys(m)
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}
