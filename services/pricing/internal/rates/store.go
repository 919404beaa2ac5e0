package rates

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/pg"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

// NotifyChannel is the PostgreSQL channel told the tenant id of every
// rate change, at commit.
const NotifyChannel = "costplane_pricing_rates"

// Store reads and writes pricing.tenant_rates. Every query filters by
// tenant except the cache's loads, which read every tenant.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store on a pool whose database has the pricing schema.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

const rateColumns = `tenant_id, rate_id, kind, provider, model, account, valid_from, valid_to,
	percent_off_bp, quantity_kind, price_per_million_nanos, unit_kinds, unit_prices,
	price_per_hour_nanos, deployment, description, create_time, delete_time`

const bumpRevision = `UPDATE pricing.rates_revision SET revision = revision + 1 RETURNING revision`

// findOverlap looks for a live rate in the same slot whose validity
// overlaps. tstzrange treats NULL bounds as infinite.
const findOverlap = `SELECT ` + rateColumns + ` FROM pricing.tenant_rates
WHERE tenant_id = $1 AND kind = $2 AND provider = $3 AND model = $4 AND account = $5
  AND quantity_kind = $6 AND deployment = $7 AND delete_time IS NULL
  AND tstzrange(valid_from, valid_to) && tstzrange($8, $9)
ORDER BY rate_id
LIMIT 1`

const insertRate = `INSERT INTO pricing.tenant_rates (
	tenant_id, rate_id, kind, provider, model, account, valid_from, valid_to,
	percent_off_bp, quantity_kind, price_per_million_nanos, unit_kinds, unit_prices,
	price_per_hour_nanos, deployment, description, revision)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
RETURNING create_time`

const notifyChange = `SELECT pg_notify('` + NotifyChannel + `', $1)`

// Create stores a new rate. It fails with an *OverlapError when a live
// rate of the same kind and scope overlaps its validity. The caller has
// validated and canonicalized r and given it an id.
func (s *Store) Create(ctx context.Context, r Rate) (Rate, error) {
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		// Bumping first takes the counter's row lock, which also makes
		// the overlap check and the insert atomic against other writers.
		var rev int64
		if err := tx.QueryRow(ctx, bumpRevision).Scan(&rev); err != nil {
			return fmt.Errorf("bumping rates revision: %w", err)
		}

		existing, err := collectRates(tx.Query(ctx, findOverlap, r.TenantID, string(r.Kind),
			r.Provider, r.Model, r.Account, int32(r.QuantityKind), r.Deployment,
			nullTime(r.From), nullTime(r.To)))
		if err != nil {
			return fmt.Errorf("checking overlaps: %w", err)
		}
		if len(existing) > 0 {
			return &OverlapError{Existing: existing[0]}
		}

		kinds, prices := splitUnitPrices(r.UnitPrices)
		err = tx.QueryRow(ctx, insertRate, r.TenantID, r.ID, string(r.Kind), r.Provider, r.Model,
			r.Account, nullTime(r.From), nullTime(r.To), r.PercentOffBP, int32(r.QuantityKind),
			r.PricePerMillionNanos, kinds, prices, r.PricePerHourNanos, r.Deployment,
			r.Description, rev).Scan(&r.CreateTime)
		if err != nil {
			return fmt.Errorf("inserting: %w", err)
		}

		_, err = tx.Exec(ctx, notifyChange, r.TenantID)
		return err
	})
	if err != nil {
		return Rate{}, fmt.Errorf("creating rate %s of tenant %s: %w", r.ID, r.TenantID, err)
	}
	return r, nil
}

const deleteRate = `UPDATE pricing.tenant_rates
SET delete_time = coalesce(delete_time, now()), revision = $3
WHERE tenant_id = $1 AND rate_id = $2
RETURNING ` + rateColumns

// Delete marks a rate deleted and returns it. Deleting a deleted rate
// returns it unchanged. It fails with ErrNotFound when the tenant has no
// such rate.
func (s *Store) Delete(ctx context.Context, tenantID, rateID string) (Rate, error) {
	var out Rate
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var rev int64
		if err := tx.QueryRow(ctx, bumpRevision).Scan(&rev); err != nil {
			return fmt.Errorf("bumping rates revision: %w", err)
		}
		got, err := collectRates(tx.Query(ctx, deleteRate, tenantID, rateID, rev))
		if err != nil {
			return err
		}
		if len(got) == 0 {
			return ErrNotFound
		}
		out = got[0]

		_, err = tx.Exec(ctx, notifyChange, tenantID)
		return err
	})
	if err != nil {
		return Rate{}, fmt.Errorf("deleting rate %s of tenant %s: %w", rateID, tenantID, err)
	}
	return out, nil
}

// ListFilter narrows List.
type ListFilter struct {
	// Kind empty lists every kind.
	Kind        Kind
	ShowDeleted bool
	// After is the last rate id of the previous page.
	After string
	Limit int
}

const listRates = `SELECT ` + rateColumns + ` FROM pricing.tenant_rates
WHERE tenant_id = $1 AND ($2 = '' OR kind = $2) AND ($3 OR delete_time IS NULL)
  AND rate_id > $4
ORDER BY rate_id
LIMIT $5`

// List returns a tenant's rates in id order, which is creation order.
func (s *Store) List(ctx context.Context, tenantID string, f ListFilter) ([]Rate, error) {
	out, err := collectRates(s.pool.Query(ctx, listRates, tenantID, string(f.Kind),
		f.ShowDeleted, f.After, f.Limit))
	if err != nil {
		return nil, fmt.Errorf("listing rates of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

const liveRates = `SELECT ` + rateColumns + ` FROM pricing.tenant_rates
WHERE tenant_id = $1 AND delete_time IS NULL`

// Load returns what the pricing function reads for a tenant, straight
// from the database.
func (s *Store) Load(ctx context.Context, tenantID string) (*pricebook.TenantRates, error) {
	rs, err := collectRates(s.pool.Query(ctx, liveRates, tenantID))
	if err != nil {
		return nil, fmt.Errorf("loading rates of tenant %s: %w", tenantID, err)
	}
	return Build(rs), nil
}

const currentRevision = `SELECT revision FROM pricing.rates_revision`

const allLiveRates = `SELECT ` + rateColumns + ` FROM pricing.tenant_rates
WHERE delete_time IS NULL`

// loadAll returns every tenant's live rates and the revision they are at.
// The revision is read first: a change committed in between is loaded
// now and loaded again by the next refresh, never missed.
func (s *Store) loadAll(ctx context.Context) (map[string]*pricebook.TenantRates, int64, error) {
	var rev int64
	if err := s.pool.QueryRow(ctx, currentRevision).Scan(&rev); err != nil {
		return nil, 0, fmt.Errorf("reading rates revision: %w", err)
	}
	rs, err := collectRates(s.pool.Query(ctx, allLiveRates))
	if err != nil {
		return nil, 0, fmt.Errorf("loading rates: %w", err)
	}

	byTenant := map[string][]Rate{}
	for _, r := range rs {
		byTenant[r.TenantID] = append(byTenant[r.TenantID], r)
	}
	out := make(map[string]*pricebook.TenantRates, len(byTenant))
	for t, trs := range byTenant {
		out[t] = Build(trs)
	}
	return out, rev, nil
}

const changedTenants = `SELECT DISTINCT tenant_id FROM pricing.tenant_rates WHERE revision > $1`

// changedSince returns the tenants with a rate changed after revision
// since, and the current revision.
func (s *Store) changedSince(ctx context.Context, since int64) ([]string, int64, error) {
	var rev int64
	if err := s.pool.QueryRow(ctx, currentRevision).Scan(&rev); err != nil {
		return nil, 0, fmt.Errorf("reading rates revision: %w", err)
	}
	if rev == since {
		return nil, rev, nil
	}
	rows, err := s.pool.Query(ctx, changedTenants, since)
	if err != nil {
		return nil, 0, fmt.Errorf("reading changed tenants: %w", err)
	}
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, 0, fmt.Errorf("reading changed tenants: %w", err)
	}
	return tenants, rev, nil
}

func collectRates(rows pgx.Rows, err error) ([]Rate, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanRate)
}

func scanRate(row pgx.CollectableRow) (Rate, error) {
	var (
		r                 Rate
		kind              string
		from, to, deleted *time.Time
		qkind             int32
		percent           int32
		unitKinds         []int32
		unitPrices        []int64
	)
	err := row.Scan(&r.TenantID, &r.ID, &kind, &r.Provider, &r.Model, &r.Account, &from, &to,
		&percent, &qkind, &r.PricePerMillionNanos, &unitKinds, &unitPrices,
		&r.PricePerHourNanos, &r.Deployment, &r.Description, &r.CreateTime, &deleted)
	if err != nil {
		return Rate{}, err
	}
	if len(unitKinds) != len(unitPrices) {
		return Rate{}, errors.New("unit_kinds and unit_prices differ in length")
	}

	r.Kind = Kind(kind)
	r.PercentOffBP = int64(percent)
	r.QuantityKind = eventv1.QuantityKind(qkind)
	r.From, r.To, r.DeleteTime = deref(from), deref(to), deref(deleted)
	for i, k := range unitKinds {
		r.UnitPrices = append(r.UnitPrices, UnitPrice{
			Kind: eventv1.QuantityKind(k), PerMillionNanos: unitPrices[i],
		})
	}
	return r, nil
}

func splitUnitPrices(ups []UnitPrice) ([]int32, []int64) {
	kinds := make([]int32, len(ups))
	prices := make([]int64, len(ups))
	for i, up := range ups {
		kinds[i], prices[i] = int32(up.Kind), up.PerMillionNanos
	}
	return kinds, prices
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
