package otlp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func sampleRequest() *collectortracepb.ExportTraceServiceRequest {
	kv := func(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: v}
	}
	s := func(v string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}
	}
	i := func(v int64) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}
	}
	return &collectortracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			kv("service.name", s("support-bot")),
		}},
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: "genai"},
			Spans: []*tracepb.Span{{
				TraceId:           []byte("0123456789abcdef"),
				SpanId:            []byte("01234567"),
				ParentSpanId:      []byte("76543210"),
				Name:              "chat gpt-4o",
				StartTimeUnixNano: 1_700_000_000_000_000_000,
				EndTimeUnixNano:   1_700_000_001_000_000_000,
				Status:            &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR},
				Attributes: []*commonpb.KeyValue{
					kv("gen_ai.operation.name", s("chat")),
					kv("gen_ai.usage.input_tokens", i(9007199254740993)),
					kv("ratio", &commonpb.AnyValue{
						Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.5}}),
					kv("flag", &commonpb.AnyValue{
						Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
					kv("list", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{
						ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{s("a")}},
					}}),
				},
				Events: []*tracepb.Span_Event{{Name: "ignored"}},
			}},
		}},
	}}}
}

func wantSample() *Traces {
	return &Traces{Resources: []Resource{{
		Attrs: []KeyValue{{Key: "service.name", Value: Value{Kind: KindString, Str: "support-bot"}}},
		Spans: []Span{{
			TraceID:      []byte("0123456789abcdef"),
			SpanID:       []byte("01234567"),
			ParentSpanID: []byte("76543210"),
			Name:         "chat gpt-4o",
			StartNanos:   1_700_000_000_000_000_000,
			EndNanos:     1_700_000_001_000_000_000,
			StatusCode:   2,
			Attrs: []KeyValue{
				{Key: "gen_ai.operation.name", Value: Value{Kind: KindString, Str: "chat"}},
				{Key: "gen_ai.usage.input_tokens", Value: Value{Kind: KindInt, Int: 9007199254740993}},
				{Key: "ratio", Value: Value{Kind: KindDouble, Double: 0.5}},
				{Key: "flag", Value: Value{Kind: KindBool, Bool: true}},
				{Key: "list", Value: Value{Kind: KindArray}},
			},
		}},
	}}}
}

var equateTraces = cmp.Options{cmpopts.EquateEmpty(), cmpopts.EquateNaNs()}

func TestDecodeProto(t *testing.T) {
	b, err := proto.Marshal(sampleRequest())
	if err != nil {
		t.Fatal(err)
	}
	var got Traces
	if err := DecodeProto(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantSample(), &got, equateTraces); diff != "" {
		t.Errorf("DecodeProto (-want +got):\n%s", diff)
	}

	if err := DecodeProto([]byte{0x0a, 0x05, 0x01}, &Traces{}); err == nil {
		t.Error("DecodeProto accepted a truncated message")
	}
}

func TestDecodeJSON(t *testing.T) {
	body := `{"resourceSpans":[{"resource":{"attributes":[
	  {"key":"service.name","value":{"stringValue":"support-bot"}}]},
	  "scopeSpans":[{"scope":{"name":"genai"},"spans":[{
	    "traceId":"30313233343536373839616263646566","spanId":"3031323334353637",
	    "parentSpanId":"3736353433323130","name":"chat gpt-4o","kind":3,
	    "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":1700000001000000000,
	    "status":{"code":"STATUS_CODE_ERROR"},
	    "attributes":[
	      {"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
	      {"key":"gen_ai.usage.input_tokens","value":{"intValue":"9007199254740993"}},
	      {"key":"ratio","value":{"doubleValue":0.5}},
	      {"key":"flag","value":{"boolValue":true}},
	      {"key":"list","value":{"arrayValue":{"values":[{"stringValue":"a"}]}}}],
	    "events":[{"name":"ignored"}],
	    "links":[{"traceId":"30313233343536373839616263646566","spanId":"3031323334353637"}],
	    "someFutureField":1}]}]}]}`
	var got Traces
	if err := DecodeJSON([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantSample(), &got, equateTraces); diff != "" {
		t.Errorf("DecodeJSON (-want +got):\n%s", diff)
	}
}

func TestDecodeJSONRejects(t *testing.T) {
	for _, body := range []string{
		``, `{`, `[]`, `{"resourceSpans":"x"}`, `{} {}`,
		`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"!!"}]}]}]}`,
	} {
		if err := DecodeJSON([]byte(body), &Traces{}); err == nil {
			t.Errorf("DecodeJSON(%q) succeeded, want an error", body)
		}
	}
}

func TestValueAsInt64(t *testing.T) {
	tests := []struct {
		v    Value
		want int64
		ok   bool
	}{
		{Value{Kind: KindInt, Int: 7}, 7, true},
		{Value{Kind: KindDouble, Double: 12}, 12, true},
		{Value{Kind: KindDouble, Double: 1.5}, 0, false},
		{Value{Kind: KindString, Str: "120"}, 120, true},
		{Value{Kind: KindString, Str: "-4"}, -4, true},
		{Value{Kind: KindString, Str: "1e3"}, 0, false},
		{Value{Kind: KindString, Str: ""}, 0, false},
		{Value{Kind: KindBool, Bool: true}, 0, false},
	}
	for _, tc := range tests {
		got, ok := tc.v.AsInt64()
		if got != tc.want || ok != tc.ok {
			t.Errorf("%+v.AsInt64() = %d, %v; want %d, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzDecodeProto checks the hand-written decoder against the generated
// code: it must never panic, must accept whatever the generated code
// accepts, and must then read the same spans and attributes.
func FuzzDecodeProto(f *testing.F) {
	seed, err := proto.Marshal(sampleRequest())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Traces
		fastErr := DecodeProto(b, &fast)

		req := &collectortracepb.ExportTraceServiceRequest{}
		if proto.Unmarshal(b, req) != nil {
			return
		}
		if fastErr != nil {
			t.Fatalf("DecodeProto failed where the generated code did not: %v", fastErr)
		}
		var slow Traces
		FromProto(req, &slow)
		if diff := cmp.Diff(&slow, &fast, equateTraces); diff != "" {
			t.Errorf("DecodeProto differs from the generated code (-generated +fast):\n%s", diff)
		}
	})
}

// FuzzDecodeJSON must never panic, whatever the body.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{` +
		`"traceId":"30313233343536373839616263646566","spanId":"3031323334353637",` +
		`"attributes":[{"key":"a","value":{"intValue":"5"}}]}]}]}]}`))
	f.Add([]byte(`{"resource_spans":[{"scope_spans":[{"spans":[` +
		`{"trace_id":"AAAAAAAAAAAAAAAAAAAAAA=="}]}]}]}`))
	f.Add([]byte(`[[[[[[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var tr Traces
		if err := DecodeJSON(b, &tr); err != nil {
			return
		}
		_ = tr.SpanCount()
	})
}
