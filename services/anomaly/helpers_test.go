package anomaly_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly"
	"github.com/costplane/costplane/services/anomaly/internal/alert"
	"github.com/costplane/costplane/services/anomaly/internal/testdb"
)

// forEachCluster runs fn on kfake, and on the real broker of
// KAFKA_BROKERS when it is set.
func forEachCluster(t *testing.T, fn func(t *testing.T, brokers []string)) {
	t.Helper()
	t.Run("kfake", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatalf("starting kfake: %v", err)
		}
		t.Cleanup(c.Close)
		fn(t, c.ListenAddrs())
	})
	t.Run("kafka", func(t *testing.T) {
		b := os.Getenv("KAFKA_BROKERS")
		if b == "" {
			t.Skip("KAFKA_BROKERS is not set")
		}
		fn(t, strings.Split(b, ","))
	})
}

func unique(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// env is one service under test on its own topics and database.
type env struct {
	t       *testing.T
	brokers []string
	kcfg    kafka.Config
	pool    *pgxpool.Pool
	cfg     anomaly.Settings
	prod    *kgo.Client

	mu       sync.Mutex
	consumed map[int32]int64 // next offset per partition, as committed
	produced map[int32]int64 // next offset per partition, as produced
}

func newEnv(t *testing.T, brokers []string) *env {
	t.Helper()
	pool := testdb.New(t)
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers = brokers
	kcfg.TopicPartitions = 3
	kcfg.SessionTimeout = 6 * time.Second
	kcfg.Topics.UsagePriced = unique("test.priced")
	kcfg.Topics.Anomalies = unique("test.anomalies")
	kcfg.Topics.UsageDLQ = unique("test.dlq")

	cl, err := kafka.NewClient(kcfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = kafka.EnsureTopics(ctx, cl, kcfg.TopicSpec(kcfg.Topics.UsagePriced),
		kcfg.TopicSpec(kcfg.Topics.Anomalies), kcfg.TopicSpec(kcfg.Topics.UsageDLQ))
	if err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}

	cfg := anomaly.DefaultSettings()
	cfg.Group = unique("test-anomaly")
	cfg.TransactionalID = unique("test-anomaly-publisher")
	cfg.MinBaseline = 10
	cfg.PublishPoll = 200 * time.Millisecond
	cfg.EvalInterval = 200 * time.Millisecond
	return &env{t: t, brokers: brokers, kcfg: kcfg, pool: pool, cfg: cfg, prod: cl}
}

// start runs the service until the returned stop is called.
func (e *env) start() (*anomaly.Service, func()) {
	e.t.Helper()
	svc, err := anomaly.New(e.cfg, anomaly.Deps{
		Pool: e.pool, Kafka: e.kcfg, Logger: log.Discard(),
		OnCommit: func(c kafka.Commit) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.consumed == nil {
				e.consumed = map[int32]int64{}
			}
			for p, next := range c.Offsets[e.kcfg.Topics.UsagePriced] {
				e.consumed[p] = max(e.consumed[p], next)
			}
		},
	})
	if err != nil {
		e.t.Fatalf("anomaly.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}
	e.t.Cleanup(stop)
	return svc, stop
}

func (e *env) produce(evs ...*eventv1.PricedUsage) {
	e.t.Helper()
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		u := ev.GetUsage()
		key := u.GetTenantId() + "/" + u.GetRunId()
		r, err := kafka.ProtoRecord(e.kcfg.Topics.UsagePriced, []byte(key), ev)
		if err != nil {
			e.t.Fatalf("ProtoRecord: %v", err)
		}
		recs[i] = r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatalf("producing: %v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.produced == nil {
		e.produced = map[int32]int64{}
	}
	for _, r := range recs {
		e.produced[r.Partition] = max(e.produced[r.Partition], r.Offset+1)
	}
}

// settle waits until the service has committed everything produced.
func (e *env) settle() {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		done := true
		for p, end := range e.produced {
			if e.consumed[p] < end {
				done = false
			}
		}
		e.mu.Unlock()
		if done {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("the service did not consume what was produced within a minute")
}

// alerts reads the anomalies topic until cond holds for what was read,
// and returns every record read.
func (e *env) alerts(timeout time.Duration, cond func([]*eventv1.Anomaly) bool) []*eventv1.Anomaly {
	e.t.Helper()
	cl, err := kafka.NewClient(e.kcfg,
		kgo.ConsumeTopics(e.kcfg.Topics.Anomalies),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		e.t.Fatalf("NewClient: %v", err)
	}
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*eventv1.Anomaly
	for !cond(out) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Fatalf("waiting for anomalies: %v; read %d: %v", ctx.Err(), len(out), summaries(out))
		}
		fs.EachRecord(func(r *kgo.Record) {
			a := &eventv1.Anomaly{}
			if err := protojson.Unmarshal(r.Value, a); err != nil {
				e.t.Errorf("record is not canonical Anomaly JSON: %v: %s", err, r.Value)
				return
			}
			if id, _ := kafka.Header(r, alert.HeaderAnomalyID); id != a.GetAnomalyId() {
				e.t.Errorf("header %s = %q, want %q", alert.HeaderAnomalyID, id, a.GetAnomalyId())
			}
			out = append(out, a)
		})
	}
	return out
}

func summaries(as []*eventv1.Anomaly) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = fmt.Sprintf("%s %s rev %d %s", a.GetKind(), a.GetAnomalyId(), a.GetRevision(),
			a.GetSummary())
	}
	return out
}

// run builds the events of one agent run as OTLP delivers them: steps
// first, the top-level agent step last, with run id, session and app on
// every event and the agent only on the agent step.
type run struct {
	tenant, id, session, app, agent string
	start                           time.Time
	steps                           []step
}

type step struct {
	kind   eventv1.StepKind
	tool   string
	model  string
	prompt int64
	cost   int64
	failed bool
}

func llm(cost, prompt int64) step {
	return step{kind: eventv1.StepKind_STEP_KIND_LLM, model: "gpt-4o", prompt: prompt, cost: cost}
}

func tool(name string) step {
	return step{kind: eventv1.StepKind_STEP_KIND_TOOL, tool: name}
}

func (r run) events() []*eventv1.PricedUsage {
	var out []*eventv1.PricedUsage
	at := r.start
	for i, s := range r.steps {
		at = at.Add(time.Second)
		ev := r.event(fmt.Sprintf("%s-%03d", r.id, i), at, s.kind)
		ev.Usage.ParentStepId = r.id + "-agent"
		ev.Usage.ToolName = s.tool
		if s.kind == eventv1.StepKind_STEP_KIND_LLM {
			ev.Usage.Provider, ev.Usage.Model = "openai", s.model
			ev.Usage.Quantities = []*eventv1.Quantity{{
				Kind: eventv1.QuantityKind_QUANTITY_KIND_INPUT, Unit: eventv1.Unit_UNIT_TOKENS,
				Amount: s.prompt,
			}}
			ev.EffectiveCost = &eventv1.Money{CurrencyCode: "USD", Nanos: s.cost}
		}
		if s.failed {
			ev.Usage.Status = eventv1.CallStatus_CALL_STATUS_ERROR
		}
		out = append(out, ev)
	}
	root := r.event(r.id+"-agent", at.Add(time.Second), eventv1.StepKind_STEP_KIND_AGENT)
	root.Usage.Agent = &eventv1.Agent{Name: r.agent}
	return append(out, root)
}

func (r run) event(id string, at time.Time, kind eventv1.StepKind) *eventv1.PricedUsage {
	return &eventv1.PricedUsage{
		PricedId: id,
		Usage: &eventv1.UsageEvent{
			EventId: id, TenantId: r.tenant, RunId: r.id, TraceId: r.id, SessionId: r.session,
			App: r.app, StepKind: kind, StepId: id,
			StartTime: timestamppb.New(at.Add(-500 * time.Millisecond)),
			EndTime:   timestamppb.New(at),
		},
		PricingStatus: eventv1.PricingStatus_PRICING_STATUS_PRICED,
	}
}
