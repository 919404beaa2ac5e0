package ingestapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	ingestv1 "github.com/costplane/costplane/proto/gen/go/costplane/ingest/v1"

	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/services/gateway"
)

// startGateway serves the REST gateway in front of f's gRPC server.
func startGateway(t *testing.T, f *fixture) *httptest.Server {
	t.Helper()
	gw, err := gateway.New(gateway.Config{
		Addr: "unused", GRPCEndpoint: f.addr, KeyHeader: "x-costplane-key",
		MaxBodyBytes: 1 << 20, ShutdownTimeout: time.Second,
	}, log.Discard())
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	t.Cleanup(gw.Close)
	ts := httptest.NewServer(gw.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type restResponse struct {
	status     int
	retryAfter string
	body       map[string]any
}

func post(t *testing.T, url, key string, req proto.Message) restResponse {
	t.Helper()
	body, err := protojson.Marshal(req)
	if err != nil {
		t.Fatalf("encoding request: %v", err)
	}
	hreq, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("building request: %v", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("x-costplane-key", key)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()

	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	r := restResponse{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return r
}

// violatedFields lists the field violations of a JSON google.rpc.Status.
func violatedFields(body map[string]any) []string {
	var fields []string
	details, _ := body["details"].([]any)
	for _, d := range details {
		detail, _ := d.(map[string]any)
		vs, _ := detail["field_violations"].([]any)
		for _, v := range vs {
			fv, _ := v.(map[string]any)
			field, _ := fv["field"].(string)
			fields = append(fields, field)
		}
	}
	return fields
}

func TestREST(t *testing.T) {
	f := start(t)
	ts := startGateway(t, f)

	t.Run("accepted", func(t *testing.T) {
		r := post(t, ts.URL+"/v1/usage", f.ingestKey,
			&ingestv1.ReportUsageRequest{Events: someEvents(2)})
		if r.status != http.StatusOK || r.body["accepted"] != float64(2) {
			t.Errorf("status %d, body %v; want 200 with accepted 2", r.status, r.body)
		}
	})

	t.Run("400 names the field", func(t *testing.T) {
		evs := someEvents(3)
		evs[2].Quantities[1].Amount = -7
		r := post(t, ts.URL+"/v1/usage", f.ingestKey, &ingestv1.ReportUsageRequest{Events: evs})
		if r.status != http.StatusBadRequest {
			t.Fatalf("status %d (%v), want 400", r.status, r.body)
		}
		want := []string{"events[2].quantities[1].amount"}
		if diff := cmp.Diff(want, violatedFields(r.body)); diff != "" {
			t.Errorf("field violations (-want +got):\n%s", diff)
		}
	})

	t.Run("outcome 400 names the field", func(t *testing.T) {
		o := outcome("o-1", "", "")
		o.Type = ""
		r := post(t, ts.URL+"/v1/outcomes", f.ingestKey,
			&ingestv1.ReportOutcomesRequest{Outcomes: []*eventv1.Outcome{o}})
		want := []string{"outcomes[0].type"}
		if diff := cmp.Diff(want, violatedFields(r.body)); r.status != 400 || diff != "" {
			t.Errorf("status %d, violations (-want +got):\n%s", r.status, diff)
		}
	})

	t.Run("503 with Retry-After when kafka is down", func(t *testing.T) {
		f.cluster.Close()
		r := post(t, ts.URL+"/v1/usage", f.ingestKey,
			&ingestv1.ReportUsageRequest{Events: someEvents(1)})
		if r.status != http.StatusServiceUnavailable || r.retryAfter != "3" {
			t.Errorf("status %d, Retry-After %q (%v); want 503 and 3",
				r.status, r.retryAfter, r.body)
		}
	})
}
