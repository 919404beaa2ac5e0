package ingestotlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var (
	testTraceID = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	testStart   = uint64(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
)

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{
		Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{
		Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

// chatSpan is an OTLP chat span with id n in testTraceID.
func chatSpan(n byte, input int64) *tracepb.Span {
	return &tracepb.Span{
		TraceId: testTraceID, SpanId: []byte{0, 0, 0, 0, 0, 0, 0, n}, Name: "chat",
		StartTimeUnixNano: testStart, EndTimeUnixNano: testStart + 1e9,
		Attributes: []*commonpb.KeyValue{
			strAttr("gen_ai.operation.name", "chat"), strAttr("gen_ai.provider.name", "openai"),
			strAttr("gen_ai.request.model", "gpt-4o"), intAttr("gen_ai.usage.input_tokens", input),
			intAttr("gen_ai.usage.output_tokens", 7),
		},
	}
}

func exportRequest(spans ...*tracepb.Span) *collectortracepb.ExportTraceServiceRequest {
	return &collectortracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			strAttr("service.name", "app"),
		}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type httpCase struct {
	contentType string
	encoding    string
	key         string
	body        []byte
}

func post(t testing.TB, addr string, c httpCase) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost,
		"http://"+addr+"/v1/traces", bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", c.contentType)
	if c.encoding != "" {
		req.Header.Set("Content-Encoding", c.encoding)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestHTTPErrors(t *testing.T) {
	st := startStack(t, stackOpts{mutate: func(c *Config) { c.MaxBodyBytes = 64 << 10 }})
	good := mustMarshal(t, exportRequest(chatSpan(1, 10)))
	huge := mustMarshal(t, exportRequest(chatSpan(1, 10), &tracepb.Span{
		Name: strings.Repeat("x", 70<<10)}))
	tests := []struct {
		name     string
		c        httpCase
		code     int
		inStatus string
	}{
		{"no key", httpCase{contentTypeProto, "", "", good}, 401, ""},
		{"wrong key", httpCase{contentTypeProto, "", "cp_nope_nope", good}, 401, ""},
		{"unknown content type", httpCase{"text/plain", "", testKey, good}, 415,
			"content-type must be"},
		{"unknown encoding", httpCase{contentTypeProto, "br", testKey, good}, 415,
			"content-encoding must be gzip"},
		{"too large", httpCase{contentTypeProto, "", testKey, huge}, 413,
			"request body exceeds 65536 bytes"},
		{"too large once unzipped", httpCase{contentTypeProto, "gzip", testKey,
			gzipped(t, huge)}, 413, "request body exceeds"},
		{"bad gzip", httpCase{contentTypeProto, "gzip", testKey, good}, 400,
			"cannot read request body"},
		{"malformed protobuf", httpCase{contentTypeProto, "", testKey, []byte{0x0a, 0x7f}}, 400,
			"malformed export request"},
		{"malformed json", httpCase{contentTypeJSON, "", testKey, []byte(`{"resourceSpans":`)},
			400, "malformed export request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, st.httpAddr, tc.c)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.code, body)
			}
			if tc.inStatus == "" {
				return
			}
			st := &spb.Status{}
			unmarshal := proto.Unmarshal
			if tc.c.contentType == contentTypeJSON {
				unmarshal = protojson.Unmarshal
			}
			if err := unmarshal(body, st); err != nil {
				t.Fatalf("body is not a google.rpc.Status: %v", err)
			}
			if !strings.Contains(st.GetMessage(), tc.inStatus) {
				t.Errorf("status message %q, want it to contain %q", st.GetMessage(), tc.inStatus)
			}
		})
	}
	if evs := st.readEvents(t, 1, time.Second); len(evs) != 0 {
		t.Errorf("failed requests wrote %d events", len(evs))
	}
}

// TestPartialSuccess sends good, malformed and non-GenAI spans together:
// the good ones reach Kafka, the malformed ones are reported in
// partial_success and counted, and the plain span is skipped.
func TestPartialSuccess(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := startStack(t, stackOpts{registry: reg})

	badTrace := chatSpan(3, 10)
	badTrace.TraceId = []byte{1, 2}
	plain := &tracepb.Span{TraceId: testTraceID, SpanId: []byte{0, 0, 0, 0, 0, 0, 0, 4},
		Name: "GET /", StartTimeUnixNano: testStart, EndTimeUnixNano: testStart + 1}
	req := exportRequest(chatSpan(1, 10), chatSpan(2, -5), badTrace, plain)

	resp, body := post(t, st.httpAddr, httpCase{contentTypeProto, "gzip", testKey,
		gzipped(t, mustMarshal(t, req))})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	out := &collectortracepb.ExportTraceServiceResponse{}
	if err := proto.Unmarshal(body, out); err != nil {
		t.Fatal(err)
	}
	ps := out.GetPartialSuccess()
	wantMsg := "2 malformed GenAI spans rejected: span 0000000000000002: " +
		"gen_ai.usage.input_tokens must be a non-negative integer no larger than 10^15; " +
		"span 0000000000000003: trace_id must be 16 bytes, not all zero"
	if ps.GetRejectedSpans() != 2 || ps.GetErrorMessage() != wantMsg {
		t.Errorf("partial success = %d, %q;\nwant 2, %q", ps.GetRejectedSpans(),
			ps.GetErrorMessage(), wantMsg)
	}

	evs := st.readEvents(t, 1, 5*time.Second)
	if len(evs) != 1 || evs[0].ev.GetStepId() != "0000000000000001" {
		t.Errorf("events on Kafka = %v, want the one good span", evs)
	}
	counts := map[string]float64{
		"accepted": testutil.ToFloat64(st.svc.metrics.spans.WithLabelValues("accepted")),
		"skipped":  testutil.ToFloat64(st.svc.metrics.spans.WithLabelValues("skipped")),
		"rejected": testutil.ToFloat64(st.svc.metrics.spans.WithLabelValues("rejected")),
		"bad_token_count": testutil.ToFloat64(
			st.svc.metrics.rejected.WithLabelValues("bad_token_count")),
	}
	want := map[string]float64{"accepted": 1, "skipped": 1, "rejected": 2, "bad_token_count": 1}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if n, err := testutil.GatherAndCount(reg, "costplane_ingest_otlp_requests_total"); err != nil ||
		n == 0 {
		t.Errorf("requests_total not in the registry: %d, %v", n, err)
	}
}

// TestJSON sends the OTLP/JSON encoding, with hex ids and 64-bit integers
// as strings, and gets a JSON answer.
func TestJSON(t *testing.T) {
	st := startStack(t, stackOpts{})
	body := `{"resourceSpans":[{"resource":{"attributes":[
	  {"key":"service.name","value":{"stringValue":"json-app"}}]},
	  "scopeSpans":[{"spans":[{
	    "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
	    "name":"chat","startTimeUnixNano":"1767225600000000000",
	    "endTimeUnixNano":"1767225601000000000",
	    "attributes":[
	      {"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
	      {"key":"gen_ai.system","value":{"stringValue":"vertex_ai"}},
	      {"key":"gen_ai.request.model","value":{"stringValue":"gemini-2.5-flash"}},
	      {"key":"gen_ai.usage.input_tokens","value":{"intValue":"120"}},
	      {"key":"gen_ai.usage.output_tokens","value":{"intValue":30}}]}]}]}]}`
	resp, out := post(t, st.httpAddr, httpCase{contentTypeJSON, "", testKey, []byte(body)})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != contentTypeJSON {
		t.Fatalf("status %d, content type %q, body %q", resp.StatusCode,
			resp.Header.Get("Content-Type"), out)
	}

	evs := st.readEvents(t, 1, 5*time.Second)
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	ev := evs[0].ev
	got := []string{ev.GetTraceId(), ev.GetStepId(), ev.GetProvider(), ev.GetApp()}
	want := []string{"5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "gcp.vertex_ai",
		"json-app"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
}
