package correction

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/costplane/costplane/libs/money"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

const (
	kIn  = eventv1.QuantityKind_QUANTITY_KIND_INPUT
	kOut = eventv1.QuantityKind_QUANTITY_KIND_OUTPUT
	kCR  = eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ
	tok  = eventv1.Unit_UNIT_TOKENS

	priced   = eventv1.PricingStatus_PRICING_STATUS_PRICED
	unpriced = eventv1.PricingStatus_PRICING_STATUS_UNPRICED
	reported = eventv1.PricingStatus_PRICING_STATUS_REPORTED
)

var usage = &eventv1.UsageEvent{EventId: "ev-1", TenantId: "t"}

type ln struct {
	kind         eventv1.QuantityKind
	amount, unit int64
	list, eff    int64
	rate         string
}

func line(l ln) *eventv1.CostLine {
	return &eventv1.CostLine{
		Kind: l.kind, Unit: tok, Amount: l.amount, UnitPricePerMillionNanos: l.unit,
		ListCost: money.New("USD", l.list), EffectiveCost: money.New("USD", l.eff), RateId: l.rate,
	}
}

func pricedState(version int64, lines ...ln) *eventv1.PricedUsage {
	p := &eventv1.PricedUsage{
		PricedId: "ev-1", Usage: usage, PricingStatus: priced, PriceVersion: version,
		PriceRef: &eventv1.PriceRef{CatalogVersion: "cat-1"},
	}
	var list, eff int64
	for _, l := range lines {
		p.CostLines = append(p.CostLines, line(l))
		list += l.list
		eff += l.eff
	}
	p.ListCost, p.EffectiveCost = money.New("USD", list), money.New("USD", eff)
	return p
}

func unpricedState(reason string) *eventv1.PricedUsage {
	return &eventv1.PricedUsage{
		PricedId: "ev-1", Usage: usage, PricingStatus: unpriced, UnpricedReason: reason,
		PriceVersion: 1,
	}
}

func TestBuild(t *testing.T) {
	// claude-sonnet-4-5 list prices: input $3, output $15 per million.
	// 1200 input = 3_600_000 nanos, 450 output = 6_750_000 nanos.
	list := []ln{
		{kIn, 1200, 3_000_000_000, 3_600_000, 3_600_000, "row"},
		{kOut, 450, 15_000_000_000, 6_750_000, 6_750_000, "row"},
	}
	// 15 % off: 3_060_000 and 5_737_500.
	discounted := []ln{
		{kIn, 1200, 3_000_000_000, 3_600_000, 3_060_000, "row"},
		{kOut, 450, 15_000_000_000, 6_750_000, 5_737_500, "row"},
	}

	tests := []struct {
		name     string
		old, cur *eventv1.PricedUsage
		want     *eventv1.PricedUsage
	}{
		{
			name: "discount lowers the effective cost only",
			old:  pricedState(1, list...),
			cur:  pricedState(1, discounted...),
			want: &eventv1.PricedUsage{
				PricingStatus: priced,
				CostLines: []*eventv1.CostLine{
					line(ln{kIn, 0, 0, 0, -540_000, "row"}),
					line(ln{kOut, 0, 0, 0, -1_012_500, "row"}),
				},
				ListCost:      money.New("USD", 0),
				EffectiveCost: money.New("USD", -1_552_500),
			},
		},
		{
			name: "unpriced event gets its full cost",
			old:  unpricedState("unknown model"),
			cur:  pricedState(1, list...),
			want: &eventv1.PricedUsage{
				PricingStatus: priced,
				CostLines: []*eventv1.CostLine{
					line(list[0]), line(list[1]),
				},
				ListCost:      money.New("USD", 10_350_000),
				EffectiveCost: money.New("USD", 10_350_000),
			},
		},
		{
			name: "a price that disappears takes the whole cost back",
			old:  pricedState(2, list...),
			cur:  unpricedState("no price"),
			want: &eventv1.PricedUsage{
				PricingStatus:  unpriced,
				UnpricedReason: "no price",
				CostLines: []*eventv1.CostLine{
					line(ln{kIn, -1200, -3_000_000_000, -3_600_000, -3_600_000, "row"}),
					line(ln{kOut, -450, -15_000_000_000, -6_750_000, -6_750_000, "row"}),
				},
				ListCost:      money.New("USD", -10_350_000),
				EffectiveCost: money.New("USD", -10_350_000),
			},
		},
		{
			name: "a kind priced for the first time adds its line",
			old:  pricedState(1, list[0]),
			cur:  pricedState(1, list[0], ln{kCR, 9000, 300_000_000, 2_700, 2_700, "row2"}),
			want: &eventv1.PricedUsage{
				PricingStatus: priced,
				CostLines: []*eventv1.CostLine{
					line(ln{kCR, 9000, 300_000_000, 2_700, 2_700, "row2"}),
				},
				ListCost:      money.New("USD", 2_700),
				EffectiveCost: money.New("USD", 2_700),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !Changed(tc.old, tc.cur) {
				t.Fatalf("Changed = false, want true")
			}
			version := tc.old.GetPriceVersion() + 1
			got, err := Build(tc.old, tc.cur, version)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			tc.want.PricedId = PricedID("ev-1", version)
			tc.want.CorrectsEventId = "ev-1"
			tc.want.PriceVersion = version
			tc.want.Usage = usage
			tc.want.PriceRef = tc.cur.GetPriceRef()
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("correction (-want +got):\n%s", diff)
			}

			// Whatever a consumer held plus the correction is the new price.
			applied, err := Apply(tc.old, got)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if Changed(applied, tc.cur) {
				t.Errorf("Apply(old, Build(old, cur)) costs %v, want %v", applied, tc.cur)
			}
			if applied.GetPriceVersion() != version || applied.GetPricedId() != tc.want.PricedId {
				t.Errorf("applied version %d id %q, want %d %q", applied.GetPriceVersion(),
					applied.GetPricedId(), version, tc.want.PricedId)
			}
		})
	}
}

func TestChangedIgnoresWhatCostsNothing(t *testing.T) {
	base := pricedState(1, ln{kIn, 100, 1_000_000_000, 100_000, 100_000, "row-a"})
	renamed := pricedState(1, ln{kIn, 100, 1_000_000_000, 100_000, 100_000, "row-b"})
	tests := []struct {
		name     string
		old, cur *eventv1.PricedUsage
	}{
		{"same price", base, pricedState(1, ln{kIn, 100, 1_000_000_000, 100_000, 100_000, "row-a"})},
		{"renamed row at the same price", base, renamed},
		{"still unpriced, for another reason", unpricedState("a"), unpricedState("b")},
	}
	for _, tc := range tests {
		if Changed(tc.old, tc.cur) {
			t.Errorf("%s: Changed = true, want false", tc.name)
		}
	}
}

func TestReportedToPriced(t *testing.T) {
	old := &eventv1.PricedUsage{
		Usage: usage, PricingStatus: reported, PriceVersion: 1,
		EffectiveCost: money.New("USD", 5_000_000),
	}
	cur := pricedState(1, ln{kIn, 1000, 3_000_000_000, 3_000_000, 3_000_000, "row"})
	corr, err := Build(old, cur, 2)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if got := corr.GetEffectiveCost().GetNanos(); got != -2_000_000 {
		t.Errorf("effective delta = %d, want -2000000 (3000000 computed - 5000000 reported)", got)
	}
	if got := corr.GetListCost().GetNanos(); got != 3_000_000 {
		t.Errorf("list delta = %d, want 3000000 (there was no list cost)", got)
	}
}

func TestCurrencyChange(t *testing.T) {
	old := pricedState(1, ln{kIn, 1, 1, 1, 1, "r"})
	cur := pricedState(1, ln{kIn, 1, 1, 2, 2, "r"})
	cur.EffectiveCost.CurrencyCode = "EUR"
	if _, err := Build(old, cur, 2); !errors.Is(err, ErrCurrency) {
		t.Errorf("Build across currencies: error %v, want ErrCurrency", err)
	}
}

func TestPricedID(t *testing.T) {
	if got, want := PricedID("resp:openai:abc", 3), "resp:openai:abc@v3"; got != want {
		t.Errorf("PricedID = %q, want %q", got, want)
	}
}
