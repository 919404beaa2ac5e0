package kafka

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/pg"
)

// noOffset stands for "no row stored" in the compare-and-set below. Real
// offsets are never negative.
const noOffset = -1

// offsetTable is the PostgreSQL table in which a Runner keeps, per group,
// topic and partition, the next offset to consume.
type offsetTable struct {
	schema string // sanitized identifier
	ident  string // sanitized schema.table
	raw    string
}

func parseOffsetTable(name string) (offsetTable, error) {
	schema, table, ok := strings.Cut(name, ".")
	if !ok || schema == "" || table == "" || strings.Contains(table, ".") {
		return offsetTable{}, fmt.Errorf("offsets table %q: want schema.table", name)
	}
	return offsetTable{
		schema: pgx.Identifier{schema}.Sanitize(),
		ident:  pgx.Identifier{schema, table}.Sanitize(),
		raw:    name,
	}, nil
}

const createOffsetsSQL = `CREATE SCHEMA IF NOT EXISTS %s;
CREATE TABLE IF NOT EXISTS %s (
	consumer_group text        NOT NULL,
	topic          text        NOT NULL,
	partition      integer     NOT NULL,
	next_offset    bigint      NOT NULL CHECK (next_offset >= 0),
	updated_at     timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (consumer_group, topic, partition)
)`

// create makes the table when missing. The advisory lock serializes
// concurrent starts, since CREATE ... IF NOT EXISTS can still collide on
// the catalog when two sessions run it at once.
func (t offsetTable) create(ctx context.Context, db *pgxpool.Pool) error {
	err := pg.InTx(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, t.lockKey()); err != nil {
			return fmt.Errorf("locking: %w", err)
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(createOffsetsSQL, t.schema, t.ident))
		return err
	})
	if err != nil {
		return fmt.Errorf("creating offsets table %s: %w", t.raw, err)
	}

	return nil
}

func (t offsetTable) lockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("costplane.kafka.offsets." + t.raw))
	return int64(h.Sum64())
}

const loadOffsetsSQL = `SELECT topic, partition, next_offset FROM %s
WHERE consumer_group = $1 AND topic = ANY($2)`

// load returns the stored offsets of group for topics.
func (t offsetTable) load(
	ctx context.Context, db *pgxpool.Pool, group string, topics []string,
) (map[string]map[int32]int64, error) {
	rows, err := db.Query(ctx, fmt.Sprintf(loadOffsetsSQL, t.ident), group, topics)
	if err != nil {
		return nil, fmt.Errorf("reading stored offsets: %w", err)
	}

	out := make(map[string]map[int32]int64)
	var (
		topic     string
		partition int32
		next      int64
	)
	_, err = pgx.ForEachRow(rows, []any{&topic, &partition, &next}, func() error {
		if out[topic] == nil {
			out[topic] = make(map[int32]int64)
		}
		out[topic][partition] = next
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading stored offsets: %w", err)
	}

	return out, nil
}

// advanceOffsetSQL moves one partition's offset from prev to next. The
// WHERE makes it a compare-and-set: when another member has written the
// row since this one read it, nothing is written and the batch is fenced.
// With prev = noOffset the row must not exist yet, since stored offsets
// are never negative.
const advanceOffsetSQL = `INSERT INTO %s AS o (consumer_group, topic, partition, next_offset)
VALUES ($1, $2, $3, $4)
ON CONFLICT (consumer_group, topic, partition)
DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
WHERE o.next_offset = $5`

// offsetMove is one partition's step in a batch.
type offsetMove struct {
	tp   topicPartition
	prev int64 // stored before the batch, or noOffset
	next int64
}

// errFenced means a compare-and-set found another member's offset.
var errFenced = errors.New("stored offsets moved under the batch")

// advance writes moves in tx, in one round trip, and returns the
// partitions whose stored offset was not the expected one.
func (t offsetTable) advance(
	ctx context.Context, tx pgx.Tx, group string, moves []offsetMove,
) ([]topicPartition, error) {
	sql := fmt.Sprintf(advanceOffsetSQL, t.ident)
	b := &pgx.Batch{}
	for _, m := range moves {
		b.Queue(sql, group, m.tp.topic, m.tp.partition, m.next, m.prev)
	}

	br := tx.SendBatch(ctx, b)
	var fenced []topicPartition
	for _, m := range moves {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close() // the Exec error is the one that matters
			return nil, fmt.Errorf("storing offset of %s: %w", m.tp, err)
		}
		if tag.RowsAffected() != 1 {
			fenced = append(fenced, m.tp)
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("storing offsets: %w", err)
	}

	return fenced, nil
}

type topicPartition struct {
	topic     string
	partition int32
}

func (tp topicPartition) String() string {
	return fmt.Sprintf("%s/%d", tp.topic, tp.partition)
}
