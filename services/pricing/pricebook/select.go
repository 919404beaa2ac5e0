package pricebook

import (
	"strings"
	"time"

	"github.com/costplane/costplane/libs/money"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/catalog"
	"github.com/costplane/costplane/services/pricing/resolve"
)

// selection is the row chosen for an event and the adjustments that apply
// to its token prices.
type selection struct {
	model *catalog.Model
	row   *catalog.Price
	// tokens is the price set for token kinds: the row's, its long-context
	// set or its off-peak set. Per-call fees always come from the row.
	tokens    *catalog.Rates
	rateID    string
	feeRateID string
	usedFee   bool
	tierBP    int64
	premiumBP int64
	tenantIDs []string
}

// unitPrice returns the price per million units of a kind, with the
// selection's multipliers applied, and the rate id to record.
func (s *selection) unitPrice(kind eventv1.QuantityKind) (int64, string, error) {
	if !catalog.IsToken(kind) {
		p, ok := s.row.Rates.Get(kind)
		if !ok {
			return 0, "", s.noPrice(kind)
		}
		s.usedFee = true
		return p, s.feeRateID, nil
	}
	p, ok := s.tokens.Get(kind)
	if !ok {
		return 0, "", s.noPrice(kind)
	}
	var err error
	if s.tierBP != 0 {
		if p, err = money.MulDiv(p, s.tierBP, 10_000); err != nil {
			return 0, "", unpriced("tier price of %s overflows: %v", catalog.KindName(kind), err)
		}
	}
	if s.premiumBP != 0 {
		if p, err = money.MulDiv(p, 10_000+s.premiumBP, 10_000); err != nil {
			return 0, "", unpriced("profile price of %s overflows: %v", catalog.KindName(kind), err)
		}
	}
	return p, s.rateID, nil
}

func (s *selection) noPrice(kind eventv1.QuantityKind) error {
	return unpriced("%s/%s has no price for quantity kind %s (rate %s)",
		s.model.Provider, s.model.Name, catalog.KindName(kind), s.rateID)
}

func (s *selection) addTenantID(id string) {
	for _, have := range s.tenantIDs {
		if have == id {
			return
		}
	}
	s.tenantIDs = append(s.tenantIDs, id)
}

// selectRow picks the row valid at the event's start for its region,
// service tier and profile, then applies the long-context and off-peak
// rules. A row for the exact tier beats the standard row with a tier
// multiplier; a row listing the event's region beats an all-regions row;
// a row for the exact profile beats a profile-less one.
func selectRow(m *catalog.Model, ev *eventv1.UsageEvent, res resolve.Result,
	at time.Time) (*selection, error) {
	region := firstNonEmpty(strings.TrimSpace(ev.GetRegion()), res.Region)
	profile := normalizeProfile(ev.GetInferenceProfile())
	if profile == "" {
		profile = res.Profile
	}
	if profile == "" && m.Provider == resolve.Vertex && region != "" {
		profile = resolve.ProfileRegional
		if region == "global" {
			profile = resolve.ProfileGlobal
		}
	}
	tier := catalog.NormalizeTier(ev.GetServiceTier())

	var best *catalog.Price
	bestScore := 0
	for _, row := range m.Prices {
		if !row.ValidAt(at) {
			continue
		}
		ts, rs, ps := tierScore(m, row, tier), regionScore(row, region), profileScore(row, profile)
		if ts == 0 || rs == 0 || ps == 0 {
			continue
		}
		if score := ts*100 + rs*10 + ps; score > bestScore {
			best, bestScore = row, score
		}
	}
	if best == nil {
		return nil, diagnose(m, at, region, tier, profile)
	}

	sel := &selection{
		model: m, row: best, tokens: &best.Rates,
		rateID: best.ID, feeRateID: best.ID,
	}
	if best.Tier != tier {
		sel.tierBP = m.TierMultiplierBP[tier]
	}
	if best.Profile == "" {
		sel.premiumBP = m.ProfilePremiumBP[profile]
	}
	if err := sel.applyVariants(ev, at); err != nil {
		return nil, err
	}
	if sel.tierBP != 0 {
		sel.rateID += "#" + tier
	}
	if sel.premiumBP != 0 {
		sel.rateID += "#" + profile
	}
	return sel, nil
}

// applyVariants switches to the long-context or off-peak price set.
// Long context wins when both apply.
func (s *selection) applyVariants(ev *eventv1.UsageEvent, at time.Time) error {
	row := s.row
	if row.Long != nil {
		long, known := contextTier(ev)
		prompt := promptTokens(ev)
		if !known && ev.GetRequestCount() <= 1 {
			long = prompt > row.Long.Threshold
		}
		// TODO: an aggregate event (request_count > 1) without context_tier
		// cannot tell which requests were long and is priced at the base
		// rate; connectors that bill long context must set context_tier.
		if long {
			if row.Long.Unpublished {
				return unpriced("%s/%s bills prompts over %d tokens at a long-context "+
					"price the catalog does not have (rate %s)",
					s.model.Provider, s.model.Name, row.Long.Threshold, row.ID)
			}
			s.tokens, s.rateID = &row.Long.Rates, row.Long.ID
			return nil
		}
	}
	if row.OffPeak != nil && !row.OffPeak.IsPeak(at) {
		s.tokens, s.rateID = &row.OffPeak.Rates, row.OffPeak.ID
	}
	return nil
}

// promptTokens sums the quantities that make up the prompt (see the
// catalog package doc).
func promptTokens(ev *eventv1.UsageEvent) int64 {
	var n int64
	for _, q := range ev.GetQuantities() {
		if catalog.IsPromptKind(q.GetKind()) {
			n += q.GetAmount()
		}
	}
	return n
}

func tierScore(m *catalog.Model, row *catalog.Price, tier string) int {
	switch {
	case row.Tier == tier:
		return 2
	case row.Tier == catalog.Standard && m.TierMultiplierBP[tier] != 0:
		return 1
	}
	return 0
}

func regionScore(row *catalog.Price, region string) int {
	switch {
	case len(row.Regions) == 0:
		return 1
	case region != "" && row.CoversRegion(region):
		return 2
	}
	return 0
}

func profileScore(row *catalog.Price, profile string) int {
	switch {
	case row.Profile == "":
		return 1
	case row.Profile == profile:
		return 2
	}
	return 0
}

// diagnose explains why no row matched, naming the first dimension that
// ruled every row out.
func diagnose(m *catalog.Model, at time.Time, region, tier, profile string) error {
	name := m.Provider + "/" + m.Name
	var valid []*catalog.Price
	for _, row := range m.Prices {
		if row.ValidAt(at) {
			valid = append(valid, row)
		}
	}
	if len(valid) == 0 {
		return unpriced("%s has no price valid at %s", name, at.UTC().Format(time.RFC3339))
	}
	var inRegion []*catalog.Price
	var published []string
	for _, row := range valid {
		if regionScore(row, region) > 0 {
			inRegion = append(inRegion, row)
		}
		published = append(published, row.Regions...)
	}
	if len(inRegion) == 0 {
		if region == "" {
			return unpriced("%s is priced per region (%s) and the event has no region",
				name, strings.Join(published, ", "))
		}
		return unpriced("%s has no price for region %s (published for %s)",
			name, region, strings.Join(published, ", "))
	}
	for _, row := range inRegion {
		if tierScore(m, row, tier) > 0 {
			return unpriced("%s has no price for inference profile %q", name, profile)
		}
	}
	return unpriced("%s has no price for service tier %q", name, tier)
}

// normalizeProfile maps the spellings of an inference profile to the
// catalog's: global, cross-region, in-region, regional, multi-region,
// data-zone, or a provider-specific name such as us.
func normalizeProfile(p string) string {
	p = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(p)), "_", "-")
	switch p {
	case "cris", "geo", "geographic", "cross-region-inference", "crossregion":
		return resolve.ProfileCrossRegion
	case "on-demand", "in-region-on-demand", "regional-endpoint":
		return resolve.ProfileInRegion
	case "datazone":
		return "data-zone"
	}
	return p
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
