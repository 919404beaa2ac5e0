package budget_test

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
)

// weekly is a daily cost with a weekly pattern: $12 on weekdays, $5 on
// weekends.
func weekly(day time.Time) float64 {
	if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return 5
	}
	return 12
}

func TestForecastAndProjection(t *testing.T) {
	e := newEnv(t, brokers(t, "kfake"))
	s := testSettings()
	s.ForecastInterval = 2 * time.Second
	e.start(s, true)
	key := e.tenantKey("acme")
	ctx := metadata.AppendToOutgoingContext(e.ctx, "authorization", "Bearer "+key)
	alerts := e.alertReader()
	rest := e.rest(key)

	var ps []priced
	for d := 1; d <= 63; d++ {
		day := today().AddDate(0, 0, -d)
		ps = append(ps, priced{tenant: "acme", id: fmt.Sprintf("d%d", d), day: day,
			nanos: usd(weekly(day)), project: "a"})
	}
	e.produce(ps...)

	// Forecast thresholds only: $100 a month against about $290.
	b := validBudget("team-a")
	b.Thresholds = []*budgetv1.Threshold{
		{Kind: forecast, BasisPoints: 10000},
		{Kind: forecast, BasisPoints: 40000},
	}
	if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b}); err != nil {
		t.Fatal(err)
	}
	waitSpent(t, ctx, e, "team-a", usd(weekly(today().AddDate(0, 0, -1))+
		weekly(today().AddDate(0, 0, -2))+weekly(today().AddDate(0, 0, -3))))

	for _, req := range []*budgetv1.ForecastRequest{
		{BudgetId: "team-a", HorizonDays: 14},
		{Scope: &budgetv1.Scope{Filters: []*budgetv1.ScopeFilter{
			{Dimension: "project", Include: []string{"a"}}}}, HorizonDays: 14},
	} {
		resp, err := e.client.Forecast(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetForecast()) != 14 || resp.GetIntervalLevel() != 0.8 ||
			resp.GetCurrencyCode() != "USD" {
			t.Fatalf("forecast = %v", resp)
		}
		if m := resp.GetMethod(); m != "holt_winters" && m != "log_holt_winters" {
			t.Errorf("method = %s, want a Holt-Winters model", m)
		}
		for _, p := range resp.GetForecast() {
			want := weekly(p.GetDay().AsTime())
			got := float64(p.GetCostNanos()) / 1e9
			if math.Abs(got-want) > 0.5 || p.GetLowerNanos() > p.GetCostNanos() ||
				p.GetUpperNanos() < p.GetCostNanos() {
				t.Errorf("forecast of %s = %.2f [%d, %d], want about %.0f",
					p.GetDay().AsTime().Format(time.DateOnly), got, p.GetLowerNanos(),
					p.GetUpperNanos(), want)
			}
		}
	}

	// The budget may have been created before its history was consumed;
	// the late history makes the projector refit it.
	var st *budgetv1.BudgetStatus
	eventually(t, 30*time.Second, func() error {
		var err error
		if _, st, err = spentOf(ctx, e, "team-a"); err != nil {
			return err
		}
		if m := st.GetProjection().GetMethod(); m != "holt_winters" && m != "log_holt_winters" {
			return fmt.Errorf("projection method %q", m)
		}
		return nil
	})
	p := st.GetProjection()
	end := st.GetPeriodEnd().AsTime()
	var want float64
	for d := today().AddDate(0, 0, -3); d.Before(end); d = d.AddDate(0, 0, 1) {
		want += weekly(d)
	}
	got := float64(p.GetEndOfPeriod().GetNanos()) / 1e9
	if math.Abs(got-want) > want*0.05 || p.GetExceedTime() == nil ||
		p.GetLower().GetNanos() > p.GetEndOfPeriod().GetNanos() ||
		p.GetUpper().GetNanos() < p.GetEndOfPeriod().GetNanos() {
		t.Errorf("projection = %v, want about %.0f and an exceed time", p, want)
	}

	got100 := collectAlerts(t, alerts, 1)
	if len(got100) != 1 || got100[0].GetThresholdBasisPoints() != 10000 ||
		got100[0].GetForecast().GetNanos() <= usd(100) {
		t.Errorf("forecast alerts = %v, want one at 100 %%", thresholdsOf(got100))
	}

	_, err := e.client.Forecast(ctx, &budgetv1.ForecastRequest{HorizonDays: 400})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("horizon 400: %v, want InvalidArgument", err)
	}

	// The same over REST, through the gateway.
	grpcResp, err := e.client.Forecast(ctx, &budgetv1.ForecastRequest{BudgetId: "team-a",
		HorizonDays: 14})
	if err != nil {
		t.Fatal(err)
	}
	var raw json.RawMessage
	code := rest.do("POST", "/v1/forecasts", map[string]any{"budget_id": "team-a",
		"horizon_days": 14}, &raw)
	var restResp budgetv1.ForecastResponse
	if err := protojson.Unmarshal(raw, &restResp); code != 200 || err != nil {
		t.Fatalf("REST forecast: HTTP %d, %v: %s", code, err, raw)
	}
	if diff := cmp.Diff(grpcResp, &restResp, protocmp.Transform()); diff != "" {
		t.Errorf("REST forecast differs from gRPC (-grpc +rest):\n%s", diff)
	}

	var restStatus struct {
		Status struct {
			Projection struct {
				EndOfPeriod struct {
					Nanos string `json:"nanos"`
				} `json:"end_of_period"`
				ExceedTime string `json:"exceed_time"`
				Method     string `json:"method"`
			} `json:"projection"`
		} `json:"status"`
	}
	if code := rest.do("GET", "/v1/budgets/team-a/status", nil, &restStatus); code != 200 ||
		restStatus.Status.Projection.ExceedTime == "" ||
		restStatus.Status.Projection.EndOfPeriod.Nanos == "" {
		t.Errorf("REST status: HTTP %d, %+v", code, restStatus)
	}

	var restErr struct {
		Code    int `json:"code"`
		Details []struct {
			FieldViolations []struct {
				Field string `json:"field"`
			} `json:"field_violations"`
		} `json:"details"`
	}
	code = rest.do("POST", "/v1/forecasts", map[string]any{"horizon_days": 400}, &restErr)
	if code != 400 || len(restErr.Details) == 0 ||
		len(restErr.Details[0].FieldViolations) != 1 ||
		restErr.Details[0].FieldViolations[0].Field != "horizon_days" {
		t.Errorf("REST horizon 400: HTTP %d, %+v; want 400 naming horizon_days", code, restErr)
	}
}
