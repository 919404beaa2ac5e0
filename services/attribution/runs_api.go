package attribution

import (
	"context"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/apierr"
	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/detail"
)

// GetRun returns a run and a page of its step waterfall.
func (s *Service) GetRun(ctx context.Context, req *attributionv1.GetRunRequest) (
	*attributionv1.GetRunResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	scope := "run/" + req.GetRunId()
	offset, err := decodeToken(req.GetPageToken(), scope)
	if err != nil {
		return nil, err
	}
	r, err := s.detail.Run(ctx, t, req.GetRunId())
	if err != nil {
		return nil, s.toStatus(ctx, err, "run", req.GetRunId())
	}
	steps, err := s.detail.Steps(ctx, t, req.GetRunId(), offset, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err, "run", req.GetRunId())
	}

	out := &attributionv1.GetRunResponse{Run: runProto(r)}
	out.NextPageToken = nextToken(scope, offset, size, len(steps) > size)
	for _, st := range steps[:min(size, len(steps))] {
		out.Steps = append(out.Steps, stepProto(&st))
	}
	return out, nil
}

// GetSession returns a session and a page of its turns.
func (s *Service) GetSession(ctx context.Context, req *attributionv1.GetSessionRequest) (
	*attributionv1.GetSessionResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	scope := "session/" + req.GetSessionId()
	offset, err := decodeToken(req.GetPageToken(), scope)
	if err != nil {
		return nil, err
	}
	sess, err := s.detail.Session(ctx, t, req.GetSessionId())
	if err != nil {
		return nil, s.toStatus(ctx, err, "session", req.GetSessionId())
	}
	turns, err := s.detail.Turns(ctx, t, req.GetSessionId(), offset, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err, "session", req.GetSessionId())
	}

	out := &attributionv1.GetSessionResponse{Session: sessionProto(sess)}
	out.NextPageToken = nextToken(scope, offset, size, len(turns) > size)
	for _, tn := range turns[:min(size, len(turns))] {
		out.Turns = append(out.Turns, &attributionv1.SessionTurn{
			Turn: tn.N, Run: runProto(&tn.Run), CumulativeCostNanos: tn.Cumulative,
		})
	}
	return out, nil
}

// ListRuns lists runs, latest or most expensive first.
func (s *Service) ListRuns(ctx context.Context, req *attributionv1.ListRunsRequest) (
	*attributionv1.ListRunsResponse, error,
) {
	t, f, order, page, err := s.listing(ctx, "runs", req.GetFilter(), req.GetOrderBy(),
		req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	runs, err := s.detail.ListRuns(ctx, t, f, order, page.offset, page.size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err, "runs", "")
	}
	out := &attributionv1.ListRunsResponse{
		NextPageToken: nextToken(page.scope, page.offset, page.size, len(runs) > page.size),
	}
	for _, r := range runs[:min(page.size, len(runs))] {
		out.Runs = append(out.Runs, runProto(&r))
	}
	return out, nil
}

// ListSessions lists sessions, latest or most expensive first.
func (s *Service) ListSessions(ctx context.Context, req *attributionv1.ListSessionsRequest) (
	*attributionv1.ListSessionsResponse, error,
) {
	filter := proto.Clone(req.GetFilter()).(*attributionv1.RunFilter)
	if filter != nil {
		filter.SessionId, filter.CategoryId, filter.CategoryBucket = "", "", ""
	}
	t, f, order, page, err := s.listing(ctx, "sessions", filter, req.GetOrderBy(),
		req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	sessions, err := s.detail.ListSessions(ctx, t, f, order, page.offset, page.size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err, "sessions", "")
	}
	out := &attributionv1.ListSessionsResponse{
		NextPageToken: nextToken(page.scope, page.offset, page.size, len(sessions) > page.size),
	}
	for _, ss := range sessions[:min(page.size, len(sessions))] {
		out.Sessions = append(out.Sessions, sessionProto(&ss))
	}
	return out, nil
}

type page struct {
	scope        string
	offset, size int
}

// listing reads what ListRuns and ListSessions share: the tenant, the
// filter, the order and the page.
func (s *Service) listing(ctx context.Context, kind string, rf *attributionv1.RunFilter,
	order attributionv1.ListOrder, size int32, token string,
) (string, detail.Filter, detail.Order, page, error) {
	var f detail.Filter
	t, err := tenant(ctx)
	if err != nil {
		return "", f, 0, page{}, err
	}
	p := page{scope: kind + scopeOf(&attributionv1.ListRunsRequest{Filter: rf, OrderBy: order})}
	if p.size, err = pageSize(size); err != nil {
		return "", f, 0, p, err
	}
	if p.offset, err = decodeToken(token, p.scope); err != nil {
		return "", f, 0, p, err
	}
	f.Start, f.End, err = timeRange("filter", rf.GetTimeRange(), rf.GetLookback(), false)
	if err != nil {
		return "", f, 0, p, err
	}
	f.App, f.Agent, f.Customer = rf.GetApp(), rf.GetAgent(), rf.GetCustomerId()
	f.Session = rf.GetSessionId()
	if err := s.runCategory(ctx, t, rf, &f); err != nil {
		return "", f, 0, p, err
	}
	o := detail.ByStart
	if order == attributionv1.ListOrder_LIST_ORDER_COST_DESC {
		o = detail.ByCost
	}
	return t, f, o, p, nil
}

func (s *Service) runCategory(ctx context.Context, t string, rf *attributionv1.RunFilter,
	f *detail.Filter,
) error {
	id, bucket := rf.GetCategoryId(), rf.GetCategoryBucket()
	switch {
	case id == "" && bucket == "":
		return nil
	case id == "" || bucket == "":
		return apierr.Invalid("filter.category_bucket",
			"category_id and category_bucket go together")
	}
	c, err := s.cats.Get(ctx, t, id)
	if err != nil {
		return s.toStatus(ctx, err, categoryKind, id)
	}
	f.Category, f.Bucket = c, bucket
	return nil
}

func runProto(r *detail.Run) *attributionv1.Run {
	return &attributionv1.Run{
		RunId: r.ID, TraceId: r.TraceID, Agent: r.Agent, AgentName: r.AgentName,
		AgentVersion: r.AgentVersion, SessionId: r.Session, App: r.App,
		CustomerId: r.Customer, Environment: r.Environment,
		StartTime: timestamppb.New(r.Start), Duration: durationpb.New(r.End.Sub(r.Start)),
		Currency: r.Currency, EffectiveCostNanos: r.Eff, ListCostNanos: r.List,
		Steps: r.Steps, Requests: r.Requests, Errors: r.Errors, Tokens: r.Tokens,
		UnpricedEvents: r.Unpriced,
	}
}

func stepProto(s *detail.Step) *attributionv1.Step {
	t := s.Tokens
	return &attributionv1.Step{
		StepId: s.ID, ParentStepId: s.Parent, Kind: eventv1.StepKind(s.Kind), Agent: s.Agent,
		Provider: s.Provider, Model: s.Model, ToolName: s.Tool, Operation: s.Operation,
		Status: eventv1.CallStatus(s.Status), StartTime: timestamppb.New(s.Start),
		Duration: durationpb.New(s.End.Sub(s.Start)),
		Tokens: &attributionv1.TokenCounts{
			Input: t[0], CacheRead: t[1], CacheWrite_5M: t[2], CacheWrite_1H: t[3], Output: t[4],
			Reasoning: t[5], InputAudio: t[6], OutputAudio: t[7], InputImage: t[8],
			OutputImage: t[9],
		},
		EffectiveCostNanos: s.Eff, ListCostNanos: s.List, CumulativeCostNanos: s.Cumulative,
		Requests: s.Requests, UnpricedEvents: s.Unpriced,
	}
}

func sessionProto(s *detail.Session) *attributionv1.Session {
	return &attributionv1.Session{
		SessionId: s.ID, Agent: s.Agent, App: s.App, CustomerId: s.Customer,
		Environment: s.Environment, StartTime: timestamppb.New(s.Start),
		Duration: durationpb.New(s.End.Sub(s.Start)), Currency: s.Currency, Runs: s.Runs,
		EffectiveCostNanos: s.Eff, ListCostNanos: s.List, Requests: s.Requests,
		UnpricedEvents: s.Unpriced,
	}
}
