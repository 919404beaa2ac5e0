package pricing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	pricingv1 "github.com/costplane/costplane/proto/gen/go/costplane/pricing/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/services/pricing/catalog"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

// ListModels lists the catalog's models, filtered by provider and text,
// with the price rows valid at the requested time.
func (s *Service) ListModels(ctx context.Context, req *pricingv1.ListModelsRequest) (
	*pricingv1.ListModelsResponse, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}

	provider := ""
	if req.GetProvider() != "" {
		if provider = s.book.Resolver().CanonicalProvider(req.GetProvider()); provider == "" {
			return nil, apierr.Invalid("provider",
				fmt.Sprintf("unknown provider %q", req.GetProvider()))
		}
	}
	at := timeOr(req.GetTime(), time.Now())
	query := strings.ToLower(strings.TrimSpace(req.GetQuery()))
	// An unset time means "now" on every page, so it is not part of the
	// listing's identity.
	scope := listScope(provider, query, req.GetTime().AsTime(), req.GetTime() != nil,
		req.GetAllPrices())
	after, err := decodeToken(req.GetPageToken(), scope)
	if err != nil {
		return nil, err
	}

	var models []*catalog.Model
	for _, m := range s.book.Catalog().Models() {
		if (provider != "" && m.Provider != provider) || !matches(m, query) {
			continue
		}
		if after != "" && !afterKey(m, after) {
			continue
		}
		models = append(models, m)
		if len(models) > size {
			break
		}
	}
	models, next := page(models, size, scope, modelKey)

	out := &pricingv1.ListModelsResponse{
		NextPageToken: next, CatalogVersion: s.book.Catalog().Version(),
	}
	for _, m := range models {
		out.Models = append(out.Models, s.modelProto(m, at, req.GetAllPrices()))
	}
	return out, nil
}

// modelKey names a model in page tokens. Provider names hold no '/',
// model names may.
func modelKey(m *catalog.Model) string { return m.Provider + "/" + m.Name }

// afterKey reports whether m comes after the model named key in the
// catalog's order: by provider, then by name.
func afterKey(m *catalog.Model, key string) bool {
	provider, name, _ := strings.Cut(key, "/")
	if c := strings.Compare(m.Provider, provider); c != 0 {
		return c > 0
	}
	return m.Name > name
}

// listScope identifies a filtered listing for its page tokens.
func listScope(provider, query string, at time.Time, timed, all bool) string {
	stamp := int64(0)
	if timed {
		stamp = at.UnixNano()
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%t", provider, query, stamp, all))
	return hex.EncodeToString(sum[:8])
}

func matches(m *catalog.Model, query string) bool {
	if query == "" {
		return true
	}
	for _, s := range append([]string{m.Name, m.DisplayName}, m.Aliases...) {
		if strings.Contains(strings.ToLower(s), query) {
			return true
		}
	}
	return false
}

func (s *Service) modelProto(m *catalog.Model, at time.Time, all bool) *pricingv1.Model {
	out := &pricingv1.Model{
		Provider:                  m.Provider,
		Model:                     m.Name,
		DisplayName:               m.DisplayName,
		Aliases:                   m.Aliases,
		ProfilePremiumBasisPoints: m.ProfilePremiumBP,
		TierMultiplierBasisPoints: m.TierMultiplierBP,
	}
	if p, ok := s.book.Catalog().Provider(m.Provider); ok {
		out.Currency = p.Currency
	}
	for _, row := range m.Prices {
		if all || row.ValidAt(at) {
			out.Prices = append(out.Prices, rowProto(row))
		}
	}
	return out
}

func rowProto(p *catalog.Price) *pricingv1.PriceRow {
	out := &pricingv1.PriceRow{
		RateId:           p.ID,
		EffectiveFrom:    timestampOrNil(p.From),
		EffectiveTo:      timestampOrNil(p.To),
		Regions:          p.Regions,
		InferenceProfile: p.Profile,
		ServiceTier:      p.Tier,
		UnitPrices:       unitPricesProto(&p.Rates),
		Source:           p.Source,
		AsOf:             p.AsOf,
		Note:             p.Note,
	}
	if l := p.Long; l != nil {
		out.LongContext = &pricingv1.LongContextPrice{
			RateId: l.ID, ThresholdTokens: l.Threshold, Unpublished: l.Unpublished,
			UnitPrices: unitPricesProto(&l.Rates),
		}
	}
	if o := p.OffPeak; o != nil {
		out.OffPeak = &pricingv1.OffPeakPrice{RateId: o.ID, UnitPrices: unitPricesProto(&o.Rates)}
	}
	return out
}

func unitPricesProto(r *catalog.Rates) []*pricingv1.UnitPrice {
	var out []*pricingv1.UnitPrice
	for _, k := range r.Kinds() {
		p, _ := r.Get(k)
		out = append(out, &pricingv1.UnitPrice{
			QuantityKind: k, Unit: catalog.KindUnit(k), PricePerMillionNanos: p,
		})
	}
	return out
}

// probeAmount is the amount of each kind GetModelPrice prices: a million
// units cost exactly the price per million.
const probeAmount = 1_000_000

// GetModelPrice prices one million units of every quantity kind, one kind
// at a time, as an event of that model at that time and place would be,
// so the answer is exactly what the pricing consumer would charge.
func (s *Service) GetModelPrice(ctx context.Context, req *pricingv1.GetModelPriceRequest) (
	*pricingv1.GetModelPriceResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.GetModel()) == "" {
		return nil, apierr.Invalid("model", "is required")
	}
	tr, err := s.rates.Load(ctx, p.TenantID)
	if err != nil {
		return nil, s.toStatus(ctx, err, "")
	}

	at := timeOr(req.GetTime(), time.Now())
	out := &pricingv1.GetModelPriceResponse{
		Time: timestamppb.New(at), CatalogVersion: s.book.Catalog().Version(),
	}
	var firstReason string
	tenantIDs := map[string]bool{}
	for k := 1; k < catalog.NumKinds; k++ {
		kind := eventv1.QuantityKind(k)
		pu := s.book.Price(probeEvent(req, at, kind), tr)
		if pu.GetPricingStatus() != eventv1.PricingStatus_PRICING_STATUS_PRICED {
			if kind == eventv1.QuantityKind_QUANTITY_KIND_INPUT {
				firstReason = pu.GetUnpricedReason()
			}
			continue
		}
		line := pu.GetCostLines()[0]
		out.Currency = line.GetListCost().GetCurrencyCode()
		out.Prices = append(out.Prices, &pricingv1.KindPrice{
			QuantityKind:                  kind,
			Unit:                          line.GetUnit(),
			ListPricePerMillionNanos:      line.GetListCost().GetNanos(),
			EffectivePricePerMillionNanos: line.GetEffectiveCost().GetNanos(),
			RateId:                        line.GetRateId(),
		})
		for _, id := range pu.GetPriceRef().GetTenantRateIds() {
			tenantIDs[id] = true
		}
	}
	if len(out.Prices) == 0 {
		return nil, status.Error(codes.NotFound, "no price: "+firstReason)
	}
	for id := range tenantIDs {
		out.TenantRateIds = append(out.TenantRateIds, id)
	}
	slices.Sort(out.TenantRateIds)
	s.describeModel(out, req, tr)
	return out, nil
}

// probeEvent is a one-quantity event for GetModelPrice. The context tier
// is stated, so that a million prompt tokens do not select the
// long-context price unless asked.
func probeEvent(req *pricingv1.GetModelPriceRequest, at time.Time,
	kind eventv1.QuantityKind) *eventv1.UsageEvent {
	tier := "standard"
	if req.GetLongContext() {
		tier = "long"
	}
	return &eventv1.UsageEvent{
		EventId: "probe", Provider: req.GetProvider(), Model: req.GetModel(),
		StartTime: timestamppb.New(at), RequestCount: 1,
		Region: req.GetRegion(), ServiceTier: req.GetServiceTier(),
		InferenceProfile: req.GetInferenceProfile(), ContextTier: tier,
		Quantities: []*eventv1.Quantity{{
			Kind: kind, Unit: catalog.KindUnit(kind), Amount: probeAmount,
		}},
	}
}

// describeModel fills the canonical names and the catalog row the prices
// came from; a custom model has none.
func (s *Service) describeModel(out *pricingv1.GetModelPriceResponse,
	req *pricingv1.GetModelPriceRequest, tr *pricebook.TenantRates) {
	res, err := s.book.Resolver().Resolve(req.GetProvider(), req.GetModel(), tr.Deployments)
	if err != nil {
		out.Provider, out.Model = req.GetProvider(), catalog.NormalizeID(req.GetModel())
		return
	}
	out.Provider, out.Model = res.Provider, res.Model
	m, ok := s.book.Catalog().Model(res.Provider, res.Model)
	if !ok {
		return
	}
	out.DisplayName = m.DisplayName
	// Rate ids carry "#tier", "#profile" and "#long" suffixes on the id
	// of the row they derive from.
	base := out.GetPrices()[0].GetRateId()
	if i := strings.IndexByte(base, '#'); i >= 0 {
		base = base[:i]
	}
	for _, row := range m.Prices {
		if row.ID == base {
			out.Row = rowProto(row)
			return
		}
	}
}
