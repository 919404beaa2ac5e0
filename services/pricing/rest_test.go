package pricing_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"

	pricingv1 "github.com/costplane/costplane/proto/gen/go/costplane/pricing/v1"
)

// TestREST calls the service through the HTTP rules of proto/api.yaml,
// with the marshaling options the gateway uses.
func TestREST(t *testing.T) {
	f := setupAPI(t)
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
		MarshalOptions: protojson.MarshalOptions{UseProtoNames: true},
	}))
	if err := pricingv1.RegisterPricingServiceHandler(context.Background(), mux, f.conn); err != nil {
		t.Fatalf("registering handlers: %v", err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	call := func(method, path, body string, want int) map[string]any {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		req.Header.Set("Authorization", "Bearer "+f.tokens["a-admin"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%s %s: decoding: %v", method, path, err)
		}
		if resp.StatusCode != want {
			t.Fatalf("%s %s: status %d (%v), want %d", method, path, resp.StatusCode, out, want)
		}
		return out
	}

	models := call("GET", "/v1/models?provider=anthropic&query=sonnet-4-5", "", 200)
	if list, _ := models["models"].([]any); len(list) != 1 {
		t.Errorf("GET /v1/models: %v", models)
	}
	price := call("GET", "/v1/pricing/model-price?provider=openai&model=gpt-4.1"+
		"&time=2026-11-01T00:00:00Z", "", 200)
	if price["model"] != "gpt-4.1" {
		t.Errorf("GET /v1/pricing/model-price: %v", price)
	}

	bad := call("POST", "/v1/rates", `{"kind": "RATE_KIND_DISCOUNT",
		"scope": {"provider": "anthropic"}, "discount": {"percent_off_basis_points": -1}}`, 400)
	if !strings.Contains(bad["message"].(string), "rate.discount.percent_off_basis_points") {
		t.Errorf("POST /v1/rates with a negative percent: %v", bad)
	}
	created := call("POST", "/v1/rates", `{"kind": "RATE_KIND_DISCOUNT",
		"scope": {"provider": "anthropic"}, "discount": {"percent_off_basis_points": 1000}}`, 200)
	id, _ := created["rate"].(map[string]any)["rate_id"].(string)
	if rates := call("GET", "/v1/rates", "", 200)["rates"].([]any); len(rates) != 1 {
		t.Errorf("GET /v1/rates: %v", rates)
	}
	call("DELETE", "/v1/rates/"+id, "", 200)

	priced := call("POST", "/v1/pricing/price-usage", `{"events": [{"provider": "anthropic",
		"model": "claude-sonnet-4-5", "start_time": "2026-11-01T10:00:00Z",
		"quantities": [{"kind": "QUANTITY_KIND_INPUT", "amount": "1200"}]}]}`, 200)
	// 1200 tokens at $3 per million: 3,600,000 nanos (int64 is a JSON string).
	if cost := priced["effective_cost"].(map[string]any); cost["nanos"] != "3600000" {
		t.Errorf("POST /v1/pricing/price-usage: %v", priced)
	}

	rp := call("POST", "/v1/reprices", `{"start_time": "2026-11-01T00:00:00Z",
		"end_time": "2026-11-02T00:00:00Z", "reason": "new discount"}`, 200)
	rpID, _ := rp["reprice"].(map[string]any)["reprice_id"].(string)
	call("GET", "/v1/reprices/"+rpID, "", 200)
	if list := call("GET", "/v1/reprices", "", 200)["reprices"].([]any); len(list) != 1 {
		t.Errorf("GET /v1/reprices: %v", list)
	}
	call("GET", "/v1/reprices/rp_nope", "", 404)
}
