package attribution_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/costplane/costplane/libs/log"
	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	"github.com/costplane/costplane/services/gateway"
)

// restClient calls the gateway with one tenant's key.
type restClient struct {
	t     *testing.T
	base  string
	token string
}

// do sends body (JSON, or none) and returns the status and the decoded
// JSON answer.
func (c restClient) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, raw, err)
	}
	return resp.StatusCode, out
}

// TestRESTThroughGateway serves the attribution service behind the real
// gateway and calls every attribution route of proto/api.yaml over REST:
// the answers match the gRPC ones, errors name the field, another tenant
// is refused, and the OpenAPI document lists the routes.
func TestRESTThroughGateway(t *testing.T) {
	st := newStack(t, fakeBrokers(t))
	recs := traffic(9, 10)
	st.produce(t, recs)
	st.start(t)
	st.waitCommitted(t, int64(len(recs)))

	gw, err := gateway.New(gateway.Config{
		Addr: "unused", GRPCEndpoint: st.conn.Target(), KeyHeader: "x-costplane-key",
		MaxBodyBytes: 1 << 20, ShutdownTimeout: time.Second,
	}, log.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	ts := httptest.NewServer(gw.Handler())
	t.Cleanup(ts.Close)
	acme := restClient{t, ts.URL, st.tokens["acme-admin"]}
	globex := restClient{t, ts.URL, st.tokens["globex-read"]}

	query, err := protojson.Marshal(&attributionv1.QueryCostsRequest{
		Query: costQuery(), PageSize: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	code, body := acme.do(http.MethodPost, "/v1/costs:query", string(query))
	if code != http.StatusOK {
		t.Fatalf("POST /v1/costs:query: %d %v", code, body)
	}
	got := make(map[string]agentTotals)
	for _, s := range body["series"].([]any) {
		s := s.(map[string]any)
		total := s["total"].(map[string]any)
		agent := s["group_values"].([]any)[0].(string)
		got[agent] = agentTotals{
			Events: num(t, total["events"]), Requests: num(t, total["requests"]),
			Unpriced: num(t, total["unpriced_events"]), Runs: num(t, total["runs"]),
			List:      num(t, total["list_cost_nanos"]),
			Effective: num(t, total["effective_cost_nanos"]),
		}
	}
	if diff := gocmp.Diff(st.totalsByAgent(t, "acme-read"), got); diff != "" {
		t.Errorf("REST totals against gRPC ones (-grpc +rest):\n%s", diff)
	}

	export, err := protojson.Marshal(&attributionv1.ExportCostsCsvRequest{Query: costQuery()})
	if err != nil {
		t.Fatal(err)
	}
	code, body = acme.do(http.MethodPost, "/v1/costs:exportCsv", string(export))
	if csv, _ := body["csv"].(string); code != http.StatusOK ||
		!strings.HasPrefix(csv, "bucket_start,agent,currency,") {
		t.Errorf("POST /v1/costs:exportCsv: %d %v", code, body)
	}

	code, body = acme.do(http.MethodPost, "/v1/costs:query",
		`{"query":{"lookback":"3600s"}}`)
	if code != http.StatusBadRequest || !strings.Contains(jsonString(body),
		`"field":"query.granularity"`) {
		t.Errorf("a query without granularity: %d %v, want 400 naming query.granularity",
			code, body)
	}

	run, session := recs[0].GetUsage().GetRunId(), recs[0].GetUsage().GetSessionId()
	category := `{"category_id":"teams","display_name":"Teams","rules":[{"bucket":"Support",` +
		`"conditions":[{"dimension":{"dimension":"DIMENSION_AGENT"},` +
		`"operator":"CONDITION_OPERATOR_PREFIX","values":["agent-"]}]}]}`
	perspective := `{"perspective_id":"daily","query":{"lookback":"259200s",` +
		`"granularity":"GRANULARITY_DAY"}}`
	routes := []struct {
		method, path, body string
		want               int
		key                string // a field the answer must carry
	}{
		{"POST", "/v1/cost-categories", category, 200, "category"},
		{"GET", "/v1/cost-categories/teams", "", 200, "category"},
		{"GET", "/v1/cost-categories?page_size=1", "", 200, "categories"},
		{"PUT", "/v1/cost-categories/teams", strings.Replace(category, "Support", "Help", 1),
			200, "category"},
		{"POST", "/v1/perspectives", perspective, 200, "perspective"},
		{"GET", "/v1/perspectives/daily", "", 200, "perspective"},
		{"GET", "/v1/perspectives", "", 200, "perspectives"},
		{"PUT", "/v1/perspectives/daily",
			strings.Replace(perspective, "259200s", "172800s", 1), 200, "perspective"},
		{"GET", "/v1/unit-economics?group_by=ECONOMICS_GROUPING_AGENT&lookback=259200s", "",
			200, "groups"},
		{"GET", "/v1/unit-economics?group_by=ECONOMICS_GROUPING_CATEGORY&category_id=teams" +
			"&lookback=259200s", "", 200, "groups"},
		{"GET", "/v1/runs?page_size=2&order_by=LIST_ORDER_COST_DESC", "", 200, "runs"},
		{"GET", "/v1/runs/" + url.PathEscape(run) + "?page_size=2", "", 200, "steps"},
		{"GET", "/v1/sessions?page_size=2", "", 200, "sessions"},
		{"GET", "/v1/sessions/" + url.PathEscape(session), "", 200, "turns"},
		{"GET", "/v1/runs/no-such-run", "", 404, "message"},
		{"DELETE", "/v1/perspectives/daily", "", 200, ""},
		{"DELETE", "/v1/cost-categories/teams", "", 200, ""},
		{"GET", "/v1/cost-categories/teams", "", 404, "message"},
	}
	for _, r := range routes {
		code, body := acme.do(r.method, r.path, r.body)
		if code != r.want || (r.key != "" && body[r.key] == nil) {
			t.Errorf("%s %s: %d %v, want %d with %q", r.method, r.path, code, body, r.want,
				r.key)
		}
	}

	for _, path := range []string{"/v1/runs/" + url.PathEscape(run),
		"/v1/sessions/" + url.PathEscape(session)} {
		if code, body := globex.do(http.MethodGet, path, ""); code != http.StatusNotFound {
			t.Errorf("GET %s as another tenant: %d %v, want 404", path, code, body)
		}
	}
	if code, body := globex.do(http.MethodGet, "/v1/runs", ""); code != http.StatusOK ||
		body["runs"] != nil {
		t.Errorf("GET /v1/runs as another tenant: %d %v, want 200 and no runs", code, body)
	}
	anonymous := restClient{t, ts.URL, "not-a-key"}
	if code, _ := anonymous.do(http.MethodGet, "/v1/runs", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/runs without a valid key: %d, want 401", code)
	}

	resp, err := http.Get(ts.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"/v1/costs:query", "/v1/costs:exportCsv", "/v1/cost-categories",
		"/v1/cost-categories/{category_id}", "/v1/cost-categories/{category.category_id}",
		"/v1/perspectives", "/v1/perspectives/{perspective_id}",
		"/v1/perspectives/{perspective.perspective_id}", "/v1/unit-economics", "/v1/runs",
		"/v1/runs/{run_id}", "/v1/sessions", "/v1/sessions/{session_id}",
	} {
		if len(doc.Paths[path]) == 0 {
			t.Errorf("the OpenAPI document has no %s", path)
		}
	}
}

func num(t *testing.T, v any) int64 {
	t.Helper()
	if v == nil {
		return 0
	}
	s, ok := v.(string) // int64 is a JSON string in protojson
	if !ok {
		t.Fatalf("%v is not an int64 string", v)
	}
	var n int64
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
