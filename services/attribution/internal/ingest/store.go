// Package ingest writes the attribution store from the priced usage and
// outcome topics: raw lines, dimension sets, hourly rollups (and daily
// ones of the days already rolled up, see RollUpDays), steps, runs,
// sessions and outcomes.
//
// A batch is applied inside the kafka.Runner's transaction, so its effect
// and the consumed offsets commit together (DESIGN §5). A line stored once
// is never counted again: the batch drops lines whose priced id is already
// stored, and the lines' primary key backs that up.
//
// Steps of a trace arrive in any order. The store keeps each step's own
// attribution beside the resolved one, re-runs usage.TraceJoin over the
// stored and new steps of every trace a batch touches, and moves the
// totals of steps whose agent or session changed from their old rollup
// rows to their new ones in the same transaction, so rollups by agent are
// exact whatever the arrival order.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
)

// Config tunes the store's writer.
type Config struct {
	// DefaultCurrency is given to lines that carry no money, such as
	// unpriced ones, so that their counts join the tenant's usual rows.
	DefaultCurrency string
	// LabelKeys limits the label keys kept in rollup dimension sets; nil
	// keeps every key. Raw lines keep every label.
	LabelKeys []string
	// Retention is how long raw lines are kept; older lines are refused
	// because they could no longer be deduplicated. Zero keeps them all.
	Retention time.Duration
	// MaxAhead is how far in the future a line's usage may start.
	MaxAhead time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store applies batches of records to the attribution schema.
type Store struct {
	dec decoder
	log *slog.Logger
}

// New returns a store writer.
func New(cfg Config, log *slog.Logger) *Store {
	d := decoder{
		defaultCurrency: cfg.DefaultCurrency,
		now:             cfg.Now,
		retention:       cfg.Retention,
		maxAhead:        cfg.MaxAhead,
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.defaultCurrency == "" {
		d.defaultCurrency = "USD"
	}
	if d.maxAhead <= 0 {
		d.maxAhead = 7 * 24 * time.Hour
	}
	if cfg.LabelKeys != nil {
		d.labelKeys = make(map[string]bool, len(cfg.LabelKeys))
		for _, k := range cfg.LabelKeys {
			d.labelKeys[k] = true
		}
	}
	return &Store{dec: d, log: log}
}

// HandlePriced is the kafka.Handler of the priced usage topic.
//
// TODO: the store takes in about 10-13% of the rate of a plain COPY of
// the same lines on worst-case traffic and 15-20% on realistic traffic
// (BenchmarkConsumeVersusCopy's two shapes), short of the 50% issue 5
// targets. Beside its line, each line writes its step, a share of a run,
// a session and a dimension set, and an hourly rollup row (two when the
// trace join moves a step); the lines and steps COPYs alone take about as
// long as the whole baseline. Reaching 50% needs fewer rows per line,
// such as steps kept on the lines themselves. Safe for now: it costs
// throughput, not correctness, and consumers scale out by partitions.
func (s *Store) HandlePriced(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) (
	[]kafka.Reject, error,
) {
	b, rejects := s.decodeBatch(recs)
	if len(b.lines) == 0 {
		return rejects, nil
	}

	if err := prepare(ctx, tx, b.days()); err != nil {
		return nil, err
	}
	if err := b.load(ctx, tx); err != nil {
		return nil, err
	}
	if len(b.lines) == 0 {
		return rejects, nil
	}
	b.plan()
	if err := b.write(ctx, tx); err != nil {
		return nil, err
	}
	return rejects, nil
}

// decodeBatch decodes recs into a batch, rejecting what cannot be stored
// and keeping the first of lines that share a priced id.
func (s *Store) decodeBatch(recs []*kgo.Record) (*batch, []kafka.Reject) {
	lines, errs := s.decodeAll(recs)
	b := newBatch()
	var rejects []kafka.Reject
	for i, rec := range recs {
		l, err := lines[i], errs[i]
		if errors.Is(err, errReject) {
			rejects = append(rejects, kafka.Reject{Record: rec, Reason: reasonOf(err)})
			continue
		}
		if _, dup := b.byKey[l.key()]; dup {
			continue
		}
		b.byKey[l.key()] = l
		b.lines = append(b.lines, l)
	}
	return b, rejects
}

// decodeAll decodes recs on every processor: PostgreSQL idles meanwhile,
// and decoding is most of the batch's own processor time.
func (s *Store) decodeAll(recs []*kgo.Record) ([]*line, []error) {
	lines, errs := make([]*line, len(recs)), make([]error, len(recs))
	workers := min(runtime.GOMAXPROCS(0), 1+len(recs)/256)
	chunk := (len(recs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(recs); lo += chunk {
		hi := min(lo+chunk, len(recs))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				lines[i], errs[i] = s.dec.decode(recs[i])
			}
		}()
	}
	wg.Wait()
	return lines, errs
}

func reasonOf(err error) string {
	msg := err.Error()
	prefix := errReject.Error() + ": "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return msg[len(prefix):]
	}
	return msg
}

// prepare creates the staging tables and the missing day partitions.
func prepare(ctx context.Context, tx pgx.Tx, days []time.Time) error {
	if _, err := tx.Exec(ctx, createStagingSQL); err != nil {
		return fmt.Errorf("creating staging tables: %w", err)
	}
	return EnsurePartitions(ctx, tx, days)
}

// EnsurePartitions creates the raw line partitions of days that have none.
func EnsurePartitions(ctx context.Context, tx pgx.Tx, days []time.Time) error {
	rows, err := tx.Query(ctx, missingPartitionsSQL, days)
	if err != nil {
		return fmt.Errorf("finding missing partitions: %w", err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return fmt.Errorf("finding missing partitions: %w", err)
	}

	for _, d := range missing {
		sql := fmt.Sprintf(createPartitionSQL, d.Format("20060102"), d.Format(time.DateOnly),
			d.AddDate(0, 0, 1).Format(time.DateOnly))
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("creating partition of %s: %w", d.Format(time.DateOnly), err)
		}
	}
	return nil
}
