package catalog

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

var knownTiers = map[string]bool{Standard: true, "batch": true, "flex": true, "priority": true}

// index builds the lookup maps. Duplicate models are reported, not merged.
func (c *Catalog) index() []error {
	var errs []error
	for _, p := range c.providers {
		for _, m := range p.Models {
			key := modelKey(p.Name, m.Name)
			if _, dup := c.models[key]; dup {
				errs = append(errs, fmt.Errorf("%s: model %q is defined twice", p.Name, m.Name))
				continue
			}
			c.models[key] = m
			c.list = append(c.list, m)
		}
	}
	sort.Slice(c.list, func(i, j int) bool {
		a, b := c.list[i], c.list[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Name < b.Name
	})
	return errs
}

// validate checks the integrity rules every data file must meet.
func (c *Catalog) validate() []error {
	var errs []error
	errs = append(errs, c.validateNames()...)
	for _, p := range c.Providers() {
		if p.Currency != "USD" {
			errs = append(errs, fmt.Errorf("%s: currency %q: only USD is supported", p.Name, p.Currency))
		}
		for _, m := range p.Models {
			errs = append(errs, validateModel(m)...)
		}
	}
	return errs
}

func validateModel(m *Model) []error {
	where := m.Provider + "/" + m.Name
	var errs []error
	if m.Name == "" || m.Name != strings.ToLower(strings.TrimSpace(m.Name)) {
		errs = append(errs, fmt.Errorf("%s: model name must be lower case without spaces", where))
	}
	if len(m.Prices) == 0 {
		errs = append(errs, fmt.Errorf("%s: no prices", where))
	}
	for profile, bp := range m.ProfilePremiumBP {
		if bp <= 0 || bp > 10_000 {
			errs = append(errs, fmt.Errorf("%s: profile premium %q = %d bp is out of range",
				where, profile, bp))
		}
	}
	for tier, bp := range m.TierMultiplierBP {
		if !knownTiers[tier] || bp <= 0 || bp > 100_000 {
			errs = append(errs, fmt.Errorf("%s: tier multiplier %q = %d bp is invalid", where, tier, bp))
		}
	}
	for _, p := range m.Prices {
		errs = append(errs, validatePrice(where, p)...)
	}
	errs = append(errs, checkOverlaps(where, m.Prices)...)
	return errs
}

func validatePrice(where string, p *Price) []error {
	where = where + " " + p.ID
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(where+": "+format, args...))
	}
	if !strings.HasPrefix(p.Source, "https://") {
		add("source %q is not an https URL", p.Source)
	}
	if _, err := time.Parse(time.DateOnly, p.AsOf); err != nil {
		add("as_of %q is not a YYYY-MM-DD date", p.AsOf)
	}
	if !knownTiers[p.Tier] {
		add("unknown service tier %q", p.Tier)
	}
	if !p.From.IsZero() && !p.To.IsZero() && !p.From.Before(p.To) {
		add("effective_from %s is not before effective_to %s", p.From, p.To)
	}
	for _, k := range []eventv1.QuantityKind{
		eventv1.QuantityKind_QUANTITY_KIND_INPUT,
		eventv1.QuantityKind_QUANTITY_KIND_OUTPUT,
	} {
		if !p.Rates.Has(k) {
			add("no %s price", KindName(k))
		}
	}
	if p.Long != nil {
		if p.Long.Threshold <= 0 {
			add("long_context threshold_tokens must be positive")
		}
		switch missing := missingTokenKinds(&p.Rates, &p.Long.Rates); {
		case p.Long.Unpublished && len(p.Long.Rates.Kinds()) > 0:
			add("long_context is unpublished but lists prices")
		case !p.Long.Unpublished && missing != "":
			add("long_context does not price %s", missing)
		}
	}
	if p.OffPeak != nil {
		if missing := missingTokenKinds(&p.Rates, &p.OffPeak.Rates); missing != "" {
			add("off_peak does not price %s", missing)
		}
	}
	return errs
}

// missingTokenKinds names the token kinds base prices that alt does not: a
// replacement price set must be complete, or a long request would silently
// fall back to the cheaper base price for some tokens.
func missingTokenKinds(base, alt *Rates) string {
	var missing []string
	for _, k := range base.Kinds() {
		if IsToken(k) && !alt.Has(k) {
			missing = append(missing, KindName(k))
		}
	}
	return strings.Join(missing, ", ")
}

// checkOverlaps rejects two rows of the same (region, tier, profile) whose
// validity ranges intersect: an event would match both.
func checkOverlaps(where string, prices []*Price) []error {
	type key struct{ region, tier, profile string }
	groups := map[key][]*Price{}
	for _, p := range prices {
		regions := p.Regions
		if len(regions) == 0 {
			regions = []string{""}
		}
		for _, r := range regions {
			k := key{r, p.Tier, p.Profile}
			groups[k] = append(groups[k], p)
		}
	}
	var errs []error
	for k, rows := range groups {
		sort.Slice(rows, func(i, j int) bool { return start(rows[i]) < start(rows[j]) })
		for i := 1; i < len(rows); i++ {
			if end(rows[i-1]) > start(rows[i]) {
				errs = append(errs, fmt.Errorf("%s: rows %s and %s overlap (region %q, tier %q, profile %q)",
					where, rows[i-1].ID, rows[i].ID, k.region, k.tier, k.profile))
			}
		}
	}
	return errs
}

func start(p *Price) int64 {
	if p.From.IsZero() {
		return math.MinInt64
	}
	return p.From.UnixNano()
}

func end(p *Price) int64 {
	if p.To.IsZero() {
		return math.MaxInt64
	}
	return p.To.UnixNano()
}

// validateNames checks that every spelling maps to one model: aliases are
// unique within a provider, and unqualified names are unique across
// first-party providers.
func (c *Catalog) validateNames() []error {
	var errs []error
	providerNames := map[string]string{}
	unqualified := map[string]string{}
	for _, p := range c.Providers() {
		for _, alias := range append([]string{p.Name}, p.Aliases...) {
			a := NormalizeID(alias)
			if other, dup := providerNames[a]; dup && other != p.Name {
				errs = append(errs, fmt.Errorf("provider alias %q names both %s and %s", alias, other, p.Name))
			}
			providerNames[a] = p.Name
		}
		seen := map[string]string{}
		for _, m := range p.Models {
			for _, id := range append([]string{m.Name}, m.Aliases...) {
				a := NormalizeID(id)
				if other, dup := seen[a]; dup {
					errs = append(errs, fmt.Errorf("%s: alias %q names both %s and %s", p.Name, id, other, m.Name))
					continue
				}
				seen[a] = m.Name
				if !p.FirstParty {
					continue
				}
				if other, dup := unqualified[a]; dup {
					errs = append(errs, fmt.Errorf("unqualified id %q names both %s and %s/%s",
						id, other, p.Name, m.Name))
					continue
				}
				unqualified[a] = p.Name + "/" + m.Name
			}
		}
	}
	return errs
}

// NormalizeID is the form every model and provider id is compared in:
// trimmed and lower case.
func NormalizeID(s string) string {
	// Most ids arrive already normalized; skip the copy for them.
	clean := s != "" && s[0] > ' ' && s[len(s)-1] > ' '
	for i := 0; clean && i < len(s); i++ {
		c := s[i]
		clean = c < 0x80 && (c < 'A' || c > 'Z')
	}
	if clean {
		return s
	}
	return strings.ToLower(strings.TrimSpace(s))
}
