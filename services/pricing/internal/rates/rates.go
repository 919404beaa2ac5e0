// Package rates stores each tenant's negotiated and configured prices in
// PostgreSQL (schema pricing) and keeps an in-memory copy of all of them
// for the pricing consumer, refreshed by LISTEN/NOTIFY and by polling.
package rates

import (
	"errors"
	"fmt"
	"slices"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/catalog"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

// Kind says what a rate does.
type Kind string

// The kinds of rate.
const (
	KindDiscount    Kind = "discount"
	KindFixedPrice  Kind = "fixed_price"
	KindCustomModel Kind = "custom_model"
	KindDeployment  Kind = "deployment"
)

// Errors callers branch on.
var (
	ErrNotFound = errors.New("rate not found")
)

// OverlapError means a new rate's validity overlaps that of a live rate of
// the same kind and scope, so which one applies would be ambiguous.
type OverlapError struct {
	Existing Rate
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("validity overlaps rate %s (%s)", e.Existing.ID, e.Existing.ValidityString())
}

// Rate is one row of pricing.tenant_rates. Provider and Model are stored
// canonical, as the pricing function compares them.
type Rate struct {
	TenantID string
	ID       string
	Kind     Kind
	Provider string
	Model    string
	Account  string
	// From and To bound the validity, [From, To); zero is an open end.
	From, To time.Time

	// PercentOffBP is the discount, for KindDiscount.
	PercentOffBP int64
	// QuantityKind and PricePerMillionNanos are the fixed price, for
	// KindFixedPrice.
	QuantityKind         eventv1.QuantityKind
	PricePerMillionNanos int64
	// UnitPrices and PricePerHourNanos price a KindCustomModel.
	UnitPrices        []UnitPrice
	PricePerHourNanos int64
	// Deployment is the Azure deployment name of a KindDeployment, which
	// maps it to Model.
	Deployment string

	Description string
	CreateTime  time.Time
	// DeleteTime is zero while the rate is live.
	DeleteTime time.Time
}

// UnitPrice is a custom model's price of one quantity kind.
type UnitPrice struct {
	Kind            eventv1.QuantityKind
	PerMillionNanos int64
}

// ValidityString renders the validity for messages.
func (r Rate) ValidityString() string {
	from, to := "-inf", "+inf"
	if !r.From.IsZero() {
		from = r.From.UTC().Format(time.RFC3339)
	}
	if !r.To.IsZero() {
		to = r.To.UTC().Format(time.RFC3339)
	}
	return "[" + from + ", " + to + ")"
}

// Build turns a tenant's live rates into what the pricing function reads.
// Rates are sorted by id first, so equal input always gives equal output.
func Build(rs []Rate) *pricebook.TenantRates {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Rate) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})

	out := &pricebook.TenantRates{}
	for _, r := range rs {
		v := pricebook.Validity{From: r.From, To: r.To}
		scope := pricebook.Scope{Provider: r.Provider, Model: r.Model, Account: r.Account}
		switch r.Kind {
		case KindDiscount:
			out.Discounts = append(out.Discounts, pricebook.Discount{
				ID: r.ID, Scope: scope, Validity: v, PercentOffBP: r.PercentOffBP,
			})
		case KindFixedPrice:
			out.FixedRates = append(out.FixedRates, pricebook.FixedRate{
				ID: r.ID, Scope: scope, Validity: v, Kind: r.QuantityKind,
				PerMillionNanos: r.PricePerMillionNanos,
			})
		case KindCustomModel:
			c := pricebook.CustomModel{
				ID: r.ID, Provider: r.Provider, Model: r.Model, Validity: v,
				PerHourNanos: r.PricePerHourNanos,
			}
			for _, up := range r.UnitPrices {
				c.Rates.Set(up.Kind, up.PerMillionNanos)
			}
			out.CustomModels = append(out.CustomModels, c)
		case KindDeployment:
			if out.Deployments == nil {
				out.Deployments = map[string]string{}
			}
			out.Deployments[catalog.NormalizeID(r.Deployment)] = r.Model
		}
	}
	return out
}
