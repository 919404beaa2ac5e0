// Package ledger keeps pricing.ledger: every event of the priced topic as
// it was last priced, which repricing and what-if pricing work from.
//
// A kafka.Runner feeds it (Handle), so the ledger holds each priced
// record exactly once in effect. First pricings insert a row; a replay of
// one changes nothing. Corrections move a row to their version when it is
// newer than the row's, so a correction the reprice worker has already
// applied, or one read twice, is a no-op.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/costplane/costplane/libs/kafka"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/internal/correction"
)

// ErrCorrupt means a ledger row does not decode.
var ErrCorrupt = errors.New("corrupt ledger row")

// Row is one event of the ledger.
type Row struct {
	TenantID  string
	EventID   string
	StartTime time.Time
	RecordKey []byte
	Usage     *eventv1.UsageEvent
	// Priced is the event's current price without its usage.
	Priced *eventv1.PricedUsage
}

// Ledger is the Runner handler.
type Ledger struct {
	log *slog.Logger
}

// New returns the handler.
func New(log *slog.Logger) *Ledger {
	return &Ledger{log: log}
}

// Handle is a kafka.Handler for the priced topic.
func (l *Ledger) Handle(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) (
	[]kafka.Reject, error) {
	var (
		rejects []kafka.Reject
		firsts  []Row
		corrs   []*eventv1.PricedUsage
		corrRec []*kgo.Record
	)
	for _, rec := range recs {
		pu := &eventv1.PricedUsage{}
		if err := kafka.UnmarshalProto(rec, pu); err != nil {
			rejects = append(rejects, kafka.Reject{Record: rec, Reason: "value: " + err.Error()})
			continue
		}
		if reason := check(pu); reason != "" {
			rejects = append(rejects, kafka.Reject{Record: rec, Reason: reason})
			continue
		}
		if pu.GetCorrectsEventId() != "" {
			corrs, corrRec = append(corrs, pu), append(corrRec, rec)
			continue
		}
		firsts = append(firsts, rowOf(rec, pu))
	}

	if err := insert(ctx, tx, firsts); err != nil {
		return nil, err
	}
	for i, c := range corrs {
		reason, err := l.applyCorrection(ctx, tx, c)
		if err != nil {
			return nil, err
		}
		if reason != "" {
			rejects = append(rejects, kafka.Reject{Record: corrRec[i], Reason: reason})
		}
	}
	return rejects, nil
}

// check returns why a record cannot enter the ledger, or "".
func check(pu *eventv1.PricedUsage) string {
	switch {
	case pu.GetUsage().GetTenantId() == "":
		return "usage.tenant_id: is required"
	case pu.GetUsage().GetEventId() == "":
		return "usage.event_id: is required"
	case pu.GetCorrectsEventId() != "" && pu.GetCorrectsEventId() != pu.GetUsage().GetEventId():
		return "corrects_event_id: differs from usage.event_id"
	case pu.GetPriceVersion() < 1:
		return "price_version: must be at least 1"
	}
	return ""
}

func rowOf(rec *kgo.Record, pu *eventv1.PricedUsage) Row {
	ev := pu.GetUsage()
	cost := proto.Clone(pu).(*eventv1.PricedUsage)
	cost.Usage = nil
	return Row{
		TenantID:  ev.GetTenantId(),
		EventID:   ev.GetEventId(),
		StartTime: StartOf(pu),
		RecordKey: rec.Key,
		Usage:     ev,
		Priced:    cost,
	}
}

// StartOf is the time the ledger files an event under: its start, else
// its end, else when it was priced.
func StartOf(pu *eventv1.PricedUsage) time.Time {
	ev := pu.GetUsage()
	switch {
	case ev.GetStartTime() != nil:
		return ev.GetStartTime().AsTime()
	case ev.GetEndTime() != nil:
		return ev.GetEndTime().AsTime()
	}
	return pu.GetPricedTime().AsTime()
}

const insertRows = `INSERT INTO pricing.ledger (tenant_id, event_id, start_time, record_key,
	provider, model, status, currency, list_nanos, effective_nanos, price_version,
	priced_time, usage, cost)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bytea[], $5::text[],
	$6::text[], $7::smallint[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[],
	$12::timestamptz[], $13::bytea[], $14::bytea[])
ON CONFLICT (tenant_id, event_id) DO NOTHING`

// insert writes first pricings in one statement; events already in the
// ledger keep their row.
func insert(ctx context.Context, tx pgx.Tx, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	var c columns
	for _, r := range rows {
		if err := c.add(r); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, insertRows, c.tenants, c.events, c.starts, c.keys, c.providers,
		c.models, c.statuses, c.currencies, c.lists, c.effs, c.versions, c.pricedTimes,
		c.usages, c.costs)
	if err != nil {
		return fmt.Errorf("inserting %d ledger rows: %w", len(rows), err)
	}
	return nil
}

// columns holds rows as one array per column, for unnest.
type columns struct {
	tenants, events, providers, models, currencies []string
	starts, pricedTimes                            []time.Time
	keys, usages, costs                            [][]byte
	statuses                                       []int16
	lists, effs                                    []*int64
	versions                                       []int64
}

func (c *columns) add(r Row) error {
	usage, err := proto.Marshal(r.Usage)
	if err != nil {
		return fmt.Errorf("encoding usage of %s: %w", r.EventID, err)
	}
	c.tenants = append(c.tenants, r.TenantID)
	c.events = append(c.events, r.EventID)
	c.starts = append(c.starts, r.StartTime)
	c.keys = append(c.keys, r.RecordKey)
	c.providers = append(c.providers, r.Usage.GetProvider())
	c.models = append(c.models, r.Usage.GetModel())
	c.usages = append(c.usages, usage)
	return c.addState(r.Priced)
}

// addState appends the columns that describe a price.
func (c *columns) addState(p *eventv1.PricedUsage) error {
	cost, err := proto.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding cost of %s: %w", p.GetPricedId(), err)
	}
	c.statuses = append(c.statuses, int16(p.GetPricingStatus()))
	c.currencies = append(c.currencies, currency(p))
	c.lists = append(c.lists, nanos(p.GetListCost()))
	c.effs = append(c.effs, nanos(p.GetEffectiveCost()))
	c.versions = append(c.versions, p.GetPriceVersion())
	c.pricedTimes = append(c.pricedTimes, p.GetPricedTime().AsTime())
	c.costs = append(c.costs, cost)
	return nil
}

func currency(p *eventv1.PricedUsage) string {
	if c := p.GetEffectiveCost().GetCurrencyCode(); c != "" {
		return c
	}
	return p.GetListCost().GetCurrencyCode()
}

func nanos(m *eventv1.Money) *int64 {
	if m == nil {
		return nil
	}
	n := m.GetNanos()
	return &n
}

const lockRow = `SELECT price_version, cost FROM pricing.ledger
WHERE tenant_id = $1 AND event_id = $2
FOR UPDATE`

// applyCorrection moves a row to a correction's version when the row is
// older. It returns a reject reason for a correction of an event the
// ledger does not hold.
func (l *Ledger) applyCorrection(ctx context.Context, tx pgx.Tx, c *eventv1.PricedUsage) (
	string, error) {
	tenant, event := c.GetUsage().GetTenantId(), c.GetCorrectsEventId()
	var (
		version int64
		raw     []byte
	)
	err := tx.QueryRow(ctx, lockRow, tenant, event).Scan(&version, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return "corrects_event_id: event is not in the pricing ledger", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading ledger row %s/%s: %w", tenant, event, err)
	}
	if version >= c.GetPriceVersion() {
		return "", nil // applied already, by the reprice worker or before a replay
	}

	old := &eventv1.PricedUsage{}
	if err := proto.Unmarshal(raw, old); err != nil {
		return "", fmt.Errorf("%w %s/%s: %w", ErrCorrupt, tenant, event, err)
	}
	next, err := correction.Apply(old, c)
	if err != nil {
		l.log.Warn("correction does not apply to the ledger row", "tenant_id", tenant,
			"event_id", event, "priced_id", c.GetPricedId(), "error", err)
		return "correction: " + err.Error(), nil
	}
	return "", Update(ctx, tx, tenant, []State{{EventID: event, Priced: next}})
}

// State is an event's new price, for Update.
type State struct {
	EventID string
	// Priced is the price without usage.
	Priced *eventv1.PricedUsage
}

const updateRows = `UPDATE pricing.ledger AS l
SET status = u.status, currency = u.currency, list_nanos = u.list_nanos,
	effective_nanos = u.effective_nanos, price_version = u.price_version,
	priced_time = u.priced_time, cost = u.cost
FROM unnest($2::text[], $3::smallint[], $4::text[], $5::bigint[], $6::bigint[],
	$7::bigint[], $8::timestamptz[], $9::bytea[])
	AS u(event_id, status, currency, list_nanos, effective_nanos, price_version,
	     priced_time, cost)
WHERE l.tenant_id = $1 AND l.event_id = u.event_id`

// Update writes new prices of a tenant's events in one statement.
func Update(ctx context.Context, tx pgx.Tx, tenantID string, states []State) error {
	if len(states) == 0 {
		return nil
	}
	var c columns
	for _, s := range states {
		c.events = append(c.events, s.EventID)
		if err := c.addState(s.Priced); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, updateRows, tenantID, c.events, c.statuses, c.currencies, c.lists,
		c.effs, c.versions, c.pricedTimes, c.costs)
	if err != nil {
		return fmt.Errorf("updating %d ledger rows of tenant %s: %w", len(states), tenantID, err)
	}
	return nil
}
