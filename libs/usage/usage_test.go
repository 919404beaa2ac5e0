package usage

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

func TestRecordKey(t *testing.T) {
	tests := []struct {
		name string
		ev   *eventv1.UsageEvent
		want string
	}{
		{"run", &eventv1.UsageEvent{TenantId: "t", RunId: "r", SessionId: "s", EventId: "e"}, "t/r"},
		{"session", &eventv1.UsageEvent{TenantId: "t", SessionId: "s", EventId: "e"}, "t/s"},
		{"event", &eventv1.UsageEvent{TenantId: "t", EventId: "e"}, "t/e"},
	}
	for _, tc := range tests {
		if got := string(RecordKey(tc.ev)); got != tc.want {
			t.Errorf("%s: RecordKey = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	ev := validEvent()
	b, err := Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ev, got, protocmp.Transform()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := Unmarshal([]byte{0xff}); err == nil {
		t.Error("Unmarshal accepted garbage")
	}
}

func TestEventIDs(t *testing.T) {
	trace := []byte{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21,
		0x1c, 0x80, 0x31, 0x9c}
	span := []byte{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}
	want := "span:0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331"
	if got := SpanEventID("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"); got != want {
		t.Errorf("SpanEventID = %q, want %q", got, want)
	}
	if got := string(AppendSpanEventID(nil, trace, span)); got != want {
		t.Errorf("AppendSpanEventID = %q, want %q", got, want)
	}
	if got := ResponseEventID("openai", "chatcmpl-1"); got != "resp:openai:chatcmpl-1" {
		t.Errorf("ResponseEventID = %q", got)
	}
	if HashEventID("a", "bc") == HashEventID("ab", "c") {
		t.Error("HashEventID does not separate its parts")
	}
	if HashEventID("a", "b") != HashEventID("a", "b") {
		t.Error("HashEventID is not deterministic")
	}
	if got := DedupKey("openai", ""); got != "" {
		t.Errorf("DedupKey without id = %q, want empty", got)
	}
}

func TestCanonicalProvider(t *testing.T) {
	tests := map[string]string{
		"openai":          "openai",
		" OpenAI ":        "openai",
		"az.ai.openai":    "azure.ai.openai",
		"az.ai.inference": "azure.ai.inference",
		"azure":           "azure.ai.openai",
		"vertex_ai":       "gcp.vertex_ai",
		"vertexai":        "gcp.vertex_ai",
		"gemini":          "gcp.gemini",
		"google":          "gcp.gen_ai",
		"xai":             "x_ai",
		"x_ai":            "x_ai",
		"mistralai":       "mistral_ai",
		"aws":             "aws.bedrock",
		"aws.bedrock":     "aws.bedrock",
		"deepseek":        "deepseek",
		"groq":            "groq",
		"cohere":          "cohere",
		"NewLab":          "newlab",
	}
	for in, want := range tests {
		if got := CanonicalProvider(in); got != want {
			t.Errorf("CanonicalProvider(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalModel(t *testing.T) {
	tests := []struct {
		provider, model, want, profile string
	}{
		{ProviderGCPGemini, "models/gemini-2.5-pro", "gemini-2.5-pro", ""},
		{ProviderAWSBedrock, "us.anthropic.claude-sonnet-4-v1:0", "anthropic.claude-sonnet-4-v1:0",
			InferenceProfileCrossRegion},
		{ProviderAWSBedrock, "global.anthropic.claude-sonnet-4-v1:0",
			"anthropic.claude-sonnet-4-v1:0", InferenceProfileGlobal},
		{ProviderAWSBedrock, "anthropic.claude-3-haiku", "anthropic.claude-3-haiku", ""},
		{ProviderOpenAI, " gpt-4o ", "gpt-4o", ""},
	}
	for _, tc := range tests {
		got, profile := CanonicalModel(tc.provider, tc.model)
		if got != tc.want || profile != tc.profile {
			t.Errorf("CanonicalModel(%q, %q) = %q, %q; want %q, %q",
				tc.provider, tc.model, got, profile, tc.want, tc.profile)
		}
	}
}
