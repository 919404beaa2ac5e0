package catalog

import (
	"sort"
	"strings"
	"time"
)

// Standard is the service tier of a row that names none.
const Standard = "standard"

// Catalog is the loaded, validated and indexed price book. It is immutable
// and safe for concurrent use.
type Catalog struct {
	version   string
	providers map[string]*Provider
	models    map[string]*Model // key: provider + "\x00" + model
	list      []*Model          // sorted by provider, model
}

// Provider is one data file.
type Provider struct {
	// Name is the OpenTelemetry gen_ai.provider.name value.
	Name        string
	DisplayName string
	// FirstParty providers sell their own models; a model id that arrives
	// without a provider resolves among first-party providers only.
	FirstParty bool
	Currency   string
	// Aliases are other spellings sources use for the provider name.
	Aliases []string
	Models  []*Model
}

// Model is one priced model of one provider.
type Model struct {
	Provider    string
	Name        string
	DisplayName string
	// Aliases are other ids that mean this model at this provider.
	Aliases []string
	// ProfilePremiumBP raises prices for the named inference profiles, in
	// basis points (1000 = +10 %).
	ProfilePremiumBP map[string]int64
	// TierMultiplierBP prices a service tier that has no explicit row as a
	// fraction of the standard row, in basis points (5000 = half price).
	TierMultiplierBP map[string]int64
	Prices           []*Price
}

// Price is one row: the rates valid for a span of time in some regions, for
// one profile and one service tier.
type Price struct {
	ID string
	// From is inclusive and To exclusive; a zero value is an open end.
	From, To time.Time
	// Regions the row applies to; empty means every region.
	Regions []string
	Profile string
	Tier    string
	Rates   Rates
	Long    *LongContext
	OffPeak *OffPeak
	Source  string
	AsOf    string
	Note    string
}

// LongContext replaces a row's rates for requests whose prompt is larger
// than Threshold tokens.
type LongContext struct {
	Threshold int64
	// Unpublished marks a provider that bills long prompts differently
	// without a price we could confirm: such requests stay unpriced rather
	// than fall back to the cheaper base price.
	Unpublished bool
	Rates       Rates
	ID          string
}

// OffPeak replaces a row's rates outside the peak windows.
type OffPeak struct {
	// PeakMinutes[weekday] holds [start, end) minute-of-day ranges in UTC.
	PeakMinutes [7][][2]int
	Rates       Rates
	ID          string
}

// IsPeak reports whether t falls in a peak window.
func (o *OffPeak) IsPeak(t time.Time) bool {
	t = t.UTC()
	minute := t.Hour()*60 + t.Minute()
	for _, w := range o.PeakMinutes[t.Weekday()] {
		if minute >= w[0] && minute < w[1] {
			return true
		}
	}
	return false
}

// ValidAt reports whether the row applies at t.
func (p *Price) ValidAt(t time.Time) bool {
	if !p.From.IsZero() && t.Before(p.From) {
		return false
	}
	return p.To.IsZero() || t.Before(p.To)
}

// CoversRegion reports whether the row applies in a region. A row without
// regions covers all of them.
func (p *Price) CoversRegion(region string) bool {
	if len(p.Regions) == 0 {
		return true
	}
	for _, r := range p.Regions {
		if r == region {
			return true
		}
	}
	return false
}

// Version identifies the embedded data: a hash of every file's name and
// bytes, so two builds with the same data agree and any edit changes it.
func (c *Catalog) Version() string { return c.version }

// Model returns a model by canonical provider and model name.
func (c *Catalog) Model(provider, model string) (*Model, bool) {
	m, ok := c.models[modelKey(provider, model)]
	return m, ok
}

// Provider returns a provider by canonical name.
func (c *Catalog) Provider(name string) (*Provider, bool) {
	p, ok := c.providers[name]
	return p, ok
}

// Providers lists the providers, sorted by name.
func (c *Catalog) Providers() []*Provider {
	out := make([]*Provider, 0, len(c.providers))
	for _, p := range c.providers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Models lists every model, sorted by provider then name.
func (c *Catalog) Models() []*Model { return c.list }

func modelKey(provider, model string) string {
	return provider + "\x00" + model
}

// NormalizeTier maps the spellings sources use for a service tier to the
// catalog's names: standard, batch, flex, priority.
func NormalizeTier(tier string) string {
	t := strings.ToLower(strings.TrimSpace(tier))
	switch t {
	case "", "default", "auto", "standard", "on_demand", "on-demand", "ondemand":
		return Standard
	case "fast", "priority":
		return "priority"
	}
	return t
}
