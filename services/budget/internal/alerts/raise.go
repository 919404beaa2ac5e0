// Package alerts raises budget alerts and delivers them.
//
// An alert is a row of budget.alerts, inserted in the transaction whose
// spend (or forecast) crossed the threshold. Its unique key (tenant,
// budget uid, period start, threshold kind, basis points) makes it one per
// threshold and period whatever the number of members, restarts and
// replays; its id is derived from that key, so it is the same everywhere.
// The table is also the outbox of the alert topic: Publisher sends rows
// not yet published, and Deliverer posts them to the budget's webhook.
package alerts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/money"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/scope"
	"github.com/costplane/costplane/services/budget/internal/spend"
)

// Projections tells how much more a budget is forecast to spend.
type Projections interface {
	// Remaining returns the forecast spend of budget uid from now to the
	// end of span, or false when there is no forecast for that period.
	Remaining(uid string, span period.Span, now time.Time) (int64, bool)
}

// Raiser decides which thresholds period totals crossed and inserts their
// alerts. It is safe for concurrent use.
type Raiser struct {
	proj Projections

	mu sync.Mutex
	// known holds ids of alerts committed by some transaction, so that
	// later batches skip them without a statement.
	known map[string]struct{}
}

// NewRaiser returns a raiser using proj for forecast thresholds; nil
// raises actual thresholds only.
func NewRaiser(proj Projections) *Raiser {
	return &Raiser{proj: proj, known: make(map[string]struct{})}
}

// Raise implements spend.Raiser.
func (r *Raiser) Raise(ctx context.Context, tx pgx.Tx, changes []spend.Change, now time.Time) (
	int, error,
) {
	var cands []*candidate
	for i := range changes {
		cands = append(cands, r.crossed(&changes[i], now)...)
	}
	if len(cands) == 0 {
		return 0, nil
	}
	return r.insert(ctx, tx, cands)
}

// candidate is an alert a total calls for.
type candidate struct {
	budget *budgets.Compiled
	alert  *eventv1.BudgetAlert
	start  time.Time
	kind   budgets.ThresholdKind
	bp     int32
}

// crossed returns the alerts c calls for that are not known raised.
func (r *Raiser) crossed(c *spend.Change, now time.Time) []*candidate {
	b := c.Budget
	projected, hasProjection := int64(0), false
	if r.proj != nil && c.Span.Contains(now) {
		if rem, ok := r.proj.Remaining(b.UID, c.Span, now); ok {
			projected, hasProjection = c.Spent+rem, true
		}
	}

	var out []*candidate
	for _, th := range b.Thresholds {
		var hit bool
		switch th.Kind {
		case budgets.Actual:
			hit = budgets.Reached(c.Spent, b.Amount, th.BasisPoints)
		case budgets.Forecast:
			hit = hasProjection && budgets.Reached(projected, b.Amount, th.BasisPoints)
		}
		if !hit {
			continue
		}
		id := AlertID(b.TenantID, b.UID, c.Span.Start, th.Kind, th.BasisPoints)
		if r.isKnown(id) {
			continue
		}
		a := build(b, c.Span, th, c.Spent, projected, hasProjection, now)
		a.AlertId = id
		out = append(out, &candidate{budget: b, alert: a, start: c.Span.Start,
			kind: th.Kind, bp: th.BasisPoints})
	}
	return out
}

// AlertID is the deterministic id of the alert of one threshold in one
// period of one budget incarnation.
func AlertID(tenant, uid string, periodStart time.Time, kind budgets.ThresholdKind,
	bp int32) string {
	h := sha256.New()
	for _, part := range []string{tenant, uid, periodStart.Format(time.DateOnly),
		strconv.Itoa(int(kind)), strconv.Itoa(int(bp))} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "ba-" + hex.EncodeToString(h.Sum(nil)[:16])
}

func build(b *budgets.Compiled, span period.Span, th budgets.Threshold, spent, projected int64,
	hasProjection bool, now time.Time) *eventv1.BudgetAlert {

	dims := scope.Dimensions(b.Scope())
	if b.PerspectiveID != "" {
		dims["perspective"] = b.PerspectiveID
	}
	a := &eventv1.BudgetAlert{
		TenantId:             b.TenantID,
		BudgetId:             b.ID,
		BudgetName:           b.Name,
		Scope:                &eventv1.Scope{Dimensions: dims},
		PeriodStart:          timestamppb.New(span.Start),
		PeriodEnd:            timestamppb.New(span.End),
		ThresholdKind:        eventv1.BudgetThresholdKind(th.Kind),
		ThresholdBasisPoints: th.BasisPoints,
		BudgetAmount:         money.New(b.Currency, b.Amount),
		Actual:               money.New(b.Currency, spent),
		Severity:             severity(th),
		TriggerTime:          timestamppb.New(now),
	}
	if hasProjection {
		a.Forecast = money.New(b.Currency, projected)
	}
	a.Summary = summary(b, span, th, spent, projected)
	return a
}

func severity(th budgets.Threshold) eventv1.Severity {
	switch {
	case th.Kind == budgets.Actual && th.BasisPoints >= 10_000:
		return eventv1.Severity_SEVERITY_CRITICAL
	case th.Kind == budgets.Actual && th.BasisPoints >= 8_000,
		th.Kind == budgets.Forecast && th.BasisPoints >= 10_000:
		return eventv1.Severity_SEVERITY_WARNING
	}
	return eventv1.Severity_SEVERITY_INFO
}

func summary(b *budgets.Compiled, span period.Span, th budgets.Threshold, spent,
	projected int64) string {
	pct := strconv.FormatFloat(float64(th.BasisPoints)/100, 'f', -1, 64) + "%"
	amount := money.FormatCurrency(b.Currency, b.Amount)
	when := fmt.Sprintf("the %s period from %s", b.Period.Kind, span.Start.Format(time.DateOnly))
	if th.Kind == budgets.Forecast {
		return fmt.Sprintf("budget %q is forecast to spend %s by the end of %s, %s of %s",
			b.Name, money.FormatCurrency(b.Currency, projected), when, pct, amount)
	}
	return fmt.Sprintf("budget %q has spent %s in %s, reaching %s of %s",
		b.Name, money.FormatCurrency(b.Currency, spent), when, pct, amount)
}

func (r *Raiser) isKnown(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.known[id]
	return ok
}

func (r *Raiser) remember(ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.known)+len(ids) > 100_000 {
		clear(r.known)
	}
	for _, id := range ids {
		r.known[id] = struct{}{}
	}
}

const (
	insertAlertsSQL = `INSERT INTO budget.alerts (alert_id, tenant_id, budget_id, budget_uid,
	period_start, threshold_kind, basis_points, payload)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::date[],
	$6::int2[], $7::int4[], $8::text[])
ON CONFLICT DO NOTHING
RETURNING alert_id`

	insertDeliveriesSQL = `INSERT INTO budget.webhook_deliveries
	(alert_id, tenant_id, url, next_attempt_time)
SELECT a, t, u, clock_timestamp() FROM unnest($1::text[], $2::text[], $3::text[]) AS x(a, t, u)`
)

// insert stores the candidates that no committed transaction has stored,
// and a webhook delivery for each that has a webhook. Candidates that
// conflict were committed elsewhere and are remembered as known.
func (r *Raiser) insert(ctx context.Context, tx pgx.Tx, cands []*candidate) (int, error) {
	var (
		ids, tenants, budgetIDs, uids, payloads []string
		starts                                  []time.Time
		kinds                                   []int16
		bps                                     []int32
	)
	byID := make(map[string]*candidate, len(cands))
	for _, c := range cands {
		if _, dup := byID[c.alert.AlertId]; dup {
			continue
		}
		payload, err := protojson.Marshal(c.alert)
		if err != nil {
			return 0, fmt.Errorf("encoding alert %s: %w", c.alert.AlertId, err)
		}
		byID[c.alert.AlertId] = c
		ids = append(ids, c.alert.AlertId)
		tenants = append(tenants, c.budget.TenantID)
		budgetIDs = append(budgetIDs, c.budget.ID)
		uids = append(uids, c.budget.UID)
		starts = append(starts, c.start)
		kinds = append(kinds, int16(c.kind))
		bps = append(bps, c.bp)
		payloads = append(payloads, string(payload))
	}

	rows, err := tx.Query(ctx, insertAlertsSQL, ids, tenants, budgetIDs, uids, starts, kinds, bps,
		payloads)
	if err != nil {
		return 0, fmt.Errorf("inserting alerts: %w", err)
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("inserting alerts: %w", err)
	}

	r.remember(conflicted(ids, inserted))
	return len(inserted), r.queueWebhooks(ctx, tx, inserted, byID)
}

func conflicted(all, inserted []string) []string {
	in := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		in[id] = true
	}
	var out []string
	for _, id := range all {
		if !in[id] {
			out = append(out, id)
		}
	}
	return out
}

func (r *Raiser) queueWebhooks(ctx context.Context, tx pgx.Tx, inserted []string,
	byID map[string]*candidate) error {
	var ids, tenants, urls []string
	for _, id := range inserted {
		c := byID[id]
		if c.budget.WebhookURL == "" {
			continue
		}
		ids = append(ids, id)
		tenants = append(tenants, c.budget.TenantID)
		urls = append(urls, c.budget.WebhookURL)
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, insertDeliveriesSQL, ids, tenants, urls); err != nil {
		return fmt.Errorf("queueing webhook deliveries: %w", err)
	}
	return nil
}
