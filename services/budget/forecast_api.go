package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/forecast"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/projector"
	"github.com/costplane/costplane/services/budget/internal/scope"
	"github.com/costplane/costplane/services/budget/internal/spend"
)

const (
	defaultHorizon  = 30
	maxHorizon      = 366
	defaultCurrency = "USD"
)

// Forecast fits the daily cost of a scope, or of a budget's scope, up to
// yesterday and forecasts it from today on.
func (s *Service) Forecast(ctx context.Context, req *budgetv1.ForecastRequest) (
	*budgetv1.ForecastResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	horizon, err := horizonDays(req.GetHorizonDays())
	if err != nil {
		return nil, err
	}

	today := period.Day(s.now())
	from := today.AddDate(0, 0, -s.cfg.HistoryDays)
	var (
		y        []float64
		currency string
	)
	if id := req.GetBudgetId(); id != "" {
		y, currency, err = s.budgetHistory(ctx, t, id, req, from, today)
	} else {
		y, currency, err = s.scopeHistory(ctx, t, req, from, today)
	}
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetBudgetId())
	}

	m := forecast.Fit(y)
	resp := &budgetv1.ForecastResponse{CurrencyCode: currency, Method: m.Method(),
		IntervalLevel: forecast.Level}
	for i, v := range y {
		resp.History = append(resp.History, &budgetv1.DayCost{
			Day: timestamppb.New(from.AddDate(0, 0, i)), CostNanos: int64(math.Round(v)),
		})
	}
	for i, p := range m.Forecast(horizon) {
		resp.Forecast = append(resp.Forecast, &budgetv1.DayForecast{
			Day:        timestamppb.New(today.AddDate(0, 0, i)),
			CostNanos:  int64(math.Round(p.Mean)),
			LowerNanos: int64(math.Round(p.Lower)),
			UpperNanos: int64(math.Round(p.Upper)),
		})
	}
	return resp, nil
}

func horizonDays(h int32) (int, error) {
	switch {
	case h == 0:
		return defaultHorizon, nil
	case h < 1 || h > maxHorizon:
		return 0, apierr.Invalid("horizon_days", "must be 1-366")
	}
	return int(h), nil
}

// budgetHistory reads a budget's daily spend. A scope beside the budget
// id would be ambiguous, so it is refused.
func (s *Service) budgetHistory(ctx context.Context, tenant, id string,
	req *budgetv1.ForecastRequest, from, to time.Time) ([]float64, string, error) {

	if err := requireID(id); err != nil {
		return nil, "", err
	}
	if len(req.GetScope().GetFilters()) > 0 || req.GetScope().GetPerspectiveId() != "" {
		return nil, "", apierr.Invalid("scope", "give a scope or a budget_id, not both")
	}
	b, err := budgets.Get(ctx, s.deps.Pool, tenant, id)
	if err != nil {
		return nil, "", err
	}
	c, err := budgets.Compile(b)
	if err != nil {
		return nil, "", err
	}
	y, err := projector.History(ctx, s.deps.Pool, c, from, to)
	return y, b.Currency, err
}

// scopeHistory validates the request's scope and reads its daily spend
// from the tuple store.
func (s *Service) scopeHistory(ctx context.Context, tenant string, req *budgetv1.ForecastRequest,
	from, to time.Time) ([]float64, string, error) {

	currency := req.GetCurrencyCode()
	if currency == "" {
		currency = defaultCurrency
	}
	var v apierr.Violations
	if !isCurrencyCode(currency) {
		v.Add("currency_code", "must be an ISO 4217 code such as USD")
	}
	var (
		filters []scope.Filter
		fields  []scopeFilter
	)
	for i, f := range req.GetScope().GetFilters() {
		sf := scope.Filter{Dimension: f.GetDimension(), Include: f.GetInclude(),
			Exclude: f.GetExclude()}
		filters = append(filters, sf)
		fields = append(fields, scopeFilter{sf, fmt.Sprintf("scope.filters[%d].dimension", i)})
	}
	for _, e := range scope.Validate(filters, s.keys) {
		v.Add("scope."+e.Field, e.Reason)
	}
	if err := v.Err(); err != nil {
		return nil, "", err
	}

	if pid := req.GetScope().GetPerspectiveId(); pid != "" {
		if s.deps.Perspectives == nil {
			return nil, "", apierr.Invalid("scope.perspective_id", errNoPerspectives.Error())
		}
		pf, err := s.deps.Perspectives.Filters(ctx, pid, currency)
		if err != nil {
			return nil, "", forecastScopeError(err)
		}
		if err := checkPerspectiveOverlap(filters, pf); err != nil {
			return nil, "", err
		}
		filters = append(filters, pf...)
		for _, f := range pf {
			fields = append(fields, scopeFilter{f, "scope.perspective_id"})
		}
	}
	cats, err := s.resolveCategories(ctx, fields)
	if err != nil {
		return nil, "", err
	}
	y, err := spend.ScopeHistory(ctx, s.deps.Pool, tenant, currency, filters, cats, from, to)
	return y, currency, err
}

// checkPerspectiveOverlap refuses a perspective filtering a dimension the
// request's own filters name too, as budgets do.
func checkPerspectiveOverlap(own, pf []scope.Filter) error {
	var v apierr.Violations
	for i, f := range own {
		if slices.ContainsFunc(pf, func(p scope.Filter) bool { return p.Dimension == f.Dimension }) {
			v.Add(fmt.Sprintf("scope.filters[%d].dimension", i),
				"the perspective filters "+f.Dimension+" already")
		}
	}
	return v.Err()
}

// forecastScopeError names the forecast request's field for perspective
// errors, which toStatus would name as a budget's.
func forecastScopeError(err error) error {
	var unsupported *unsupportedFilterError
	switch {
	case errors.Is(err, errPerspectiveNotFound):
		return apierr.Invalid("scope.perspective_id", "no such perspective")
	case errors.As(err, &unsupported):
		return apierr.Invalid("scope.perspective_id", unsupported.Error())
	}
	return err
}
