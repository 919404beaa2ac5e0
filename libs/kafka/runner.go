package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Handler processes one batch inside the Runner's PostgreSQL transaction.
// It writes its results with tx and returns the records it cannot process
// as rejects, which go to the dead-letter topic and count as consumed.
//
// An error rolls the whole batch back, and the runner retries it after a
// pause, indefinitely: bad input must be rejected, not returned as an
// error. The handler must not commit or roll back tx. recs is never empty
// and is in offset order within each partition; a batch may hold records
// the handler has seen before, after a crash or a rebalance, but their
// earlier effects were rolled back.
type Handler func(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) ([]Reject, error)

// RunnerConfig names what a Runner consumes and where it keeps offsets.
type RunnerConfig struct {
	// Group is the consumer group: one per service and purpose.
	Group string
	// Topics are consumed together; a batch may mix them.
	Topics []string
	// OffsetsTable is the schema-qualified table that holds the
	// group's offsets, in the service's own schema, for example
	// attribution.kafka_offsets. Run creates it when missing.
	OffsetsTable string
	// DLQTopic receives rejected records; empty means
	// Config.Topics.UsageDLQ.
	DLQTopic string
}

func (rc RunnerConfig) validate() error {
	if rc.Group == "" {
		return errors.New("consumer group is empty")
	}
	if len(rc.Topics) == 0 {
		return errors.New("no topics to consume")
	}
	for _, t := range append([]string{rc.DLQTopic}, rc.Topics...) {
		if err := validateTopicName(t); err != nil {
			return err
		}
	}
	return nil
}

// Runner consumes topics in a consumer group and applies each batch to
// PostgreSQL exactly once in effect (DESIGN §5). The batch's results, its
// dead letters' acknowledgement and the next offsets are committed in one
// PostgreSQL transaction, and on assignment the runner resumes from the
// offsets stored there; Kafka's own group offsets are never used.
//
// Each offset write is a compare-and-set against the offset the member
// read, so a member that lost a partition without noticing (a long GC
// pause, a network split) cannot commit a batch that the new owner also
// commits: one of the two transactions writes nothing and is retried from
// the stored offset.
type Runner struct {
	cfg     Config
	rc      RunnerConfig
	db      *pgxpool.Pool
	handle  Handler
	table   offsetTable
	opts    options
	log     *slog.Logger
	metrics *metrics

	running atomic.Bool
	client  atomic.Pointer[kgo.Client]

	// mu guards stored, which the franz-go callbacks write while the
	// consuming goroutine reads it.
	mu sync.Mutex
	// stored is, per owned partition, the next offset as this member
	// last read or wrote it in PostgreSQL, or noOffset.
	stored map[topicPartition]int64
}

// NewRunner checks the configuration and builds a Runner; it connects to
// nothing until Run.
func NewRunner(
	cfg Config, db *pgxpool.Pool, rc RunnerConfig, h Handler, opts ...Option,
) (*Runner, error) {
	if rc.DLQTopic == "" {
		rc.DLQTopic = cfg.Topics.UsageDLQ
	}
	if err := errors.Join(cfg.Validate(), rc.validate()); err != nil {
		return nil, fmt.Errorf("creating runner: %w", err)
	}
	table, err := parseOffsetTable(rc.OffsetsTable)
	if err != nil {
		return nil, fmt.Errorf("creating runner: %w", err)
	}
	if db == nil || h == nil {
		return nil, errors.New("creating runner: database and handler are required")
	}

	o := buildOptions(opts)
	m, err := newMetrics(o.registerer)
	if err != nil {
		return nil, fmt.Errorf("creating runner: %w", err)
	}

	return &Runner{
		cfg:     cfg,
		rc:      rc,
		db:      db,
		handle:  h,
		table:   table,
		opts:    o,
		log:     o.log.With(slog.String("group", rc.Group)),
		metrics: m,
		stored:  make(map[topicPartition]int64),
	}, nil
}

// Run creates the offsets table when missing, joins the group and
// processes batches until ctx is done, then leaves the group and returns
// nil. Fetch, Kafka and PostgreSQL failures are logged and retried with
// backoff; Run returns an error only when it cannot start.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("running consumer: already running")
	}
	defer r.running.Store(false)

	if err := r.createTable(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("running consumer: %w", err)
	}

	cl, err := NewClient(r.cfg, r.clientOpts()...)
	if err != nil {
		return fmt.Errorf("running consumer: %w", err)
	}
	r.client.Store(cl)
	defer func() {
		r.client.Store(nil)
		cl.CloseAllowingRebalance()
	}()

	r.log.Info("consumer started", "topics", r.rc.Topics, "offsets_table", r.table.raw)
	r.consume(ctx, cl)
	r.log.Info("consumer stopped")

	return nil
}

// createTable creates the offsets table, retrying while PostgreSQL is
// unreachable or restarting: a consumer that starts beside its database
// must not give up on the first dropped connection. Errors that a retry
// cannot mend, such as a bad table name or missing privileges, end it.
func (r *Runner) createTable(ctx context.Context) error {
	bo := backoff{min: 100 * time.Millisecond, max: 5 * time.Second}
	for {
		err := r.table.create(ctx, r.db)
		if err == nil || !transientPG(err) {
			return err
		}
		r.log.Warn("creating offsets table failed; retrying", "error", err)
		if err := bo.wait(ctx); err != nil {
			return err
		}
	}
}

// transientPG reports whether err is a connection-level failure (lost
// connection, server shutting down, too many clients) rather than a
// problem with the statement itself.
func transientPG(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		// No server answer at all: a network or connect error.
		return true
	}
	switch pgErr.Code[:2] {
	case "08", "57", "53": // connection exception, operator intervention, resources
		return true
	}
	return pgErr.Code == "40001" || pgErr.Code == "40P01" // serialization, deadlock
}

func (r *Runner) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ConsumerGroup(r.rc.Group),
		kgo.ConsumeTopics(r.rc.Topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers come through so that the stored offset
		// can step over them; otherwise a topic written in
		// transactions would always look one record behind.
		kgo.KeepControlRecords(),
		kgo.DisableAutoCommit(),
		// No rebalance can start between a poll and AllowRebalance, so
		// a batch is never processed by a member that already gave up
		// its partitions through a clean revoke.
		kgo.BlockRebalanceOnPoll(),
		kgo.AdjustFetchOffsetsFn(r.assigned),
		kgo.OnPartitionsRevoked(r.released),
		kgo.OnPartitionsLost(r.released),
		kgo.ConsumeResetOffset(startOffset(r.cfg)),
		kgo.SessionTimeout(r.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, r.cfg.SessionTimeout/3)),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.WithLogger(kgoLogger{log: r.log}),
	}
	return append(opts, r.opts.kgoOpts...)
}

// startOffset is where a partition without an offset begins.
func startOffset(cfg Config) kgo.Offset {
	if cfg.ConsumerStart == StartLatest {
		return kgo.NewOffset().AtEnd()
	}
	return kgo.NewOffset().AtStart()
}

// consume is the poll loop. Every exit from a poll goes through
// AllowRebalance, and the backoff sleeps after it, so a struggling member
// never holds up the group's rebalances.
func (r *Runner) consume(ctx context.Context, cl *kgo.Client) {
	bo := backoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	for ctx.Err() == nil {
		fetches := cl.PollRecords(ctx, r.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			cl.AllowRebalance()
			return
		}

		ok := logFetchErrors(r.log, fetches)
		if b := newBatch(fetches); len(b.order) > 0 {
			ok = r.process(ctx, cl, b) && ok
		}
		cl.AllowRebalance()

		if ok {
			bo.reset()
			continue
		}
		_ = bo.wait(ctx) // a done ctx ends the loop
	}
}

// logFetchErrors logs the errors of a poll and reports whether there were
// none. A fetch error is never fatal here: franz-go keeps retrying the
// partition, and the loop backs off meanwhile.
func logFetchErrors(log *slog.Logger, fetches kgo.Fetches) bool {
	ok := true
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.Canceled) {
			return
		}
		ok = false
		log.Warn("fetch failed", "topic", topic, "partition", partition, "error", err)
	})
	return ok
}

// Lag returns how many records of the runner's topics the group has not
// yet committed to PostgreSQL, up to each partition's last stable offset.
// It reads the offsets table, so it covers every member of the group;
// zero means the group has caught up. It needs Run to be running.
func (r *Runner) Lag(ctx context.Context) (int64, error) {
	cl := r.client.Load()
	if cl == nil {
		return 0, errors.New("reading lag: runner is not running")
	}
	return groupLag(ctx, cl, r.db, r.table, r.rc.Group, r.rc.Topics, r.cfg.ConsumerStart)
}

// partitionLabel is the partition label of the lag gauge.
func partitionLabel(p int32) string { return strconv.FormatInt(int64(p), 10) }
