// Package publish moves anomaly records from the outbox to Kafka.
//
// One publisher leads at a time, elected with a PostgreSQL advisory lock
// held on a dedicated connection. It drains the outbox in order, each
// pass in one Kafka transaction: produce the pass's records, commit the
// transaction, then delete the rows. A pass that fails aborts its
// transaction, so read_committed subscribers see it never happened, and
// is retried.
//
// The one gap is a crash between the Kafka commit and the delete. A new
// leader therefore first fences its predecessor (same transactional id),
// then reads back the tail of every partition of the topic, and deletes
// outbox rows whose anomaly id and revision are already there. A pass
// holds at most Batch records, so the last Batch records of each
// partition cover it.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/services/anomaly/internal/alert"
	"github.com/costplane/costplane/services/anomaly/internal/lead"
)

// Config tunes the publisher.
type Config struct {
	// Topic receives the anomaly records.
	Topic string
	// TransactionalID is shared by every instance of the service: a new
	// leader fences the previous one with it.
	TransactionalID string
	// Batch bounds the records of one pass (one Kafka transaction).
	Batch int
	// Poll is how often the outbox is checked without a notification,
	// for rows written by other processes.
	Poll time.Duration
	// RecoverTimeout bounds reading back the topic's tail.
	RecoverTimeout time.Duration
}

// Publisher drains the outbox to Kafka.
type Publisher struct {
	cfg     Config
	kcfg    kafka.Config
	pool    *pgxpool.Pool
	log     *slog.Logger
	wake    chan struct{}
	records prometheus.Counter
	passes  *prometheus.CounterVec
}

// New returns a publisher; reg may be nil.
func New(
	cfg Config, kcfg kafka.Config, pool *pgxpool.Pool, log *slog.Logger,
	reg prometheus.Registerer,
) (*Publisher, error) {
	p := &Publisher{
		cfg: cfg, kcfg: kcfg, pool: pool, log: log,
		wake: make(chan struct{}, 1),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "costplane_anomaly_records_published_total",
			Help: "Anomaly records committed to Kafka.",
		}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_anomaly_publish_passes_total",
			Help: "Outbox passes, by result (committed, failed).",
		}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{p.records, p.passes} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering publisher metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Notify asks the publisher to look at the outbox now.
func (p *Publisher) Notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run publishes while this process leads, and waits for the lead
// otherwise, until ctx ends. Failures are logged and retried.
func (p *Publisher) Run(ctx context.Context) error {
	delay := 500 * time.Millisecond
	for ctx.Err() == nil {
		err := p.lead(ctx)
		if ctx.Err() != nil {
			break
		}
		p.log.Warn("anomaly publisher failed, will retry", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
	return nil
}

func (p *Publisher) lead(ctx context.Context) error {
	l, err := lead.Await(ctx, p.pool, "publisher/"+p.cfg.TransactionalID, p.cfg.Poll)
	if err != nil {
		return err
	}
	defer l.Release(ctx)
	p.log.Info("anomaly publisher leading", "transactional_id", p.cfg.TransactionalID)

	cl, err := kafka.NewClient(p.kcfg,
		kgo.TransactionalID(p.cfg.TransactionalID),
		kgo.TransactionTimeout(p.kcfg.TransactionTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		return err
	}
	defer cl.Close()

	if err := p.recover(ctx, cl); err != nil {
		return err
	}
	for {
		if err := p.drain(ctx, cl); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-time.After(p.cfg.Poll):
		}
		if err := l.Check(ctx); err != nil {
			return err
		}
	}
}

type row struct {
	seq      int64
	id       string
	revision int64
	key      []byte
	payload  []byte
}

const nextSQL = `SELECT seq, anomaly_id, revision, record_key, payload FROM anomaly.outbox
ORDER BY seq LIMIT $1`

func (p *Publisher) next(ctx context.Context) ([]row, error) {
	rows, err := p.pool.Query(ctx, nextSQL, p.cfg.Batch)
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var v row
		err := r.Scan(&v.seq, &v.id, &v.revision, &v.key, &v.payload)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	return out, nil
}

// drain publishes passes until the outbox is empty.
func (p *Publisher) drain(ctx context.Context, cl *kgo.Client) error {
	for {
		rows, err := p.next(ctx)
		if err != nil || len(rows) == 0 {
			return err
		}
		if err := p.pass(ctx, cl, rows); err != nil {
			p.passes.WithLabelValues("failed").Inc()
			return err
		}
		p.passes.WithLabelValues("committed").Inc()
		p.records.Add(float64(len(rows)))
	}
}

// pass publishes rows in one Kafka transaction, then deletes them.
func (p *Publisher) pass(ctx context.Context, cl *kgo.Client, rows []row) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning a kafka transaction: %w", err)
	}
	recs := make([]*kgo.Record, len(rows))
	for i, r := range rows {
		recs[i] = p.record(r)
	}
	pctx, cancel := context.WithTimeout(ctx, p.kcfg.ProduceTimeout)
	err := cl.ProduceSync(pctx, recs...).FirstErr()
	cancel()
	if err != nil {
		abortErr := cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort)
		return errors.Join(fmt.Errorf("producing %d anomaly records: %w", len(recs), err), abortErr)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("committing %d anomaly records: %w", len(recs), err)
	}

	seqs := make([]int64, len(rows))
	for i, r := range rows {
		seqs[i] = r.seq
	}
	if _, err := p.pool.Exec(ctx, `DELETE FROM anomaly.outbox WHERE seq = ANY($1)`, seqs); err != nil {
		return fmt.Errorf("clearing %d published outbox rows: %w", len(seqs), err)
	}
	return nil
}

func (p *Publisher) record(r row) *kgo.Record {
	return &kgo.Record{
		Topic: p.cfg.Topic,
		Key:   r.key,
		Value: r.payload,
		Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderContentType, Value: []byte(kafka.ContentTypeJSON)},
			{Key: alert.HeaderAnomalyID, Value: []byte(r.id)},
			{Key: alert.HeaderRevision, Value: strconv.AppendInt(nil, r.revision, 10)},
		},
	}
}

// recover deletes outbox rows that a previous leader published but could
// not delete. See the package documentation.
func (p *Publisher) recover(ctx context.Context, cl *kgo.Client) error {
	pending, err := p.next(ctx)
	if err != nil || len(pending) == 0 {
		return err
	}
	// Loading the producer id fences the previous leader: its open
	// transaction is aborted, and it can commit nothing more.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return fmt.Errorf("fencing the previous publisher: %w", err)
	}

	rctx, cancel := context.WithTimeout(ctx, p.cfg.RecoverTimeout)
	defer cancel()
	published, err := p.tail(rctx)
	if err != nil {
		return err
	}
	// Revisions of one anomaly are published in order, so a later one on
	// the topic means this one went out too.
	var done []int64
	for _, r := range pending {
		if published[r.id] >= r.revision {
			done = append(done, r.seq)
		}
	}
	if len(done) == 0 {
		return nil
	}
	if _, err := p.pool.Exec(ctx, `DELETE FROM anomaly.outbox WHERE seq = ANY($1)`, done); err != nil {
		return fmt.Errorf("clearing outbox rows already published: %w", err)
	}
	p.log.Info("outbox rows found already published after a restart", "rows", len(done))
	return nil
}

// tail reads the last Batch committed records of every partition of the
// topic and returns the highest revision seen per anomaly id.
func (p *Publisher) tail(ctx context.Context) (map[string]int64, error) {
	probe, err := kafka.NewClient(p.kcfg)
	if err != nil {
		return nil, err
	}
	defer probe.Close()
	adm := kadm.NewClient(probe)
	ends, err := adm.ListCommittedOffsets(ctx, p.cfg.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end of %s: %w", p.cfg.Topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, p.cfg.Topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the start of %s: %w", p.cfg.Topic, err)
	}

	from := map[int32]kgo.Offset{}
	until := map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		s, _ := starts.Lookup(e.Topic, e.Partition)
		if e.Offset > s.Offset {
			from[e.Partition] = kgo.NewOffset().At(max(s.Offset, e.Offset-int64(p.cfg.Batch)))
			until[e.Partition] = e.Offset
		}
	})
	if len(from) == 0 {
		return map[string]int64{}, nil
	}
	return p.readTail(ctx, from, until)
}

func (p *Publisher) readTail(
	ctx context.Context, from map[int32]kgo.Offset, until map[int32]int64,
) (map[string]int64, error) {
	cl, err := kafka.NewClient(p.kcfg,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.cfg.Topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	seen := map[string]int64{}
	for len(until) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading back %s: %w", p.cfg.Topic, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if end, ok := until[r.Partition]; ok && r.Offset+1 >= end {
				delete(until, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			id, _ := kafka.Header(r, alert.HeaderAnomalyID)
			rev, _ := strconv.ParseInt(headerOr(r, alert.HeaderRevision), 10, 64)
			seen[id] = max(seen[id], rev)
		})
	}
	return seen, nil
}

func headerOr(r *kgo.Record, key string) string {
	v, _ := kafka.Header(r, key)
	return v
}
