package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// assigned is the AdjustFetchOffsetsFn: franz-go calls it with the newly
// assigned partitions before fetching them, and consumption starts from
// what it returns. The offsets Kafka holds for the group are replaced by
// the ones stored in PostgreSQL; partitions without a stored offset start
// at Config.ConsumerStart.
func (r *Runner) assigned(
	ctx context.Context, offsets map[string]map[int32]kgo.Offset,
) (map[string]map[int32]kgo.Offset, error) {
	stored, err := r.loadRetrying(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading stored offsets on assignment: %w", err)
	}

	reset := startOffset(r.cfg)
	r.mu.Lock()
	defer r.mu.Unlock()

	var resumed, fresh int
	for topic, parts := range offsets {
		for p := range parts {
			tp := topicPartition{topic: topic, partition: p}
			next, ok := stored[topic][p]
			if !ok {
				fresh++
				parts[p] = reset
				r.stored[tp] = noOffset
				continue
			}
			resumed++
			parts[p] = kgo.NewOffset().At(next)
			r.stored[tp] = next
		}
	}
	r.log.Info("partitions assigned", "resumed", resumed, "without_stored_offset", fresh)

	return offsets, nil
}

// loadRetrying reads the stored offsets until it succeeds or ctx, which
// franz-go cancels when the group session ends, is done. Failing fast
// instead would make the member rejoin and rebalance the whole group on
// every PostgreSQL hiccup.
func (r *Runner) loadRetrying(ctx context.Context) (map[string]map[int32]int64, error) {
	bo := backoff{min: 100 * time.Millisecond, max: 5 * time.Second}
	for {
		stored, err := r.table.load(ctx, r.db, r.rc.Group, r.rc.Topics)
		if err == nil {
			return stored, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		r.log.Warn("reading stored offsets failed, will retry", "error", err)
		if err := bo.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// released is the OnPartitionsRevoked and OnPartitionsLost callback. With
// BlockRebalanceOnPoll it runs between batches, so no work of the
// partitions is in flight; forgetting their offsets is all there is to do.
func (r *Runner) released(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	var n int
	r.mu.Lock()
	for topic, ps := range parts {
		for _, p := range ps {
			n++
			delete(r.stored, topicPartition{topic: topic, partition: p})
			r.metrics.lag.DeleteLabelValues(r.rc.Group, topic, partitionLabel(p))
		}
	}
	r.mu.Unlock()

	if n > 0 {
		r.log.Info("partitions released", "partitions", n)
	}
}

// groupLag sums, over every partition of topics, the last stable offset
// minus the offset stored for group.
func groupLag(
	ctx context.Context, cl *kgo.Client, db *pgxpool.Pool, table offsetTable,
	group string, topics []string, start string,
) (int64, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("reading lag: listing end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("reading lag: listing start offsets: %w", err)
	}
	stored, err := table.load(ctx, db, group, topics)
	if err != nil {
		return 0, fmt.Errorf("reading lag: %w", err)
	}

	var lag int64
	ends.Each(func(end kadm.ListedOffset) {
		pos, ok := stored[end.Topic][end.Partition]
		if !ok {
			if start == StartLatest {
				return // such a partition starts at its end
			}
			s, _ := starts.Lookup(end.Topic, end.Partition)
			pos = s.Offset
		}
		lag += max(0, end.Offset-pos)
	})

	return lag, nil
}
