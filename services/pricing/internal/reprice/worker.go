package reprice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/money"
	"github.com/costplane/costplane/libs/pg"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/internal/correction"
	"github.com/costplane/costplane/services/pricing/internal/ledger"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

// WorkerConfig sets up a Worker.
type WorkerConfig struct {
	Pool *pgxpool.Pool
	Book *pricebook.Book
	// Rates loads a tenant's current rates from the database.
	Rates func(ctx context.Context, tenantID string) (*pricebook.TenantRates, error)
	// Kafka has the brokers; Topic receives the corrections.
	Kafka kafka.Config
	Topic string
	// TransactionalID of the worker's producer: unique per worker and
	// stable across its restarts.
	TransactionalID string
	// Owner names this worker in job leases; unique per worker.
	Owner string
	// Chunk is the number of events per transaction.
	Chunk int
	// Poll is how often the worker looks for work when idle.
	Poll time.Duration
	// Lease is how long a job stays with a worker that stopped renewing
	// it, before another takes it over.
	Lease time.Duration
	// Settle delays a job after its creation, so that prices computed
	// with rates older than the job are in the ledger when it starts.
	Settle time.Duration
	// CaughtUp, when set, waits until the ledger holds every priced
	// record, before a job is worked on.
	CaughtUp func(ctx context.Context) error
	Log      *slog.Logger
	Registry prometheus.Registerer
	// AfterPublish, when set, runs after each Kafka commit of
	// corrections and before their outbox rows are deleted; an error
	// stops the job there. Tests use it to play a crash.
	AfterPublish func(j Job) error
}

// Worker claims jobs and runs them. Several workers, in one process or
// many, share the jobs through leases.
type Worker struct {
	cfg     WorkerConfig
	metrics *metrics
	client  *kgo.Client
	wakeup  chan struct{}
}

// errLeaseLost means another worker has taken the job over.
var errLeaseLost = errors.New("reprice lease lost")

// permanentError fails the job instead of retrying it.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// NewWorker checks cfg and returns a worker; it connects to nothing
// until Run.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	switch {
	case cfg.Pool == nil || cfg.Book == nil || cfg.Rates == nil || cfg.Log == nil:
		return nil, errors.New("creating reprice worker: pool, book, rates and logger are required")
	case cfg.Topic == "" || cfg.TransactionalID == "" || cfg.Owner == "":
		return nil, errors.New(
			"creating reprice worker: topic, transactional id and owner are required")
	case cfg.Chunk < 1 || cfg.Poll <= 0 || cfg.Lease < time.Second || cfg.Settle < 0:
		return nil, errors.New("creating reprice worker: chunk, poll, lease or settle out of range")
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg, metrics: m, wakeup: make(chan struct{}, 1)}, nil
}

// Wake makes an idle worker look for work at once.
func (w *Worker) Wake() {
	select {
	case w.wakeup <- struct{}{}:
	default:
	}
}

// Run works on jobs until ctx ends. Failures are logged and retried; Run
// returns nil when ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	defer w.closeClient()
	for ctx.Err() == nil {
		worked, err := w.runOne(ctx)
		if err != nil && ctx.Err() == nil {
			w.cfg.Log.Error("reprice failed, will retry", "error", err)
		}
		if worked && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-w.wakeup:
		case <-time.After(w.cfg.Poll):
		}
	}
	return nil
}

// runOne claims a job and works on it. It reports whether there was one.
func (w *Worker) runOne(ctx context.Context) (bool, error) {
	j, ok, err := w.claim(ctx)
	if err != nil || !ok {
		return false, err
	}

	log := w.cfg.Log.With("tenant_id", j.TenantID, "reprice_id", j.ID)
	err = w.work(ctx, j, log)
	var perm *permanentError
	switch {
	case err == nil, errors.Is(err, errLeaseLost) && ctx.Err() == nil:
		return true, nil
	case errors.As(err, &perm):
		log.Error("reprice failed", "error", err)
		return true, w.fail(ctx, j, err)
	}
	return true, err
}

const claimJob = `UPDATE pricing.reprices AS r
SET state = 'running', lease_owner = $1, update_time = now(),
	lease_until = now() + $2::bigint * interval '1 microsecond'
FROM (
	SELECT tenant_id, reprice_id FROM pricing.reprices
	WHERE state IN ('pending', 'running')
	  AND (lease_owner = $1 OR lease_until IS NULL OR lease_until < now())
	  AND create_time <= now() - $3::bigint * interval '1 microsecond'
	ORDER BY create_time, reprice_id
	LIMIT 1
	FOR UPDATE SKIP LOCKED
) AS c
WHERE r.tenant_id = c.tenant_id AND r.reprice_id = c.reprice_id
RETURNING r.tenant_id, r.reprice_id`

// claim leases the oldest job that is open and not leased by another
// live worker, and returns it.
func (w *Worker) claim(ctx context.Context) (Job, bool, error) {
	var tenant, id string
	err := w.cfg.Pool.QueryRow(ctx, claimJob, w.cfg.Owner, w.cfg.Lease.Microseconds(),
		w.cfg.Settle.Microseconds()).
		Scan(&tenant, &id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, false, nil
	}
	if err != nil {
		return Job{}, false, fmt.Errorf("claiming a reprice: %w", err)
	}
	j, err := NewStore(w.cfg.Pool).Get(ctx, tenant, id)
	return j, err == nil, err
}

// work runs a claimed job to its end.
func (w *Worker) work(ctx context.Context, j Job, log *slog.Logger) error {
	if w.cfg.CaughtUp != nil {
		if err := w.cfg.CaughtUp(ctx); err != nil {
			log.Warn("ledger may lag; repricing what it holds", "error", err)
		}
	}
	rates, err := w.cfg.Rates(ctx, j.TenantID)
	if err != nil {
		return err
	}
	// A crash may have left corrections unpublished.
	if err := w.publish(ctx, j); err != nil {
		return err
	}

	log.Info("reprice running", "start_time", j.From, "end_time", j.To, "scanned", j.Scanned)
	for {
		n, err := w.chunk(ctx, j, rates)
		if err != nil {
			return err
		}
		if err := w.publish(ctx, j); err != nil {
			return err
		}
		if n < w.cfg.Chunk {
			break
		}
	}
	if err := w.finish(ctx, j); err != nil {
		return err
	}
	done, err := NewStore(w.cfg.Pool).Get(ctx, j.TenantID, j.ID)
	if err == nil {
		log.Info("reprice succeeded", "scanned", done.Scanned, "corrected", done.Corrected,
			"unpriced", done.Unpriced, "effective_delta_nanos", done.EffectiveDelta)
	}
	return nil
}

const renewLease = `UPDATE pricing.reprices
SET lease_until = now() + $4::bigint * interval '1 microsecond', update_time = now()
WHERE tenant_id = $1 AND reprice_id = $2 AND lease_owner = $3 AND state = 'running'
RETURNING ` + jobColumns

const saveProgress = `UPDATE pricing.reprices
SET cursor_time = $3, cursor_event = $4, scanned = $5, corrected = $6, newly_priced = $7,
	unpriced = $8, currency = $9, list_delta_nanos = $10, effective_delta_nanos = $11,
	update_time = now()
WHERE tenant_id = $1 AND reprice_id = $2`

// chunk reprices the next chunk in one PostgreSQL transaction and
// returns how many events it read.
func (w *Worker) chunk(ctx context.Context, j Job, rates *pricebook.TenantRates) (int, error) {
	var n int
	err := pg.InTx(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
		// Renewing first locks the job row and reads its progress as
		// committed, whoever wrote it.
		cur, err := collectOne(tx.Query(ctx, renewLease, j.TenantID, j.ID, w.cfg.Owner,
			w.cfg.Lease.Microseconds()))
		if errors.Is(err, ErrNotFound) {
			return errLeaseLost
		}
		if err != nil {
			return fmt.Errorf("renewing lease: %w", err)
		}

		rows, err := ledger.LockChunk(ctx, tx, cur.TenantID, cur.From, cur.To, cur.Cursor,
			w.cfg.Chunk)
		if err != nil {
			return permanentIfCorrupt(err)
		}
		n = len(rows)
		if n == 0 {
			return nil
		}

		res, err := w.reprice(&cur, rows, rates)
		if err != nil {
			return err
		}
		return w.store(ctx, tx, &cur, res)
	})
	if err != nil {
		return 0, fmt.Errorf("repricing a chunk: %w", err)
	}
	return n, nil
}

func permanentIfCorrupt(err error) error {
	if errors.Is(err, ledger.ErrCorrupt) {
		return &permanentError{err: err}
	}
	return err
}

// chunkResult is what repricing one chunk decided.
type chunkResult struct {
	states []ledger.State
	outbox [][]any // rows of pricing.reprice_outbox
}

// reprice prices rows again, advancing j's cursor and counts, and returns
// the ledger updates and corrections for the changed ones.
func (w *Worker) reprice(j *Job, rows []ledger.Row, rates *pricebook.TenantRates) (
	*chunkResult, error) {
	now := timestamppb.Now()
	res := &chunkResult{}
	for _, row := range rows {
		j.Scanned++
		j.Cursor = ledger.Cursor{Time: row.StartTime, EventID: row.EventID}

		cur := w.cfg.Book.Price(row.Usage, rates)
		if cur.GetPricingStatus() == eventv1.PricingStatus_PRICING_STATUS_UNPRICED {
			j.Unpriced++
		}
		if !correction.Changed(row.Priced, cur) {
			continue
		}

		version := row.Priced.GetPriceVersion() + 1
		corr, err := correction.Build(row.Priced, cur, version)
		if err != nil {
			return nil, &permanentError{fmt.Errorf("event %s: %w", row.EventID, err)}
		}
		corr.PricedTime = now
		if err := j.count(row.Priced, corr); err != nil {
			return nil, &permanentError{fmt.Errorf("event %s: %w", row.EventID, err)}
		}

		value, err := proto.Marshal(corr)
		if err != nil {
			return nil, fmt.Errorf("encoding correction %s: %w", corr.GetPricedId(), err)
		}
		state := proto.Clone(cur).(*eventv1.PricedUsage)
		state.Usage = nil
		state.PricedId, state.PriceVersion, state.PricedTime = corr.PricedId, version, now
		res.states = append(res.states, ledger.State{EventID: row.EventID, Priced: state})
		res.outbox = append(res.outbox,
			[]any{j.TenantID, j.ID, corr.GetPricedId(), row.RecordKey, value})
	}
	return res, nil
}

// count adds one correction to the job's counts.
func (j *Job) count(old, corr *eventv1.PricedUsage) error {
	cur := corr.GetEffectiveCost().GetCurrencyCode()
	if cur == "" {
		cur = corr.GetListCost().GetCurrencyCode()
	}
	if j.Currency != "" && cur != "" && cur != j.Currency {
		return fmt.Errorf("%w: deltas in %s and %s", correction.ErrCurrency, j.Currency, cur)
	}
	if cur != "" {
		j.Currency = cur
	}

	var err error
	if j.ListDelta, err = money.Add(j.ListDelta, corr.GetListCost().GetNanos()); err != nil {
		return err
	}
	eff := corr.GetEffectiveCost().GetNanos()
	if j.EffectiveDelta, err = money.Add(j.EffectiveDelta, eff); err != nil {
		return err
	}
	j.Corrected++
	if old.GetEffectiveCost() == nil && corr.GetEffectiveCost() != nil {
		j.NewlyPriced++
	}
	return nil
}

// store writes a chunk's outcome: ledger rows, outbox and progress.
func (w *Worker) store(ctx context.Context, tx pgx.Tx, j *Job, res *chunkResult) error {
	if err := ledger.Update(ctx, tx, j.TenantID, res.states); err != nil {
		return err
	}
	if len(res.outbox) > 0 {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"pricing", "reprice_outbox"},
			[]string{"tenant_id", "reprice_id", "priced_id", "record_key", "value"},
			pgx.CopyFromRows(res.outbox))
		if err != nil {
			return fmt.Errorf("writing %d corrections to the outbox: %w", len(res.outbox), err)
		}
	}
	_, err := tx.Exec(ctx, saveProgress, j.TenantID, j.ID, j.Cursor.Time, j.Cursor.EventID,
		j.Scanned, j.Corrected, j.NewlyPriced, j.Unpriced, j.Currency, j.ListDelta,
		j.EffectiveDelta)
	if err != nil {
		return fmt.Errorf("saving progress: %w", err)
	}
	return nil
}

const selectOutbox = `SELECT priced_id, record_key, value FROM pricing.reprice_outbox
WHERE tenant_id = $1 AND reprice_id = $2
ORDER BY priced_id`

const deleteOutbox = `DELETE FROM pricing.reprice_outbox
WHERE tenant_id = $1 AND reprice_id = $2 AND priced_id = ANY($3)`

// publish sends the job's outbox in one Kafka transaction, then deletes
// what it sent.
func (w *Worker) publish(ctx context.Context, j Job) error {
	rows, err := w.cfg.Pool.Query(ctx, selectOutbox, j.TenantID, j.ID)
	if err != nil {
		return fmt.Errorf("reading the outbox: %w", err)
	}
	var (
		ids  []string
		recs []*kgo.Record
	)
	var id string
	var key, value []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &key, &value}, func() error {
		ids = append(ids, id)
		recs = append(recs, &kgo.Record{
			Topic: w.cfg.Topic, Key: key, Value: value, Headers: []kgo.RecordHeader{pricedHeader},
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the outbox: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}

	if err := w.produce(ctx, recs); err != nil {
		return err
	}
	w.metrics.corrections.Add(float64(len(recs)))
	if w.cfg.AfterPublish != nil {
		if err := w.cfg.AfterPublish(j); err != nil {
			return err
		}
	}
	if _, err := w.cfg.Pool.Exec(ctx, deleteOutbox, j.TenantID, j.ID, ids); err != nil {
		return fmt.Errorf("deleting %d published corrections from the outbox: %w", len(ids), err)
	}
	return nil
}

var pricedHeader = kgo.RecordHeader{
	Key:   kafka.HeaderContentType,
	Value: []byte(kafka.ContentTypeProto + "; messageType=costplane.event.v1.PricedUsage"),
}

// produce writes recs in one Kafka transaction. Any failure closes the
// client, so the next attempt starts a clean transactional session.
func (w *Worker) produce(ctx context.Context, recs []*kgo.Record) error {
	cl, err := w.transactional()
	if err != nil {
		return err
	}
	if err := cl.BeginTransaction(); err != nil {
		w.closeClient()
		return fmt.Errorf("beginning a kafka transaction: %w", err)
	}

	produced := cl.ProduceSync(ctx, recs...).FirstErr()
	end := kgo.TryCommit
	if produced != nil {
		end = kgo.TryAbort
	}
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx),
		w.cfg.Kafka.TransactionTimeout)
	defer cancel()
	if err := cl.EndTransaction(endCtx, end); err != nil {
		w.closeClient()
		return fmt.Errorf("ending a kafka transaction: %w", err)
	}
	if produced != nil {
		w.closeClient()
		return fmt.Errorf("producing %d corrections: %w", len(recs), produced)
	}
	return nil
}

func (w *Worker) transactional() (*kgo.Client, error) {
	if w.client != nil {
		return w.client, nil
	}
	cl, err := kafka.NewClient(w.cfg.Kafka,
		kgo.TransactionalID(w.cfg.TransactionalID),
		kgo.TransactionTimeout(w.cfg.Kafka.TransactionTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(max(w.cfg.Kafka.ProduceTimeout, time.Second)))
	if err != nil {
		return nil, err
	}
	w.client = cl
	return cl, nil
}

func (w *Worker) closeClient() {
	if w.client != nil {
		w.client.Close()
		w.client = nil
	}
}

const finishJob = `UPDATE pricing.reprices
SET state = 'succeeded', finish_time = now(), update_time = now(), lease_owner = '',
	lease_until = NULL
WHERE tenant_id = $1 AND reprice_id = $2 AND lease_owner = $3 AND state = 'running'`

func (w *Worker) finish(ctx context.Context, j Job) error {
	tag, err := w.cfg.Pool.Exec(ctx, finishJob, j.TenantID, j.ID, w.cfg.Owner)
	if err != nil {
		return fmt.Errorf("finishing reprice: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errLeaseLost
	}
	return nil
}

const failJob = `UPDATE pricing.reprices
SET state = 'failed', error = $4, finish_time = now(), update_time = now(), lease_owner = '',
	lease_until = NULL
WHERE tenant_id = $1 AND reprice_id = $2 AND lease_owner = $3 AND state = 'running'`

func (w *Worker) fail(ctx context.Context, j Job, cause error) error {
	if _, err := w.cfg.Pool.Exec(ctx, failJob, j.TenantID, j.ID, w.cfg.Owner,
		cause.Error()); err != nil {
		return fmt.Errorf("marking reprice failed: %w", err)
	}
	return nil
}

type metrics struct {
	corrections prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "costplane_pricing_reprice_corrections_total",
		Help: "Corrections published by reprice jobs, a repeat after a crash included.",
	})
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(prometheus.Counter); ok {
			return &metrics{corrections: existing}, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("registering reprice metrics: %w", err)
	}
	return &metrics{corrections: c}, nil
}
