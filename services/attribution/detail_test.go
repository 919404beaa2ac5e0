package attribution_test

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// pages calls fetch with each next page token until there is none, and
// returns every item; it fails past 100 pages.
func pages[T any](t *testing.T, what string, fetch func(token string) ([]T, string, error)) []T {
	t.Helper()
	var out []T
	token := ""
	for range 100 {
		items, next, err := fetch(token)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		out = append(out, items...)
		if next == "" {
			return out
		}
		token = next
	}
	t.Fatalf("%s: more than 100 pages", what)
	return nil
}

// wantStep is what a run's waterfall must say of one step.
type wantStep struct {
	ID, Model, Tool     string
	Kind                eventv1.StepKind
	Start               time.Time
	Eff, Cum            int64
	Input, Read, Output int64
}

// runsOf computes each run's steps from the records: money from first
// pricings and corrections, tokens from first pricings.
func runsOf(recs []*eventv1.PricedUsage) map[string][]wantStep {
	byRun := make(map[string]map[string]*wantStep)
	seen := make(map[string]bool)
	for _, p := range recs {
		ev := p.GetUsage()
		if ev.GetRunId() == "" || seen[p.GetPricedId()] {
			continue
		}
		seen[p.GetPricedId()] = true
		if byRun[ev.GetRunId()] == nil {
			byRun[ev.GetRunId()] = make(map[string]*wantStep)
		}
		s := byRun[ev.GetRunId()][ev.GetStepId()]
		if s == nil {
			s = &wantStep{ID: ev.GetStepId(), Model: ev.GetModel(), Tool: ev.GetToolName(),
				Kind:  ev.GetStepKind(),
				Start: ev.GetStartTime().AsTime().Truncate(time.Microsecond)}
			byRun[ev.GetRunId()][ev.GetStepId()] = s
		}
		s.Eff += p.GetEffectiveCost().GetNanos()
		if p.GetCorrectsEventId() != "" {
			continue
		}
		for _, q := range ev.GetQuantities() {
			switch q.GetKind() {
			case eventv1.QuantityKind_QUANTITY_KIND_INPUT:
				s.Input += q.GetAmount()
			case eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ:
				s.Read += q.GetAmount()
			case eventv1.QuantityKind_QUANTITY_KIND_OUTPUT:
				s.Output += q.GetAmount()
			}
		}
	}
	out := make(map[string][]wantStep)
	for run, steps := range byRun {
		var list []wantStep
		for _, s := range steps {
			list = append(list, *s)
		}
		slices.SortFunc(list, func(a, b wantStep) int {
			return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.ID, b.ID))
		})
		var cum int64
		for i := range list {
			cum += list[i].Eff
			list[i].Cum = cum
		}
		out[run] = list
	}
	return out
}

func stepOf(s *attributionv1.Step) wantStep {
	return wantStep{
		ID: s.GetStepId(), Model: s.GetModel(), Tool: s.GetToolName(), Kind: s.GetKind(),
		Start: s.GetStartTime().AsTime(), Eff: s.GetEffectiveCostNanos(),
		Cum: s.GetCumulativeCostNanos(), Input: s.GetTokens().GetInput(),
		Read: s.GetTokens().GetCacheRead(), Output: s.GetTokens().GetOutput(),
	}
}

func lastCum(steps []wantStep) int64 {
	if len(steps) == 0 {
		return 0
	}
	return steps[len(steps)-1].Cum
}

// TestRunWaterfallSessionTurnsAndListings reads every run's waterfall a
// page of two steps at a time, every session's turns a page of two runs
// at a time, and the run and session listings by cost a page of three at
// a time, all against what the records add up to.
func TestRunWaterfallSessionTurnsAndListings(t *testing.T) {
	st := newStack(t, fakeBrokers(t))
	recs := traffic(4, 25)
	st.produce(t, recs)
	st.start(t)
	st.waitCommitted(t, int64(len(recs)))
	ctx := st.as("acme-read")
	client := attributionv1.NewRunServiceClient(st.conn)

	want := runsOf(recs)
	sessionRuns := make(map[string][]string)
	runStart := make(map[string]time.Time)
	for _, p := range recs {
		ev := p.GetUsage()
		if ev.GetStepId() == "root" && p.GetCorrectsEventId() == "" {
			sessionRuns[ev.GetSessionId()] = append(sessionRuns[ev.GetSessionId()],
				ev.GetRunId())
			runStart[ev.GetRunId()] = ev.GetStartTime().AsTime()
		}
	}

	for run, steps := range want {
		var got *attributionv1.Run
		gotSteps := pages(t, "GetRun "+run, func(tok string) ([]wantStep, string, error) {
			res, err := client.GetRun(ctx, &attributionv1.GetRunRequest{
				RunId: run, PageSize: 2, PageToken: tok,
			})
			got = res.GetRun()
			var out []wantStep
			for _, s := range res.GetSteps() {
				out = append(out, stepOf(s))
			}
			return out, res.GetNextPageToken(), err
		})
		if diff := gocmp.Diff(steps, gotSteps); diff != "" {
			t.Errorf("run %s waterfall (-want +got):\n%s", run, diff)
		}
		if got.GetEffectiveCostNanos() != lastCum(steps) || got.GetSteps() != int64(len(steps)) {
			t.Errorf("run %s: %d nanos over %d steps, want %d over %d", run,
				got.GetEffectiveCostNanos(), got.GetSteps(), lastCum(steps), len(steps))
		}
	}

	for session, runs := range sessionRuns {
		slices.SortFunc(runs, func(a, b string) int {
			return cmp.Or(runStart[a].Compare(runStart[b]), cmp.Compare(a, b))
		})
		type turn struct {
			N        int64
			Run      string
			Eff, Cum int64
		}
		var wantTurns []turn
		var cum int64
		for i, r := range runs {
			cum += lastCum(want[r])
			wantTurns = append(wantTurns, turn{int64(i + 1), r, lastCum(want[r]), cum})
		}
		var sess *attributionv1.Session
		got := pages(t, "GetSession "+session, func(tok string) ([]turn, string, error) {
			res, err := client.GetSession(ctx, &attributionv1.GetSessionRequest{
				SessionId: session, PageSize: 2, PageToken: tok,
			})
			sess = res.GetSession()
			var out []turn
			for _, tn := range res.GetTurns() {
				out = append(out, turn{tn.GetTurn(), tn.GetRun().GetRunId(),
					tn.GetRun().GetEffectiveCostNanos(), tn.GetCumulativeCostNanos()})
			}
			return out, res.GetNextPageToken(), err
		})
		if diff := gocmp.Diff(wantTurns, got); diff != "" {
			t.Errorf("session %s turns (-want +got):\n%s", session, diff)
		}
		if sess.GetRuns() != int64(len(runs)) || sess.GetEffectiveCostNanos() != cum {
			t.Errorf("session %s: %d runs, %d nanos; want %d, %d", session, sess.GetRuns(),
				sess.GetEffectiveCostNanos(), len(runs), cum)
		}
	}

	checkMostExpensive(t, st, want, sessionRuns)
}

// checkMostExpensive lists runs and sessions by cost, three a page.
func checkMostExpensive(t *testing.T, st *stack, runs map[string][]wantStep,
	sessions map[string][]string,
) {
	t.Helper()
	ctx := st.as("acme-read")
	client := attributionv1.NewRunServiceClient(st.conn)
	type item struct {
		ID  string
		Eff int64
	}
	byCost := func(items []item) {
		slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(b.Eff, a.Eff) })
	}
	var wantRuns, wantSessions []item
	for id, steps := range runs {
		wantRuns = append(wantRuns, item{id, lastCum(steps)})
	}
	for id, rs := range sessions {
		var eff int64
		for _, r := range rs {
			eff += lastCum(runs[r])
		}
		wantSessions = append(wantSessions, item{id, eff})
	}
	byCost(wantRuns)
	byCost(wantSessions)

	gotRuns := pages(t, "ListRuns", func(tok string) ([]item, string, error) {
		res, err := client.ListRuns(ctx, &attributionv1.ListRunsRequest{
			OrderBy: attributionv1.ListOrder_LIST_ORDER_COST_DESC, PageSize: 3, PageToken: tok,
		})
		var out []item
		for _, r := range res.GetRuns() {
			out = append(out, item{r.GetRunId(), r.GetEffectiveCostNanos()})
		}
		return out, res.GetNextPageToken(), err
	})
	gotSessions := pages(t, "ListSessions", func(tok string) ([]item, string, error) {
		res, err := client.ListSessions(ctx, &attributionv1.ListSessionsRequest{
			OrderBy: attributionv1.ListOrder_LIST_ORDER_COST_DESC, PageSize: 3, PageToken: tok,
		})
		var out []item
		for _, s := range res.GetSessions() {
			out = append(out, item{s.GetSessionId(), s.GetEffectiveCostNanos()})
		}
		return out, res.GetNextPageToken(), err
	})
	// Equal costs may come in any order: compare the costs in order, and
	// the sets of ids.
	for _, c := range []struct {
		what      string
		want, got []item
	}{{"runs", wantRuns, gotRuns}, {"sessions", wantSessions, gotSessions}} {
		costs := func(items []item) []int64 {
			var out []int64
			for _, it := range items {
				out = append(out, it.Eff)
			}
			return out
		}
		if diff := gocmp.Diff(costs(c.want), costs(c.got)); diff != "" {
			t.Errorf("%s by cost, costs in order (-want +got):\n%s", c.what, diff)
		}
		sortByID := func(items []item) []item {
			out := slices.Clone(items)
			slices.SortFunc(out, func(a, b item) int { return cmp.Compare(a.ID, b.ID) })
			return out
		}
		if diff := gocmp.Diff(sortByID(c.want), sortByID(c.got)); diff != "" {
			t.Errorf("%s by cost (-want +got):\n%s", c.what, diff)
		}
	}
}

// TestPagingOnEveryList pages through every listing with small pages and
// compares the result with one large page; a token is refused by another
// request.
func TestPagingOnEveryList(t *testing.T) {
	st := newStack(t, fakeBrokers(t))
	recs := traffic(6, 20)
	st.produce(t, recs)
	st.start(t)
	st.waitCommitted(t, int64(len(recs)))
	ctx, admin := st.as("acme-read"), st.as("acme-admin")

	cats := attributionv1.NewCostCategoryServiceClient(st.conn)
	persp := attributionv1.NewPerspectiveServiceClient(st.conn)
	for i := range 5 {
		c := teamsCategory()
		c.CategoryId = fmt.Sprintf("teams-%d", i)
		if _, err := cats.CreateCostCategory(admin,
			&attributionv1.CreateCostCategoryRequest{Category: c}); err != nil {
			t.Fatal(err)
		}
		_, err := persp.CreatePerspective(admin, &attributionv1.CreatePerspectiveRequest{
			Perspective: &attributionv1.Perspective{
				PerspectiveId: fmt.Sprintf("view-%d", i), Query: costQuery(),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	explorer := attributionv1.NewCostExplorerServiceClient(st.conn)
	econ := attributionv1.NewUnitEconomicsServiceClient(st.conn)
	runs := attributionv1.NewRunServiceClient(st.conn)

	query := costQuery()
	query.GroupBy = append(query.GroupBy,
		&attributionv1.DimensionRef{Dimension: attributionv1.Dimension_DIMENSION_MODEL})
	lists := []struct {
		name string
		list func(size int32, token string) ([]string, string, error)
	}{
		{"QueryCosts", func(size int32, tok string) ([]string, string, error) {
			r, err := explorer.QueryCosts(ctx, &attributionv1.QueryCostsRequest{
				Query: query, PageSize: size, PageToken: tok})
			var out []string
			for _, s := range r.GetSeries() {
				out = append(out, fmt.Sprint(s.GetGroupValues(), s.GetTotal().GetEvents()))
			}
			return out, r.GetNextPageToken(), err
		}},
		{"ListCostCategories", func(size int32, tok string) ([]string, string, error) {
			r, err := cats.ListCostCategories(ctx, &attributionv1.ListCostCategoriesRequest{
				PageSize: size, PageToken: tok})
			var out []string
			for _, c := range r.GetCategories() {
				out = append(out, c.GetCategoryId())
			}
			return out, r.GetNextPageToken(), err
		}},
		{"ListPerspectives", func(size int32, tok string) ([]string, string, error) {
			r, err := persp.ListPerspectives(ctx, &attributionv1.ListPerspectivesRequest{
				PageSize: size, PageToken: tok})
			var out []string
			for _, p := range r.GetPerspectives() {
				out = append(out, p.GetPerspectiveId())
			}
			return out, r.GetNextPageToken(), err
		}},
		{"GetUnitEconomics", func(size int32, tok string) ([]string, string, error) {
			r, err := econ.GetUnitEconomics(ctx, &attributionv1.GetUnitEconomicsRequest{
				TimeRange: costQuery().GetTimeRange(), PageSize: size, PageToken: tok,
				GroupBy: attributionv1.EconomicsGrouping_ECONOMICS_GROUPING_AGENT})
			var out []string
			for _, g := range r.GetGroups() {
				out = append(out, g.GetGroupValue())
			}
			return out, r.GetNextPageToken(), err
		}},
		{"ListRuns", func(size int32, tok string) ([]string, string, error) {
			r, err := runs.ListRuns(ctx, &attributionv1.ListRunsRequest{
				Filter:   &attributionv1.RunFilter{Lookback: durationpb.New(72 * time.Hour)},
				PageSize: size, PageToken: tok})
			var out []string
			for _, x := range r.GetRuns() {
				out = append(out, x.GetRunId())
			}
			return out, r.GetNextPageToken(), err
		}},
		{"ListSessions", func(size int32, tok string) ([]string, string, error) {
			r, err := runs.ListSessions(ctx, &attributionv1.ListSessionsRequest{
				PageSize: size, PageToken: tok})
			var out []string
			for _, x := range r.GetSessions() {
				out = append(out, x.GetSessionId())
			}
			return out, r.GetNextPageToken(), err
		}},
	}
	for _, l := range lists {
		whole, next, err := l.list(1000, "")
		if err != nil || next != "" || len(whole) < 3 {
			t.Fatalf("%s in one page: %d items, next %q, error %v; want 3 or more, no next",
				l.name, len(whole), next, err)
		}
		paged := pages(t, l.name, func(tok string) ([]string, string, error) {
			return l.list(2, tok)
		})
		if diff := gocmp.Diff(whole, paged); diff != "" {
			t.Errorf("%s paged by two (-one page +pages):\n%s", l.name, diff)
		}
		_, token, _ := l.list(2, "")
		for _, other := range lists {
			if other.name != l.name {
				_, _, err := other.list(2, token)
				wantCode(t, other.name+" with a token of "+l.name, err, codes.InvalidArgument)
				break
			}
		}
	}
	_, err := explorer.QueryCosts(ctx, &attributionv1.QueryCostsRequest{
		Query: query, PageSize: -1})
	wantCode(t, "a negative page size", err, codes.InvalidArgument)
}

// TestPerspectiveCRUD creates, reads, updates (with and without the
// current revision), runs and deletes a perspective.
func TestPerspectiveCRUD(t *testing.T) {
	st := newStack(t, fakeBrokers(t))
	recs := traffic(8, 5)
	st.produce(t, recs)
	st.start(t)
	st.waitCommitted(t, int64(len(recs)))
	admin := st.as("acme-admin")
	client := attributionv1.NewPerspectiveServiceClient(st.conn)
	explorer := attributionv1.NewCostExplorerServiceClient(st.conn)

	p := &attributionv1.Perspective{PerspectiveId: "by-agent", DisplayName: "By agent",
		Query: costQuery()}
	created, err := client.CreatePerspective(admin,
		&attributionv1.CreatePerspectiveRequest{Perspective: p})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CreatePerspective(admin,
		&attributionv1.CreatePerspectiveRequest{Perspective: p})
	wantCode(t, "creating it twice", err, codes.AlreadyExists)

	got, err := client.GetPerspective(admin,
		&attributionv1.GetPerspectiveRequest{PerspectiveId: "by-agent"})
	if err != nil || got.GetPerspective().GetDisplayName() != "By agent" {
		t.Fatalf("GetPerspective: %v, %v", got, err)
	}

	edit := got.GetPerspective()
	edit.DisplayName = "By model"
	edit.Query.GroupBy = []*attributionv1.DimensionRef{
		{Dimension: attributionv1.Dimension_DIMENSION_MODEL},
	}
	updated, err := client.UpdatePerspective(admin,
		&attributionv1.UpdatePerspectiveRequest{Perspective: edit})
	if err != nil {
		t.Fatal(err)
	}
	if updated.GetPerspective().GetRevision() <= created.GetPerspective().GetRevision() {
		t.Errorf("revision %d after the update, was %d", updated.GetPerspective().GetRevision(),
			created.GetPerspective().GetRevision())
	}
	_, err = client.UpdatePerspective(admin,
		&attributionv1.UpdatePerspectiveRequest{Perspective: edit}) // stale revision
	wantCode(t, "updating with a stale revision", err, codes.Aborted)

	res, err := explorer.QueryCosts(admin,
		&attributionv1.QueryCostsRequest{PerspectiveId: "by-agent", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	models := make(map[string]bool)
	for _, p := range recs {
		models[p.GetUsage().GetModel()] = true
	}
	if len(res.GetSeries()) != len(models) {
		t.Errorf("the edited perspective gives %d series, want one per model (%d)",
			len(res.GetSeries()), len(models))
	}

	if _, err := client.DeletePerspective(admin,
		&attributionv1.DeletePerspectiveRequest{PerspectiveId: "by-agent"}); err != nil {
		t.Fatal(err)
	}
	_, err = client.GetPerspective(admin,
		&attributionv1.GetPerspectiveRequest{PerspectiveId: "by-agent"})
	wantCode(t, "reading a deleted perspective", err, codes.NotFound)
	_, err = explorer.QueryCosts(admin, &attributionv1.QueryCostsRequest{PerspectiveId: "by-agent"})
	wantCode(t, "querying a deleted perspective", err, codes.NotFound)
}
