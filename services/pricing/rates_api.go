package pricing

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	pricingv1 "github.com/costplane/costplane/proto/gen/go/costplane/pricing/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/services/pricing/catalog"
	"github.com/costplane/costplane/services/pricing/internal/rates"
	"github.com/costplane/costplane/services/pricing/resolve"
)

// Limits on rate fields.
const (
	maxDescriptionLen = 1024
	maxNameLen        = 256
)

var kindOf = map[pricingv1.RateKind]rates.Kind{
	pricingv1.RateKind_RATE_KIND_DISCOUNT:     rates.KindDiscount,
	pricingv1.RateKind_RATE_KIND_FIXED_PRICE:  rates.KindFixedPrice,
	pricingv1.RateKind_RATE_KIND_CUSTOM_MODEL: rates.KindCustomModel,
	pricingv1.RateKind_RATE_KIND_DEPLOYMENT:   rates.KindDeployment,
}

// CreateRate validates and stores a rate of the caller's tenant. The
// pricing consumer applies it within seconds; past usage changes only
// through a reprice.
func (s *Service) CreateRate(ctx context.Context, req *pricingv1.CreateRateRequest) (
	*pricingv1.CreateRateResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.rateFromProto(req.GetRate())
	if err != nil {
		return nil, err
	}
	r.TenantID, r.ID = p.TenantID, newID("rate", time.Now())

	created, err := s.rates.Create(ctx, r)
	if err != nil {
		return nil, s.toStatus(ctx, err, r.ID)
	}
	s.cache.Refresh()
	return &pricingv1.CreateRateResponse{Rate: rateProto(created)}, nil
}

// ListRates lists the caller's rates in creation order.
func (s *Service) ListRates(ctx context.Context, req *pricingv1.ListRatesRequest) (
	*pricingv1.ListRatesResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	var kind rates.Kind
	if req.GetKind() != pricingv1.RateKind_RATE_KIND_UNSPECIFIED {
		var ok bool
		if kind, ok = kindOf[req.GetKind()]; !ok {
			return nil, apierr.Invalid("kind", unknownEnum(int32(req.GetKind())))
		}
	}
	scope := p.TenantID + "/" + string(kind) + "/" + strconv.FormatBool(req.GetShowDeleted())
	after, err := decodeToken(req.GetPageToken(), scope)
	if err != nil {
		return nil, err
	}

	rs, err := s.rates.List(ctx, p.TenantID, rates.ListFilter{
		Kind: kind, ShowDeleted: req.GetShowDeleted(), After: after, Limit: size + 1,
	})
	if err != nil {
		return nil, s.toStatus(ctx, err, "")
	}
	rs, next := page(rs, size, scope, func(r rates.Rate) string { return r.ID })

	out := &pricingv1.ListRatesResponse{NextPageToken: next}
	for _, r := range rs {
		out.Rates = append(out.Rates, rateProto(r))
	}
	return out, nil
}

// DeleteRate stops a rate of the caller's tenant from pricing anything
// from now on.
func (s *Service) DeleteRate(ctx context.Context, req *pricingv1.DeleteRateRequest) (
	*pricingv1.DeleteRateResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetRateId() == "" {
		return nil, apierr.Invalid("rate_id", "is required")
	}

	r, err := s.rates.Delete(ctx, p.TenantID, req.GetRateId())
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetRateId())
	}
	s.cache.Refresh()
	return &pricingv1.DeleteRateResponse{Rate: rateProto(r)}, nil
}

// rateFromProto validates a requested rate, naming every bad field, and
// returns it with canonical provider and model names.
func (s *Service) rateFromProto(in *pricingv1.Rate) (rates.Rate, error) {
	if in == nil {
		return rates.Rate{}, apierr.Invalid("rate", "is required")
	}
	var v apierr.Violations
	r := rates.Rate{
		Account:     in.GetScope().GetAccount(),
		Description: in.GetDescription(),
	}
	r.From = validTime(&v, "rate.valid_from", in.GetValidFrom())
	r.To = validTime(&v, "rate.valid_to", in.GetValidTo())
	if !r.From.IsZero() && !r.To.IsZero() && !r.From.Before(r.To) {
		v.Add("rate.valid_to", "must be after valid_from")
	}
	if len(r.Description) > maxDescriptionLen {
		v.Add("rate.description", fmt.Sprintf("must be at most %d bytes", maxDescriptionLen))
	}
	if len(r.Account) > maxNameLen {
		v.Add("rate.scope.account", fmt.Sprintf("must be at most %d bytes", maxNameLen))
	}

	kind, ok := kindOf[in.GetKind()]
	switch {
	case in.GetKind() == pricingv1.RateKind_RATE_KIND_UNSPECIFIED:
		v.Add("rate.kind", "is required: DISCOUNT, FIXED_PRICE, CUSTOM_MODEL or DEPLOYMENT")
	case !ok:
		v.Add("rate.kind", unknownEnum(int32(in.GetKind())))
	default:
		r.Kind = kind
		checkTermsPresent(&v, in, kind)
		s.checkTerms(&v, in, &r)
	}
	return r, v.Err()
}

// checkTermsPresent requires the terms message of the kind and no other.
func checkTermsPresent(v *apierr.Violations, in *pricingv1.Rate, kind rates.Kind) {
	terms := []struct {
		kind  rates.Kind
		field string
		set   bool
	}{
		{rates.KindDiscount, "rate.discount", in.GetDiscount() != nil},
		{rates.KindFixedPrice, "rate.fixed_price", in.GetFixedPrice() != nil},
		{rates.KindCustomModel, "rate.custom_model", in.GetCustomModel() != nil},
		{rates.KindDeployment, "rate.deployment", in.GetDeployment() != nil},
	}
	for _, t := range terms {
		switch {
		case t.kind == kind && !t.set:
			v.Add(t.field, "is required for kind "+in.GetKind().String())
		case t.kind != kind && t.set:
			v.Add(t.field, "must not be set for kind "+in.GetKind().String())
		}
	}
}

func (s *Service) checkTerms(v *apierr.Violations, in *pricingv1.Rate, r *rates.Rate) {
	switch r.Kind {
	case rates.KindDiscount:
		s.checkScope(v, in.GetScope(), r)
		bp := in.GetDiscount().GetPercentOffBasisPoints()
		switch {
		case bp < 0:
			v.Add("rate.discount.percent_off_basis_points", "must not be negative")
		case bp > 10_000:
			v.Add("rate.discount.percent_off_basis_points", "must be at most 10000 (100 %)")
		}
		r.PercentOffBP = int64(bp)

	case rates.KindFixedPrice:
		s.checkScope(v, in.GetScope(), r)
		f := in.GetFixedPrice()
		checkQuantityKind(v, "rate.fixed_price.quantity_kind", f.GetQuantityKind())
		if f.GetPricePerMillionNanos() < 0 {
			v.Add("rate.fixed_price.price_per_million_nanos", "must not be negative")
		}
		r.QuantityKind, r.PricePerMillionNanos = f.GetQuantityKind(), f.GetPricePerMillionNanos()

	case rates.KindCustomModel:
		s.checkCustomModel(v, in, r)

	case rates.KindDeployment:
		s.checkDeployment(v, in, r)
	}
}

// checkScope canonicalizes the provider and model a discount or fixed
// price applies to; the pricing function compares catalog names.
func (s *Service) checkScope(v *apierr.Violations, sc *pricingv1.RateScope, r *rates.Rate) {
	res := s.book.Resolver()
	if p := sc.GetProvider(); p != "" {
		if r.Provider = res.CanonicalProvider(p); r.Provider == "" {
			v.Add("rate.scope.provider", fmt.Sprintf("unknown provider %q", p))
			return
		}
	}
	if m := sc.GetModel(); m != "" {
		got, err := res.Resolve(r.Provider, m, nil)
		if err != nil {
			v.Add("rate.scope.model", err.Error())
			return
		}
		// A model without a provider stays so: the scope then covers
		// every provider selling a model of that name.
		r.Model = got.Model
	}
}

func (s *Service) checkCustomModel(v *apierr.Violations, in *pricingv1.Rate, r *rates.Rate) {
	sc, c := in.GetScope(), in.GetCustomModel()
	r.Model = catalog.NormalizeID(sc.GetModel())
	r.Provider = s.book.Resolver().CanonicalProvider(sc.GetProvider())
	if r.Provider == "" {
		r.Provider = catalog.NormalizeID(sc.GetProvider())
	}
	switch {
	case r.Model == "":
		v.Add("rate.scope.model", "is required for a custom model")
	case len(r.Model) > maxNameLen || len(r.Provider) > maxNameLen:
		v.Add("rate.scope", fmt.Sprintf("provider and model must be at most %d bytes", maxNameLen))
	}
	if sc.GetAccount() != "" {
		v.Add("rate.scope.account", "a custom model applies to every account")
	}

	seen := map[eventv1.QuantityKind]bool{}
	for i, up := range c.GetUnitPrices() {
		field := fmt.Sprintf("rate.custom_model.unit_prices[%d]", i)
		checkQuantityKind(v, field+".quantity_kind", up.GetQuantityKind())
		if seen[up.GetQuantityKind()] {
			v.Add(field+".quantity_kind", "is priced twice")
		}
		seen[up.GetQuantityKind()] = true
		if up.GetPricePerMillionNanos() < 0 {
			v.Add(field+".price_per_million_nanos", "must not be negative")
		}
		r.UnitPrices = append(r.UnitPrices, rates.UnitPrice{
			Kind: up.GetQuantityKind(), PerMillionNanos: up.GetPricePerMillionNanos(),
		})
	}
	switch {
	case c.GetPricePerHourNanos() < 0:
		v.Add("rate.custom_model.price_per_hour_nanos", "must not be negative")
	case len(c.GetUnitPrices()) == 0 && c.GetPricePerHourNanos() == 0:
		v.Add("rate.custom_model", "needs unit_prices or price_per_hour_nanos")
	}
	r.PricePerHourNanos = c.GetPricePerHourNanos()
}

func (s *Service) checkDeployment(v *apierr.Violations, in *pricingv1.Rate, r *rates.Rate) {
	r.Deployment = catalog.NormalizeID(in.GetDeployment().GetDeployment())
	switch {
	case r.Deployment == "":
		v.Add("rate.deployment.deployment", "is required")
	case len(r.Deployment) > maxNameLen:
		v.Add("rate.deployment.deployment", fmt.Sprintf("must be at most %d bytes", maxNameLen))
	}
	p := in.GetScope().GetProvider()
	if p != "" && s.book.Resolver().CanonicalProvider(p) != resolve.Azure {
		v.Add("rate.scope.provider", "deployments map Azure OpenAI ("+resolve.Azure+") names only")
	}
	if in.GetScope().GetAccount() != "" {
		v.Add("rate.scope.account", "a deployment applies to every account")
	}
	if in.GetValidFrom() != nil || in.GetValidTo() != nil {
		v.Add("rate.valid_from",
			"deployments are not effective-dated; leave valid_from and valid_to unset")
	}

	m := in.GetScope().GetModel()
	if m == "" {
		v.Add("rate.scope.model", "is required: the model the deployment serves")
		return
	}
	got, err := s.book.Resolver().Resolve(resolve.Azure, m, nil)
	if err != nil {
		v.Add("rate.scope.model", err.Error())
		return
	}
	r.Provider, r.Model = resolve.Azure, got.Model
}

func checkQuantityKind(v *apierr.Violations, field string, k eventv1.QuantityKind) {
	switch {
	case k == eventv1.QuantityKind_QUANTITY_KIND_UNSPECIFIED:
		v.Add(field, "is required")
	case !catalog.Known(k):
		v.Add(field, "unknown quantity kind "+strconv.Itoa(int(k)))
	}
}

func unknownEnum(n int32) string {
	return "unknown value " + strconv.Itoa(int(n))
}

func rateProto(r rates.Rate) *pricingv1.Rate {
	out := &pricingv1.Rate{
		RateId:      r.ID,
		Scope:       &pricingv1.RateScope{Provider: r.Provider, Model: r.Model, Account: r.Account},
		ValidFrom:   timestampOrNil(r.From),
		ValidTo:     timestampOrNil(r.To),
		Description: r.Description,
		CreateTime:  timestampOrNil(r.CreateTime),
		DeleteTime:  timestampOrNil(r.DeleteTime),
	}
	for k, kind := range kindOf {
		if kind == r.Kind {
			out.Kind = k
		}
	}
	switch r.Kind {
	case rates.KindDiscount:
		out.Discount = &pricingv1.Discount{PercentOffBasisPoints: int32(r.PercentOffBP)}
	case rates.KindFixedPrice:
		out.FixedPrice = &pricingv1.FixedPrice{
			QuantityKind: r.QuantityKind, PricePerMillionNanos: r.PricePerMillionNanos,
		}
	case rates.KindCustomModel:
		c := &pricingv1.CustomModel{PricePerHourNanos: r.PricePerHourNanos}
		for _, up := range r.UnitPrices {
			c.UnitPrices = append(c.UnitPrices, &pricingv1.UnitPrice{
				QuantityKind: up.Kind, Unit: catalog.KindUnit(up.Kind),
				PricePerMillionNanos: up.PerMillionNanos,
			})
		}
		slices.SortFunc(c.UnitPrices, func(a, b *pricingv1.UnitPrice) int {
			return int(a.GetQuantityKind()) - int(b.GetQuantityKind())
		})
		out.CustomModel = c
	case rates.KindDeployment:
		out.Deployment = &pricingv1.Deployment{Deployment: r.Deployment}
	}
	return out
}
