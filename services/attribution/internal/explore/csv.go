package explore

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"time"

	"github.com/costplane/costplane/services/attribution/internal/dims"
)

// OthersValue stands for the group values of the "others" series in CSV.
const OthersValue = "(others)"

// CSV writes every point of res as one row: bucket start, the group
// values, the currency, then the asked metrics.
func CSV(res *Result, q Query) ([]byte, error) {
	if q.Metrics == 0 {
		q.Metrics = MetricEffective
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(header(q)); err != nil {
		return nil, err
	}
	for _, s := range res.Series {
		for _, p := range s.Points {
			rec := []string{p.Start.UTC().Format(time.RFC3339)}
			for i := range q.GroupBy {
				if s.Others {
					rec = append(rec, OthersValue)
				} else {
					rec = append(rec, s.Groups[i])
				}
			}
			rec = append(rec, s.Currency)
			rec = append(rec, metricFields(&p.Values, q.Metrics)...)
			if err := w.Write(rec); err != nil {
				return nil, err
			}
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

func header(q Query) []string {
	h := []string{"bucket_start"}
	for _, g := range q.GroupBy {
		name := dims.Name(g.Dim)
		switch g.Dim {
		case dims.Label:
			name += ":" + g.LabelKey
		case dims.Category:
			name += ":" + g.CategoryID
		}
		h = append(h, name)
	}
	h = append(h, "currency")
	names := []struct {
		m    Metric
		cols []string
	}{
		{MetricEffective, []string{"effective_cost_nanos"}},
		{MetricList, []string{"list_cost_nanos"}},
		{MetricTokens, tokenHeaders()},
		{MetricRequests, []string{"requests"}},
		{MetricRuns, []string{"runs"}},
		{MetricSessions, []string{"sessions"}},
		{MetricEvents, []string{"events"}},
		{MetricUnpriced, []string{"unpriced_events"}},
	}
	for _, n := range names {
		if q.Metrics&n.m != 0 {
			h = append(h, n.cols...)
		}
	}
	return h
}

func tokenHeaders() []string {
	out := make([]string, 0, dims.NumTokenKinds)
	for _, n := range dims.TokenKindNames() {
		out = append(out, "tokens_"+n)
	}
	return out
}

func metricFields(v *Values, m Metric) []string {
	var out []string
	add := func(on Metric, xs ...int64) {
		if m&on == 0 {
			return
		}
		for _, x := range xs {
			out = append(out, strconv.FormatInt(x, 10))
		}
	}
	add(MetricEffective, v.Eff)
	add(MetricList, v.List)
	add(MetricTokens, v.Tokens[:]...)
	add(MetricRequests, v.Requests)
	add(MetricRuns, v.Runs)
	add(MetricSessions, v.Sessions)
	add(MetricEvents, v.Events)
	add(MetricUnpriced, v.Unpriced)
	return out
}
