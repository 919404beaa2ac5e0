package kafka

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff waits exponentially longer on each call, from min up to max,
// with jitter so that a fleet restarting together does not retry in step.
type backoff struct {
	min, max time.Duration
	next     time.Duration
}

// wait sleeps for the next delay or until ctx is done.
func (b *backoff) wait(ctx context.Context) error {
	d := b.delay()
	t := time.NewTimer(d)
	defer t.Stop()

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (b *backoff) delay() time.Duration {
	if b.next < b.min {
		b.next = b.min
	}
	d := b.next
	b.next = min(2*b.next, b.max)
	// Up to a quarter less, never more: max stays a true ceiling.
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// reset makes the next wait the shortest again, after a success.
func (b *backoff) reset() { b.next = 0 }
