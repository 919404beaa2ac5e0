package explore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/services/attribution/internal/category"
	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/explore"
	"github.com/costplane/costplane/services/attribution/internal/fake"
)

// agentCategory puts the agents in a into bucket A, other agents into B,
// and everything without an agent into the default bucket.
func agentCategory(a ...string) *category.Category {
	return &category.Category{
		ID: "teams", Name: "Teams",
		Rules: []category.Rule{
			{Bucket: "A", Conditions: []category.Condition{
				{Ref: category.Ref{Dim: dims.Agent}, Op: category.OpIn, Values: a},
			}},
			{Bucket: "B", Conditions: []category.Condition{
				{Ref: category.Ref{Dim: dims.Agent}, Op: category.OpPrefix,
					Values: []string{"agent-"}},
				{Ref: category.Ref{Dim: dims.Label, LabelKey: "team"}, Op: category.OpExists},
			}},
		},
	}
}

func byBucket(res *explore.Result) map[string]int64 {
	out := make(map[string]int64)
	for _, s := range res.Series {
		out[s.Groups[0]] += s.Total.Eff
	}
	return out
}

func TestCategoryEditReslicesHistory(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, err := f.cats.Create(ctx, "acme", agentCategory("agent-0"))
	if err != nil {
		t.Fatal(err)
	}
	want := fake.Expected(f.sent)
	q := wholeRange(explore.Day)
	q.GroupBy = []explore.Ref{{Dim: dims.Category, CategoryID: "teams"}}

	others := want["agent-1"].Effective + want["agent-2"].Effective + want["agent-3"].Effective
	wantBuckets := map[string]int64{
		"A": want["agent-0"].Effective, "B": others, "Unattributed": want[""].Effective,
	}
	if diff := cmp.Diff(wantBuckets, byBucket(f.query(t, "acme", q))); diff != "" {
		t.Errorf("by bucket (-want +got):\n%s", diff)
	}

	edited := agentCategory("agent-0", "agent-1")
	edited.Revision, edited.Default = c.Revision, "Shared platform"
	if _, err := f.cats.Update(ctx, "acme", edited); err != nil {
		t.Fatal(err)
	}
	wantBuckets = map[string]int64{
		"A":               want["agent-0"].Effective + want["agent-1"].Effective,
		"B":               want["agent-2"].Effective + want["agent-3"].Effective,
		"Shared platform": want[""].Effective,
	}
	if diff := cmp.Diff(wantBuckets, byBucket(f.query(t, "acme", q))); diff != "" {
		t.Errorf("after the edit, by bucket (-want +got):\n%s", diff)
	}

	q.Filters = []explore.Filter{{
		Ref:     explore.Ref{Dim: dims.Category, CategoryID: "teams"},
		Include: []string{"A"},
	}}
	q.GroupBy = []explore.Ref{{Dim: dims.Agent}}
	got := byBucket(f.query(t, "acme", q))
	wantAgents := map[string]int64{
		"agent-0": want["agent-0"].Effective, "agent-1": want["agent-1"].Effective,
	}
	if diff := cmp.Diff(wantAgents, got); diff != "" {
		t.Errorf("filtered to bucket A, by agent (-want +got):\n%s", diff)
	}
}

// TestSharedCostSplitsAddUpExactly splits the unattributed bucket over A
// and B by each method; in every time bucket the split amounts add up to
// the unsplit total, to the nano.
func TestSharedCostSplitsAddUpExactly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	base := agentCategory("agent-0")
	if _, err := f.cats.Create(ctx, "acme", base); err != nil {
		t.Fatal(err)
	}
	q := wholeRange(explore.Hour)
	q.Metrics = explore.MetricEffective | explore.MetricList
	q.GroupBy = []explore.Ref{{Dim: dims.Category, CategoryID: "teams"}}
	unsplit := pointTotals(f.query(t, "acme", q))

	methods := []category.Split{
		{Bucket: "Unattributed", Method: category.MethodEven},
		{Bucket: "Unattributed", Method: category.MethodCost},
		{Bucket: "Unattributed", Method: category.MethodTokens},
		{Bucket: "Unattributed", Method: category.MethodRequests},
		{Bucket: "Unattributed", Method: category.MethodFixed, Shares: []category.Share{
			{Bucket: "A", BasisPoints: 3333}, {Bucket: "B", BasisPoints: 6667},
		}},
	}
	for _, split := range methods {
		c, err := f.cats.Get(ctx, "acme", "teams")
		if err != nil {
			t.Fatal(err)
		}
		c.Splits = []category.Split{split}
		if _, err := f.cats.Update(ctx, "acme", c); err != nil {
			t.Fatal(err)
		}
		res := f.query(t, "acme", q)
		if diff := cmp.Diff(unsplit, pointTotals(res)); diff != "" {
			t.Errorf("method %d: per-hour totals after the split (-want +got):\n%s",
				split.Method, diff)
		}
		for _, s := range res.Series {
			if s.Groups[0] == "Unattributed" && (s.Total.Eff != 0 || s.Total.List != 0) {
				t.Errorf("method %d: unattributed keeps %d nanos", split.Method, s.Total.Eff)
			}
		}
	}
}

// pointTotals sums the series per time bucket.
func pointTotals(res *explore.Result) map[time.Time][2]int64 {
	out := make(map[time.Time][2]int64)
	for _, s := range res.Series {
		for _, p := range s.Points {
			v := out[p.Start]
			out[p.Start] = [2]int64{v[0] + p.Eff, v[1] + p.List}
		}
	}
	return out
}

// TestFilterBySplitBucket filters on a bucket of a category with a
// shared-cost split, grouped by model. Splits are weighed within each
// group of the other columns, so the bucket keeps, per model, what the
// grouping by category and model gives it; the bucket and the rest add up
// to the whole, to the nano.
func TestFilterBySplitBucket(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := agentCategory("agent-0")
	c.Splits = []category.Split{{Bucket: "Unattributed", Method: category.MethodCost}}
	if _, err := f.cats.Create(ctx, "acme", c); err != nil {
		t.Fatal(err)
	}
	ref := explore.Ref{Dim: dims.Category, CategoryID: "teams"}
	q := wholeRange(explore.Day)
	q.GroupBy = []explore.Ref{ref, {Dim: dims.Model}}
	wantA := make(map[string]int64)
	for _, s := range f.query(t, "acme", q).Series {
		if s.Groups[0] == "Unattributed" && s.Total.Eff != 0 {
			t.Errorf("model %s: unattributed keeps %d nanos after the split", s.Groups[1],
				s.Total.Eff)
		}
		if s.Groups[0] == "A" {
			wantA[s.Groups[1]] = s.Total.Eff
		}
	}

	byModelWith := func(filter explore.Filter) map[string]int64 {
		q := wholeRange(explore.Day)
		q.GroupBy = []explore.Ref{{Dim: dims.Model}}
		q.Filters = []explore.Filter{filter}
		return byModel(f.query(t, "acme", q))
	}
	in := byModelWith(explore.Filter{Ref: ref, Include: []string{"A"}})
	if diff := cmp.Diff(wantA, in); diff != "" {
		t.Errorf("filtered to A, by model (-grouped +filtered):\n%s", diff)
	}
	var sum int64
	for _, m := range []map[string]int64{in, byModelWith(explore.Filter{Ref: ref,
		Exclude: []string{"A"}})} {
		for _, v := range m {
			sum += v
		}
	}
	if want := sumEff(f.sent); sum != want {
		t.Errorf("A and the rest add up to %d, want %d", sum, want)
	}
}
