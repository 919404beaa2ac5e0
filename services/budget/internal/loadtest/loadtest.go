// Package loadtest drives calls at a fixed rate and measures their
// latency, for the budget benchmarks and cmd/budget-bench.
//
// The load is open-loop: each call has a due time on a fixed schedule and
// its latency is counted from that time, not from when a worker got to
// it, so a slow answer that delays the calls behind it shows in their
// latency too (no coordinated omission).
package loadtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what a load measured.
type Result struct {
	// Latency runs from each call's due time to its answer; Call from
	// the moment it was sent.
	Latency []time.Duration
	Call    []time.Duration
	Errors  int64
	// Answers counts the calls' answers by the label call returned.
	Answers map[string]int
	Elapsed time.Duration
}

// Rate returns the calls per second achieved.
func (r *Result) Rate() float64 {
	return float64(len(r.Latency)) / r.Elapsed.Seconds()
}

// Run makes n calls at rate per second from workers goroutines. call
// gets the call's index and returns a label of its answer.
func Run(ctx context.Context, rate, n, workers int,
	call func(ctx context.Context, worker, i int) (string, error)) *Result {

	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, n)
	lat := make([]time.Duration, n)
	took := make([]time.Duration, n)
	labels := make([]string, n)
	var errs atomic.Int64

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if wait := time.Until(j.due); wait > 0 {
					time.Sleep(wait)
				}
				sent := time.Now()
				label, err := call(ctx, w, j.i)
				lat[j.i] = time.Since(j.due)
				took[j.i] = time.Since(sent)
				if err != nil {
					errs.Add(1)
					label = "error"
				}
				labels[j.i] = label
			}
		}()
	}

	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := range n {
		jobs <- job{i: i, due: start.Add(time.Duration(i) * interval)}
	}
	close(jobs)
	wg.Wait()

	res := &Result{Latency: lat, Call: took, Errors: errs.Load(),
		Answers: make(map[string]int), Elapsed: time.Since(start)}
	for _, l := range labels {
		res.Answers[l]++
	}
	return res
}

// Quantile returns the q-quantile (0 to 1) of ds by the nearest rank;
// ds is sorted in place.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// Summary describes the distribution of ds in one line; ds is sorted in
// place.
func Summary(name string, ds []time.Duration) string {
	if len(ds) == 0 {
		return name + ": no samples"
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration { return Quantile(ds, p).Round(time.Microsecond) }
	return fmt.Sprintf("%s: n=%d p50=%s p90=%s p99=%s p99.9=%s max=%s", name, len(ds),
		q(0.5), q(0.9), q(0.99), q(0.999), ds[len(ds)-1].Round(time.Microsecond))
}
