// Package budgets holds budget definitions and their table.
//
// Every write of a budget runs under the exclusive budget-set lock, which
// consumer batches take shared: a write therefore never overlaps a batch,
// so a new or changed budget is backfilled from exactly the spend the
// batches before it committed, and every batch after it matches events
// against it.
package budgets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/bits"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/scope"
)

// Errors callers branch on.
var (
	ErrNotFound = errors.New("budget not found")
	ErrExists   = errors.New("budget already exists")
	// ErrRevision means an update named a revision other than the
	// stored one.
	ErrRevision = errors.New("budget revision mismatch")
)

// ThresholdKind is what a threshold watches; the values match
// costplane.event.v1.BudgetThresholdKind.
type ThresholdKind int16

// The kinds.
const (
	Actual   ThresholdKind = 1
	Forecast ThresholdKind = 2
)

// Threshold is one alert level in basis points of the amount.
type Threshold struct {
	Kind        ThresholdKind `json:"kind"`
	BasisPoints int32         `json:"basis_points"`
}

// Enforcement is what a check answers past the amount; the values match
// the API enum.
type Enforcement int16

// The enforcements.
const (
	Deny Enforcement = 1
	Warn Enforcement = 2
)

// Budget is one budget's definition.
type Budget struct {
	TenantID string
	ID       string
	// UID is new on every creation; derived rows and alert ids use it.
	UID           string
	Name          string
	Filters       []scope.Filter
	PerspectiveID string
	// PerspectiveFilters are the perspective's filters, copied when the
	// budget was last written; the scope is Filters and these.
	PerspectiveFilters []scope.Filter
	// Categories define the cost categories the scope filters by,
	// copied when the budget was last written.
	Categories  []scope.Category
	Currency    string
	Amount      int64
	Period      period.Spec
	Thresholds  []Threshold
	Enforcement Enforcement
	WebhookURL  string
	TrackedFrom time.Time
	Revision    int64
	Created     time.Time
	Updated     time.Time
}

// Querier runs queries: a pool, a connection or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// lockKey is the advisory lock of the budget set.
var lockKey = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("costplane.budget.budget_set"))
	return int64(h.Sum64())
}()

// LockExclusive takes the budget-set lock for a budget write, until tx
// ends.
func LockExclusive(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		return fmt.Errorf("locking budget set: %w", err)
	}
	return nil
}

// LockShared takes the budget-set lock for a consumer batch and returns
// the budget set's version and tuple epoch as of the lock.
func LockShared(ctx context.Context, tx pgx.Tx) (version, tupleEpoch int64, err error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, lockKey); err != nil {
		return 0, 0, fmt.Errorf("locking budget set: %w", err)
	}
	// Read after the lock: under READ COMMITTED this statement sees every
	// budget write that finished before the lock was granted.
	err = tx.QueryRow(ctx, `SELECT version, tuple_epoch FROM budget.budget_set`).
		Scan(&version, &tupleEpoch)
	if err != nil {
		return 0, 0, fmt.Errorf("reading budget set version: %w", err)
	}
	return version, tupleEpoch, nil
}

// BumpTupleEpoch tells consumers to forget the tuples they believe stored,
// inside the transaction that deleted tuples under the exclusive lock.
func BumpTupleEpoch(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE budget.budget_set SET tuple_epoch = tuple_epoch + 1`); err != nil {
		return fmt.Errorf("bumping tuple epoch: %w", err)
	}
	return nil
}

const (
	versionSQL = `SELECT version FROM budget.budget_set`
	bumpSQL    = `UPDATE budget.budget_set SET version = version + 1 RETURNING version`

	columns = `tenant_id, budget_id, budget_uid::text, display_name, filters,
	perspective_id, perspective_filters, currency, amount_nanos, period, start_day, thresholds,
	enforcement, webhook_url, tracked_from, revision, create_time, update_time, categories`

	insertSQL = `INSERT INTO budget.budgets (tenant_id, budget_id, budget_uid,
	display_name, filters, perspective_id, perspective_filters, currency,
	amount_nanos, period, start_day, thresholds, enforcement, webhook_url,
	tracked_from, revision, create_time, update_time, categories)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT (tenant_id, budget_id) DO NOTHING`

	updateSQL = `UPDATE budget.budgets SET display_name = $3, filters = $4,
	perspective_id = $5, perspective_filters = $6, currency = $7, amount_nanos = $8,
	period = $9, start_day = $10, thresholds = $11, enforcement = $12,
	webhook_url = $13, tracked_from = $14, revision = revision + 1, update_time = $15,
	categories = $16
WHERE tenant_id = $1 AND budget_id = $2
RETURNING revision`

	getSQL       = `SELECT ` + columns + ` FROM budget.budgets WHERE tenant_id = $1 AND budget_id = $2`
	getLockedSQL = getSQL + ` FOR UPDATE`
	listSQL      = `SELECT ` + columns + ` FROM budget.budgets
WHERE tenant_id = $1 AND budget_id > $2 ORDER BY budget_id LIMIT $3`
	// Every tenant's budgets: the consumer matches events of all tenants.
	allSQL    = `SELECT ` + columns + ` FROM budget.budgets`
	deleteSQL = `DELETE FROM budget.budgets WHERE tenant_id = $1 AND budget_id = $2`
)

// BumpVersion marks the budget set changed, inside the write's tx.
func BumpVersion(ctx context.Context, tx pgx.Tx) (int64, error) {
	var v int64
	if err := tx.QueryRow(ctx, bumpSQL).Scan(&v); err != nil {
		return 0, fmt.Errorf("bumping budget set version: %w", err)
	}
	return v, nil
}

// Insert stores a new budget; ErrExists when its id is taken.
func Insert(ctx context.Context, tx pgx.Tx, b *Budget) error {
	filters, pfilters, thresholds, err := encode(b)
	if err != nil {
		return err
	}
	cats, err := encodeCategories(b.Categories)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, insertSQL, b.TenantID, b.ID, b.UID, b.Name, filters,
		b.PerspectiveID, pfilters, b.Currency, b.Amount, int16(b.Period.Kind), b.Period.Start,
		thresholds, int16(b.Enforcement), b.WebhookURL, b.TrackedFrom, b.Revision, b.Created,
		b.Updated, cats)
	if err != nil {
		return fmt.Errorf("inserting budget %s: %w", b.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrExists
	}
	return nil
}

// Update replaces the definition of b, which must carry its UID, and sets
// b.Revision to the new revision.
func Update(ctx context.Context, tx pgx.Tx, b *Budget) error {
	filters, pfilters, thresholds, err := encode(b)
	if err != nil {
		return err
	}
	cats, err := encodeCategories(b.Categories)
	if err != nil {
		return err
	}
	err = tx.QueryRow(ctx, updateSQL, b.TenantID, b.ID, b.Name, filters, b.PerspectiveID,
		pfilters, b.Currency, b.Amount, int16(b.Period.Kind), b.Period.Start, thresholds,
		int16(b.Enforcement), b.WebhookURL, b.TrackedFrom, b.Updated, cats).Scan(&b.Revision)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("updating budget %s: %w", b.ID, err)
	}
	return nil
}

func encode(b *Budget) (filters, pfilters, thresholds []byte, err error) {
	if filters, err = encodeFilters(b.Filters); err != nil {
		return nil, nil, nil, err
	}
	if pfilters, err = encodeFilters(b.PerspectiveFilters); err != nil {
		return nil, nil, nil, err
	}
	if thresholds, err = json.Marshal(b.Thresholds); err != nil {
		return nil, nil, nil, fmt.Errorf("encoding thresholds: %w", err)
	}
	return filters, pfilters, thresholds, nil
}

func encodeCategories(cs []scope.Category) ([]byte, error) {
	if cs == nil {
		cs = []scope.Category{}
	}
	b, err := json.Marshal(cs)
	if err != nil {
		return nil, fmt.Errorf("encoding categories: %w", err)
	}
	return b, nil
}

func encodeFilters(fs []scope.Filter) ([]byte, error) {
	if fs == nil {
		fs = []scope.Filter{}
	}
	b, err := json.Marshal(fs)
	if err != nil {
		return nil, fmt.Errorf("encoding filters: %w", err)
	}
	return b, nil
}

// Get returns one budget.
func Get(ctx context.Context, q Querier, tenant, id string) (*Budget, error) {
	return getOne(ctx, q, getSQL, tenant, id)
}

// GetForUpdate returns one budget and locks its row until tx ends.
func GetForUpdate(ctx context.Context, tx pgx.Tx, tenant, id string) (*Budget, error) {
	return getOne(ctx, tx, getLockedSQL, tenant, id)
}

func getOne(ctx context.Context, q Querier, sql, tenant, id string) (*Budget, error) {
	rows, err := q.Query(ctx, sql, tenant, id)
	if err != nil {
		return nil, fmt.Errorf("reading budget %s: %w", id, err)
	}
	bs, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("reading budget %s: %w", id, err)
	}
	if len(bs) == 0 {
		return nil, ErrNotFound
	}
	return bs[0], nil
}

// List returns up to limit budgets of tenant with ids after after, in id
// order.
func List(ctx context.Context, q Querier, tenant, after string, limit int) ([]*Budget, error) {
	rows, err := q.Query(ctx, listSQL, tenant, after, limit)
	if err != nil {
		return nil, fmt.Errorf("listing budgets: %w", err)
	}
	bs, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("listing budgets: %w", err)
	}
	return bs, nil
}

// All returns every tenant's budgets.
func All(ctx context.Context, q Querier) ([]*Budget, error) {
	rows, err := q.Query(ctx, allSQL)
	if err != nil {
		return nil, fmt.Errorf("loading budgets: %w", err)
	}
	bs, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("loading budgets: %w", err)
	}
	return bs, nil
}

// Snapshot returns every budget and the budget-set version they are at,
// read in one repeatable-read transaction so the two agree.
func Snapshot(ctx context.Context, db pg.Beginner) ([]*Budget, int64, error) {
	var (
		bs []*Budget
		v  int64
	)
	err := pg.InTx(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`); err != nil {
			return fmt.Errorf("setting isolation: %w", err)
		}
		if err := tx.QueryRow(ctx, versionSQL).Scan(&v); err != nil {
			return fmt.Errorf("reading budget set version: %w", err)
		}
		var err error
		bs, err = All(ctx, tx)
		return err
	})
	return bs, v, err
}

// Delete removes a budget and returns what it was.
func Delete(ctx context.Context, tx pgx.Tx, tenant, id string) (*Budget, error) {
	b, err := GetForUpdate(ctx, tx, tenant, id)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, deleteSQL, tenant, id); err != nil {
		return nil, fmt.Errorf("deleting budget %s: %w", id, err)
	}
	return b, nil
}

func collect(rows pgx.Rows) ([]*Budget, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Budget, error) {
		var (
			b                                   Budget
			filters, pfilters, thresholds, cats []byte
			kind, enforcement                   int16
			start, from                         time.Time
		)
		err := row.Scan(&b.TenantID, &b.ID, &b.UID, &b.Name, &filters, &b.PerspectiveID,
			&pfilters, &b.Currency, &b.Amount, &kind, &start, &thresholds, &enforcement, &b.WebhookURL,
			&from, &b.Revision, &b.Created, &b.Updated, &cats)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(filters, &b.Filters); err != nil {
			return nil, fmt.Errorf("decoding filters of %s: %w", b.ID, err)
		}
		if err := json.Unmarshal(pfilters, &b.PerspectiveFilters); err != nil {
			return nil, fmt.Errorf("decoding perspective filters of %s: %w", b.ID, err)
		}
		if err := json.Unmarshal(cats, &b.Categories); err != nil {
			return nil, fmt.Errorf("decoding categories of %s: %w", b.ID, err)
		}
		if err := json.Unmarshal(thresholds, &b.Thresholds); err != nil {
			return nil, fmt.Errorf("decoding thresholds of %s: %w", b.ID, err)
		}
		b.Period = period.Spec{Kind: period.Kind(kind), Start: period.Day(start)}
		b.Enforcement = Enforcement(enforcement)
		b.TrackedFrom = period.Day(from)
		return &b, nil
	})
}

// Scope returns every filter of b's scope.
func (b *Budget) Scope() []scope.Filter {
	if len(b.PerspectiveFilters) == 0 {
		return b.Filters
	}
	return append(slices.Clone(b.Filters), b.PerspectiveFilters...)
}

// Compiled is a budget with its scope compiled for matching.
type Compiled struct {
	*Budget
	Matcher scope.Matcher
}

// Compile compiles b's scope.
func Compile(b *Budget) (*Compiled, error) {
	m, err := scope.Compile(b.Scope(), scope.Env{Categories: b.Categories, Currency: b.Currency})
	if err != nil {
		return nil, fmt.Errorf("budget %s: %w", b.ID, err)
	}
	return &Compiled{Budget: b, Matcher: m}, nil
}

// Set is the budget set the consumer matches events against, by tenant.
type Set struct {
	Version  int64
	ByTenant map[string][]*Compiled
}

// NewSet compiles bs into a set at version v.
func NewSet(bs []*Budget, v int64) (*Set, error) {
	s := &Set{Version: v, ByTenant: make(map[string][]*Compiled)}
	for _, b := range bs {
		c, err := Compile(b)
		if err != nil {
			return nil, err
		}
		s.ByTenant[b.TenantID] = append(s.ByTenant[b.TenantID], c)
	}
	return s, nil
}

// PeriodTotal is a budget's spend in one period, as a committed write
// left it. Version increases with every write of the period's row, so
// that readers can tell a newer total from an older one.
type PeriodTotal struct {
	TenantID string
	UID      string
	Span     period.Span
	Spent    int64
	Version  int64
}

// Reached reports whether spent is at least bp basis points of amount,
// exactly: spent * 10000 >= amount * bp in 128-bit integers. It does not
// allocate, since budget checks call it on the hot path.
func Reached(spent, amount int64, bp int32) bool {
	if spent <= 0 {
		return amount <= 0 || bp <= 0
	}
	if amount <= 0 || bp <= 0 {
		return true
	}
	lh, ll := bits.Mul64(uint64(spent), 10_000)
	rh, rl := bits.Mul64(uint64(amount), uint64(bp))
	return lh > rh || (lh == rh && ll >= rl)
}
