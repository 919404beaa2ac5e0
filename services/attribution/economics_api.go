package attribution

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/costplane/costplane/libs/apierr"
	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	"github.com/costplane/costplane/services/attribution/internal/econ"
)

var groupings = map[attributionv1.EconomicsGrouping]econ.Grouping{
	attributionv1.EconomicsGrouping_ECONOMICS_GROUPING_APP:      econ.ByApp,
	attributionv1.EconomicsGrouping_ECONOMICS_GROUPING_AGENT:    econ.ByAgent,
	attributionv1.EconomicsGrouping_ECONOMICS_GROUPING_CATEGORY: econ.ByCategory,
}

// GetUnitEconomics returns unit economics per group, with the previous
// period of equal length for comparison.
func (s *Service) GetUnitEconomics(ctx context.Context,
	req *attributionv1.GetUnitEconomicsRequest,
) (*attributionv1.GetUnitEconomicsResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	scoped := proto.Clone(req).(*attributionv1.GetUnitEconomicsRequest)
	scoped.PageSize, scoped.PageToken = 0, ""
	scope := scopeOf(scoped)
	offset, err := decodeToken(req.GetPageToken(), scope)
	if err != nil {
		return nil, err
	}

	er, err := s.economicsRequest(ctx, t, req)
	if err != nil {
		return nil, err
	}
	groups, err := s.econ.Compute(ctx, t, er)
	if err != nil {
		return nil, s.toStatus(ctx, err, "unit economics", "")
	}

	prevStart := er.Start.Add(-er.End.Sub(er.Start))
	out := &attributionv1.GetUnitEconomicsResponse{
		TimeRange: rangeProto(er.Start, er.End), PreviousTimeRange: rangeProto(prevStart, er.Start),
	}
	from, to := min(offset, len(groups)), min(offset+size, len(groups))
	for _, g := range groups[from:to] {
		out.Groups = append(out.Groups, economicsProto(g))
	}
	out.NextPageToken = nextToken(scope, offset, size, to < len(groups))
	return out, nil
}

func (s *Service) economicsRequest(ctx context.Context, t string,
	req *attributionv1.GetUnitEconomicsRequest,
) (econ.Request, error) {
	start, end, err := timeRange("", req.GetTimeRange(), req.GetLookback(), true)
	if err != nil {
		return econ.Request{}, err
	}
	start, end = start.UTC().Truncate(time.Hour), end.UTC().Truncate(time.Hour)
	switch {
	case !end.After(start):
		return econ.Request{}, apierr.Invalid("time_range",
			"must span at least one whole hour")
	case end.Sub(start) > 366*24*time.Hour:
		return econ.Request{}, apierr.Invalid("time_range", "must span at most a year")
	}
	r := econ.Request{Start: start, End: end, Values: req.GetGroupValues()}
	var ok bool
	if r.By, ok = groupings[req.GetGroupBy()]; !ok {
		return r, apierr.Invalid("group_by", "is required")
	}
	if r.By == econ.ByCategory {
		if req.GetCategoryId() == "" {
			return r, apierr.Invalid("category_id", "is required to group by category")
		}
		if r.Category, err = s.cats.Get(ctx, t, req.GetCategoryId()); err != nil {
			return r, s.toStatus(ctx, err, categoryKind, req.GetCategoryId())
		}
	}
	return r, nil
}

func economicsProto(g econ.Group) *attributionv1.UnitEconomics {
	return &attributionv1.UnitEconomics{
		GroupValue: g.Value, Currency: g.Currency,
		Current: periodProto(&g.Current), Previous: periodProto(&g.Previous),
		Change: &attributionv1.EconomicsChange{
			EffectiveCostBasisPoints:      g.Change.Eff,
			CostPerInferenceBasisPoints:   g.Change.CostPerInference,
			CostPerRunMeanBasisPoints:     g.Change.PerRunMean,
			CostPerSessionMeanBasisPoints: g.Change.PerSessionMean,
		},
	}
}

func periodProto(p *econ.Period) *attributionv1.PeriodEconomics {
	out := &attributionv1.PeriodEconomics{
		EffectiveCostNanos: p.Eff, Requests: p.Requests,
		CostPerInferenceNanos: p.CostPerInference, Runs: p.Runs,
		CostPerRun: distributionProto(p.PerRun), Sessions: p.Sessions,
		CostPerSession: distributionProto(p.PerSession), OutcomeValueNanos: p.OutcomeValue,
	}
	for _, o := range p.Outcomes {
		out.Outcomes = append(out.Outcomes, &attributionv1.OutcomeEconomics{
			Type: o.Type, Count: o.Count, CostPerOutcomeNanos: o.CostPerOutcome,
			ValueNanos: o.Value,
		})
	}
	if p.ROIDefined {
		out.RoiBasisPoints = proto.Int64(p.ROI)
	}
	return out
}

func distributionProto(d econ.Distribution) *attributionv1.CostDistribution {
	return &attributionv1.CostDistribution{
		MeanNanos: d.Mean, P50Nanos: d.P50, P95Nanos: d.P95, P99Nanos: d.P99, MaxNanos: d.Max,
	}
}
