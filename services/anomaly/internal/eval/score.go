package eval

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// Targets of the issue.
const (
	TargetPrecision = 0.9
	TargetRecall    = 0.9
	TargetLatency   = 5 * time.Second
)

// KindStats are the figures of one anomaly kind.
type KindStats struct {
	Kind eventv1.AnomalyKind
	// Labels injected, and how many of them an alert of this kind found.
	Labels, Detected int
	// Alerts of this kind: true positives match a label of the kind,
	// explained ones are true alerts caused by an injection of another
	// kind (a tool loop's run also running away), false positives match
	// nothing.
	Alerts, TruePositive, Explained, FalsePositive int
	// Latencies of the detected labels: wall clock from the triggering
	// event reaching Kafka to the alert on Kafka for run and session
	// kinds, event time from the injection's start for spend kinds.
	Latencies []time.Duration
	WallClock bool
	Misses    []string
	FalseOnes []string
}

// Precision counts explained alerts as correct.
func (k *KindStats) Precision() float64 {
	if k.Alerts == 0 {
		return 1
	}
	return float64(k.TruePositive+k.Explained) / float64(k.Alerts)
}

// Recall is the share of labels detected.
func (k *KindStats) Recall() float64 {
	if k.Labels == 0 {
		return 1
	}
	return float64(k.Detected) / float64(k.Labels)
}

// Quantile returns the q-quantile of the latencies.
func (k *KindStats) Quantile(q float64) time.Duration {
	if len(k.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(k.Latencies)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Report is the outcome of an evaluation.
type Report struct {
	Kinds    []*KindStats
	Events   int
	Consumed time.Duration
	Benign   map[string]int
	// found is, per label, how it was found ("" when missed).
	labels []labelOutcome
}

type labelOutcome struct {
	l     Label
	found string
}

var kinds = []eventv1.AnomalyKind{
	eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN,
	eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_SESSION,
	eventv1.AnomalyKind_ANOMALY_KIND_TOOL_LOOP,
	eventv1.AnomalyKind_ANOMALY_KIND_RETRY_LOOP,
	eventv1.AnomalyKind_ANOMALY_KIND_SPEND_SPIKE,
	eventv1.AnomalyKind_ANOMALY_KIND_NEW_SPEND,
}

func realtime(k eventv1.AnomalyKind) bool {
	switch k {
	case eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN,
		eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_SESSION,
		eventv1.AnomalyKind_ANOMALY_KIND_TOOL_LOOP,
		eventv1.AnomalyKind_ANOMALY_KIND_RETRY_LOOP:
		return true
	}
	return false
}

// alertView is one anomaly as first published.
type alertView struct {
	first *eventv1.Anomaly
	at    time.Time
}

func score(w *Workload, obs []Observed, stamps map[int32][]stamp) *Report {
	first := map[string]*alertView{}
	for _, o := range obs {
		id := o.Anomaly.GetAnomalyId()
		if v, ok := first[id]; !ok || o.Anomaly.GetRevision() < v.first.GetRevision() {
			first[id] = &alertView{first: o.Anomaly, at: o.At}
		}
	}
	views := make([]*alertView, 0, len(first))
	for _, v := range first {
		views = append(views, v)
	}
	sort.Slice(views, func(i, j int) bool { return views[i].at.Before(views[j].at) })

	r := &Report{Benign: map[string]int{}}
	for _, b := range w.Benign {
		r.Benign[b.Name]++
	}
	stats := map[eventv1.AnomalyKind]*KindStats{}
	for _, k := range kinds {
		stats[k] = &KindStats{Kind: k, WallClock: realtime(k)}
		r.Kinds = append(r.Kinds, stats[k])
	}
	for _, l := range w.Labels {
		stats[l.Kind].Labels++
	}

	detected := map[int]time.Duration{}
	for _, v := range views {
		ks := stats[v.first.GetKind()]
		if ks == nil {
			continue
		}
		ks.Alerts++
		same, other := match(w, v.first)
		switch {
		case same != nil:
			ks.TruePositive++
			if _, seen := detected[same.ID]; !seen {
				detected[same.ID] = latency(same, v, stamps[int32(same.ID+1)])
			}
		case other != nil:
			ks.Explained++
		default:
			ks.FalsePositive++
			ks.FalseOnes = append(ks.FalseOnes, describeFalse(w, v))
		}
	}
	for _, l := range w.Labels {
		ks := stats[l.Kind]
		d, ok := detected[l.ID]
		out := labelOutcome{l: l}
		if ok {
			out.found = fmt.Sprintf("found after %s", round(d))
		}
		r.labels = append(r.labels, out)
		if !ok {
			ks.Misses = append(ks.Misses, fmt.Sprintf("%s %s at %s %v", l.Name, l.Tenant,
				l.Start.Format(time.RFC3339), l.Attrs))
			continue
		}
		ks.Detected++
		if d >= 0 {
			ks.Latencies = append(ks.Latencies, d)
		}
	}
	return r
}

// match returns the label of the alert's own kind that it matches, or
// else a label of another kind that explains it.
func match(w *Workload, a *eventv1.Anomaly) (same, other *Label) {
	for i := range w.Labels {
		l := &w.Labels[i]
		if l.Tenant != a.GetTenantId() || !explains(l, a) {
			continue
		}
		if l.Kind == a.GetKind() {
			return l, nil
		}
		if other == nil {
			other = l
		}
	}
	return nil, other
}

func explains(l *Label, a *eventv1.Anomaly) bool {
	dims := a.GetScope().GetDimensions()
	switch a.GetKind() {
	case eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN,
		eventv1.AnomalyKind_ANOMALY_KIND_TOOL_LOOP,
		eventv1.AnomalyKind_ANOMALY_KIND_RETRY_LOOP:
		return l.Run != "" && dims["run_id"] == l.Run || shifted(l, a)
	case eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_SESSION:
		return l.Session != "" && dims["session_id"] == l.Session || shifted(l, a)
	}
	ws, we := a.GetWindowStart().AsTime(), a.GetWindowEnd().AsTime()
	if ws.After(l.End) || we.Before(l.Start) {
		return false
	}
	for k, v := range dims {
		if !slices.Contains(l.Attrs[k], v) {
			return false
		}
	}
	return true
}

// shifted reports whether level shift l explains a runaway alert: the
// shift made its agent's runs dearer than their history, so a run or
// session of that agent (or of its app, while the agent is unknown)
// crossing the threshold during the shift is the shift's doing. It is
// counted as explained, never as a runaway found.
func shifted(l *Label, a *eventv1.Anomaly) bool {
	if l.Name != "level_shift" || a.GetKind() == eventv1.AnomalyKind_ANOMALY_KIND_TOOL_LOOP ||
		a.GetKind() == eventv1.AnomalyKind_ANOMALY_KIND_RETRY_LOOP {
		return false
	}
	ws, we := a.GetWindowStart().AsTime(), a.GetWindowEnd().AsTime()
	if ws.After(l.End) || we.Before(l.Start) {
		return false
	}
	dims := a.GetScope().GetDimensions()
	for _, k := range []string{"agent", "app"} {
		if v, ok := dims[k]; ok && !slices.Contains(l.Attrs[k], v) {
			return false
		}
	}
	return true
}

var (
	moneyThreshold = regexp.MustCompile(`threshold of (\d+)\.(\d{4}) `)
	countThreshold = regexp.MustCompile(`\(threshold (\d+)\)`)
)

// latency measures a detection. For run and session kinds it is the wall
// time from the event that met the alert's own threshold reaching Kafka
// to the alert reaching Kafka; -1 when that event cannot be told. For
// spend kinds it is event time from the injection's start to the end of
// the window that alerted.
func latency(l *Label, v *alertView, st []stamp) time.Duration {
	a := v.first
	if !realtime(a.GetKind()) {
		return a.GetWindowEnd().AsTime().Sub(l.Start)
	}
	i := triggerIndex(a, st)
	if i < 0 {
		return -1
	}
	return v.at.Sub(st[i].at)
}

func triggerIndex(a *eventv1.Anomaly, st []stamp) int {
	sum := a.GetSummary()
	if m := moneyThreshold.FindStringSubmatch(sum); m != nil {
		whole, _ := strconv.ParseInt(m[1], 10, 64)
		frac, _ := strconv.ParseInt(m[2], 10, 64)
		threshold := whole*1_000_000_000 + frac*100_000
		var cost int64
		for i, s := range st {
			cost += s.cost
			if cost >= threshold {
				return i
			}
		}
		return -1
	}
	m := countThreshold.FindStringSubmatch(sum)
	if m == nil {
		return -1
	}
	threshold, _ := strconv.Atoi(m[1])
	counts := map[string]int{}
	tool := a.GetScope().GetDimensions()["tool_name"]
	for i, s := range st {
		key := ""
		switch {
		case tool != "" && s.tool == tool:
			key = "tool"
		case tool == "" && s.model && s.failed:
			key = "failed"
		case tool == "" && s.model:
			key = "prompt:" + strconv.FormatInt(s.prompt, 10)
		default:
			continue
		}
		counts[key]++
		if counts[key] >= threshold {
			return i
		}
	}
	return -1
}

func describeFalse(w *Workload, v *alertView) string {
	a := v.first
	where := ""
	for _, b := range w.Benign {
		if b.Name == "nightly_job" {
			continue // it spans the whole workload
		}
		if b.Tenant == a.GetTenantId() && !a.GetWindowEnd().AsTime().Before(b.Start) &&
			!a.GetWindowStart().AsTime().After(b.End) {
			where = " during " + b.Name
		}
	}
	// Labels near the alert help tell a detector fault from a label
	// window drawn too tight.
	near := ""
	for _, l := range w.Labels {
		if l.Tenant == a.GetTenantId() &&
			!a.GetWindowEnd().AsTime().Before(l.Start.Add(-6*time.Hour)) &&
			!a.GetWindowStart().AsTime().After(l.End.Add(6*time.Hour)) {
			near += fmt.Sprintf(" [near %s %s %v]", l.Name, l.Start.Format(time.RFC3339),
				l.Attrs["agent"])
		}
	}
	return fmt.Sprintf("%s %v %s..%s%s: %s%s", a.GetTenantId(), a.GetScope().GetDimensions(),
		a.GetWindowStart().AsTime().Format(time.RFC3339),
		a.GetWindowEnd().AsTime().Format("15:04"), where, a.GetSummary(), near)
}

// Pass reports whether every target is met.
func (r *Report) Pass() bool {
	for _, k := range r.Kinds {
		if k.Labels == 0 {
			continue
		}
		if k.Precision() < TargetPrecision || k.Recall() < TargetRecall {
			return false
		}
		if k.WallClock && k.Kind != eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_SESSION &&
			k.Quantile(0.99) > TargetLatency {
			return false
		}
	}
	return true
}

// Print writes the report as a table, with the misses and false
// positives below it.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\nevents %d, consumed in %s (%.0f events/s through Kafka and PostgreSQL)\n",
		r.Events, r.Consumed.Round(time.Millisecond), float64(r.Events)/r.Consumed.Seconds())
	fmt.Fprintf(w, "benign look-alikes: %v\n\n", r.Benign)
	fmt.Fprintf(w, "%-16s %6s %8s %6s %4s %9s %4s %9s %6s  %-24s\n", "kind", "labels", "detected",
		"alerts", "tp", "explained", "fp", "precision", "recall", "latency p50 / p99 / max")
	for _, k := range r.Kinds {
		unit := "event time"
		if k.WallClock {
			unit = "wall clock"
		}
		lat := fmt.Sprintf("%s / %s / %s (%s)", round(k.Quantile(0.5)), round(k.Quantile(0.99)),
			round(k.Quantile(1)), unit)
		fmt.Fprintf(w, "%-16s %6d %8d %6d %4d %9d %4d %9.3f %6.3f  %s\n",
			strings.ToLower(strings.TrimPrefix(k.Kind.String(), "ANOMALY_KIND_")),
			k.Labels, k.Detected, k.Alerts, k.TruePositive, k.Explained, k.FalsePositive,
			k.Precision(), k.Recall(), lat)
	}
	for _, k := range r.Kinds {
		for _, m := range k.Misses {
			fmt.Fprintf(w, "missed %s: %s\n", k.Kind, m)
		}
		for _, f := range k.FalseOnes {
			fmt.Fprintf(w, "false positive %s: %s\n", k.Kind, f)
		}
	}
	verdict := "PASS"
	if !r.Pass() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\ntargets: precision and recall >= %.1f per kind, "+
		"run and loop latency p99 <= %s: %s\n",
		TargetPrecision, TargetLatency, verdict)
}

// PrintLabels writes every injected label and whether it was found, so
// that an alert without a label can be told from one near a label.
func (r *Report) PrintLabels(w io.Writer) {
	fmt.Fprintln(w, "\nlabels:")
	for _, o := range r.labels {
		found := o.found
		if found == "" {
			found = "MISSED"
		}
		fmt.Fprintf(w, "%-12s %s %s..%s run=%s session=%s agents=%v: %s\n", o.l.Name,
			o.l.Tenant, o.l.Start.Format(time.RFC3339), o.l.End.Format(time.RFC3339),
			o.l.Run, o.l.Session, o.l.Attrs["agent"], found)
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Minute)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
