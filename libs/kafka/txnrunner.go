package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TxnHandler transforms one batch for a TxnRunner. The out records and the
// dead letters of rejects are produced in one Kafka transaction with the
// batch's consumed offsets, so they appear exactly once for read_committed
// readers. An error aborts the transaction, and the batch is retried after
// a pause, indefinitely: bad input must be rejected, not returned as an
// error. out records need their Topic set.
type TxnHandler func(
	ctx context.Context, recs []*kgo.Record,
) (out []*kgo.Record, rejects []Reject, err error)

// TxnRunnerConfig names what a TxnRunner consumes.
type TxnRunnerConfig struct {
	// Group is the consumer group: one per service and purpose.
	Group string
	// Topics are consumed together; a batch may mix them.
	Topics []string
	// TransactionalID must be unique per member and stable across its
	// restarts: a restarted member then fences its previous incarnation
	// and aborts that one's open transaction at once, instead of leaving
	// read_committed readers stuck until the transaction times out.
	// Empty means Group-hostname, right for one member per host or pod.
	TransactionalID string
	// DLQTopic receives rejected records; empty means
	// Config.Topics.UsageDLQ.
	DLQTopic string
}

// TxnRunner consumes topics in a consumer group and, per batch, produces
// the handler's output and commits the consumed offsets in one Kafka
// transaction (DESIGN §5, consume-transform-produce).
type TxnRunner struct {
	cfg     Config
	rc      TxnRunnerConfig
	handle  TxnHandler
	opts    options
	log     *slog.Logger
	metrics *metrics
	running atomic.Bool
}

// NewTxnRunner checks the configuration and builds a TxnRunner; it
// connects to nothing until Run.
func NewTxnRunner(
	cfg Config, rc TxnRunnerConfig, h TxnHandler, opts ...Option,
) (*TxnRunner, error) {
	if rc.DLQTopic == "" {
		rc.DLQTopic = cfg.Topics.UsageDLQ
	}
	if rc.TransactionalID == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("creating transactional runner: naming it: %w", err)
		}
		rc.TransactionalID = rc.Group + "-" + host
	}
	base := RunnerConfig{Group: rc.Group, Topics: rc.Topics, DLQTopic: rc.DLQTopic}
	if err := errors.Join(cfg.Validate(), base.validate()); err != nil {
		return nil, fmt.Errorf("creating transactional runner: %w", err)
	}
	if h == nil {
		return nil, errors.New("creating transactional runner: handler is required")
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("creating transactional runner: no brokers configured")
	}

	o := buildOptions(opts)
	m, err := newMetrics(o.registerer)
	if err != nil {
		return nil, fmt.Errorf("creating transactional runner: %w", err)
	}

	return &TxnRunner{
		cfg:     cfg,
		rc:      rc,
		handle:  h,
		opts:    o,
		log:     o.log.With(slog.String("group", rc.Group)),
		metrics: m,
	}, nil
}

// Run joins the group and processes batches until ctx is done, then
// leaves the group and returns nil. Failed batches are aborted and
// retried; when the transactional producer fails for good, Run starts a
// new one after a pause. Run returns an error only when it cannot start.
func (r *TxnRunner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("running transactional consumer: already running")
	}
	defer r.running.Store(false)

	bo := backoff{min: 500 * time.Millisecond, max: 30 * time.Second}
	for ctx.Err() == nil {
		sess, err := kgo.NewGroupTransactSession(r.clientOpts()...)
		if err != nil {
			return fmt.Errorf("running transactional consumer: %w", err)
		}

		r.log.Info("transactional consumer started",
			"topics", r.rc.Topics, "transactional_id", r.rc.TransactionalID)
		err = r.session(ctx, sess)
		sess.Close()
		if err == nil {
			break
		}

		r.log.Error("transactional session failed, starting a new one", "error", err)
		_ = bo.wait(ctx) // a done ctx ends the loop
	}
	r.log.Info("transactional consumer stopped")

	return nil
}

func (r *TxnRunner) clientOpts() []kgo.Opt {
	opts := append(baseOpts(r.cfg),
		kgo.ConsumerGroup(r.rc.Group),
		kgo.ConsumeTopics(r.rc.Topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(startOffset(r.cfg)),
		kgo.SessionTimeout(r.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, r.cfg.SessionTimeout/3)),
		kgo.OnPartitionsRevoked(r.released),
		kgo.OnPartitionsLost(r.released),
		kgo.TransactionalID(r.rc.TransactionalID),
		kgo.TransactionTimeout(r.cfg.TransactionTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.WithLogger(kgoLogger{log: r.log}),
	)
	return append(opts, r.opts.kgoOpts...)
}

// session is the poll loop of one transactional client. It returns nil
// when ctx is done and an error when the client cannot go on.
func (r *TxnRunner) session(ctx context.Context, sess *kgo.GroupTransactSession) error {
	bo := backoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	for {
		fetches := sess.PollRecords(ctx, r.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return nil
		}

		ok := logFetchErrors(r.log, fetches)
		if b := newBatch(fetches); len(b.records) > 0 {
			batchOK, err := r.transact(ctx, sess, b)
			if err != nil {
				return err
			}
			ok = ok && batchOK
		}

		if ok {
			bo.reset()
			continue
		}
		if bo.wait(ctx) != nil {
			return nil
		}
	}
}

// transact runs one batch in one transaction. It reports whether the
// batch committed without trouble, and returns an error only when the
// transactional client is no longer usable.
func (r *TxnRunner) transact(
	ctx context.Context, sess *kgo.GroupTransactSession, b *batch,
) (bool, error) {
	start := time.Now()
	if err := sess.Begin(); err != nil {
		return false, fmt.Errorf("beginning transaction: %w", err)
	}

	dead, herr := r.produce(ctx, sess, b)
	try := kgo.TryCommit
	if herr != nil {
		try = kgo.TryAbort
	}

	// The end runs even when ctx is done, so that shutting down aborts
	// or commits cleanly instead of leaving the transaction to time out.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.TransactionTimeout)
	defer cancel()
	committed, err := sess.End(endCtx, try)
	r.metrics.duration.WithLabelValues(r.rc.Group).Observe(time.Since(start).Seconds())
	if err != nil {
		return false, fmt.Errorf("ending transaction: %w", err)
	}

	switch {
	case committed:
		r.committed(b, dead)
		return true, nil
	case herr != nil:
		r.metrics.batches.WithLabelValues(r.rc.Group, resultFailed).Inc()
		if ctx.Err() == nil {
			r.log.Error("batch failed, will retry", "records", len(b.records), "error", herr)
		}
		return false, nil
	default:
		// A rebalance took partitions during the transaction; End
		// aborted and rewound to the committed offsets.
		r.metrics.batches.WithLabelValues(r.rc.Group, resultAborted).Inc()
		r.log.Info("batch aborted by a rebalance", "records", len(b.records))
		return true, nil
	}
}

// produce runs the handler and produces its output and dead letters in
// the open transaction, waiting for all of them.
func (r *TxnRunner) produce(
	ctx context.Context, sess *kgo.GroupTransactSession, b *batch,
) ([]*kgo.Record, error) {
	out, rejects, err := r.handle(ctx, b.records)
	if err != nil {
		return nil, fmt.Errorf("handling batch: %w", err)
	}
	dead, err := deadLetters(r.rc.DLQTopic, r.rc.Group, b.records, rejects)
	if err != nil {
		return nil, fmt.Errorf("handling batch: %w", err)
	}

	// ProduceSync sends at once rather than after the linger, and the
	// transaction's end would wait for every record anyway.
	all := slices.Concat(out, dead)
	if err := sess.ProduceSync(ctx, all...).FirstErr(); err != nil {
		return nil, fmt.Errorf("producing %d records in transaction: %w", len(all), err)
	}

	return dead, nil
}

func (r *TxnRunner) committed(b *batch, dead []*kgo.Record) {
	g := r.rc.Group
	for _, rec := range b.records {
		r.metrics.consumed.WithLabelValues(g, rec.Topic).Inc()
	}
	for _, rec := range dead {
		src, _ := Header(rec, HeaderDLQSourceTopic)
		r.metrics.rejected.WithLabelValues(g, src).Inc()
	}
	for _, tp := range b.order {
		span := b.parts[tp]
		lag := max(0, span.stable-span.next)
		r.metrics.lag.WithLabelValues(g, tp.topic, partitionLabel(tp.partition)).Set(float64(lag))
	}
	r.metrics.batches.WithLabelValues(g, resultCommitted).Inc()

	if r.opts.onCommit != nil {
		r.opts.onCommit(b.commitInfo(g, len(dead)))
	}
}

func (r *TxnRunner) released(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	for topic, ps := range parts {
		for _, p := range ps {
			r.metrics.lag.DeleteLabelValues(r.rc.Group, topic, partitionLabel(p))
		}
	}
}
