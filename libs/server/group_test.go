package server_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
)

// recorder notes the order in which components stop.
type recorder struct {
	mu      sync.Mutex
	stopped []string
}

func (r *recorder) component(name string, fail error) server.Runner {
	return server.RunFunc(func(ctx context.Context) error {
		if fail != nil {
			return fail
		}
		<-ctx.Done()
		r.mu.Lock()
		r.stopped = append(r.stopped, name)
		r.mu.Unlock()
		return ctx.Err()
	})
}

func TestGroupStopsInReverseOrder(t *testing.T) {
	var rec recorder
	g := server.NewGroup(log.Discard(), time.Second)
	g.Add("db", rec.component("db", nil))
	g.Add("grpc", rec.component("grpc", nil))
	g.Add("gateway", rec.component("gateway", nil))

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := g.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if diff := cmp.Diff([]string{"gateway", "grpc", "db"}, rec.stopped); diff != "" {
		t.Errorf("stop order mismatch (-want +got):\n%s", diff)
	}
}

func TestGroupFirstErrorStopsTheRest(t *testing.T) {
	var rec recorder
	boom := errors.New("boom")
	g := server.NewGroup(log.Discard(), time.Second)
	g.Add("db", rec.component("db", nil))
	g.Add("broken", rec.component("broken", boom))

	err := g.Run(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want it to wrap %v", err, boom)
	}
	if diff := cmp.Diff([]string{"db"}, rec.stopped); diff != "" {
		t.Errorf("stopped mismatch (-want +got):\n%s", diff)
	}
}

func TestGroupBoundsAStuckComponent(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	g := server.NewGroup(log.Discard(), 100*time.Millisecond)
	g.Add("stuck", server.RunFunc(func(context.Context) error {
		<-release
		return nil
	}))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	began := time.Now()
	if err := g.Run(ctx); err == nil {
		t.Errorf("Run = nil, want an error naming the stuck component")
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("Run took %s despite a 100ms stop timeout", took)
	}
}
