package pricebook

import (
	"testing"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// benchMix is a plausible slice of production traffic: mostly canonical
// ids from the normalizer, some raw platform ids, cache and reasoning
// buckets, a long prompt, a batch job, an Azure deployment and a tenant
// with negotiated rates.
func benchMix() ([]*eventv1.UsageEvent, *TenantRates) {
	evs := []*eventv1.UsageEvent{
		event("anthropic", "claude-sonnet-4-5", "2026-11-01T10:00:00Z",
			[]q{{kInput, 1200}, {kCacheRead, 18_000}, {kCW5m, 2000}, {kOutput, 450}}),
		event("openai", "gpt-4.1", "2026-11-01T10:00:01Z",
			[]q{{kInput, 900}, {kCacheRead, 4000}, {kOutput, 300}}),
		event("openai", "o3", "2026-11-01T10:00:02Z",
			[]q{{kInput, 3000}, {kOutput, 700}, {kReasoning, 2400}}),
		event("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "2026-11-01T10:00:03Z",
			[]q{{kInput, 5000}, {kCacheRead, 20_000}, {kOutput, 800}}, region("us-east-1")),
		event("gcp.gemini", "gemini-2.5-pro", "2026-11-01T10:00:04Z",
			[]q{{kInput, 230_000}, {kOutput, 1500}}),
		event("gcp.gemini", "gemini-2.5-flash", "2026-11-01T10:00:05Z",
			[]q{{kInput, 4000}, {kAudioIn, 9000}, {kOutput, 600}}),
		event("azure.ai.openai", "prod-chat", "2026-11-01T10:00:06Z",
			[]q{{kInput, 700}, {kOutput, 200}}),
		event("openai", "gpt-5-mini", "2026-11-01T10:00:07Z",
			[]q{{kInput, 50_000}, {kOutput, 4000}}, tier("batch")),
		event("deepseek", "deepseek-v4-pro", "2026-11-02T05:00:00Z",
			[]q{{kInput, 8000}, {kCacheRead, 30_000}, {kOutput, 900}}),
		event("anthropic", "claude-haiku-4-5", "2026-11-01T10:00:09Z",
			[]q{{kInput, 400}, {kOutput, 120}, {kSearches, 1}}, account("acct-1")),
	}
	rates := &TenantRates{
		Discounts: []Discount{{
			ID: "disc-anthropic-15", Scope: Scope{Provider: "anthropic"}, PercentOffBP: 1500,
		}},
		FixedRates: []FixedRate{{
			ID: "fixed-41-in", Scope: Scope{Model: "gpt-4.1"}, Kind: kInput,
			PerMillionNanos: 1_800_000_000,
		}},
		Deployments: map[string]string{"prod-chat": "gpt-4o"},
	}
	return evs, rates
}

func BenchmarkPrice(b *testing.B) {
	evs, rates := benchMix()
	for _, ev := range evs {
		if p := testBook.Price(ev, rates); p.GetPricingStatus() != priced {
			b.Fatalf("bench event %s/%s is not priced: %s", ev.GetProvider(), ev.GetModel(), p.GetUnpricedReason())
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		testBook.Price(evs[i%len(evs)], rates)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
