package attribution

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/apierr"
	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/explore"
)

// timeRange resolves a range: a fixed one, else lookback before now.
// With neither, optional ranges are open (zero times) and required ones
// are an error.
func timeRange(field string, tr *attributionv1.TimeRange, lookback *durationpb.Duration,
	required bool,
) (time.Time, time.Time, error) {
	var v apierr.Violations
	switch {
	case tr.GetStartTime() != nil || tr.GetEndTime() != nil:
		if !tr.GetStartTime().IsValid() {
			v.Add(field+".time_range.start_time", "is required with end_time")
		}
		if !tr.GetEndTime().IsValid() {
			v.Add(field+".time_range.end_time", "is required with start_time")
		}
		if err := v.Err(); err != nil {
			return time.Time{}, time.Time{}, err
		}
		return tr.GetStartTime().AsTime(), tr.GetEndTime().AsTime(), nil
	case lookback != nil:
		if !lookback.IsValid() || lookback.AsDuration() <= 0 {
			return time.Time{}, time.Time{}, apierr.Invalid(field+".lookback", "must be positive")
		}
		now := time.Now().UTC()
		return now.Add(-lookback.AsDuration()), now, nil
	case required:
		return time.Time{}, time.Time{}, apierr.Invalid(field+".time_range",
			"is required, or a lookback")
	}
	return time.Time{}, time.Time{}, nil
}

func refFromProto(field string, r *attributionv1.DimensionRef) (explore.Ref, error) {
	d := r.GetDimension()
	if d <= attributionv1.Dimension_DIMENSION_UNSPECIFIED ||
		d > attributionv1.Dimension_DIMENSION_TOKEN_TYPE {
		return explore.Ref{}, apierr.Invalid(field+".dimension", "is required")
	}
	return explore.Ref{
		Dim: dims.Dimension(d), LabelKey: r.GetLabelKey(), CategoryID: r.GetCategoryId(),
	}, nil
}

var granularities = map[attributionv1.Granularity]explore.Granularity{
	attributionv1.Granularity_GRANULARITY_HOUR:  explore.Hour,
	attributionv1.Granularity_GRANULARITY_DAY:   explore.Day,
	attributionv1.Granularity_GRANULARITY_WEEK:  explore.Week,
	attributionv1.Granularity_GRANULARITY_MONTH: explore.Month,
}

var metrics = map[attributionv1.Metric]explore.Metric{
	attributionv1.Metric_METRIC_EFFECTIVE_COST:  explore.MetricEffective,
	attributionv1.Metric_METRIC_LIST_COST:       explore.MetricList,
	attributionv1.Metric_METRIC_TOKENS:          explore.MetricTokens,
	attributionv1.Metric_METRIC_REQUESTS:        explore.MetricRequests,
	attributionv1.Metric_METRIC_RUNS:            explore.MetricRuns,
	attributionv1.Metric_METRIC_SESSIONS:        explore.MetricSessions,
	attributionv1.Metric_METRIC_EVENTS:          explore.MetricEvents,
	attributionv1.Metric_METRIC_UNPRICED_EVENTS: explore.MetricUnpriced,
}

// queryFromProto converts an explorer query; field prefixes violations.
func queryFromProto(field string, p *attributionv1.CostQuery) (explore.Query, error) {
	start, end, err := timeRange(field, p.GetTimeRange(), p.GetLookback(), true)
	if err != nil {
		return explore.Query{}, err
	}
	q := explore.Query{Start: start, End: end, TopN: int(p.GetTopN())}
	var ok bool
	if q.Granularity, ok = granularities[p.GetGranularity()]; !ok {
		return q, apierr.Invalid(field+".granularity", "is required")
	}
	for i, g := range p.GetGroupBy() {
		r, err := refFromProto(fmt.Sprintf("%s.group_by[%d]", field, i), g)
		if err != nil {
			return q, err
		}
		q.GroupBy = append(q.GroupBy, r)
	}
	for i, f := range p.GetFilters() {
		r, err := refFromProto(fmt.Sprintf("%s.filters[%d].dimension", field, i),
			f.GetDimension())
		if err != nil {
			return q, err
		}
		q.Filters = append(q.Filters, explore.Filter{Ref: r, Include: f.GetInclude(),
			Exclude: f.GetExclude()})
	}
	for i, m := range p.GetMetrics() {
		bit, ok := metrics[m]
		if !ok {
			return q, apierr.Invalid(fmt.Sprintf("%s.metrics[%d]", field, i), "is unknown")
		}
		q.Metrics |= bit
	}
	return q, nil
}

func valuesProto(v explore.Values) *attributionv1.MetricValues {
	t := v.Tokens
	return &attributionv1.MetricValues{
		EffectiveCostNanos: v.Eff, ListCostNanos: v.List, Requests: v.Requests, Runs: v.Runs,
		Sessions: v.Sessions, Events: v.Events, UnpricedEvents: v.Unpriced,
		Tokens: &attributionv1.TokenCounts{
			Input: t[0], CacheRead: t[1], CacheWrite_5M: t[2], CacheWrite_1H: t[3], Output: t[4],
			Reasoning: t[5], InputAudio: t[6], OutputAudio: t[7], InputImage: t[8],
			OutputImage: t[9],
		},
	}
}

func seriesProto(s explore.Series) *attributionv1.CostSeries {
	out := &attributionv1.CostSeries{
		GroupValues: s.Groups, Others: s.Others, Currency: s.Currency,
		Total: valuesProto(s.Total),
	}
	for _, p := range s.Points {
		out.Points = append(out.Points, &attributionv1.CostPoint{
			BucketStart: timestamppb.New(p.Start), Values: valuesProto(p.Values),
		})
	}
	return out
}

func rangeProto(start, end time.Time) *attributionv1.TimeRange {
	return &attributionv1.TimeRange{
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(end),
	}
}
