package catalog

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/costplane/costplane/libs/money"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

//go:embed data/*.yaml
var embedded embed.FS

// ErrInvalid wraps every problem found in the data files.
var ErrInvalid = errors.New("catalog: invalid price data")

// Load parses, validates and indexes the embedded data files.
func Load() (*Catalog, error) {
	sub, err := fs.Sub(embedded, "data")
	if err != nil {
		return nil, fmt.Errorf("opening embedded data: %w", err)
	}
	return Parse(sub)
}

// Parse loads every *.yaml file at the root of fsys. All problems are
// reported together, each wrapped in ErrInvalid.
func Parse(fsys fs.FS) (*Catalog, error) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("listing data files: %w", err)
	}
	sort.Strings(names)

	h := sha256.New()
	c := &Catalog{providers: map[string]*Provider{}, models: map[string]*Model{}}
	var errs []error
	for _, name := range names {
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(raw))
		h.Write(raw)

		p, perrs := parseFile(name, raw)
		errs = append(errs, perrs...)
		if p == nil {
			continue
		}
		if _, dup := c.providers[p.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: provider %q is defined twice", name, p.Name))
			continue
		}
		c.providers[p.Name] = p
	}
	c.version = "cat-" + hex.EncodeToString(h.Sum(nil))[:16]

	errs = append(errs, c.index()...)
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalid, errors.Join(errs...))
	}
	return c, nil
}

type fileDoc struct {
	Provider         string           `yaml:"provider"`
	DisplayName      string           `yaml:"display_name"`
	FirstParty       bool             `yaml:"first_party"`
	Currency         string           `yaml:"currency"`
	Aliases          []string         `yaml:"aliases"`
	TierMultiplierBP map[string]int64 `yaml:"tier_multiplier_bp"`
	Fees             *feesDoc         `yaml:"fees"`
	Models           []modelDoc       `yaml:"models"`
}

// feesDoc adds per-call fees to every row of every model in a file.
type feesDoc struct {
	PerThousand map[string]string `yaml:"per_thousand"`
	PerUnit     map[string]string `yaml:"per_unit"`
	Source      string            `yaml:"source"`
	AsOf        string            `yaml:"as_of"`
}

type modelDoc struct {
	Model            string           `yaml:"model"`
	Name             string           `yaml:"name"`
	Aliases          []string         `yaml:"aliases"`
	Source           string           `yaml:"source"`
	AsOf             string           `yaml:"as_of"`
	ProfilePremiumBP map[string]int64 `yaml:"profile_premium_bp"`
	TierMultiplierBP map[string]int64 `yaml:"tier_multiplier_bp"`
	NoProviderFees   bool             `yaml:"no_provider_fees"`
	Prices           []priceDoc       `yaml:"prices"`
}

type priceDoc struct {
	ID            string            `yaml:"id"`
	EffectiveFrom string            `yaml:"effective_from"`
	EffectiveTo   string            `yaml:"effective_to"`
	Regions       []string          `yaml:"regions"`
	Profile       string            `yaml:"profile"`
	Tier          string            `yaml:"tier"`
	Source        string            `yaml:"source"`
	AsOf          string            `yaml:"as_of"`
	Note          string            `yaml:"note"`
	PerMillion    map[string]string `yaml:"per_million"`
	PerThousand   map[string]string `yaml:"per_thousand"`
	PerUnit       map[string]string `yaml:"per_unit"`
	LongContext   *longDoc          `yaml:"long_context"`
	OffPeak       *offPeakDoc       `yaml:"off_peak"`
}

type longDoc struct {
	ThresholdTokens int64             `yaml:"threshold_tokens"`
	Unpublished     bool              `yaml:"unpublished"`
	PerMillion      map[string]string `yaml:"per_million"`
}

type offPeakDoc struct {
	PeakUTC    []string          `yaml:"peak_utc"`
	PeakDays   []string          `yaml:"peak_days"`
	PerMillion map[string]string `yaml:"per_million"`
}

func parseFile(name string, raw []byte) (*Provider, []error) {
	var doc fileDoc
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	if doc.Provider == "" {
		return nil, []error{fmt.Errorf("%s: provider is empty", name)}
	}

	p := &Provider{
		Name:        doc.Provider,
		DisplayName: doc.DisplayName,
		FirstParty:  doc.FirstParty,
		Currency:    doc.Currency,
		Aliases:     doc.Aliases,
	}
	var errs []error
	fees, err := parseFees(doc.Fees)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: fees: %w", name, err))
	}
	for i := range doc.Models {
		m, merrs := buildModel(&doc, &doc.Models[i], fees)
		for _, e := range merrs {
			errs = append(errs, fmt.Errorf("%s: %w", name, e))
		}
		p.Models = append(p.Models, m)
	}
	return p, errs
}

func parseFees(f *feesDoc) (*Rates, error) {
	if f == nil {
		return nil, nil
	}
	var r Rates
	if err := addRates(&r, f.PerThousand, 1_000); err != nil {
		return nil, err
	}
	if err := addRates(&r, f.PerUnit, 1_000_000); err != nil {
		return nil, err
	}
	return &r, nil
}

func buildModel(doc *fileDoc, md *modelDoc, fees *Rates) (*Model, []error) {
	m := &Model{
		Provider:         doc.Provider,
		Name:             md.Model,
		DisplayName:      md.Name,
		Aliases:          md.Aliases,
		ProfilePremiumBP: md.ProfilePremiumBP,
		TierMultiplierBP: mergeBP(doc.TierMultiplierBP, md.TierMultiplierBP),
	}
	var errs []error
	for i := range md.Prices {
		pd := &md.Prices[i]
		p, err := buildPrice(m, md, pd)
		if err != nil {
			errs = append(errs, fmt.Errorf("model %s row %d: %w", md.Model, i+1, err))
			continue
		}
		if fees != nil && !md.NoProviderFees {
			mergeFees(&p.Rates, fees)
		}
		m.Prices = append(m.Prices, p)
	}
	return m, errs
}

func buildPrice(m *Model, md *modelDoc, pd *priceDoc) (*Price, error) {
	p := &Price{
		ID:      pd.ID,
		Regions: pd.Regions,
		Profile: pd.Profile,
		Tier:    NormalizeTier(pd.Tier),
		Source:  firstNonEmpty(pd.Source, md.Source),
		AsOf:    firstNonEmpty(pd.AsOf, md.AsOf),
		Note:    strings.TrimSpace(pd.Note),
	}
	var err error
	if p.From, err = parseTime(pd.EffectiveFrom); err != nil {
		return nil, fmt.Errorf("effective_from: %w", err)
	}
	if p.To, err = parseTime(pd.EffectiveTo); err != nil {
		return nil, fmt.Errorf("effective_to: %w", err)
	}
	if err := addRates(&p.Rates, pd.PerMillion, 1); err != nil {
		return nil, err
	}
	if err := addRates(&p.Rates, pd.PerThousand, 1_000); err != nil {
		return nil, err
	}
	if err := addRates(&p.Rates, pd.PerUnit, 1_000_000); err != nil {
		return nil, err
	}
	reasoningAtOutput(&p.Rates)
	if p.ID == "" {
		p.ID = rowID(m, p)
	}
	if pd.LongContext != nil {
		if p.Long, err = buildLong(p, pd.LongContext); err != nil {
			return nil, err
		}
	}
	if pd.OffPeak != nil {
		if p.OffPeak, err = buildOffPeak(p, pd.OffPeak); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func buildLong(p *Price, ld *longDoc) (*LongContext, error) {
	l := &LongContext{Threshold: ld.ThresholdTokens, Unpublished: ld.Unpublished, ID: p.ID + "#long"}
	if err := addRates(&l.Rates, ld.PerMillion, 1); err != nil {
		return nil, fmt.Errorf("long_context: %w", err)
	}
	reasoningAtOutput(&l.Rates)
	return l, nil
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday,
	"sat": time.Saturday,
}

func buildOffPeak(p *Price, od *offPeakDoc) (*OffPeak, error) {
	o := &OffPeak{ID: p.ID + "#off-peak"}
	if err := addRates(&o.Rates, od.PerMillion, 1); err != nil {
		return nil, fmt.Errorf("off_peak: %w", err)
	}
	reasoningAtOutput(&o.Rates)
	var windows [][2]int
	for _, w := range od.PeakUTC {
		start, end, ok := strings.Cut(w, "-")
		a, errA := parseClock(start)
		b, errB := parseClock(end)
		if !ok || errA != nil || errB != nil || a >= b {
			return nil, fmt.Errorf("off_peak: peak window %q is not HH:MM-HH:MM", w)
		}
		windows = append(windows, [2]int{a, b})
	}
	if len(windows) == 0 || len(od.PeakDays) == 0 {
		return nil, errors.New("off_peak: peak_utc and peak_days are required")
	}
	for _, d := range od.PeakDays {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return nil, fmt.Errorf("off_peak: unknown day %q", d)
		}
		o.PeakMinutes[wd] = windows
	}
	return o, nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// addRates parses decimal prices into nanos per million units. scale is
// how many of the given unit make a million: 1 for per-million prices,
// 1,000 for per-thousand fees, 1,000,000 for per-unit fees.
func addRates(r *Rates, prices map[string]string, scale int64) error {
	names := make([]string, 0, len(prices))
	for name := range prices {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		k, ok := kindByName[name]
		if !ok {
			return fmt.Errorf("unknown quantity kind %q", name)
		}
		if r.Has(k) {
			return fmt.Errorf("kind %q priced twice", name)
		}
		n, err := money.Parse(prices[name])
		if err != nil {
			return fmt.Errorf("price of %s: %w", name, err)
		}
		if n < 0 {
			return fmt.Errorf("price of %s is negative", name)
		}
		scaled, err := money.MulDiv(n, scale, 1)
		if err != nil {
			return fmt.Errorf("price of %s: %w", name, err)
		}
		r.Set(k, scaled)
	}
	return nil
}

// reasoningAtOutput applies the catalog-wide rule: reasoning tokens cost
// the output price unless the row prices them itself.
func reasoningAtOutput(r *Rates) {
	const (
		reasoning = eventv1.QuantityKind_QUANTITY_KIND_REASONING
		output    = eventv1.QuantityKind_QUANTITY_KIND_OUTPUT
	)
	if out, ok := r.Get(output); ok && !r.Has(reasoning) {
		r.Set(reasoning, out)
	}
}

func mergeFees(r *Rates, fees *Rates) {
	for _, k := range fees.Kinds() {
		if !r.Has(k) {
			v, _ := fees.Get(k)
			r.Set(k, v)
		}
	}
}

func mergeBP(base, over map[string]int64) map[string]int64 {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	out := make(map[string]int64, len(base)+len(over))
	for k, v := range base {
		out[NormalizeTier(k)] = v
	}
	for k, v := range over {
		out[NormalizeTier(k)] = v
	}
	return out
}

// parseTime accepts a date (UTC midnight) or an RFC 3339 time; empty is an
// open end.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

func rowID(m *Model, p *Price) string {
	region := "*"
	if len(p.Regions) > 0 {
		region = strings.Join(p.Regions, "+")
	}
	profile := p.Profile
	if profile == "" {
		profile = "*"
	}
	from := "open"
	if !p.From.IsZero() {
		from = p.From.Format(time.DateOnly)
	}
	return path.Join(m.Provider, m.Name, p.Tier, profile, region, from)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
