package pricebook

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/money"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/catalog"
)

const (
	kInput     = eventv1.QuantityKind_QUANTITY_KIND_INPUT
	kCacheRead = eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ
	kCW5m      = eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_5M
	kCW1h      = eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_1H
	kOutput    = eventv1.QuantityKind_QUANTITY_KIND_OUTPUT
	kReasoning = eventv1.QuantityKind_QUANTITY_KIND_REASONING
	kAudioIn   = eventv1.QuantityKind_QUANTITY_KIND_INPUT_AUDIO
	kSearches  = eventv1.QuantityKind_QUANTITY_KIND_WEB_SEARCHES
	kCompute   = eventv1.QuantityKind_QUANTITY_KIND_COMPUTE_SECONDS
)

// testBook is built once; a catalog that fails to load leaves it nil and
// every test fails on it (the catalog's own tests report the details).
var testBook = func() *Book {
	cat, err := catalog.Load()
	if err != nil {
		return nil
	}
	return New(cat)
}()

func TestMain(m *testing.M) {
	if testBook == nil {
		fmt.Fprintln(os.Stderr, "catalog does not load; run the catalog tests")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

type q struct {
	kind   eventv1.QuantityKind
	amount int64
}

type evOpt func(*eventv1.UsageEvent)

func tier(t string) evOpt    { return func(e *eventv1.UsageEvent) { e.ServiceTier = t } }
func region(r string) evOpt  { return func(e *eventv1.UsageEvent) { e.Region = r } }
func account(a string) evOpt { return func(e *eventv1.UsageEvent) { e.Account = a } }
func reported(n int64) evOpt {
	return func(e *eventv1.UsageEvent) { e.ReportedCost = money.New("USD", n) }
}

func event(provider, model, start string, qs []q, opts ...evOpt) *eventv1.UsageEvent {
	// A malformed start leaves the zero time, which no expected cost matches.
	at, _ := time.Parse(time.RFC3339, start)
	ev := &eventv1.UsageEvent{
		EventId: "ev-1", TenantId: "t-1", Provider: provider, Model: model,
		StartTime: timestamppb.New(at), RequestCount: 1,
		Granularity: eventv1.Granularity_GRANULARITY_REQUEST,
	}
	for _, x := range qs {
		ev.Quantities = append(ev.Quantities, &eventv1.Quantity{
			Kind: x.kind, Unit: catalog.KindUnit(x.kind), Amount: x.amount,
		})
	}
	for _, o := range opts {
		o(ev)
	}
	return ev
}

// line is the part of a cost line a test checks.
type line struct {
	Kind       string
	Amount     int64
	UnitPerM   int64
	List, Eff  int64
	RateSuffix string
}

type view struct {
	Status    eventv1.PricingStatus
	Lines     []line
	List, Eff int64
	Tenant    []string
}

func viewOf(p *eventv1.PricedUsage) view {
	v := view{Status: p.GetPricingStatus(), Tenant: p.GetPriceRef().GetTenantRateIds()}
	for _, l := range p.GetCostLines() {
		suffix := ""
		if i := strings.IndexByte(l.GetRateId(), '#'); i >= 0 {
			suffix = l.GetRateId()[i:]
		}
		v.Lines = append(v.Lines, line{
			Kind: catalog.KindName(l.GetKind()), Amount: l.GetAmount(),
			UnitPerM: l.GetUnitPricePerMillionNanos(),
			List:     l.GetListCost().GetNanos(), Eff: l.GetEffectiveCost().GetNanos(),
			RateSuffix: suffix,
		})
	}
	v.List, v.Eff = p.GetListCost().GetNanos(), p.GetEffectiveCost().GetNanos()
	return v
}

func TestPriceHandComputed(t *testing.T) {
	const usd = int64(1_000_000_000) // nanos per dollar
	tests := []struct {
		name  string
		ev    *eventv1.UsageEvent
		rates *TenantRates
		want  view
	}{
		{
			// Claude Sonnet 4.5: input $3, 5m write $3.75, 1h write $6, output $15 per M.
			// 1000*3e9/1e6 = 3,000,000; 2000*3.75e9/1e6 = 7,500,000;
			// 3000*6e9/1e6 = 18,000,000; 500*15e9/1e6 = 7,500,000; total 36,000,000.
			name: "cache writes by ttl",
			ev: event("anthropic", "claude-sonnet-4-5", "2026-11-01T10:00:00Z",
				[]q{{kInput, 1000}, {kCW5m, 2000}, {kCW1h, 3000}, {kOutput, 500}}),
			want: view{Status: priced, List: 36_000_000, Eff: 36_000_000, Lines: []line{
				{"input", 1000, 3 * usd, 3_000_000, 3_000_000, ""},
				{"cache_write_5m", 2000, 3_750_000_000, 7_500_000, 7_500_000, ""},
				{"cache_write_1h", 3000, 6 * usd, 18_000_000, 18_000_000, ""},
				{"output", 500, 15 * usd, 7_500_000, 7_500_000, ""},
			}},
		},
		{
			// Prompt = 150,000 input + 60,000 cache read = 210,000 > 200,000, so
			// every token takes the long rates: input $6, cache read $0.60,
			// output $22.50. 150000*6e9/1e6 = 900,000,000; 60000*0.6e9/1e6 =
			// 36,000,000; 1000*22.5e9/1e6 = 22,500,000; total 958,500,000.
			name: "long context tier",
			ev: event("anthropic", "claude-sonnet-4-5", "2026-11-01T10:00:00Z",
				[]q{{kInput, 150_000}, {kCacheRead, 60_000}, {kOutput, 1000}}),
			want: view{Status: priced, List: 958_500_000, Eff: 958_500_000, Lines: []line{
				{"input", 150_000, 6 * usd, 900_000_000, 900_000_000, "#long"},
				{"cache_read", 60_000, 600_000_000, 36_000_000, 36_000_000, "#long"},
				{"output", 1000, 22_500_000_000, 22_500_000, 22_500_000, "#long"},
			}},
		},
		{
			// Exactly 200,000 prompt tokens is not over the threshold:
			// 200000*3e9/1e6 = 600,000,000.
			name: "long context threshold is exclusive",
			ev: event("anthropic", "claude-sonnet-4-5", "2026-11-01T10:00:00Z",
				[]q{{kInput, 200_000}}),
			want: view{Status: priced, List: 600_000_000, Eff: 600_000_000, Lines: []line{
				{"input", 200_000, 3 * usd, 600_000_000, 600_000_000, ""},
			}},
		},
		{
			// Haiku 5.5 bills by prompt length: 80,000 + 30,000 cache read =
			// 110,000 > 100,000, so input $0.50, cache read $0.05, output $2.50.
			// 80000*0.5e9/1e6 = 40,000,000; 30000*0.05e9/1e6 = 1,500,000;
			// 2000*2.5e9/1e6 = 5,000,000; total 46,500,000.
			name: "haiku 5.5 prompt-length tier",
			ev: event("anthropic", "claude-haiku-5-5", "2026-11-20T10:00:00Z",
				[]q{{kInput, 80_000}, {kCacheRead, 30_000}, {kOutput, 2000}}),
			want: view{Status: priced, List: 46_500_000, Eff: 46_500_000, Lines: []line{
				{"input", 80_000, 500_000_000, 40_000_000, 40_000_000, "#long"},
				{"cache_read", 30_000, 50_000_000, 1_500_000, 1_500_000, "#long"},
				{"output", 2000, 2_500_000_000, 5_000_000, 5_000_000, "#long"},
			}},
		},
		{
			// Batch is 50 % of standard for GPT-4.1: input $2 -> $1, output $8 -> $4.
			// 1,000,000*1e9/1e6 = 1,000,000,000; 200000*4e9/1e6 = 800,000,000.
			name: "batch tier",
			ev: event("openai", "gpt-4.1", "2026-11-01T10:00:00Z",
				[]q{{kInput, 1_000_000}, {kOutput, 200_000}}, tier("batch")),
			want: view{Status: priced, List: 1_800_000_000, Eff: 1_800_000_000, Lines: []line{
				{"input", 1_000_000, 1 * usd, 1 * usd, 1 * usd, "#batch"},
				{"output", 200_000, 4 * usd, 800_000_000, 800_000_000, "#batch"},
			}},
		},
		{
			// Priority has its own published row for GPT-5.4: $5 input.
			// 100000*5e9/1e6 = 500,000,000.
			name: "priority tier explicit row",
			ev: event("openai", "gpt-5.4", "2026-11-01T10:00:00Z",
				[]q{{kInput, 100_000}}, tier("priority")),
			want: view{Status: priced, List: 500_000_000, Eff: 500_000_000, Lines: []line{
				{"input", 100_000, 5 * usd, 500_000_000, 500_000_000, ""},
			}},
		},
		{
			// Bedrock geographic profile (us.) pays the 10 % regional premium:
			// input $3.30, output $16.50. 10000*3.3e9/1e6 = 33,000,000;
			// 2000*16.5e9/1e6 = 33,000,000; total 66,000,000.
			name: "bedrock cross-region profile",
			ev: event("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "2026-11-01T10:00:00Z",
				[]q{{kInput, 10_000}, {kOutput, 2000}}, region("us-east-1")),
			want: view{Status: priced, List: 66_000_000, Eff: 66_000_000, Lines: []line{
				{"input", 10_000, 3_300_000_000, 33_000_000, 33_000_000, "#cross-region"},
				{"output", 2000, 16_500_000_000, 33_000_000, 33_000_000, "#cross-region"},
			}},
		},
		{
			// Same usage on the global profile is list price: 30,000,000 + 30,000,000.
			name: "bedrock global profile",
			ev: event("aws.bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "2026-11-01T10:00:00Z",
				[]q{{kInput, 10_000}, {kOutput, 2000}}, region("us-east-1")),
			want: view{Status: priced, List: 60_000_000, Eff: 60_000_000, Lines: []line{
				{"input", 10_000, 3 * usd, 30_000_000, 30_000_000, ""},
				{"output", 2000, 15 * usd, 30_000_000, 30_000_000, ""},
			}},
		},
		{
			// o3 after the 2025-06-10 cut: input $2, output $8; reasoning has no
			// price of its own and is billed at output. 2000*2e9/1e6 = 4,000,000;
			// 1000*8e9/1e6 = 8,000,000; 3000*8e9/1e6 = 24,000,000.
			name: "reasoning tokens at the output rate",
			ev: event("openai", "o3", "2026-01-15T10:00:00Z",
				[]q{{kInput, 2000}, {kOutput, 1000}, {kReasoning, 3000}}),
			want: view{Status: priced, List: 36_000_000, Eff: 36_000_000, Lines: []line{
				{"input", 2000, 2 * usd, 4_000_000, 4_000_000, ""},
				{"output", 1000, 8 * usd, 8_000_000, 8_000_000, ""},
				{"reasoning", 3000, 8 * usd, 24_000_000, 24_000_000, ""},
			}},
		},
		{
			// o3 before the cut: input $10, output $40.
			// 2000*10e9/1e6 = 20,000,000; 1000*40e9/1e6 = 40,000,000.
			name: "price before a change date",
			ev: event("openai", "o3", "2025-06-09T23:59:59Z",
				[]q{{kInput, 2000}, {kOutput, 1000}}),
			want: view{Status: priced, List: 60_000_000, Eff: 60_000_000, Lines: []line{
				{"input", 2000, 10 * usd, 20_000_000, 20_000_000, ""},
				{"output", 1000, 40 * usd, 40_000_000, 40_000_000, ""},
			}},
		},
		{
			// Sonnet 5.5 cache read was cut from $0.20 to $0.10 on 2026-10-07.
			// Before: 1,000,000*0.2e9/1e6 = 200,000,000.
			name: "sonnet 5.5 cache read before the cut",
			ev: event("anthropic", "claude-sonnet-5-5", "2026-10-06T23:59:59Z",
				[]q{{kCacheRead, 1_000_000}}),
			want: view{Status: priced, List: 200_000_000, Eff: 200_000_000, Lines: []line{
				{"cache_read", 1_000_000, 200_000_000, 200_000_000, 200_000_000, ""},
			}},
		},
		{
			// After: 1,000,000*0.1e9/1e6 = 100,000,000.
			name: "sonnet 5.5 cache read after the cut",
			ev: event("anthropic", "claude-sonnet-5-5", "2026-10-07T00:00:00Z",
				[]q{{kCacheRead, 1_000_000}}),
			want: view{Status: priced, List: 100_000_000, Eff: 100_000_000, Lines: []line{
				{"cache_read", 1_000_000, 100_000_000, 100_000_000, 100_000_000, ""},
			}},
		},
		{
			// Gemini 2.5 Flash: text input $0.30, audio input $1.00, output $2.50.
			// 10000*0.3e9/1e6 = 3,000,000; 20000*1e9/1e6 = 20,000,000;
			// 1000*2.5e9/1e6 = 2,500,000; total 25,500,000.
			name: "audio tokens",
			ev: event("gcp.gemini", "gemini-2.5-flash", "2026-11-01T10:00:00Z",
				[]q{{kInput, 10_000}, {kAudioIn, 20_000}, {kOutput, 1000}}),
			want: view{Status: priced, List: 25_500_000, Eff: 25_500_000, Lines: []line{
				{"input", 10_000, 300_000_000, 3_000_000, 3_000_000, ""},
				{"input_audio", 20_000, 1 * usd, 20_000_000, 20_000_000, ""},
				{"output", 1000, 2_500_000_000, 2_500_000, 2_500_000, ""},
			}},
		},
		{
			// Web search: $10 per 1,000 = $10,000 per million calls.
			// 3*1e13/1e6 = 30,000,000; input 1000*3e9/1e6 = 3,000,000.
			name: "per-call fee",
			ev: event("anthropic", "claude-sonnet-4-5", "2026-11-01T10:00:00Z",
				[]q{{kInput, 1000}, {kSearches, 3}}),
			want: view{Status: priced, List: 33_000_000, Eff: 33_000_000, Lines: []line{
				{"input", 1000, 3 * usd, 3_000_000, 3_000_000, ""},
				{"web_searches", 3, 10_000 * usd, 30_000_000, 30_000_000, ""},
			}},
		},
		{
			// DeepSeek V4 Pro, Monday 02:00 UTC is peak: $1.32 per M input.
			// 1,000,000*1.32e9/1e6 = 1,320,000,000.
			name: "deepseek peak hour",
			ev: event("deepseek", "deepseek-v4-pro", "2026-11-02T02:00:00Z",
				[]q{{kInput, 1_000_000}}),
			want: view{Status: priced, List: 1_320_000_000, Eff: 1_320_000_000, Lines: []line{
				{"input", 1_000_000, 1_320_000_000, 1_320_000_000, 1_320_000_000, ""},
			}},
		},
		{
			// Monday 05:00 UTC is off-peak: $0.66. 1,000,000*0.66e9/1e6 = 660,000,000.
			name: "deepseek off-peak hour",
			ev: event("deepseek", "deepseek-v4-pro", "2026-11-02T05:00:00Z",
				[]q{{kInput, 1_000_000}}),
			want: view{Status: priced, List: 660_000_000, Eff: 660_000_000, Lines: []line{
				{"input", 1_000_000, 660_000_000, 660_000_000, 660_000_000, "#off-peak"},
			}},
		},
		{
			// 15 % off every Anthropic line: list 100,000*3e9/1e6 = 300,000,000;
			// effective 300,000,000*8500/10000 = 255,000,000. The expired 90 %
			// discount does not apply.
			name: "tenant discount",
			ev: event("anthropic", "claude-sonnet-4-5", "2026-11-01T10:00:00Z",
				[]q{{kInput, 100_000}}),
			rates: &TenantRates{Discounts: []Discount{
				{ID: "disc-anthropic-15", Scope: Scope{Provider: "anthropic"}, PercentOffBP: 1500},
				{ID: "disc-expired", Scope: Scope{Provider: "anthropic"}, PercentOffBP: 9000,
					Validity: Validity{To: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}},
			}},
			want: view{Status: priced, List: 300_000_000, Eff: 255_000_000, Tenant: []string{"disc-anthropic-15"},
				Lines: []line{{"input", 100_000, 3 * usd, 300_000_000, 255_000_000, ""}}},
		},
		{
			// Fixed $2.00 per M input for account acct-1 beats the provider-wide
			// 10 % discount (more specific scope), which still applies to output.
			// Input list 500000*2.5e9/1e6 = 1,250,000,000, effective
			// 500000*2e9/1e6 = 1,000,000,000. Output list 100000*10e9/1e6 =
			// 1,000,000,000, effective 900,000,000.
			name: "fixed tenant rate",
			ev: event("openai", "gpt-4o", "2026-11-01T10:00:00Z",
				[]q{{kInput, 500_000}, {kOutput, 100_000}}, account("acct-1")),
			rates: &TenantRates{
				FixedRates: []FixedRate{{ID: "fixed-4o-in", Kind: kInput, PerMillionNanos: 2 * usd,
					Scope: Scope{Model: "gpt-4o", Account: "acct-1"}}},
				Discounts: []Discount{{ID: "disc-openai-10", Scope: Scope{Provider: "openai"}, PercentOffBP: 1000}},
			},
			want: view{Status: priced, List: 2_250_000_000, Eff: 1_900_000_000,
				Tenant: []string{"fixed-4o-in", "disc-openai-10"},
				Lines: []line{
					{"input", 500_000, 2_500_000_000, 1_250_000_000, 1 * usd, ""},
					{"output", 100_000, 10 * usd, 1 * usd, 900_000_000, ""},
				}},
		},
		{
			// Self-hosted model at $0.20 / $0.60 per M: 1,000,000*0.2e9/1e6 =
			// 200,000,000; 500000*0.6e9/1e6 = 300,000,000.
			name: "custom model per token",
			ev: event("self-hosted", "acme-llama", "2026-11-01T10:00:00Z",
				[]q{{kInput, 1_000_000}, {kOutput, 500_000}}),
			rates: &TenantRates{CustomModels: []CustomModel{customModel()}},
			want: view{Status: priced, List: 500_000_000, Eff: 500_000_000, Tenant: []string{"custom-acme-llama"},
				Lines: []line{
					{"input", 1_000_000, 200_000_000, 200_000_000, 200_000_000, ""},
					{"output", 500_000, 600_000_000, 300_000_000, 300_000_000, ""},
				}},
		},
		{
			// $2.50 per GPU hour: 90 s * 2.5e9 / 3600 = 62,500,000. The per-million
			// figure is 2.5e9*1e6/3600 = 694,444,444,444.4 -> 694,444,444,444.
			name: "custom model per hour",
			ev: event("self-hosted", "acme-llama", "2026-11-01T10:00:00Z",
				[]q{{kCompute, 90}}),
			rates: &TenantRates{CustomModels: []CustomModel{customModel()}},
			want: view{Status: priced, List: 62_500_000, Eff: 62_500_000, Tenant: []string{"custom-acme-llama"},
				Lines: []line{{"compute_seconds", 90, 694_444_444_444, 62_500_000, 62_500_000, ""}}},
		},
		{
			// Azure deployment "prod-chat" is the tenant's GPT-4o on a Data Zone
			// deployment (+10 %): input $2.75. 100000*2.75e9/1e6 = 275,000,000.
			name: "azure deployment data zone",
			ev: func() *eventv1.UsageEvent {
				e := event("azure.ai.openai", "prod-chat", "2026-11-01T10:00:00Z", []q{{kInput, 100_000}})
				e.InferenceProfile = "data_zone"
				return e
			}(),
			rates: &TenantRates{Deployments: map[string]string{"prod-chat": "gpt-4o"}},
			want: view{Status: priced, List: 275_000_000, Eff: 275_000_000, Lines: []line{
				{"input", 100_000, 2_750_000_000, 275_000_000, 275_000_000, "#data-zone"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testBook.Price(tt.ev, tt.rates)
			if diff := cmp.Diff(tt.want, viewOf(got)); diff != "" {
				t.Errorf("Price (-want +got):\n%s\nreason: %s", diff, got.GetUnpricedReason())
			}
			if got.GetPriceRef().GetCatalogVersion() != testBook.Catalog().Version() {
				t.Errorf("catalog version %q, want %q", got.GetPriceRef().GetCatalogVersion(), testBook.Catalog().Version())
			}
		})
	}
}

const priced = eventv1.PricingStatus_PRICING_STATUS_PRICED

func customModel() CustomModel {
	c := CustomModel{ID: "custom-acme-llama", Provider: "self-hosted", Model: "acme-llama",
		PerHourNanos: 2_500_000_000}
	c.Rates.Set(kInput, 200_000_000)
	c.Rates.Set(kOutput, 600_000_000)
	return c
}

func TestPriceUnpriced(t *testing.T) {
	tests := []struct {
		name       string
		ev         *eventv1.UsageEvent
		wantStatus eventv1.PricingStatus
		wantReason string
	}{
		{"unknown model",
			event("openai", "gpt-9-ultra", "2026-11-01T10:00:00Z", []q{{kInput, 1000}}),
			eventv1.PricingStatus_PRICING_STATUS_UNPRICED, `unknown model: "gpt-9-ultra" at openai`},
		{"audio on a text model",
			event("openai", "gpt-4.1", "2026-11-01T10:00:00Z", []q{{kInput, 1000}, {kAudioIn, 10}}),
			eventv1.PricingStatus_PRICING_STATUS_UNPRICED, "has no price for quantity kind input_audio"},
		{"region without a published price",
			event("aws.bedrock", "meta.llama3-3-70b-instruct-v1:0", "2026-11-01T10:00:00Z",
				[]q{{kInput, 1000}}, region("eu-west-3")),
			eventv1.PricingStatus_PRICING_STATUS_UNPRICED, "no price for region eu-west-3"},
		{"tier without a price",
			event("x_ai", "grok-4.7", "2026-11-01T10:00:00Z", []q{{kInput, 1000}}, tier("batch")),
			eventv1.PricingStatus_PRICING_STATUS_UNPRICED, `no price for service tier "batch"`},
		{"long context tariff not in the catalog",
			event("openai", "gpt-6-sol", "2026-11-01T10:00:00Z", []q{{kInput, 300_000}}),
			eventv1.PricingStatus_PRICING_STATUS_UNPRICED, "prompts over 272000 tokens"},
		{"before the first known price",
			event("openai", "gpt-5.6-terra", "2026-07-20T10:00:00Z", []q{{kInput, 1000}}),
			eventv1.PricingStatus_PRICING_STATUS_UNPRICED, "no price valid at 2026-07-20T10:00:00Z"},
		{"negative amount",
			event("openai", "gpt-4o", "2026-11-01T10:00:00Z", []q{{kInput, -5}}),
			eventv1.PricingStatus_PRICING_STATUS_UNPRICED, "negative amount"},
		{"unknown model with a reported cost",
			event("openai", "gpt-9-ultra", "2026-11-01T10:00:00Z", []q{{kInput, 1000}}, reported(123_456)),
			eventv1.PricingStatus_PRICING_STATUS_REPORTED, "unknown model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testBook.Price(tt.ev, nil)
			if got.GetPricingStatus() != tt.wantStatus {
				t.Fatalf("status %s, want %s (reason %q)", got.GetPricingStatus(), tt.wantStatus, got.GetUnpricedReason())
			}
			if !strings.Contains(got.GetUnpricedReason(), tt.wantReason) {
				t.Errorf("reason %q, want it to contain %q", got.GetUnpricedReason(), tt.wantReason)
			}
			if len(got.GetCostLines()) != 0 || got.GetListCost() != nil {
				t.Errorf("unpriced event carries cost lines or a list cost: %v", got)
			}
			if tt.wantStatus == eventv1.PricingStatus_PRICING_STATUS_REPORTED {
				if got.GetEffectiveCost().GetNanos() != 123_456 || got.GetUsage().GetReportedCost().GetNanos() != 123_456 {
					t.Errorf("reported cost not kept: effective %v, usage %v", got.GetEffectiveCost(), got.GetUsage().GetReportedCost())
				}
			} else if got.GetEffectiveCost() != nil {
				t.Errorf("unpriced event has effective cost %v, want none (never $0)", got.GetEffectiveCost())
			}
		})
	}
}

func TestPricedKeepsReportedCost(t *testing.T) {
	ev := event("openai", "gpt-4o", "2026-11-01T10:00:00Z", []q{{kInput, 1000}}, reported(999))
	got := testBook.Price(ev, nil)
	// 1000*2.5e9/1e6 = 2,500,000 computed; the source's 999 stays on the usage.
	if got.GetPricingStatus() != priced || got.GetListCost().GetNanos() != 2_500_000 {
		t.Fatalf("got %s list %v, want PRICED 2,500,000", got.GetPricingStatus(), got.GetListCost())
	}
	if got.GetUsage().GetReportedCost().GetNanos() != 999 {
		t.Errorf("reported cost %v, want 999 kept on the usage", got.GetUsage().GetReportedCost())
	}
}

func TestPriceIsDeterministic(t *testing.T) {
	ev := event("anthropic", "claude-opus-4-5", "2026-11-01T10:00:00Z",
		[]q{{kInput, 12_345}, {kCacheRead, 678}, {kOutput, 910}})
	a, b := testBook.Price(ev, nil), testBook.Price(ev, nil)
	if diff := cmp.Diff(viewOf(a), viewOf(b)); diff != "" {
		t.Errorf("two pricings differ (-first +second):\n%s", diff)
	}
	if a.GetPricedId() != "ev-1" || len(a.GetPriceRef().GetRateIds()) != 1 {
		t.Errorf("priced id %q rate ids %v", a.GetPricedId(), a.GetPriceRef().GetRateIds())
	}
}

func TestTenantRatesValidate(t *testing.T) {
	bad := &TenantRates{
		Discounts:    []Discount{{ID: "d", PercentOffBP: 12_000}},
		FixedRates:   []FixedRate{{ID: "", Kind: kInput}},
		CustomModels: []CustomModel{{ID: "c"}},
	}
	err := bad.Validate()
	for _, want := range []string{"not in [0, 10000]", "id is empty", "needs a model"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	good := &TenantRates{Discounts: []Discount{{ID: "d", PercentOffBP: 1500}}}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
}
