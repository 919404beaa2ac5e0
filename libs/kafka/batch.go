package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/pg"
)

// batch is one poll's worth of records.
type batch struct {
	records []*kgo.Record // data records for the handler, control ones left out
	parts   map[topicPartition]*partSpan
	order   []topicPartition
}

// partSpan is what a batch holds of one partition.
type partSpan struct {
	first  int64 // offset of the first record, control records included
	next   int64 // offset after the last record, control records included
	stable int64 // last stable offset at fetch time, for the lag gauge
}

func newBatch(fetches kgo.Fetches) *batch {
	b := &batch{parts: make(map[topicPartition]*partSpan)}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		tp := topicPartition{topic: p.Topic, partition: p.Partition}
		span, ok := b.parts[tp]
		if !ok {
			span = &partSpan{first: p.Records[0].Offset}
			b.parts[tp] = span
			b.order = append(b.order, tp)
		}
		span.next = p.Records[len(p.Records)-1].Offset + 1
		span.stable = p.LastStableOffset
		if span.stable < 0 {
			span.stable = p.HighWatermark
		}

		for _, rec := range p.Records {
			if !rec.Attrs.IsControl() {
				b.records = append(b.records, rec)
			}
		}
	})
	return b
}

// process applies b in one PostgreSQL transaction and reports whether the
// loop may poll again at once (false asks for a backoff).
func (r *Runner) process(ctx context.Context, cl *kgo.Client, b *batch) bool {
	start := time.Now()
	moves := r.moves(b)

	var (
		dead   []*kgo.Record
		fenced []topicPartition
	)
	err := pg.InTx(ctx, r.db, func(tx pgx.Tx) error {
		var err error
		dead, fenced, err = r.apply(ctx, tx, cl, b, moves)
		return err
	})
	r.metrics.duration.WithLabelValues(r.rc.Group).Observe(time.Since(start).Seconds())

	switch {
	case err == nil:
		r.committed(b, moves, dead)
		return true

	case errors.Is(err, errFenced):
		r.metrics.batches.WithLabelValues(r.rc.Group, resultFenced).Inc()
		r.log.Warn("batch dropped: another member stored offsets of its partitions",
			"partitions", fmt.Sprint(fenced))
		r.resync(ctx, cl, b, fenced)
		return true

	default:
		// Whatever happened, nothing of the batch is stored, so the
		// partitions go back to where the batch began.
		r.rewind(cl, b)
		if ctx.Err() != nil {
			return true // shutting down, not failing
		}
		r.metrics.batches.WithLabelValues(r.rc.Group, resultFailed).Inc()
		r.log.Error("batch failed, will retry",
			"records", len(b.records), "partitions", len(b.order), "error", err)
		return false
	}
}

// apply is the body of the batch transaction: the handler's writes, the
// offsets, then the dead letters. Dead letters go last so that a fenced
// batch sends none; they are acknowledged before the commit, so a crash
// can repeat a dead letter but never lose one.
func (r *Runner) apply(
	ctx context.Context, tx pgx.Tx, cl *kgo.Client, b *batch, moves []offsetMove,
) ([]*kgo.Record, []topicPartition, error) {
	var rejects []Reject
	if len(b.records) > 0 {
		var err error
		if rejects, err = r.handle(ctx, tx, b.records); err != nil {
			return nil, nil, fmt.Errorf("handling batch: %w", err)
		}
	}

	fenced, err := r.table.advance(ctx, tx, r.rc.Group, moves)
	if err != nil {
		return nil, nil, err
	}
	if len(fenced) > 0 {
		return nil, fenced, errFenced
	}

	dead, err := deadLetters(r.rc.DLQTopic, r.rc.Group, b.records, rejects)
	if err != nil {
		return nil, nil, fmt.Errorf("handling batch: %w", err)
	}
	if err := r.sendDeadLetters(ctx, cl, dead); err != nil {
		return nil, nil, err
	}

	return dead, nil, nil
}

func (r *Runner) sendDeadLetters(ctx context.Context, cl *kgo.Client, dead []*kgo.Record) error {
	if len(dead) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ProduceTimeout)
	defer cancel()

	err := produceAll(ctx, cl, dead)
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.metrics.produced.WithLabelValues(r.rc.DLQTopic, result).Add(float64(len(dead)))
	if err != nil {
		return fmt.Errorf("sending %d records to %s: %w", len(dead), r.rc.DLQTopic, classify(err))
	}

	return nil
}

// moves pairs each partition's span with the offset this member believes
// is stored, for the compare-and-set.
func (r *Runner) moves(b *batch) []offsetMove {
	r.mu.Lock()
	defer r.mu.Unlock()

	moves := make([]offsetMove, 0, len(b.order))
	for _, tp := range b.order {
		prev, ok := r.stored[tp]
		if !ok {
			// Not expected while the partition is owned; noOffset
			// makes the write fail if a row exists, which resyncs.
			prev = noOffset
		}
		moves = append(moves, offsetMove{tp: tp, prev: prev, next: b.parts[tp].next})
	}
	return moves
}

func (r *Runner) committed(b *batch, moves []offsetMove, dead []*kgo.Record) {
	r.mu.Lock()
	for _, m := range moves {
		r.stored[m.tp] = m.next
	}
	r.mu.Unlock()

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

func (b *batch) commitInfo(group string, rejected int) Commit {
	offsets := make(map[string]map[int32]int64)
	for _, tp := range b.order {
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = make(map[int32]int64)
		}
		offsets[tp.topic][tp.partition] = b.parts[tp].next
	}
	return Commit{Group: group, Records: len(b.records), Rejected: rejected, Offsets: offsets}
}

// rewind moves every partition of b back to the batch's first record, so
// the next polls return the batch again. The stored offsets equal those
// positions: no record lies between them that the consumer could see.
func (r *Runner) rewind(cl *kgo.Client, b *batch) {
	cl.SetOffsets(b.firstOffsets())
}

func (b *batch) firstOffsets() map[string]map[int32]kgo.EpochOffset {
	out := make(map[string]map[int32]kgo.EpochOffset)
	for _, tp := range b.order {
		if out[tp.topic] == nil {
			out[tp.topic] = make(map[int32]kgo.EpochOffset)
		}
		out[tp.topic][tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: b.parts[tp].first}
	}
	return out
}

// resync handles a fenced batch: the fenced partitions continue from the
// offsets now stored, the others go back to the batch's start. When the
// stored offsets cannot be read, everything goes back to the batch's
// start, and the next attempt is fenced and resynced again.
func (r *Runner) resync(ctx context.Context, cl *kgo.Client, b *batch, fenced []topicPartition) {
	set := b.firstOffsets()
	stored, err := r.table.load(ctx, r.db, r.rc.Group, r.rc.Topics)
	if err != nil {
		r.log.Warn("reading offsets after a fenced batch failed", "error", err)
		cl.SetOffsets(set)
		return
	}

	r.mu.Lock()
	for _, tp := range fenced {
		next, ok := stored[tp.topic][tp.partition]
		if !ok {
			continue // the row was deleted by hand; replaying is all we can do
		}
		set[tp.topic][tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: next}
		r.stored[tp] = next
	}
	r.mu.Unlock()

	cl.SetOffsets(set)
}
