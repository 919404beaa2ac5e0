// Package pricebook prices usage events: it resolves the model, picks the
// catalog row valid at the event's start for its region, service tier and
// inference profile, applies the long-context and off-peak rules, costs
// one line per quantity, and applies the tenant's negotiated rates.
//
// Price is pure: no I/O, no clock, no globals. The same event, rates and
// catalog always give the same PricedUsage, which is what repricing and
// its corrections rely on.
//
// Money is integer nanos throughout. A line's list cost is
// money.Cost(amount, unit price) rounded half away from zero once; tier and
// profile multipliers are applied to the unit price before that (in nanos
// per million units, where rounding is far below a nano per token);
// totals are sums of rounded lines.
package pricebook

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/costplane/costplane/libs/money"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/catalog"
	"github.com/costplane/costplane/services/pricing/resolve"
)

// Book prices events against one catalog. It is immutable and safe for
// concurrent use.
type Book struct {
	cat      *catalog.Catalog
	resolver *resolve.Resolver
}

// New returns a Book over a loaded catalog.
func New(cat *catalog.Catalog) *Book {
	return &Book{cat: cat, resolver: resolve.New(cat)}
}

// Resolver exposes the model resolver the book uses.
func (b *Book) Resolver() *resolve.Resolver { return b.resolver }

// Catalog exposes the catalog the book prices from.
func (b *Book) Catalog() *catalog.Catalog { return b.cat }

// unpricedError carries the reason an event cannot be priced.
type unpricedError struct{ reason string }

func (e *unpricedError) Error() string { return e.reason }

func unpriced(format string, args ...any) error {
	return &unpricedError{reason: fmt.Sprintf(format, args...)}
}

// Price costs one event. rates may be nil. The result is never costed at
// zero for want of a price: when any quantity cannot be priced the whole
// event is UNPRICED with a reason naming the model, kind or dimension that
// failed, or REPORTED when the source reported its own cost, whose amount
// is then the effective cost. A PRICED event keeps its reported_cost on
// the usage beside the computed cost.
//
// The caller sets price_version and priced_time; priced_id is the event id.
func (b *Book) Price(ev *eventv1.UsageEvent, rates *TenantRates) *eventv1.PricedUsage {
	out := &eventv1.PricedUsage{
		PricedId: ev.GetEventId(),
		Usage:    ev,
		PriceRef: &eventv1.PriceRef{CatalogVersion: b.cat.Version()},
	}
	if rates == nil {
		rates = &TenantRates{}
	}
	err := b.price(ev, rates, out)
	if err == nil {
		out.PricingStatus = eventv1.PricingStatus_PRICING_STATUS_PRICED
		return out
	}

	var ue *unpricedError
	if !errors.As(err, &ue) {
		ue = &unpricedError{reason: err.Error()}
	}
	out.CostLines, out.ListCost, out.EffectiveCost = nil, nil, nil
	out.UnpricedReason = ue.reason
	out.PricingStatus = eventv1.PricingStatus_PRICING_STATUS_UNPRICED
	if rc := ev.GetReportedCost(); rc != nil {
		out.PricingStatus = eventv1.PricingStatus_PRICING_STATUS_REPORTED
		out.EffectiveCost = money.New(rc.GetCurrencyCode(), rc.GetNanos())
	}
	return out
}

// eventCtx is what every line of one event shares.
type eventCtx struct {
	at       time.Time
	provider string
	model    string
	account  string
	currency string
	rates    *TenantRates
	discount *Discount
}

func (b *Book) price(ev *eventv1.UsageEvent, rates *TenantRates, out *eventv1.PricedUsage) error {
	if ev.GetStartTime() == nil {
		return unpriced("event has no start_time, so no price can be chosen")
	}
	at := ev.GetStartTime().AsTime()
	if err := checkQuantities(ev.GetQuantities()); err != nil {
		return err
	}

	provider := b.resolver.CanonicalProvider(ev.GetProvider())
	if provider == "" {
		provider = catalog.NormalizeID(ev.GetProvider())
	}
	if c := rates.customModel(provider, catalog.NormalizeID(ev.GetModel()), at); c != nil {
		return priceCustom(ev, c, out)
	}

	res, err := b.resolve(ev, rates)
	if err != nil {
		return unpriced("%v", err)
	}
	m, _ := b.cat.Model(res.Provider, res.Model)
	p, _ := b.cat.Provider(res.Provider)
	sel, err := selectRow(m, ev, res, at)
	if err != nil {
		return err
	}

	ec := &eventCtx{
		at: at, provider: res.Provider, model: res.Model,
		account: ev.GetAccount(), currency: p.Currency, rates: rates,
	}
	ec.discount = rates.discount(b.resolver, ec.provider, ec.model, ec.account, at)
	return b.costLines(ev, ec, sel, out)
}

// resolve tries the canonical model field first, then the model as the
// source reported it.
func (b *Book) resolve(ev *eventv1.UsageEvent, rates *TenantRates) (resolve.Result, error) {
	res, err := b.resolver.Resolve(ev.GetProvider(), ev.GetModel(), rates.Deployments)
	if err != nil && ev.GetModelVersion() != "" && ev.GetModelVersion() != ev.GetModel() {
		r2, err2 := b.resolver.Resolve(ev.GetProvider(), ev.GetModelVersion(), rates.Deployments)
		if err2 == nil {
			return r2, nil
		}
	}
	return res, err
}

func checkQuantities(qs []*eventv1.Quantity) error {
	for _, q := range qs {
		k := q.GetKind()
		if !catalog.Known(k) {
			return unpriced("quantity kind %s is not a billable kind", k)
		}
		if q.GetAmount() < 0 {
			return unpriced("quantity %s has a negative amount %d", catalog.KindName(k), q.GetAmount())
		}
		if u := q.GetUnit(); u != eventv1.Unit_UNIT_UNSPECIFIED && u != catalog.KindUnit(k) {
			return unpriced("quantity %s is counted in %s, expected %s",
				catalog.KindName(k), u, catalog.KindUnit(k))
		}
	}
	return nil
}

func (b *Book) costLines(ev *eventv1.UsageEvent, ec *eventCtx, sel *selection,
	out *eventv1.PricedUsage) error {
	// One allocation each for the lines and their Money values: a priced
	// event is the hot path, and per-line allocations dominated its cost.
	n := len(ev.GetQuantities())
	lines := make([]eventv1.CostLine, n)
	monies := make([]eventv1.Money, 2*n+2)
	out.CostLines = make([]*eventv1.CostLine, 0, n)
	var list, eff int64
	for _, q := range ev.GetQuantities() {
		if q.GetAmount() == 0 {
			continue
		}
		i := len(out.CostLines)
		line := &lines[i]
		if err := b.costLine(q, ec, sel, line, &monies[2*i], &monies[2*i+1]); err != nil {
			return err
		}
		var err error
		if list, err = money.Add(list, line.ListCost.Nanos); err != nil {
			return unpriced("list cost overflows: %v", err)
		}
		if eff, err = money.Add(eff, line.EffectiveCost.Nanos); err != nil {
			return unpriced("effective cost overflows: %v", err)
		}
		out.CostLines = append(out.CostLines, line)
	}

	out.ListCost = setMoney(&monies[2*n], ec.currency, list)
	out.EffectiveCost = setMoney(&monies[2*n+1], ec.currency, eff)
	out.PriceRef.RateIds = []string{sel.rateID}
	if sel.feeRateID != sel.rateID && sel.usedFee {
		out.PriceRef.RateIds = append(out.PriceRef.RateIds, sel.feeRateID)
	}
	out.PriceRef.TenantRateIds = sel.tenantIDs
	return nil
}

func setMoney(m *eventv1.Money, currency string, nanos int64) *eventv1.Money {
	m.CurrencyCode, m.Nanos = currency, nanos
	return m
}

// costLine fills one line, using listM and effM for its Money values.
func (b *Book) costLine(q *eventv1.Quantity, ec *eventCtx, sel *selection,
	line *eventv1.CostLine, listM, effM *eventv1.Money) error {
	kind := q.GetKind()
	unit, rateID, err := sel.unitPrice(kind)
	if err != nil {
		return err
	}
	list, err := money.Cost(q.GetAmount(), unit)
	if err != nil {
		return unpriced("cost of %s overflows: %v", catalog.KindName(kind), err)
	}

	eff := list
	if f := ec.rates.fixedRate(b.resolver, ec.provider, ec.model, ec.account, kind, ec.at); f != nil {
		if eff, err = money.Cost(q.GetAmount(), f.PerMillionNanos); err != nil {
			return unpriced("fixed-rate cost of %s overflows: %v", catalog.KindName(kind), err)
		}
		sel.addTenantID(f.ID)
	} else if d := ec.discount; d != nil {
		if eff, err = money.Percent(list, 10_000-d.PercentOffBP); err != nil {
			return unpriced("discounted cost of %s overflows: %v", catalog.KindName(kind), err)
		}
		sel.addTenantID(d.ID)
	}

	line.Kind = kind
	line.Unit = catalog.KindUnit(kind)
	line.Amount = q.GetAmount()
	line.UnitPricePerMillionNanos = unit
	line.ListCost = setMoney(listM, ec.currency, list)
	line.EffectiveCost = setMoney(effM, ec.currency, eff)
	line.RateId = rateID
	return nil
}

// priceCustom prices an event with a tenant's own model. There is no list
// price to discount: list and effective cost are the custom rate's.
func priceCustom(ev *eventv1.UsageEvent, c *CustomModel, out *eventv1.PricedUsage) error {
	const currency = "USD"
	var total int64
	for _, q := range ev.GetQuantities() {
		if q.GetAmount() == 0 {
			continue
		}
		kind := q.GetKind()
		unit, cost, err := customCost(c, kind, q.GetAmount())
		if err != nil {
			return err
		}
		if total, err = money.Add(total, cost); err != nil {
			return unpriced("custom model cost overflows: %v", err)
		}
		out.CostLines = append(out.CostLines, &eventv1.CostLine{
			Kind: kind, Unit: catalog.KindUnit(kind), Amount: q.GetAmount(),
			UnitPricePerMillionNanos: unit,
			ListCost:                 money.New(currency, cost),
			EffectiveCost:            money.New(currency, cost),
			RateId:                   c.ID,
		})
	}
	out.ListCost = money.New(currency, total)
	out.EffectiveCost = money.New(currency, total)
	out.PriceRef.TenantRateIds = []string{c.ID}
	return nil
}

// customCost prices one quantity of a custom model. Compute time is priced
// from the hourly rate directly (seconds x rate / 3600, rounded once); the
// per-million figure on the line is informational.
func customCost(c *CustomModel, kind eventv1.QuantityKind, amount int64) (
	unit, cost int64, err error) {
	if kind == eventv1.QuantityKind_QUANTITY_KIND_COMPUTE_SECONDS && c.PerHourNanos > 0 {
		if cost, err = money.MulDiv(amount, c.PerHourNanos, 3600); err != nil {
			return 0, 0, unpriced("custom model compute cost overflows: %v", err)
		}
		unit, err = money.MulDiv(c.PerHourNanos, 1_000_000, 3600)
		return unit, cost, err
	}
	unit, ok := c.Rates.Get(kind)
	if !ok {
		return 0, 0, unpriced("custom model %s (%s) has no price for quantity kind %s",
			c.Model, c.ID, catalog.KindName(kind))
	}
	if cost, err = money.Cost(amount, unit); err != nil {
		return 0, 0, unpriced("custom model cost overflows: %v", err)
	}
	return unit, cost, nil
}

// contextTier reads the event's context_tier when the source reports one.
// It returns (long, known).
func contextTier(ev *eventv1.UsageEvent) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(ev.GetContextTier())) {
	case "":
		return false, false
	case "standard", "short", "default", "base":
		return false, true
	}
	return true, true
}
