package detect

import (
	"encoding/binary"
	"errors"
	"maps"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// Run is what the detectors know of one run while it is open.
type Run struct {
	Tenant    string
	Key       string
	Partition int32

	Session  string
	App      string
	Agent    string
	Currency string
	Cost     int64
	Steps    int64
	// First and Last are event times in Unix nanoseconds.
	First, Last int64
	// Done is set once the run's top-level agent step arrived: the run
	// has ended, and only stragglers may follow.
	Done bool

	Tools    map[string]int64
	Requests map[uint64]int64
	// Seen holds hashes of the events counted, so that a duplicate is
	// not counted twice.
	Seen map[uint64]struct{}

	// RunawaySeverity and RunawayActual describe the last runaway
	// finding, so that only a material change reports again.
	RunawaySeverity eventv1.Severity
	RunawayActual   int64
	// LoopCounts holds, per loop pattern, the count last reported.
	LoopCounts map[string]int64
	// Alerted keeps the run out of the baselines.
	Alerted bool

	// Pending holds agent-series spend that waits for the agent.
	Pending map[PendingSeries]Amount

	// persisted is set when storage holds the run.
	persisted bool
}

// PendingSeries is a spend point of a series that includes the agent,
// recorded before the run's agent was known. Values has the other
// dimensions' values, with "" where the agent goes.
type PendingSeries struct {
	Set    string // the dimension set, comma-joined
	Values string // its values, joined by unitSep
	Bucket int64  // Unix seconds of the 5-minute bucket
}

const unitSep = "\x1f"

// Amount is spend in one series point.
type Amount struct {
	Cost   int64
	Events int64
}

func (r *Run) clone() *Run {
	c := *r
	c.Tools = maps.Clone(r.Tools)
	c.Requests = maps.Clone(r.Requests)
	c.Seen = maps.Clone(r.Seen)
	c.LoopCounts = maps.Clone(r.LoopCounts)
	c.Pending = maps.Clone(r.Pending)
	return &c
}

// Persisted reports whether storage holds the run.
func (r *Run) Persisted() bool { return r.persisted }

// MarkPersisted records that storage holds the run.
func (r *Run) MarkPersisted() { r.persisted = true }

// MaxTool returns the calls of the run's most called tool.
func (r *Run) MaxTool() int64 {
	var m int64
	for _, c := range r.Tools {
		m = max(m, c)
	}
	return m
}

// encodingVersion starts every encoded run.
const encodingVersion = 1

// errCorrupt means a stored run cannot be read.
var errCorrupt = errors.New("stored run state is corrupt")

// Encode appends the run's state to dst, maps in no particular order.
// Tenant, key and partition are stored beside it, not in it.
func (r *Run) Encode(dst []byte) []byte {
	w := writer{b: dst}
	w.uvarint(encodingVersion)
	w.str(r.Session)
	w.str(r.App)
	w.str(r.Agent)
	w.str(r.Currency)
	w.varint(r.Cost)
	w.varint(r.Steps)
	w.varint(r.First)
	w.varint(r.Last)
	w.bool(r.Done)
	w.uvarint(uint64(r.RunawaySeverity))
	w.varint(r.RunawayActual)
	w.bool(r.Alerted)
	w.strCounts(r.Tools)
	w.uvarint(uint64(len(r.Requests)))
	for k, n := range r.Requests {
		w.fixed64(k)
		w.varint(n)
	}
	w.uvarint(uint64(len(r.Seen)))
	for k := range r.Seen {
		w.fixed64(k)
	}
	w.strCounts(r.LoopCounts)
	w.uvarint(uint64(len(r.Pending)))
	for p, a := range r.Pending {
		w.str(p.Set)
		w.str(p.Values)
		w.varint(p.Bucket)
		w.varint(a.Cost)
		w.varint(a.Events)
	}
	return w.b
}

// DecodeRun reads a run stored by Encode.
func DecodeRun(tenant, key string, partition int32, b []byte) (*Run, error) {
	rd := reader{b: b}
	if rd.uvarint() != encodingVersion {
		return nil, errCorrupt
	}
	r := &Run{Tenant: tenant, Key: key, Partition: partition, persisted: true}
	r.Session, r.App, r.Agent, r.Currency = rd.str(), rd.str(), rd.str(), rd.str()
	r.Cost, r.Steps, r.First, r.Last = rd.varint(), rd.varint(), rd.varint(), rd.varint()
	r.Done = rd.bool()
	r.RunawaySeverity = eventv1.Severity(rd.uvarint())
	r.RunawayActual = rd.varint()
	r.Alerted = rd.bool()
	r.Tools = rd.strCounts()
	if n := rd.count(); n > 0 {
		r.Requests = make(map[uint64]int64, n)
		for range n {
			k := rd.fixed64()
			r.Requests[k] = rd.varint()
		}
	}
	if n := rd.count(); n > 0 {
		r.Seen = make(map[uint64]struct{}, n)
		for range n {
			r.Seen[rd.fixed64()] = struct{}{}
		}
	}
	r.LoopCounts = rd.strCounts()
	if n := rd.count(); n > 0 {
		r.Pending = make(map[PendingSeries]Amount, n)
		for range n {
			p := PendingSeries{Set: rd.str(), Values: rd.str(), Bucket: rd.varint()}
			r.Pending[p] = Amount{Cost: rd.varint(), Events: rd.varint()}
		}
	}
	if rd.err != nil {
		return nil, rd.err
	}
	return r, nil
}

type writer struct{ b []byte }

func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) fixed64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }

func (w *writer) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *writer) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *writer) strCounts(m map[string]int64) {
	w.uvarint(uint64(len(m)))
	for k, n := range m {
		w.str(k)
		w.varint(n)
	}
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) fixed64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if uint64(len(r.b)) < n {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) bool() bool {
	if len(r.b) < 1 {
		r.fail()
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// count reads a length and checks it against what is left, so that a
// corrupt length cannot allocate much.
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *reader) strCounts() map[string]int64 {
	n := r.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]int64, n)
	for range n {
		k := r.str()
		m[k] = r.varint()
	}
	return m
}
