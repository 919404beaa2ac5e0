package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
)

// HeaderAlertID carries the alert id on alert records, so that a reader
// can deduplicate without parsing the value.
const HeaderAlertID = "costplane-alert-id"

// Producer is what Publisher sends with: kafka.Producer.
type Producer interface {
	Produce(ctx context.Context, recs ...*kgo.Record) error
}

// Publisher drains the alert outbox to the alert topic. Several members
// may run one: each claims rows with FOR UPDATE SKIP LOCKED.
//
// A row is marked published in the transaction that claimed it, after
// Kafka acknowledged the record. A crash between the two sends the record
// again on the next drain, with the same alert id and key: readers that
// keep the last record per alert id see exactly one alert.
//
// A stop never interrupts a drain (see Drain), so only a crash in that
// window sends an alert twice.
//
// TODO: close the crash window by producing in a Kafka transaction and
// storing the produced offset with the mark, so that a restarted
// publisher can tell from the topic whether its record landed. Safe for
// now: the window is one round trip wide and the duplicate carries the
// same id.
type Publisher struct {
	db       *pgxpool.Pool
	topic    string
	interval time.Duration
	log      *slog.Logger
	wake     chan struct{}
}

// NewPublisher returns a publisher that drains every interval and on
// Notify.
func NewPublisher(db *pgxpool.Pool, topic string, interval time.Duration,
	log *slog.Logger) *Publisher {
	return &Publisher{db: db, topic: topic, interval: interval, log: log,
		wake: make(chan struct{}, 1)}
}

// Notify asks for a drain now; it never blocks.
func (p *Publisher) Notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run drains the outbox to prod until ctx ends. Failures are logged and
// retried at the next interval.
func (p *Publisher) Run(ctx context.Context, prod Producer) error {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		for {
			n, err := p.Drain(ctx, prod)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				p.log.Warn("publishing alerts failed", "error", err)
				break
			}
			if n < drainBatch {
				break
			}
		}

		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-t.C:
		}
	}
}

const (
	drainBatch = 200

	claimSQL = `SELECT alert_id, tenant_id, budget_id, payload FROM budget.alerts
WHERE publish_time IS NULL ORDER BY create_time LIMIT $1 FOR UPDATE SKIP LOCKED`
	markSQL = `UPDATE budget.alerts SET publish_time = clock_timestamp() WHERE alert_id = ANY($1)`
)

// drainTimeout bounds a drain that goes on after its context ended.
const drainTimeout = 10 * time.Second

// Drain publishes up to one batch of unpublished alerts and returns how
// many it published. A drain runs to its end even when ctx ends midway
// (within drainTimeout): cancelled between Kafka's acknowledgement and
// the commit of the mark, it would leave a record on the topic that its
// row does not show as published, and the next owner would send it
// again. So a graceful stop, a restart or a rebalance never duplicates an
// alert; only a crash in that window can.
func (p *Publisher) Drain(ctx context.Context, prod Producer) (int, error) {
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()

	var n int
	err := pg.InTx(ctx, p.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, claimSQL, drainBatch)
		if err != nil {
			return fmt.Errorf("claiming alerts: %w", err)
		}
		var (
			ids  []string
			recs []*kgo.Record
		)
		var id, tenant, budget, payload string
		_, err = pgx.ForEachRow(rows, []any{&id, &tenant, &budget, &payload}, func() error {
			ids = append(ids, id)
			recs = append(recs, Record(p.topic, id, tenant, budget, []byte(payload)))
			return nil
		})
		if err != nil {
			return fmt.Errorf("claiming alerts: %w", err)
		}
		if len(recs) == 0 {
			return nil
		}

		if err := prod.Produce(ctx, recs...); err != nil {
			return fmt.Errorf("publishing %d alerts: %w", len(recs), err)
		}
		if _, err := tx.Exec(ctx, markSQL, ids); err != nil {
			return fmt.Errorf("marking alerts published: %w", err)
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// Record is the alert topic record of one alert: keyed by tenant and
// budget (DESIGN §4), carrying the canonical JSON as is.
func Record(topic, alertID, tenant, budgetID string, payload []byte) *kgo.Record {
	return &kgo.Record{
		Topic: topic,
		Key:   []byte(tenant + "/" + budgetID),
		Value: payload,
		Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderContentType, Value: []byte(kafka.ContentTypeJSON)},
			{Key: HeaderAlertID, Value: []byte(alertID)},
		},
	}
}
