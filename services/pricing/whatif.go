package pricing

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	pricingv1 "github.com/costplane/costplane/proto/gen/go/costplane/pricing/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/money"
	"github.com/costplane/costplane/services/pricing/catalog"
	"github.com/costplane/costplane/services/pricing/internal/ledger"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

// Bounds of PriceUsage.
const (
	maxWhatIfEvents = 1000
	maxReasons      = 10
)

// PriceUsage prices usage the caller describes, or the caller's own past
// usage, as it would be priced now, optionally on another model. Nothing
// is stored or published.
func (s *Service) PriceUsage(ctx context.Context, req *pricingv1.PriceUsageRequest) (
	*pricingv1.PriceUsageResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkPriceUsage(req); err != nil {
		return nil, err
	}
	tr, err := s.rates.Load(ctx, p.TenantID)
	if err != nil {
		return nil, s.toStatus(ctx, err, "")
	}

	w := &whatIf{
		book: s.book, rates: tr, target: req.GetTarget(),
		out:     &pricingv1.PriceUsageResponse{CatalogVersion: s.book.Catalog().Version()},
		reasons: map[string]int64{},
	}
	if req.GetHistory() != nil {
		w.history = true
		err = s.priceHistory(ctx, p.TenantID, req.GetHistory(), w)
	} else {
		now := timestamppb.Now()
		for _, ev := range req.GetEvents() {
			ev = proto.Clone(ev).(*eventv1.UsageEvent)
			ev.TenantId = p.TenantID
			if ev.GetStartTime() == nil {
				ev.StartTime = now
			}
			w.out.Priced = append(w.out.Priced, w.price(ev, nil))
		}
	}
	if err != nil {
		return nil, s.toStatus(ctx, err, "")
	}
	return w.finish(), nil
}

func checkPriceUsage(req *pricingv1.PriceUsageRequest) error {
	var v apierr.Violations
	h := req.GetHistory()
	switch {
	case h == nil && len(req.GetEvents()) == 0:
		v.Add("events", "give events, or history to price past usage")
	case h != nil && len(req.GetEvents()) > 0:
		v.Add("history", "must not be set with events")
	case len(req.GetEvents()) > maxWhatIfEvents:
		v.Add("events", fmt.Sprintf("at most %d per call", maxWhatIfEvents))
	}
	if h != nil {
		from := requiredTime(&v, "history.start_time", h.GetStartTime())
		to := requiredTime(&v, "history.end_time", h.GetEndTime())
		if !from.IsZero() && !to.IsZero() && !from.Before(to) {
			v.Add("history.end_time", "must be after start_time")
		}
	}
	for i, ev := range req.GetEvents() {
		if len(ev.GetQuantities()) == 0 {
			v.Add(fmt.Sprintf("events[%d].quantities", i), "is required")
		}
	}
	return v.Err()
}

// priceHistory prices the tenant's ledger rows that match the filter.
func (s *Service) priceHistory(ctx context.Context, tenantID string, f *pricingv1.UsageFilter,
	w *whatIf) error {
	match := s.usageMatcher(f)
	limit := s.cfg.WhatIfMaxEvents
	scanned := 0
	err := ledger.Scan(ctx, s.pool, tenantID, f.GetStartTime().AsTime(), f.GetEndTime().AsTime(),
		limit+1, func(r ledger.Row) error {
			if scanned++; scanned > limit {
				w.out.Truncated = true
				return nil
			}
			if match(r.Usage) {
				w.price(r.Usage, r.Priced)
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("pricing history: %w", err)
	}
	return nil
}

// usageMatcher returns whether an event matches the filter's dimensions.
func (s *Service) usageMatcher(f *pricingv1.UsageFilter) func(*eventv1.UsageEvent) bool {
	res := s.book.Resolver()
	canonical := func(provider, model string) string {
		if r, err := res.Resolve(provider, model, nil); err == nil {
			return r.Provider + "/" + r.Model
		}
		return catalog.NormalizeID(provider) + "/" + catalog.NormalizeID(model)
	}
	wantProvider := res.CanonicalProvider(f.GetProvider())
	if wantProvider == "" {
		wantProvider = catalog.NormalizeID(f.GetProvider())
	}
	wantModel := ""
	if f.GetModel() != "" {
		wantModel = canonical(f.GetProvider(), f.GetModel())
	}

	return func(ev *eventv1.UsageEvent) bool {
		provider := res.CanonicalProvider(ev.GetProvider())
		if provider == "" {
			provider = catalog.NormalizeID(ev.GetProvider())
		}
		eq := func(want, got string) bool { return want == "" || want == got }
		switch {
		case !eq(wantProvider, provider),
			!eq(f.GetAgentId(), ev.GetAgent().GetId()),
			!eq(f.GetApp(), ev.GetApp()),
			!eq(f.GetProject(), ev.GetProject()),
			!eq(f.GetSessionId(), ev.GetSessionId()),
			!eq(f.GetRunId(), ev.GetRunId()),
			!eq(f.GetCustomerId(), ev.GetCustomerId()):
			return false
		}
		if wantModel == "" {
			return true
		}
		got := canonical(ev.GetProvider(), ev.GetModel())
		return got == wantModel ||
			(f.GetProvider() == "" && stripProvider(got) == stripProvider(wantModel))
	}
}

func stripProvider(key string) string {
	for i := range key {
		if key[i] == '/' {
			return key[i+1:]
		}
	}
	return key
}

// whatIf adds up hypothetical prices.
type whatIf struct {
	book     *pricebook.Book
	rates    *pricebook.TenantRates
	target   *pricingv1.ModelTarget
	history  bool
	out      *pricingv1.PriceUsageResponse
	reasons  map[string]int64
	currency string
	list     int64
	eff      int64
	recorded int64
}

// price prices one event, retargeted, and counts it. recorded is the
// event's current price in the ledger, nil for request events.
func (w *whatIf) price(ev *eventv1.UsageEvent, recorded *eventv1.PricedUsage) *eventv1.PricedUsage {
	ev = retarget(ev, w.target)
	pu := w.book.Price(ev, w.rates)
	w.out.EventCount++
	if pu.GetPricingStatus() != eventv1.PricingStatus_PRICING_STATUS_PRICED {
		w.unpriced(pu.GetUnpricedReason())
		return pu
	}

	cur := pu.GetEffectiveCost().GetCurrencyCode()
	if w.currency != "" && cur != w.currency {
		w.unpriced(fmt.Sprintf("priced in %s, not %s like the rest", cur, w.currency))
		return pu
	}
	list, lerr := money.Add(w.list, pu.GetListCost().GetNanos())
	eff, eerr := money.Add(w.eff, pu.GetEffectiveCost().GetNanos())
	rec, rerr := money.Add(w.recorded, recorded.GetEffectiveCost().GetNanos())
	if lerr != nil || eerr != nil || rerr != nil {
		w.unpriced("the total overflows")
		return pu
	}
	w.currency, w.list, w.eff, w.recorded = cur, list, eff, rec
	w.out.PricedCount++
	return pu
}

func (w *whatIf) unpriced(reason string) {
	w.out.UnpricedCount++
	w.reasons[reason]++
}

// retarget returns ev as if sent to target; ev itself is not modified.
func retarget(ev *eventv1.UsageEvent, t *pricingv1.ModelTarget) *eventv1.UsageEvent {
	if t == nil {
		return ev
	}
	out := proto.Clone(ev).(*eventv1.UsageEvent)
	if t.GetModel() != "" {
		out.Model, out.ModelVersion, out.Provider = t.GetModel(), "", t.GetProvider()
	} else if t.GetProvider() != "" {
		out.Provider = t.GetProvider()
	}
	if t.GetRegion() != "" {
		out.Region = t.GetRegion()
	}
	if t.GetServiceTier() != "" {
		out.ServiceTier = t.GetServiceTier()
	}
	if t.GetInferenceProfile() != "" {
		out.InferenceProfile = t.GetInferenceProfile()
	}
	return out
}

func (w *whatIf) finish() *pricingv1.PriceUsageResponse {
	if w.currency != "" {
		w.out.ListCost = money.New(w.currency, w.list)
		w.out.EffectiveCost = money.New(w.currency, w.eff)
		if w.history {
			w.out.RecordedEffectiveCost = money.New(w.currency, w.recorded)
		}
	}
	for reason, n := range w.reasons {
		w.out.UnpricedReasons = append(w.out.UnpricedReasons,
			&pricingv1.ReasonCount{Reason: reason, Count: n})
	}
	slices.SortFunc(w.out.UnpricedReasons, func(a, b *pricingv1.ReasonCount) int {
		if c := cmp.Compare(b.GetCount(), a.GetCount()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetReason(), b.GetReason())
	})
	if len(w.out.UnpricedReasons) > maxReasons {
		w.out.UnpricedReasons = w.out.UnpricedReasons[:maxReasons]
	}
	return w.out
}
