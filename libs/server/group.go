package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Runner is a long-lived component: it works until ctx ends, then stops and
// returns.
type Runner interface {
	Run(ctx context.Context) error
}

// RunFunc adapts a function to Runner.
type RunFunc func(ctx context.Context) error

// Run calls f.
func (f RunFunc) Run(ctx context.Context) error {
	return f(ctx)
}

// Group runs components together. When the parent context ends or any
// component returns, the group stops the others in reverse order of Add, so
// that what was started first (a database pool, a gRPC server) outlives what
// depends on it (a gateway in front of it). Each component is given at most
// the group's stop timeout to return.
type Group struct {
	logger  *slog.Logger
	timeout time.Duration
	members []member
}

type member struct {
	name string
	r    Runner
}

type started struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// NewGroup returns an empty group whose members each get stopTimeout to
// return once asked to stop.
func NewGroup(logger *slog.Logger, stopTimeout time.Duration) *Group {
	return &Group{logger: logger, timeout: stopTimeout}
}

// Add appends a component; name identifies it in logs and errors.
func (g *Group) Add(name string, r Runner) {
	g.members = append(g.members, member{name: name, r: r})
}

// Run starts every component and returns once all have stopped or timed
// out. The result is the first error, other than ctx's own cancellation,
// that a component returned, prefixed with its name.
func (g *Group) Run(ctx context.Context) error {
	// Members get a context of their own so that they stop one by one, in
	// order, rather than all at once when the parent ends.
	base := context.WithoutCancel(ctx)
	exited := make(chan *started, len(g.members))
	all := make([]*started, 0, len(g.members))
	for _, m := range g.members {
		mctx, cancel := context.WithCancel(base)
		s := &started{name: m.name, cancel: cancel, done: make(chan struct{})}
		all = append(all, s)
		go func() {
			s.err = m.r.Run(mctx)
			close(s.done)
			exited <- s
		}()
	}

	var first error
	select {
	case <-ctx.Done():
	case s := <-exited:
		first = g.note(s, nil)
		g.logger.Info("component stopped; stopping the rest", slog.String("component", s.name))
	}

	for i := len(all) - 1; i >= 0; i-- {
		first = g.stop(all[i], first)
	}

	return first
}

func (g *Group) stop(s *started, first error) error {
	s.cancel()

	timer := time.NewTimer(g.timeout)
	defer timer.Stop()
	select {
	case <-s.done:
		return g.note(s, first)
	case <-timer.C:
		g.logger.Error("component did not stop in time",
			slog.String("component", s.name), slog.Duration("timeout", g.timeout))
		if first == nil {
			first = fmt.Errorf("stopping %s: not stopped within %s", s.name, g.timeout)
		}
		return first
	}
}

// note returns first, or s's error when first is nil and s failed.
func (g *Group) note(s *started, first error) error {
	if first != nil || s.err == nil || errors.Is(s.err, context.Canceled) {
		return first
	}
	return fmt.Errorf("%s: %w", s.name, s.err)
}
