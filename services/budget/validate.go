package budget

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/services/budget/internal/alerts"
	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/scope"
)

// Limits of a budget definition.
const (
	maxNameLength  = 200
	maxThresholds  = 20
	maxBasisPoints = 100_000
	maxURLLength   = 2048
)

var budgetIDPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// earliestStart bounds a budget's start; spend before it is not kept
// anyway.
var earliestStart = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// parseBudget validates pb and returns the definition it describes, with
// tenant set and the perspective, if any, resolved. Every problem is
// reported, each naming its field under "budget.".
func (s *Service) parseBudget(ctx context.Context, tenant string, pb *budgetv1.Budget,
	creating bool) (*budgets.Budget, error) {

	var v apierr.Violations
	if pb == nil {
		return nil, apierr.Invalid("budget", "required")
	}
	b := &budgets.Budget{TenantID: tenant, ID: pb.GetBudgetId(), Name: pb.GetDisplayName(),
		WebhookURL: pb.GetWebhookUrl(), PerspectiveID: pb.GetScope().GetPerspectiveId()}

	switch {
	case b.ID == "" && creating:
		b.ID = newBudgetID()
	case !budgetIDPattern.MatchString(b.ID):
		v.Add("budget.budget_id", "lower-case letters, digits and dashes, 1-63 characters, "+
			"starting with a letter")
	}
	if b.Name == "" {
		b.Name = b.ID
	}
	if len(b.Name) > maxNameLength {
		v.Add("budget.display_name", fmt.Sprintf("at most %d characters", maxNameLength))
	}

	parseAmount(&v, b, pb.GetAmount())
	s.parseScope(&v, b, pb.GetScope())
	parsePeriod(&v, b, pb, s.now())
	b.Thresholds = parseThresholds(&v, pb.GetThresholds())
	parseDelivery(&v, b, pb, s.cfg.WebhookAllowPrivate)
	if err := v.Err(); err != nil {
		return nil, err
	}

	if b.PerspectiveID != "" {
		if s.deps.Perspectives == nil {
			return nil, errNoPerspectives
		}
		pf, err := s.deps.Perspectives.Filters(ctx, b.PerspectiveID, b.Currency)
		if err != nil {
			return nil, err
		}
		if err := s.checkPerspectiveFilters(b, pf); err != nil {
			return nil, err
		}
		b.PerspectiveFilters = pf
	}

	cats, err := s.resolveCategories(ctx, budgetScopeFilters(b, pb.GetScope()))
	if err != nil {
		return nil, err
	}
	b.Categories = cats
	return b, nil
}

// budgetScopeFilters returns b's filters with the fields they came from:
// its own by their index in the request (normalization sorted them, and
// validation made dimensions unique), the perspective's as the
// perspective.
func budgetScopeFilters(b *budgets.Budget, sc *budgetv1.Scope) []scopeFilter {
	out := make([]scopeFilter, 0, len(b.Filters)+len(b.PerspectiveFilters))
	for _, f := range b.Filters {
		i := slices.IndexFunc(sc.GetFilters(), func(pf *budgetv1.ScopeFilter) bool {
			return pf.GetDimension() == f.Dimension
		})
		out = append(out, scopeFilter{f, fmt.Sprintf("budget.scope.filters[%d].dimension", i)})
	}
	for _, f := range b.PerspectiveFilters {
		out = append(out, scopeFilter{f, "budget.scope.perspective_id"})
	}
	return out
}

func newBudgetID() string {
	var r [6]byte
	_, _ = rand.Read(r[:]) // crypto/rand never fails on supported platforms
	return "b-" + hex.EncodeToString(r[:])
}

func parseAmount(v *apierr.Violations, b *budgets.Budget, m *eventv1.Money) {
	if m == nil {
		v.Add("budget.amount", "required")
		return
	}
	b.Amount, b.Currency = m.GetNanos(), m.GetCurrencyCode()
	if b.Amount <= 0 {
		v.Add("budget.amount.nanos", "must be positive")
	}
	if !isCurrencyCode(b.Currency) {
		v.Add("budget.amount.currency_code", "must be an ISO 4217 code such as USD")
	}
}

func (s *Service) parseScope(v *apierr.Violations, b *budgets.Budget, sc *budgetv1.Scope) {
	for _, f := range sc.GetFilters() {
		b.Filters = append(b.Filters, scope.Filter{
			Dimension: f.GetDimension(), Include: f.GetInclude(), Exclude: f.GetExclude(),
		})
	}
	for _, e := range scope.Validate(b.Filters, s.keys) {
		v.Add("budget.scope."+e.Field, e.Reason)
	}
	b.Filters = scope.Normalize(b.Filters)
	if b.PerspectiveID != "" && !budgetIDPattern.MatchString(b.PerspectiveID) {
		v.Add("budget.scope.perspective_id", "not a perspective id")
	}
}

// checkPerspectiveFilters refuses a perspective whose filters name a
// dimension the budget's own filters name too: which should win is not
// for the service to guess.
func (s *Service) checkPerspectiveFilters(b *budgets.Budget, pf []scope.Filter) error {
	var v apierr.Violations
	own := make(map[string]int, len(b.Filters))
	for i, f := range b.Filters {
		own[f.Dimension] = i
	}
	for _, f := range pf {
		if i, dup := own[f.Dimension]; dup {
			v.Add(fmt.Sprintf("budget.scope.filters[%d].dimension", i),
				"the perspective filters "+f.Dimension+" already")
		}
	}
	for _, e := range scope.Validate(pf, s.keys) {
		v.Add("budget.scope.perspective_id", "perspective "+e.Error())
	}
	return v.Err()
}

func parsePeriod(v *apierr.Violations, b *budgets.Budget, pb *budgetv1.Budget, now time.Time) {
	kind := period.Kind(pb.GetPeriod())
	if !kind.Valid() {
		v.Add("budget.period", "must be daily, weekly, monthly, quarterly or yearly")
	}
	start := period.Day(now)
	if ts := pb.GetStartTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.Add("budget.start_time", "not a valid timestamp")
			return
		}
		start = period.Day(ts.AsTime())
	}
	if start.Before(earliestStart) || start.After(now.AddDate(10, 0, 0)) {
		v.Add("budget.start_time", "must be between 2000 and ten years from now")
	}
	b.Period = period.Spec{Kind: kind, Start: start}
}

// parseThresholds checks each threshold and refuses two of the same kind
// and level, which would be one alert announced twice.
func parseThresholds(v *apierr.Violations, ths []*budgetv1.Threshold) []budgets.Threshold {
	if len(ths) > maxThresholds {
		v.Add("budget.thresholds", fmt.Sprintf("at most %d thresholds", maxThresholds))
	}
	out := make([]budgets.Threshold, 0, len(ths))
	seen := make(map[budgets.Threshold]int, len(ths))
	for i, th := range ths {
		field := fmt.Sprintf("budget.thresholds[%d]", i)
		t := budgets.Threshold{Kind: budgets.ThresholdKind(th.GetKind()),
			BasisPoints: th.GetBasisPoints()}
		if t.Kind != budgets.Actual && t.Kind != budgets.Forecast {
			v.Add(field+".kind", "must be ACTUAL or FORECAST")
			continue
		}
		if t.BasisPoints < 1 || t.BasisPoints > maxBasisPoints {
			v.Add(field+".basis_points", fmt.Sprintf("must be 1-%d", maxBasisPoints))
			continue
		}
		if j, dup := seen[t]; dup {
			v.Add(field, fmt.Sprintf("overlaps thresholds[%d]: same kind and level", j))
			continue
		}
		seen[t] = i
		out = append(out, t)
	}
	return out
}

func parseDelivery(v *apierr.Violations, b *budgets.Budget, pb *budgetv1.Budget,
	allowPrivate bool) {
	switch e := budgets.Enforcement(pb.GetEnforcement()); e {
	case 0:
		b.Enforcement = budgets.Deny
	case budgets.Deny, budgets.Warn:
		b.Enforcement = e
	default:
		v.Add("budget.enforcement", "must be DENY or WARN")
	}

	if b.WebhookURL == "" {
		return
	}
	u, err := url.Parse(b.WebhookURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		len(b.WebhookURL) > maxURLLength {
		v.Add("budget.webhook_url", "must be an http or https URL")
		return
	}
	if u.User != nil {
		v.Add("budget.webhook_url", "must not carry credentials; use BUDGET_WEBHOOK_SECRET")
		return
	}
	if !allowPrivate {
		if err := alerts.CheckWebhookHost(u.Hostname()); err != nil {
			v.Add("budget.webhook_url", "must not point to a loopback, private, link-local "+
				"or reserved address")
		}
	}
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
