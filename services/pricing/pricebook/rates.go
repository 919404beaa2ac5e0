package pricebook

import (
	"errors"
	"fmt"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/catalog"
	"github.com/costplane/costplane/services/pricing/resolve"
)

// TenantRates is everything one tenant negotiated or configured. Storage
// and the API that edits it come later; the pricing function only reads
// it. Every rate is effective-dated, so repricing a past range uses the
// rates of that time.
//
// Precedence for one cost line: a custom model prices the whole event
// (there is no list price to discount); otherwise a fixed rate for the
// line's kind replaces the list price; otherwise a discount reduces it.
// Among matching fixed rates or discounts the most specific scope wins
// (model counts 4, account 2, provider 1), then the latest start, then
// the smallest id, so the choice never depends on slice order.
type TenantRates struct {
	Discounts    []Discount
	FixedRates   []FixedRate
	CustomModels []CustomModel
	// Deployments maps the tenant's Azure deployment names to models.
	Deployments resolve.Deployments
}

// Scope selects the usage a rate applies to. Empty fields match anything.
// Provider and Model are catalog names; Account is the event's account.
type Scope struct {
	Provider string
	Model    string
	Account  string
}

// Validity is [From, To); a zero value is an open end.
type Validity struct {
	From, To time.Time
}

// Contains reports whether t is in the range.
func (v Validity) Contains(t time.Time) bool {
	if !v.From.IsZero() && t.Before(v.From) {
		return false
	}
	return v.To.IsZero() || t.Before(v.To)
}

// Discount takes a negotiated percentage off list prices.
type Discount struct {
	ID       string
	Scope    Scope
	Validity Validity
	// PercentOffBP is the discount in basis points: 1500 is 15 % off.
	PercentOffBP int64
}

// FixedRate replaces the list price of one quantity kind.
type FixedRate struct {
	ID       string
	Scope    Scope
	Validity Validity
	Kind     eventv1.QuantityKind
	// PerMillionNanos is the price per one million units, in nanos.
	PerMillionNanos int64
}

// CustomModel prices a model the catalog does not sell, such as a
// self-hosted one, by the token or by the hour of compute.
type CustomModel struct {
	ID       string
	Provider string
	Model    string
	Validity Validity
	// Rates per one million units, in nanos, by kind.
	Rates catalog.Rates
	// PerHourNanos prices compute_seconds quantities; zero when unused.
	PerHourNanos int64
}

// Validate reports rates that can never price correctly.
func (t *TenantRates) Validate() error {
	var errs []error
	check := func(kind, id string, v Validity) {
		if id == "" {
			errs = append(errs, fmt.Errorf("%s: id is empty", kind))
		}
		if !v.From.IsZero() && !v.To.IsZero() && !v.From.Before(v.To) {
			errs = append(errs, fmt.Errorf("%s %s: from is not before to", kind, id))
		}
	}
	for _, d := range t.Discounts {
		check("discount", d.ID, d.Validity)
		if d.PercentOffBP < 0 || d.PercentOffBP > 10_000 {
			errs = append(errs, fmt.Errorf("discount %s: %d bp is not in [0, 10000]", d.ID, d.PercentOffBP))
		}
	}
	for _, f := range t.FixedRates {
		check("fixed rate", f.ID, f.Validity)
		if f.PerMillionNanos < 0 || !catalog.Known(f.Kind) {
			errs = append(errs, fmt.Errorf(
				"fixed rate %s: needs a known kind and a non-negative price", f.ID))
		}
	}
	for _, c := range t.CustomModels {
		check("custom model", c.ID, c.Validity)
		if c.Model == "" || c.PerHourNanos < 0 {
			errs = append(errs, fmt.Errorf(
				"custom model %s: needs a model and a non-negative hourly rate", c.ID))
		}
	}
	return errors.Join(errs...)
}

// specificity ranks a scope: model beats account beats provider.
func (s Scope) specificity() int {
	n := 0
	if s.Model != "" {
		n += 4
	}
	if s.Account != "" {
		n += 2
	}
	if s.Provider != "" {
		n++
	}
	return n
}

// matches reports whether a scope covers an event's resolved provider and
// model and its account. Provider spellings are canonicalized by the
// caller's resolver.
func (s Scope) matches(r *resolve.Resolver, provider, model, account string) bool {
	if s.Provider != "" && r.CanonicalProvider(s.Provider) != provider {
		return false
	}
	if s.Model != "" && catalog.NormalizeID(s.Model) != model {
		return false
	}
	return s.Account == "" || s.Account == account
}

// better reports whether a candidate (specificity, start, id) outranks the
// current best.
func better(spec int, from time.Time, id string, bestSpec int, bestFrom time.Time, bestID string) bool {
	if spec != bestSpec {
		return spec > bestSpec
	}
	if !from.Equal(bestFrom) {
		return from.After(bestFrom)
	}
	return id < bestID
}

func (t *TenantRates) discount(r *resolve.Resolver, provider, model, account string, at time.Time) *Discount {
	var best *Discount
	for i := range t.Discounts {
		d := &t.Discounts[i]
		if !d.Validity.Contains(at) || !d.Scope.matches(r, provider, model, account) {
			continue
		}
		if best == nil || better(d.Scope.specificity(), d.Validity.From, d.ID,
			best.Scope.specificity(), best.Validity.From, best.ID) {
			best = d
		}
	}
	return best
}

func (t *TenantRates) fixedRate(r *resolve.Resolver, provider, model, account string,
	kind eventv1.QuantityKind, at time.Time) *FixedRate {
	var best *FixedRate
	for i := range t.FixedRates {
		f := &t.FixedRates[i]
		if f.Kind != kind || !f.Validity.Contains(at) || !f.Scope.matches(r, provider, model, account) {
			continue
		}
		if best == nil || better(f.Scope.specificity(), f.Validity.From, f.ID,
			best.Scope.specificity(), best.Validity.From, best.ID) {
			best = f
		}
	}
	return best
}

// customModel finds the tenant's own model for a provider and model id as
// the event spells them (normalized), valid at a time.
func (t *TenantRates) customModel(provider, model string, at time.Time) *CustomModel {
	for i := range t.CustomModels {
		c := &t.CustomModels[i]
		if catalog.NormalizeID(c.Model) != model || !c.Validity.Contains(at) {
			continue
		}
		if c.Provider == "" || catalog.NormalizeID(c.Provider) == provider {
			return c
		}
	}
	return nil
}
