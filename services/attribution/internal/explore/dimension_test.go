package explore_test

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/explore"
)

// eventDims are the dimensions whose value an event carries itself (the
// agent ones are resolved by the trace join and have tests of their own),
// with that value.
var eventDims = []struct {
	ref   explore.Ref
	value func(*eventv1.UsageEvent) string
}{
	{explore.Ref{Dim: dims.Provider}, (*eventv1.UsageEvent).GetProvider},
	{explore.Ref{Dim: dims.Account}, (*eventv1.UsageEvent).GetAccount},
	{explore.Ref{Dim: dims.Project}, (*eventv1.UsageEvent).GetProject},
	{explore.Ref{Dim: dims.Model}, (*eventv1.UsageEvent).GetModel},
	{explore.Ref{Dim: dims.ModelVersion}, (*eventv1.UsageEvent).GetModelVersion},
	{explore.Ref{Dim: dims.Region}, (*eventv1.UsageEvent).GetRegion},
	{explore.Ref{Dim: dims.ServiceTier}, (*eventv1.UsageEvent).GetServiceTier},
	{explore.Ref{Dim: dims.InferenceProfile}, (*eventv1.UsageEvent).GetInferenceProfile},
	{explore.Ref{Dim: dims.Operation}, (*eventv1.UsageEvent).GetOperation},
	{explore.Ref{Dim: dims.App}, (*eventv1.UsageEvent).GetApp},
	{explore.Ref{Dim: dims.Customer}, (*eventv1.UsageEvent).GetCustomerId},
	{explore.Ref{Dim: dims.Environment}, (*eventv1.UsageEvent).GetEnvironment},
	{explore.Ref{Dim: dims.Source}, func(ev *eventv1.UsageEvent) string {
		return ev.GetSource().GetName()
	}},
	{explore.Ref{Dim: dims.Currency}, func(*eventv1.UsageEvent) string { return "USD" }},
	{explore.Ref{Dim: dims.Label, LabelKey: "team"}, func(ev *eventv1.UsageEvent) string {
		return ev.GetLabels()["team"]
	}},
}

// costBy sums the effective cost of sent events by a dimension's value,
// keeping those that keep allows.
func costBy(sent []*eventv1.PricedUsage, value func(*eventv1.UsageEvent) string,
	keep func(*eventv1.UsageEvent) bool,
) map[string]int64 {
	out := make(map[string]int64)
	for _, p := range sent {
		if ev := p.GetUsage(); keep(ev) {
			out[value(ev)] += p.GetEffectiveCost().GetNanos()
		}
	}
	return out
}

func all(*eventv1.UsageEvent) bool { return true }

// TestEveryDimensionGroupsAndFilters groups by each dimension and checks
// the cost per value against the events; then it keeps one value with an
// include filter and drops it with an exclude filter, grouped by model.
func TestEveryDimensionGroupsAndFilters(t *testing.T) {
	f := newFixture(t)
	model := (*eventv1.UsageEvent).GetModel
	for _, d := range eventDims {
		name := dims.Name(d.ref.Dim)
		want := costBy(f.sent, d.value, all)
		if len(want) < 2 && d.ref.Dim != dims.Currency {
			t.Fatalf("%s: the traffic has %d values; the test needs two", name, len(want))
		}
		q := wholeRange(explore.Day)
		q.GroupBy = []explore.Ref{d.ref}
		if diff := cmp.Diff(want, byModel(f.query(t, "acme", q))); diff != "" {
			t.Errorf("grouped by %s (-want +got):\n%s", name, diff)
		}

		var values []string
		for v := range want {
			values = append(values, v)
		}
		slices.Sort(values)
		picked := values[len(values)-1]
		is := func(ev *eventv1.UsageEvent) bool { return d.value(ev) == picked }
		isNot := func(ev *eventv1.UsageEvent) bool { return !is(ev) }

		q.GroupBy = []explore.Ref{{Dim: dims.Model}}
		q.Filters = []explore.Filter{{Ref: d.ref, Include: []string{picked, "no-such-value"}}}
		if diff := cmp.Diff(costBy(f.sent, model, is),
			byModel(f.query(t, "acme", q))); diff != "" {
			t.Errorf("%s in [%q] (-want +got):\n%s", name, picked, diff)
		}
		q.Filters = []explore.Filter{{Ref: d.ref, Exclude: []string{picked}}}
		wantOut := costBy(f.sent, model, isNot)
		if diff := cmp.Diff(wantOut, byModel(f.query(t, "acme", q))); diff != "" {
			t.Errorf("%s not in [%q] (-want +got):\n%s", name, picked, diff)
		}
	}
}

// TestTokenTypeFilter keeps the output lines only: their cost and tokens.
func TestTokenTypeFilter(t *testing.T) {
	f := newFixture(t)
	var wantEff, wantTokens int64
	for _, p := range f.sent {
		for _, cl := range p.GetCostLines() {
			if cl.GetKind() == eventv1.QuantityKind_QUANTITY_KIND_OUTPUT {
				wantEff += cl.GetEffectiveCost().GetNanos()
			}
		}
		for _, q := range p.GetUsage().GetQuantities() {
			if q.GetKind() == eventv1.QuantityKind_QUANTITY_KIND_OUTPUT {
				wantTokens += q.GetAmount()
			}
		}
	}
	q := wholeRange(explore.Day)
	q.Metrics = explore.MetricEffective | explore.MetricTokens
	q.Filters = []explore.Filter{{Ref: explore.Ref{Dim: dims.TokenType},
		Include: []string{"output"}}}
	res := f.query(t, "acme", q)
	if len(res.Series) != 1 {
		t.Fatalf("%d series, want 1", len(res.Series))
	}
	got := res.Series[0].Total
	if got.Eff != wantEff || got.Tokens[4] != wantTokens || got.Tokens[0] != 0 {
		t.Errorf("output only: %d nanos, %d output and %d input tokens; want %d, %d and 0",
			got.Eff, got.Tokens[4], got.Tokens[0], wantEff, wantTokens)
	}
}

// TestCSVExport checks the export's header and that its rows are the
// query's points, top-N "others" included.
func TestCSVExport(t *testing.T) {
	f := newFixture(t)
	q := wholeRange(explore.Day)
	q.Metrics = explore.MetricEffective | explore.MetricTokens | explore.MetricRequests
	q.GroupBy = []explore.Ref{{Dim: dims.Model}, {Dim: dims.Label, LabelKey: "team"}}
	q.TopN = 2
	res := f.query(t, "acme", q)
	out, err := explore.CSV(res, q)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v", err)
	}
	wantHeader := []string{"bucket_start", "model", "label:team", "currency",
		"effective_cost_nanos", "tokens_input", "tokens_cache_read", "tokens_cache_write_5m",
		"tokens_cache_write_1h", "tokens_output", "tokens_reasoning", "tokens_input_audio",
		"tokens_output_audio", "tokens_input_image", "tokens_output_image", "requests"}
	if diff := cmp.Diff(wantHeader, recs[0]); diff != "" {
		t.Fatalf("header (-want +got):\n%s", diff)
	}

	var want [][]string
	for _, s := range res.Series {
		groups := s.Groups
		if s.Others {
			groups = []string{explore.OthersValue, explore.OthersValue}
		}
		for _, p := range s.Points {
			row := append([]string{p.Start.Format(time.RFC3339)}, groups...)
			row = append(row, s.Currency, strconv.FormatInt(p.Eff, 10))
			for _, n := range p.Tokens {
				row = append(row, strconv.FormatInt(n, 10))
			}
			want = append(want, append(row, strconv.FormatInt(p.Requests, 10)))
		}
	}
	if diff := cmp.Diff(want, recs[1:]); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	var total int64
	for _, r := range recs[1:] {
		n, _ := strconv.ParseInt(r[4], 10, 64)
		total += n
	}
	if wantTotal := sumEff(f.sent); total != wantTotal {
		t.Errorf("the export's cost adds up to %d, the events' to %d", total, wantTotal)
	}
	if last := recs[len(recs)-1]; last[1] != explore.OthersValue {
		t.Errorf("last row %v, want the others series", last)
	}
}

func sumEff(sent []*eventv1.PricedUsage) int64 {
	var n int64
	for _, p := range sent {
		n += p.GetEffectiveCost().GetNanos()
	}
	return n
}
