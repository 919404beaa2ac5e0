package usage

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// buckets is a quantity list as kind -> amount, which reads better in
// tables than a slice of messages.
type buckets map[eventv1.QuantityKind]int64

func toBuckets(t *testing.T, qs []*eventv1.Quantity) buckets {
	t.Helper()
	out := buckets{}
	for _, q := range qs {
		if q.GetUnit() != eventv1.Unit_UNIT_TOKENS {
			t.Errorf("quantity %s has unit %s, want tokens", q.GetKind(), q.GetUnit())
		}
		if _, dup := out[q.GetKind()]; dup {
			t.Errorf("quantity %s appears twice", q.GetKind())
		}
		out[q.GetKind()] = q.GetAmount()
	}
	return out
}

const (
	kInput   = eventv1.QuantityKind_QUANTITY_KIND_INPUT
	kRead    = eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ
	kWrite5m = eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_5M
	kWrite1h = eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_1H
	kOutput  = eventv1.QuantityKind_QUANTITY_KIND_OUTPUT
	kReason  = eventv1.QuantityKind_QUANTITY_KIND_REASONING
	kInAudio = eventv1.QuantityKind_QUANTITY_KIND_INPUT_AUDIO
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name      string
		tokens    Tokens
		conv      Convention
		want      buckets
		wantFlags []Flag
	}{{
		name: "openai counts cache in input and reasoning in output",
		tokens: Tokens{
			Input: 1000, CacheRead: 600, Output: 500, Reasoning: 300,
		},
		conv: ConventionOpenAI,
		want: buckets{kInput: 400, kRead: 600, kOutput: 200, kReason: 300},
	}, {
		name:   "openai audio is inside input",
		tokens: Tokens{Input: 100, InputAudio: 40, CacheRead: 10, Output: 5},
		conv:   ConventionOpenAI,
		want:   buckets{kInput: 50, kRead: 10, kInAudio: 40, kOutput: 5},
	}, {
		name: "anthropic reports cache beside input",
		tokens: Tokens{
			Input: 50, CacheRead: 2000, CacheWrite5m: 300, CacheWrite1h: 100, Output: 80,
		},
		conv: ConventionAnthropic,
		want: buckets{kInput: 50, kRead: 2000, kWrite5m: 300, kWrite1h: 100, kOutput: 80},
	}, {
		name:   "bedrock reports cache beside input",
		tokens: Tokens{Input: 12, CacheRead: 3000, CacheWrite5m: 0, Output: 40},
		conv:   ConventionBedrock,
		want:   buckets{kInput: 12, kRead: 3000, kOutput: 40},
	}, {
		name:   "gemini reports thoughts beside candidates",
		tokens: Tokens{Input: 900, CacheRead: 800, Output: 120, Reasoning: 700},
		conv:   ConventionGemini,
		want:   buckets{kInput: 100, kRead: 800, kOutput: 120, kReason: 700},
	}, {
		name:      "cache above input is kept and flagged",
		tokens:    Tokens{Input: 100, CacheRead: 150, Output: 10},
		conv:      ConventionOTel,
		want:      buckets{kRead: 150, kOutput: 10},
		wantFlags: []Flag{FlagInputDetailsExceedInput},
	}, {
		name:      "reasoning above output is kept and flagged",
		tokens:    Tokens{Input: 10, Output: 5, Reasoning: 9},
		conv:      ConventionOpenAI,
		want:      buckets{kInput: 10, kReason: 9},
		wantFlags: []Flag{FlagOutputDetailsExceedOutput},
	}, {
		name:      "negative counts read as zero",
		tokens:    Tokens{Input: -5, Output: 7},
		conv:      ConventionOpenAI,
		want:      buckets{kOutput: 7},
		wantFlags: []Flag{FlagNegativeCount},
	}, {
		name:      "absurd counts are capped",
		tokens:    Tokens{Input: MaxAmount + 1},
		conv:      ConventionOpenAI,
		want:      buckets{kInput: MaxAmount},
		wantFlags: []Flag{FlagCountTooLarge},
	}, {
		name:   "zero report has no quantities",
		tokens: Tokens{},
		conv:   ConventionOpenAI,
		want:   buckets{},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			qs, flags := tc.tokens.Normalize(tc.conv)
			if diff := cmp.Diff(tc.want, toBuckets(t, qs)); diff != "" {
				t.Errorf("quantities (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantFlags, flags); diff != "" {
				t.Errorf("flags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNativeConvention(t *testing.T) {
	tests := []struct {
		provider, model string
		want            Convention
	}{
		{ProviderOpenAI, "gpt-4o", ConventionOpenAI},
		{ProviderAzureOpenAI, "gpt-4o", ConventionOpenAI},
		{ProviderAnthropic, "claude-sonnet-4", ConventionAnthropic},
		{ProviderAWSBedrock, "anthropic.claude-3-haiku", ConventionBedrock},
		{ProviderGCPGemini, "gemini-2.5-pro", ConventionGemini},
		{ProviderGCPVertexAI, "gemini-2.5-pro", ConventionGemini},
		{ProviderGCPVertexAI, "claude-opus-4@20250514", ConventionAnthropic},
		{"somebody-new", "x", ConventionOpenAI},
	}
	for _, tc := range tests {
		if got := NativeConvention(tc.provider, tc.model); got != tc.want {
			t.Errorf("NativeConvention(%q, %q) = %+v, want %+v", tc.provider, tc.model, got, tc.want)
		}
	}
}

// FuzzNormalize checks the invariants for any report: no negative or
// repeated bucket, and, when nothing was flagged, buckets that add up to
// the report's totals.
func FuzzNormalize(f *testing.F) {
	f.Add(int64(1000), int64(500), int64(600), int64(0), int64(0), int64(300), int64(0), false, true)
	f.Add(int64(50), int64(80), int64(2000), int64(300), int64(100), int64(0), int64(0), true, true)
	f.Add(int64(-1), int64(1<<62), int64(5), int64(5), int64(5), int64(5), int64(5), false, false)
	f.Fuzz(func(t *testing.T, in, out, read, w5, w1, reason, audio int64, cacheIn, reasonIn bool) {
		tok := Tokens{
			Input: in, Output: out, CacheRead: read, CacheWrite5m: w5, CacheWrite1h: w1,
			Reasoning: reason, InputAudio: audio,
		}
		c := Convention{CacheInInput: cacheIn, ReasoningInOutput: reasonIn}
		qs, flags := tok.Normalize(c)

		var inSum, outSum int64
		for _, q := range toBuckets(t, qs) {
			if q <= 0 || q > MaxAmount {
				t.Fatalf("bucket amount %d out of range", q)
			}
		}
		for _, q := range qs {
			switch q.GetKind() {
			case kOutput, kReason, eventv1.QuantityKind_QUANTITY_KIND_OUTPUT_AUDIO:
				outSum += q.GetAmount()
			default:
				inSum += q.GetAmount()
			}
		}
		if len(flags) > 0 {
			return
		}
		if want := tok.InputTotal(c); inSum != want {
			t.Errorf("input buckets add up to %d, want %d", inSum, want)
		}
		if want := tok.OutputTotal(c); outSum != want {
			t.Errorf("output buckets add up to %d, want %d", outSum, want)
		}
	})
}

func TestInferConvention(t *testing.T) {
	tests := []struct {
		name     string
		tokens   Tokens
		total    int64
		fallback Convention
		want     Convention
	}{
		{"no total keeps fallback", Tokens{Input: 10, CacheRead: 5}, 0, ConventionOTel, ConventionOTel},
		{"inclusive total", Tokens{Input: 10, CacheRead: 5, Output: 3}, 13, ConventionOTel,
			ConventionOTel},
		{"cache beside input", Tokens{Input: 10, CacheRead: 5, Output: 3}, 18, ConventionOTel,
			ConventionAnthropic},
		{"thoughts beside output", Tokens{Input: 10, Output: 3, Reasoning: 7}, 20, ConventionOTel,
			ConventionGemini},
		{"total fits nothing", Tokens{Input: 10, Output: 3}, 99, ConventionOTel, ConventionOTel},
		{"no details fit all", Tokens{Input: 10, Output: 3}, 13, ConventionGemini, ConventionGemini},
	}
	for _, tc := range tests {
		if got := tc.tokens.InferConvention(tc.total, tc.fallback); got != tc.want {
			t.Errorf("%s: InferConvention = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
