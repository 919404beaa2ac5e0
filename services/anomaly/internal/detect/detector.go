// Package detect holds the real-time detectors: runaway runs, tool and
// retry loops, and the bookkeeping of spend series, sessions and new
// spend that the stored detectors build on. It keeps the open runs of the
// partitions it owns in memory and knows nothing of storage: a Batch
// stages every change, and Commit makes them the detector's state once
// the caller has stored them.
package detect

import (
	"github.com/costplane/costplane/services/anomaly/internal/event"
	"time"

	"github.com/costplane/costplane/services/anomaly/internal/policy"
)

// Config tunes the run detectors.
type Config struct {
	// RunIdle closes a run without events for this long, in event time.
	RunIdle time.Duration
	// DoneGrace closes a run this long after its top-level agent step,
	// which ends after every other step of the run.
	DoneGrace time.Duration
	// SweepEvery is how far a partition's event time moves between two
	// sweeps for runs to close.
	SweepEvery time.Duration
	// MinBaseline is how many completed runs (or sessions) a baseline
	// needs before it is trusted.
	MinBaseline int
	// BaselineDays is the window of baselines, in days of event time.
	BaselineDays int
	// MaxSeen bounds the event ids a run remembers to spot duplicates.
	MaxSeen int
	// MaxSkew bounds how far event time may run ahead of the wall
	// clock; later times are taken as now plus MaxSkew.
	MaxSkew time.Duration
	// MaxSessionHints bounds the session-to-agent hints kept.
	MaxSessionHints int
}

// DefaultConfig returns the settings the service defaults to.
func DefaultConfig() Config {
	return Config{
		RunIdle:         15 * time.Minute,
		DoneGrace:       30 * time.Second,
		SweepEvery:      30 * time.Second,
		MinBaseline:     30,
		BaselineDays:    7,
		MaxSeen:         4096,
		MaxSkew:         5 * time.Minute,
		MaxSessionHints: 200_000,
	}
}

// Policies gives a tenant's effective policy.
type Policies interface {
	For(tenant string) *policy.Effective
}

// RunKey names a run.
type RunKey struct {
	Tenant string
	Run    string
}

// SessionKey names a session.
type SessionKey struct {
	Tenant  string
	Session string
}

// partition is the state of one Kafka partition the detector owns.
type partition struct {
	runs      map[RunKey]*Run
	watermark time.Time
	lastSweep time.Time
}

// Detector is the in-memory state of the real-time detectors for the
// partitions a consumer owns. It is used from one goroutine.
type Detector struct {
	cfg       Config
	baselines *Baselines
	parts     map[int32]*partition
	// sessionAgents are agents learnt from earlier runs of a session,
	// used while a run's own agent step has not arrived.
	sessionAgents map[SessionKey]string
	keys          keyCache
}

// New returns a detector that owns no partition yet.
func New(cfg Config) *Detector {
	return &Detector{
		cfg:           cfg,
		baselines:     NewBaselines(cfg.BaselineDays),
		parts:         make(map[int32]*partition),
		sessionAgents: make(map[SessionKey]string),
		keys:          keyCache{m: make(map[string]string)},
	}
}

// Config returns the detector's settings.
func (d *Detector) Config() Config { return d.cfg }

// Baselines returns the baselines, for loading them from storage.
func (d *Detector) Baselines() *Baselines { return d.baselines }

// Owns reports whether the detector holds partition p's state.
func (d *Detector) Owns(p int32) bool { return d.parts[p] != nil }

// Load gives the detector partition p's open runs, as stored.
func (d *Detector) Load(p int32, runs []*Run) {
	part := &partition{runs: make(map[RunKey]*Run, len(runs))}
	for _, r := range runs {
		part.runs[RunKey{Tenant: r.Tenant, Run: r.Key}] = r
		if last := time.Unix(0, r.Last); last.After(part.watermark) {
			part.watermark = last
		}
	}
	part.lastSweep = part.watermark
	d.parts[p] = part
}

// Drop forgets partition p, whose state may have changed elsewhere.
func (d *Detector) Drop(p int32) { delete(d.parts, p) }

// DropAll forgets every partition.
func (d *Detector) DropAll() { clear(d.parts) }

// OpenRuns counts the runs held in memory.
func (d *Detector) OpenRuns() int {
	n := 0
	for _, p := range d.parts {
		n += len(p.runs)
	}
	return n
}

// Watermark returns the latest event time the detector has seen in any
// partition.
func (d *Detector) Watermark() time.Time {
	var wm time.Time
	for _, p := range d.parts {
		if p.watermark.After(wm) {
			wm = p.watermark
		}
	}
	return wm
}

// HintSession records the agent of a session, learnt from storage.
func (d *Detector) HintSession(k SessionKey, agent string) {
	if agent == "" {
		return
	}
	if len(d.sessionAgents) >= d.cfg.MaxSessionHints {
		// Hints only save a fallback to the app's baseline, so
		// starting over is cheaper than tracking recency.
		clear(d.sessionAgents)
	}
	d.sessionAgents[k] = agent
}

// Commit makes a batch's staged changes the detector's state. Call it
// only once the batch's effects are stored.
func (d *Detector) Commit(b *Batch) {
	for k, r := range b.runs {
		part := d.parts[r.Partition]
		if part == nil {
			continue // dropped meanwhile: storage has it
		}
		if b.closed[k] {
			delete(part.runs, k)
			continue
		}
		part.runs[k] = r
	}
	for k := range b.closed {
		if part := d.parts[b.closedPart[k]]; part != nil {
			delete(part.runs, k)
		}
	}
	for p, wm := range b.marks {
		if part := d.parts[p]; part != nil {
			part.watermark = wm
		}
	}
	for p, t := range b.sweeps {
		if part := d.parts[p]; part != nil {
			part.lastSweep = t
		}
	}
	d.baselines.Apply(b.adds)
	for k, a := range b.hints {
		d.HintSession(k, a)
	}
}

// keyCache remembers series keys of one dimension, the common case, to
// spare building them for every event.
type keyCache struct {
	m map[string]string
}

func (c *keyCache) single(dim, value string) string {
	k := dim + "\x00" + value
	if s, ok := c.m[k]; ok {
		return s
	}
	if len(c.m) > 100_000 {
		clear(c.m)
	}
	s := policy.SeriesKey([]string{dim}, []string{value})
	c.m[k] = s
	return s
}

// Subjects are the baselines a scope has.
var Subjects = [...]Subject{SubjectRunCost, SubjectSessionCost, SubjectToolRepeats}

// Needs names the scopes whose baselines judging one event may consult.
type Needs struct {
	Tenant string
	Agents [3]string
	App    string
}

// NeedsOf returns what judging ev needs, cheap enough to call per event;
// callers collect distinct values and expand them with Keys.
func (d *Detector) NeedsOf(ev *event.Event) Needs {
	n := Needs{Tenant: ev.Tenant, Agents: [3]string{ev.Agent}, App: ev.App}
	if part := d.parts[ev.Partition]; part != nil && ev.Run != "" {
		if r := part.runs[RunKey{Tenant: ev.Tenant, Run: ev.Run}]; r != nil {
			n.Agents[1] = r.Agent
			if n.App == "" {
				n.App = r.App
			}
		}
	}
	if ev.Session != "" {
		n.Agents[2] = d.sessionAgents[SessionKey{Tenant: ev.Tenant, Session: ev.Session}]
	}
	return n
}

// Keys calls add with the key of every baseline n names.
func (d *Detector) Keys(n Needs, add func(Key)) {
	scopes := make([]string, 0, 5)
	for _, a := range n.Agents {
		if a != "" {
			scopes = append(scopes, d.keys.single(policy.DimAgent, a))
		}
	}
	if n.App != "" {
		scopes = append(scopes, d.keys.single(policy.DimApp, n.App))
	}
	scopes = append(scopes, "")
	for _, s := range Subjects {
		for _, sc := range scopes {
			add(Key{Tenant: n.Tenant, Subject: s, Scope: sc})
		}
	}
}
