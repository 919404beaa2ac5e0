package budget_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/services/gateway"
)

// restClient calls the service through the production REST gateway.
type restClient struct {
	t     testing.TB
	base  string
	token string
}

// rest serves the REST gateway in front of the env's latest service.
func (e *env) rest(token string) *restClient {
	e.t.Helper()
	g, err := gateway.New(gateway.Config{Addr: "127.0.0.1:0", GRPCEndpoint: e.addr,
		KeyHeader: "x-costplane-key", MaxBodyBytes: 1 << 20, ShutdownTimeout: time.Second},
		log.New(testWriter{e.t}, slog.LevelWarn, "gateway"))
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	e.t.Cleanup(func() { srv.Close(); g.Close() })
	return &restClient{t: e.t, base: srv.URL, token: token}
}

// do sends a request with body (nil for none) and decodes the JSON answer
// into out; it returns the HTTP status.
func (c *restClient) do(method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decoding %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// restError is a google.rpc.Status as the gateway writes it.
type restError struct {
	Code    int `json:"code"`
	Details []struct {
		FieldViolations []struct {
			Field string `json:"field"`
		} `json:"field_violations"`
	} `json:"details"`
}

func (r *restError) fields() []string {
	var out []string
	for _, d := range r.Details {
		for _, v := range d.FieldViolations {
			out = append(out, v.Field)
		}
	}
	return out
}

// Budgets are created, read, updated, checked and deleted over REST, and
// bad input is refused there with the field named, as over gRPC.
func TestBudgetsOverREST(t *testing.T) {
	e := newEnv(t, nil)
	e.start(testSettings(), false)
	rest := e.rest(e.tenantKey("acme"))

	budget := map[string]any{
		"budget_id": "team-a", "display_name": "team a",
		"scope": map[string]any{"filters": []any{
			map[string]any{"dimension": "project", "include": []string{"a"}}}},
		"amount":     map[string]any{"currency_code": "USD", "nanos": "100000000000"},
		"period":     "PERIOD_MONTHLY",
		"thresholds": []any{map[string]any{"kind": "BUDGET_THRESHOLD_KIND_ACTUAL", "basis_points": 8000}},
	}
	var created struct {
		Budget struct {
			BudgetID string `json:"budget_id"`
			Revision string `json:"revision"`
		} `json:"budget"`
	}
	if code := rest.do("POST", "/v1/budgets", budget, &created); code != 200 ||
		created.Budget.BudgetID != "team-a" || created.Budget.Revision != "1" {
		t.Fatalf("create: HTTP %d, %+v", code, created)
	}

	budget["amount"] = map[string]any{"currency_code": "USD", "nanos": "250000000000"}
	budget["revision"] = "1"
	var updated struct {
		Budget struct {
			Revision string `json:"revision"`
			Amount   struct {
				Nanos string `json:"nanos"`
			} `json:"amount"`
		} `json:"budget"`
	}
	if code := rest.do("PUT", "/v1/budgets/team-a", budget, &updated); code != 200 ||
		updated.Budget.Revision != "2" || updated.Budget.Amount.Nanos != "250000000000" {
		t.Errorf("update: HTTP %d, %+v", code, updated)
	}

	var check struct {
		Decision      string `json:"decision"`
		BudgetApplies bool   `json:"budget_applies"`
		Reason        string `json:"reason"`
	}
	code := rest.do("POST", "/v1/budgets:check", map[string]any{
		"attributes": map[string]string{"project": "zzz"}}, &check)
	if code != 200 || check.Decision != "DECISION_ALLOW" || check.BudgetApplies ||
		check.Reason != "no budget applies" {
		t.Errorf("check without a budget: HTTP %d, %+v", code, check)
	}
	code = rest.do("POST", "/v1/budgets:check", map[string]any{
		"attributes":     map[string]string{"project": "a"},
		"estimated_cost": map[string]any{"currency_code": "USD", "nanos": "300000000000"}}, &check)
	if code != 200 || check.Decision != "DECISION_DENY" || !check.BudgetApplies {
		t.Errorf("check past the amount: HTTP %d, %+v", code, check)
	}

	bad := map[string]any{"budget_id": "bad", "period": "PERIOD_MONTHLY",
		"amount": map[string]any{"currency_code": "USD", "nanos": "-1"},
		"thresholds": []any{
			map[string]any{"kind": "BUDGET_THRESHOLD_KIND_ACTUAL", "basis_points": 8000},
			map[string]any{"kind": "BUDGET_THRESHOLD_KIND_ACTUAL", "basis_points": 8000},
		}}
	var rerr restError
	code = rest.do("POST", "/v1/budgets", bad, &rerr)
	if diff := cmp.Diff([]string{"budget.amount.nanos", "budget.thresholds[1]"},
		rerr.fields()); code != 400 || diff != "" {
		t.Errorf("bad budget: HTTP %d, fields (-want +got):\n%s", code, diff)
	}

	if code := rest.do("DELETE", "/v1/budgets/team-a", nil, nil); code != 200 {
		t.Errorf("delete: HTTP %d", code)
	}
	if code := rest.do("GET", "/v1/budgets/team-a", nil, &rerr); code != 404 {
		t.Errorf("get after delete: HTTP %d", code)
	}
}
