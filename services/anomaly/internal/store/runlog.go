package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/services/anomaly/internal/detect"
)

// RunLogEntry is what one batch writes of one partition's open runs:
// the runs it changed and those it closed, or, for a snapshot, every
// open run of the partition.
type RunLogEntry struct {
	Partition int32
	Snapshot  bool
	Put       []*detect.Run
	Closed    []*detect.Run
}

// runLogVersion starts every encoded log entry.
const runLogVersion = 1

var errCorruptLog = errors.New("stored run log entry is corrupt")

const (
	clearRunLogSQL = `DELETE FROM anomaly.run_log WHERE partition = ANY($1)`
	clearRunsSQL   = `DELETE FROM anomaly.runs WHERE partition = ANY($1)`
	appendRunLog   = `INSERT INTO anomaly.run_log (partition, snapshot, state)
SELECT * FROM unnest($1::integer[], $2::boolean[], $3::bytea[])`
)

// WriteRunLog appends entries to their partitions' logs. A snapshot
// first removes what the partition's log and anomaly.runs held.
func WriteRunLog(ctx context.Context, db DB, entries []RunLogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	slices.SortFunc(entries, func(a, b RunLogEntry) int { return int(a.Partition - b.Partition) })
	var snapshots []int32
	parts, snaps := make([]int32, len(entries)), make([]bool, len(entries))
	states := make([][]byte, len(entries))
	for i, e := range entries {
		parts[i], snaps[i], states[i] = e.Partition, e.Snapshot, encodeRunLog(e)
		if e.Snapshot {
			snapshots = append(snapshots, e.Partition)
		}
	}
	if len(snapshots) > 0 {
		if _, err := db.Exec(ctx, clearRunLogSQL, snapshots); err != nil {
			return fmt.Errorf("compacting the run log: %w", err)
		}
		if _, err := db.Exec(ctx, clearRunsSQL, snapshots); err != nil {
			return fmt.Errorf("compacting the run log: %w", err)
		}
	}
	if _, err := db.Exec(ctx, appendRunLog, parts, snaps, states); err != nil {
		return fmt.Errorf("appending to the run log: %w", err)
	}
	return nil
}

// encodeRunLog lays an entry out as: version, count of runs, each run's
// tenant, key and encoded state, count of closed runs, each closed run's
// tenant and key. Strings and states are length-prefixed.
func encodeRunLog(e RunLogEntry) []byte {
	b := binary.AppendUvarint(nil, runLogVersion)
	b = binary.AppendUvarint(b, uint64(len(e.Put)))
	var state []byte
	for _, r := range e.Put {
		b = appendString(b, r.Tenant)
		b = appendString(b, r.Key)
		state = r.Encode(state[:0])
		b = binary.AppendUvarint(b, uint64(len(state)))
		b = append(b, state...)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Closed)))
	for _, r := range e.Closed {
		b = appendString(b, r.Tenant)
		b = appendString(b, r.Key)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

const loadRunLogSQL = `SELECT partition, snapshot, state FROM anomaly.run_log
WHERE partition = ANY($1) ORDER BY partition, seq`

// loadRunLog applies the logs of partitions, in order, to runs (by
// partition, then key), and returns how many entries each log has
// since its latest snapshot.
func loadRunLog(
	ctx context.Context, db DB, partitions []int32, runs map[int32]map[detect.RunKey]*detect.Run,
) (map[int32]int, error) {
	rows, err := db.Query(ctx, loadRunLogSQL, partitions)
	if err != nil {
		return nil, fmt.Errorf("loading the run log: %w", err)
	}
	entries := make(map[int32]int, len(partitions))
	var (
		part     int32
		snapshot bool
		state    []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&part, &snapshot, &state}, func() error {
		if snapshot || runs[part] == nil {
			runs[part] = make(map[detect.RunKey]*detect.Run)
			entries[part] = 0
		}
		entries[part]++
		return applyRunLog(runs[part], part, state)
	})
	if err != nil {
		return nil, fmt.Errorf("loading the run log of partition %d: %w", part, err)
	}
	return entries, nil
}

// applyRunLog applies one encoded entry of partition part to runs.
func applyRunLog(runs map[detect.RunKey]*detect.Run, part int32, b []byte) error {
	rd := logReader{b: b}
	if rd.uvarint() != runLogVersion {
		return errCorruptLog
	}
	for n := rd.uvarint(); n > 0 && rd.err == nil; n-- {
		tenant, key := rd.str(), rd.str()
		state := rd.bytes()
		if rd.err != nil {
			break
		}
		r, err := detect.DecodeRun(tenant, key, part, state)
		if err != nil {
			return fmt.Errorf("run %s/%s: %w", tenant, key, err)
		}
		runs[detect.RunKey{Tenant: tenant, Run: key}] = r
	}
	for n := rd.uvarint(); n > 0 && rd.err == nil; n-- {
		k := detect.RunKey{Tenant: rd.str(), Run: rd.str()}
		delete(runs, k)
	}
	return rd.err
}

// logReader reads what encodeRunLog wrote; the first fault sticks.
type logReader struct {
	b   []byte
	err error
}

func (r *logReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorruptLog
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *logReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errCorruptLog
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *logReader) str() string { return string(r.bytes()) }
