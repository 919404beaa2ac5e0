package policy

import (
	"net/url"
	"sort"
	"strings"
)

// Dimensions a spend series can be cut by.
const (
	DimProvider    = "provider"
	DimModel       = "model"
	DimProject     = "project"
	DimApp         = "app"
	DimAgent       = "agent"
	DimAccount     = "account"
	DimEnvironment = "environment"
	DimCustomer    = "customer"
	DimRegion      = "region"
	DimServiceTier = "service_tier"

	// LabelPrefix and CategoryPrefix start dimensions named by the
	// tenant: label:team, category:cost_center.
	LabelPrefix    = "label:"
	CategoryPrefix = "category:"
)

var plainDimensions = map[string]bool{
	DimProvider: true, DimModel: true, DimProject: true, DimApp: true, DimAgent: true,
	DimAccount: true, DimEnvironment: true, DimCustomer: true, DimRegion: true,
	DimServiceTier: true,
}

// knownList is for error messages.
const knownList = "provider, model, project, app, agent, account, environment, customer, " +
	"region, service_tier, label:<key>, category:<name>"

// checkDimension returns why d is not a dimension, or "". cats holds the
// category names d may refer to; nil allows no category.
func checkDimension(d string, cats map[string]bool) string {
	switch {
	case plainDimensions[d]:
		return ""
	case strings.HasPrefix(d, LabelPrefix):
		if len(d) == len(LabelPrefix) {
			return "label dimension needs a key, as in label:team"
		}
		return ""
	case strings.HasPrefix(d, CategoryPrefix):
		if !cats[strings.TrimPrefix(d, CategoryPrefix)] {
			return "names no category of these settings"
		}
		return ""
	}
	return "unknown dimension " + `"` + d + `"` + " (want one of " + knownList + ")"
}

// Scope keys the detectors put on anomalies besides the dimensions.
var scopeOnlyKeys = map[string]bool{
	"run_id": true, "session_id": true, "tool_name": true, "baseline": true,
}

func checkScopeKey(k string) string {
	if scopeOnlyKeys[k] || plainDimensions[k] || strings.HasPrefix(k, LabelPrefix) ||
		strings.HasPrefix(k, CategoryPrefix) {
		return ""
	}
	return "unknown scope dimension " + `"` + k + `"`
}

// DimensionSet is one set of dimensions, in the order the tenant gave.
type DimensionSet struct {
	Dims []string
	// HasAgent is set when the agent is one of Dims: such series wait
	// for a run's agent to be known.
	HasAgent bool
}

func newDimensionSet(dims []string) DimensionSet {
	s := DimensionSet{Dims: dims}
	for _, d := range dims {
		if d == DimAgent {
			s.HasAgent = true
		}
	}
	return s
}

// SeriesKey is the canonical name of the series of dims with values:
// dimension=value pairs, sorted and query-escaped, joined by '&'. The
// tenant's total is "".
func SeriesKey(dims, values []string) string {
	if len(dims) == 0 {
		return ""
	}
	if len(dims) == 1 {
		return dims[0] + "=" + url.QueryEscape(values[0])
	}
	pairs := make([]string, len(dims))
	for i := range dims {
		pairs[i] = dims[i] + "=" + url.QueryEscape(values[i])
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// ParseSeriesKey returns the dimension values of a series key.
func ParseSeriesKey(key string) map[string]string {
	out := map[string]string{}
	if key == "" {
		return out
	}
	for _, pair := range strings.Split(key, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		out[k] = v
	}
	return out
}

// Bucket returns the bucket of category c that value of dimension falls
// in; values are looked up with get.
func (c Category) Bucket(get func(dim string) string) string {
	for _, r := range c.Rules {
		v := get(r.Dimension)
		for _, want := range r.Values {
			if p, ok := strings.CutSuffix(want, "*"); ok {
				if strings.HasPrefix(v, p) {
					return r.Bucket
				}
			} else if v == want {
				return r.Bucket
			}
		}
	}
	return OtherBucket
}
