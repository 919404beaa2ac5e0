// Package correction computes repricing corrections (DESIGN §5) and
// applies them to a priced state.
//
// A correction is a PricedUsage that names the event it corrects
// (corrects_event_id), has the deterministic id event_id + "@v" + version,
// and carries new minus old for every number a consumer sums: each cost
// line's amount, unit price, list and effective cost (lines matched by
// quantity kind), and the list and effective totals. Adding a
// correction to what a consumer holds for the event gives the new price,
// so every downstream total moves once. An event that had no cost
// (UNPRICED) counts as zero lines and zero totals: its first price
// arrives as a correction with the full cost, amounts included, and
// status PRICED. The usage is carried for its dimensions only; consumers
// must not count its quantities again.
package correction

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/costplane/costplane/libs/money"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// ErrCurrency means the old and new prices are in different currencies,
// which a difference cannot express.
var ErrCurrency = errors.New("currency changed")

// PricedID is the id of the correction that moves an event to version.
func PricedID(eventID string, version int64) string {
	return eventID + "@v" + strconv.FormatInt(version, 10)
}

// Changed reports whether cur costs something different from old: another
// status with a cost on either side, another total, or another line cost
// or unit price. Two costless states (UNPRICED, whatever the reason) are
// the same.
func Changed(old, cur *eventv1.PricedUsage) bool {
	if !hasCost(old) && !hasCost(cur) {
		return false
	}
	if old.GetPricingStatus() != cur.GetPricingStatus() ||
		!sameMoney(old.GetListCost(), cur.GetListCost()) ||
		!sameMoney(old.GetEffectiveCost(), cur.GetEffectiveCost()) {
		return true
	}
	a, b := byKind(old.GetCostLines()), byKind(cur.GetCostLines())
	// Rate ids are left out: a renamed catalog row at the same price is
	// no change to anyone's totals.
	return !slices.EqualFunc(a, b, func(x, y kindTotals) bool {
		return x.kind == y.kind && x.amount == y.amount && x.unitPrice == y.unitPrice &&
			x.list == y.list && x.eff == y.eff
	})
}

// Build returns the correction that moves an event priced as old to cur,
// as version. cur must be a fresh pricing of the same event; its usage,
// status, reason and price reference are the correction's. The caller
// sets priced_time.
func Build(old, cur *eventv1.PricedUsage, version int64) (*eventv1.PricedUsage, error) {
	currency, err := commonCurrency(old, cur)
	if err != nil {
		return nil, err
	}
	eventID := cur.GetUsage().GetEventId()
	out := &eventv1.PricedUsage{
		PricedId:        PricedID(eventID, version),
		Usage:           cur.GetUsage(),
		PriceRef:        cur.GetPriceRef(),
		PricingStatus:   cur.GetPricingStatus(),
		UnpricedReason:  cur.GetUnpricedReason(),
		CorrectsEventId: eventID,
		PriceVersion:    version,
	}

	out.CostLines, err = lineDeltas(old.GetCostLines(), cur.GetCostLines(), currency)
	if err != nil {
		return nil, err
	}
	if out.ListCost, err = diff(old.GetListCost(), cur.GetListCost(), currency); err != nil {
		return nil, err
	}
	out.EffectiveCost, err = diff(old.GetEffectiveCost(), cur.GetEffectiveCost(), currency)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Apply returns the priced state after correction corr: old's lines and
// totals plus corr's, with corr's status, reason, reference, id and
// version. The usage is not carried. Apply(old, Build(old, cur, v)) costs
// the same as cur.
func Apply(old, corr *eventv1.PricedUsage) (*eventv1.PricedUsage, error) {
	currency, err := commonCurrency(old, corr)
	if err != nil {
		return nil, err
	}
	out := &eventv1.PricedUsage{
		PricedId:       corr.GetPricedId(),
		PriceRef:       corr.GetPriceRef(),
		PricingStatus:  corr.GetPricingStatus(),
		UnpricedReason: corr.GetUnpricedReason(),
		PriceVersion:   corr.GetPriceVersion(),
		PricedTime:     corr.GetPricedTime(),
	}

	switch corr.GetPricingStatus() {
	case eventv1.PricingStatus_PRICING_STATUS_UNPRICED:
		return out, nil
	case eventv1.PricingStatus_PRICING_STATUS_PRICED:
		if out.ListCost, err = sum(old.GetListCost(), corr.GetListCost(), currency); err != nil {
			return nil, err
		}
	}
	out.EffectiveCost, err = sum(old.GetEffectiveCost(), corr.GetEffectiveCost(), currency)
	if err != nil {
		return nil, err
	}
	out.CostLines, err = applyLines(old.GetCostLines(), corr.GetCostLines(), currency)
	return out, err
}

// hasCost reports whether a state carries any cost: PRICED or REPORTED.
func hasCost(p *eventv1.PricedUsage) bool {
	return p.GetListCost() != nil || p.GetEffectiveCost() != nil || len(p.GetCostLines()) > 0
}

// commonCurrency returns the currency both sides are in, or that of the
// side that has one.
func commonCurrency(a, b *eventv1.PricedUsage) (string, error) {
	ca, cb := currencyOf(a), currencyOf(b)
	switch {
	case ca == "":
		return cb, nil
	case cb == "" || ca == cb:
		return ca, nil
	}
	return "", fmt.Errorf("%w from %s to %s", ErrCurrency, ca, cb)
}

func currencyOf(p *eventv1.PricedUsage) string {
	if c := p.GetEffectiveCost().GetCurrencyCode(); c != "" {
		return c
	}
	if c := p.GetListCost().GetCurrencyCode(); c != "" {
		return c
	}
	for _, l := range p.GetCostLines() {
		if c := l.GetEffectiveCost().GetCurrencyCode(); c != "" {
			return c
		}
	}
	return ""
}

func sameMoney(a, b *eventv1.Money) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.GetCurrencyCode() == b.GetCurrencyCode() && a.GetNanos() == b.GetNanos()
}

// kindTotals are one kind's line numbers summed, to compare and subtract.
type kindTotals struct {
	kind      eventv1.QuantityKind
	unit      eventv1.Unit
	amount    int64
	unitPrice int64
	list      int64
	eff       int64
	rateID    string
}

// byKind sums lines per kind, in kind order. An event normally has one
// line per kind; summing keeps a repeated kind exact too. The rate id
// kept is the last line's.
func byKind(lines []*eventv1.CostLine) []kindTotals {
	var out []kindTotals
	for _, l := range lines {
		i := slices.IndexFunc(out, func(t kindTotals) bool { return t.kind == l.GetKind() })
		if i < 0 {
			out = append(out, kindTotals{kind: l.GetKind(), unit: l.GetUnit()})
			i = len(out) - 1
		}
		t := &out[i]
		// Sums of one event's lines are far from overflowing: the
		// pricing function already added them without error.
		t.amount += l.GetAmount()
		t.unitPrice = l.GetUnitPricePerMillionNanos()
		t.list += l.GetListCost().GetNanos()
		t.eff += l.GetEffectiveCost().GetNanos()
		t.rateID = l.GetRateId()
	}
	slices.SortFunc(out, func(a, b kindTotals) int { return int(a.kind) - int(b.kind) })
	return out
}

func lineDeltas(oldLines, curLines []*eventv1.CostLine, currency string) (
	[]*eventv1.CostLine, error) {
	olds, curs := byKind(oldLines), byKind(curLines)
	var out []*eventv1.CostLine
	for _, k := range unionKinds(olds, curs) {
		o, c := find(olds, k), find(curs, k)
		d := kindTotals{kind: k, unit: firstUnit(c.unit, o.unit), rateID: c.rateID}
		var err error
		for _, f := range []struct {
			dst      *int64
			new, old int64
		}{
			{&d.amount, c.amount, o.amount},
			{&d.unitPrice, c.unitPrice, o.unitPrice},
			{&d.list, c.list, o.list},
			{&d.eff, c.eff, o.eff},
		} {
			if *f.dst, err = money.Add(f.new, -f.old); err != nil {
				return nil, fmt.Errorf("line %s: %w", k, err)
			}
		}
		if d.amount == 0 && d.unitPrice == 0 && d.list == 0 && d.eff == 0 {
			continue
		}
		if d.rateID == "" {
			d.rateID = o.rateID
		}
		out = append(out, d.line(currency))
	}
	return out, nil
}

func applyLines(oldLines, deltaLines []*eventv1.CostLine, currency string) (
	[]*eventv1.CostLine, error) {
	olds, deltas := byKind(oldLines), byKind(deltaLines)
	var out []*eventv1.CostLine
	for _, k := range unionKinds(olds, deltas) {
		o, d := find(olds, k), find(deltas, k)
		n := kindTotals{kind: k, unit: firstUnit(o.unit, d.unit), rateID: o.rateID}
		if d.rateID != "" {
			n.rateID = d.rateID
		}
		var err error
		for _, f := range []struct {
			dst      *int64
			old, add int64
		}{
			{&n.amount, o.amount, d.amount},
			{&n.unitPrice, o.unitPrice, d.unitPrice},
			{&n.list, o.list, d.list},
			{&n.eff, o.eff, d.eff},
		} {
			if *f.dst, err = money.Add(f.old, f.add); err != nil {
				return nil, fmt.Errorf("line %s: %w", k, err)
			}
		}
		if n.amount == 0 && n.list == 0 && n.eff == 0 {
			continue
		}
		out = append(out, n.line(currency))
	}
	return out, nil
}

func (t kindTotals) line(currency string) *eventv1.CostLine {
	return &eventv1.CostLine{
		Kind: t.kind, Unit: t.unit, Amount: t.amount,
		UnitPricePerMillionNanos: t.unitPrice,
		ListCost:                 money.New(currency, t.list),
		EffectiveCost:            money.New(currency, t.eff),
		RateId:                   t.rateID,
	}
}

func unionKinds(a, b []kindTotals) []eventv1.QuantityKind {
	var out []eventv1.QuantityKind
	for _, t := range slices.Concat(a, b) {
		if !slices.Contains(out, t.kind) {
			out = append(out, t.kind)
		}
	}
	slices.Sort(out)
	return out
}

func find(ts []kindTotals, k eventv1.QuantityKind) kindTotals {
	for _, t := range ts {
		if t.kind == k {
			return t
		}
	}
	return kindTotals{}
}

func firstUnit(a, b eventv1.Unit) eventv1.Unit {
	if a != eventv1.Unit_UNIT_UNSPECIFIED {
		return a
	}
	return b
}

// diff returns cur - old, or nil when neither side has the amount.
func diff(old, cur *eventv1.Money, currency string) (*eventv1.Money, error) {
	if old == nil && cur == nil {
		return nil, nil
	}
	n, err := money.Add(cur.GetNanos(), -old.GetNanos())
	if err != nil {
		return nil, err
	}
	return money.New(currency, n), nil
}

// sum returns old + delta, or nil when neither side has the amount.
func sum(old, delta *eventv1.Money, currency string) (*eventv1.Money, error) {
	if old == nil && delta == nil {
		return nil, nil
	}
	n, err := money.Add(old.GetNanos(), delta.GetNanos())
	if err != nil {
		return nil, err
	}
	return money.New(currency, n), nil
}
