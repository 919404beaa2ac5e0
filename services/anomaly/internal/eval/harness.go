package eval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/kafka"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly"
)

// Config says where the evaluation runs.
type Config struct {
	Workload WorkloadConfig
	// DatabaseURL names the PostgreSQL server; the harness creates a
	// database of its own there and drops it at the end unless Keep.
	DatabaseURL string
	Keep        bool
	// Brokers empty means an in-process kfake broker.
	Brokers    []string
	Partitions int32
	// MaxLag bounds how many records the producer runs ahead of the
	// consumer, so that latency is measured in a stream the detector
	// keeps up with rather than in a backlog.
	MaxLag   int
	Settings anomaly.Settings
	Log      *slog.Logger
	// Verbose asks for every label in the report.
	Verbose bool
}

// Observed is one anomaly record read from the topic.
type Observed struct {
	Anomaly *eventv1.Anomaly
	At      time.Time // record timestamp
}

// Run generates the workload, sends it through the service and scores
// what the service published.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	w := Generate(cfg.Workload)
	cfg.Log.Info("workload generated", "events", len(w.Events), "labels", len(w.Labels),
		"from", w.Start, "to", w.End)

	pool, drop, err := newDatabase(ctx, cfg.DatabaseURL, cfg.Keep, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer drop()

	kcfg, stopKafka, err := kafkaConfig(cfg)
	if err != nil {
		return nil, err
	}
	defer stopKafka()

	h := &harness{cfg: cfg, w: w, pool: pool, kcfg: kcfg, sent: map[int32]int64{},
		done: map[int32]int64{}, stamps: map[int32][]stamp{}}
	return h.run(ctx)
}

func newDatabase(ctx context.Context, url string, keep bool, log *slog.Logger) (
	*pgxpool.Pool, func(), error,
) {
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the database server: %w", err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "anomaly_eval_" + hex.EncodeToString(b)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		return nil, nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the database url: %w", err)
	}
	cfg.ConnConfig.Database = name
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", name, err)
	}
	drop := func() {
		pool.Close()
		if keep {
			log.Info("database kept", "database", name)
			return
		}
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			log.Warn("dropping the evaluation database", "error", err)
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	}
	if err := anomaly.Migrate(ctx, pool); err != nil {
		drop()
		return nil, nil, err
	}
	return pool, drop, nil
}

func kafkaConfig(cfg Config) (kafka.Config, func(), error) {
	kcfg := kafka.DefaultConfig()
	kcfg.TopicPartitions = cfg.Partitions
	kcfg.SessionTimeout = 10 * time.Second
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	kcfg.Topics.UsagePriced = "eval.priced." + suffix
	kcfg.Topics.Anomalies = "eval.anomalies." + suffix
	kcfg.Topics.UsageDLQ = "eval.dlq." + suffix
	stop := func() {}
	if len(cfg.Brokers) > 0 {
		kcfg.Brokers = cfg.Brokers
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return kcfg, nil, fmt.Errorf("starting kfake: %w", err)
		}
		kcfg.Brokers, stop = c.ListenAddrs(), c.Close
	}
	cl, err := kafka.NewClient(kcfg)
	if err != nil {
		stop()
		return kcfg, nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = kafka.EnsureTopics(ctx, cl, kcfg.TopicSpec(kcfg.Topics.UsagePriced),
		kcfg.TopicSpec(kcfg.Topics.Anomalies), kcfg.TopicSpec(kcfg.Topics.UsageDLQ))
	if err != nil {
		stop()
		return kcfg, nil, err
	}
	return kcfg, stop, nil
}

// stamp is what the harness remembers of one labeled event: when it
// reached Kafka and what it added to its run.
type stamp struct {
	at     time.Time
	cost   int64
	tool   string
	prompt int64
	failed bool
	model  bool
}

type harness struct {
	cfg  Config
	w    *Workload
	pool *pgxpool.Pool
	kcfg kafka.Config

	mu     sync.Mutex
	sent   map[int32]int64 // next offset produced, per partition
	done   map[int32]int64 // next offset committed by the service
	stamps map[int32][]stamp

	observed []Observed
}

func (h *harness) run(ctx context.Context) (*Report, error) {
	svc, err := anomaly.New(h.cfg.Settings, anomaly.Deps{
		Pool: h.pool, Kafka: h.kcfg, Logger: h.cfg.Log, OnCommit: h.committed,
	})
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	svcDone := make(chan error, 1)
	go func() { svcDone <- svc.Run(sctx) }()
	collected := make(chan error, 1)
	go func() { collected <- h.collect(sctx) }()

	began := time.Now()
	if err := h.produce(ctx); err != nil {
		return nil, err
	}
	if err := h.waitConsumed(ctx); err != nil {
		return nil, err
	}
	consumed := time.Since(began)
	h.cfg.Log.Info("workload consumed", "events", len(h.w.Events), "took", consumed)
	if err := h.waitSettled(ctx); err != nil {
		return nil, err
	}

	stop()
	if err := <-svcDone; err != nil {
		return nil, err
	}
	if err := <-collected; err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	r := score(h.w, h.observed, h.stamps)
	r.Events, r.Consumed = len(h.w.Events), consumed
	return r, nil
}

func (h *harness) committed(c kafka.Commit) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for p, next := range c.Offsets[h.kcfg.Topics.UsagePriced] {
		h.done[p] = max(h.done[p], next)
	}
}

func (h *harness) lag() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for p, end := range h.sent {
		n += max(0, end-h.done[p])
	}
	return n
}

// produce sends the workload in event-time order, at most MaxLag records
// ahead of the service.
func (h *harness) produce(ctx context.Context) error {
	cl, err := kafka.NewClient(h.kcfg, kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()

	const chunk = 2000
	for i := 0; i < len(h.w.Events); i += chunk {
		for h.lag() > int64(h.cfg.MaxLag) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
		evs := h.w.Events[i:min(i+chunk, len(h.w.Events))]
		recs := make([]*kgo.Record, len(evs))
		for j := range evs {
			rec, err := kafka.ProtoRecord(h.kcfg.Topics.UsagePriced,
				[]byte(evs[j].Tenant+"/"+evs[j].Run), evs[j].proto())
			if err != nil {
				return err
			}
			rec.Timestamp = time.Now()
			recs[j] = rec
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("producing the workload: %w", err)
		}
		h.note(evs, recs)
	}
	return nil
}

func (h *harness) note(evs []Event, recs []*kgo.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for j, r := range recs {
		h.sent[r.Partition] = max(h.sent[r.Partition], r.Offset+1)
		e := &evs[j]
		if e.Label == 0 {
			continue
		}
		h.stamps[e.Label] = append(h.stamps[e.Label], stamp{
			at: r.Timestamp, cost: e.Cost, tool: e.Tool, prompt: e.Prompt, failed: e.Failed,
			model: e.Kind == eventv1.StepKind_STEP_KIND_LLM,
		})
	}
}

func (h *harness) waitConsumed(ctx context.Context) error {
	for h.lag() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// waitSettled waits until the spike evaluator has judged every closed
// boundary and the outbox is empty, then a moment for the collector.
func (h *harness) waitSettled(ctx context.Context) error {
	target := h.w.End.Add(-h.cfg.Settings.SpikeLateness).Add(-10 * time.Minute)
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var (
			evaluated time.Time
			outbox    int
		)
		err := h.pool.QueryRow(ctx, `SELECT
			coalesce((SELECT evaluated_to FROM anomaly.evaluator WHERE name = 'spike'), 'epoch'),
			(SELECT count(*) FROM anomaly.outbox)`).Scan(&evaluated, &outbox)
		if err != nil {
			return fmt.Errorf("checking progress: %w", err)
		}
		if !evaluated.Before(target) && outbox == 0 {
			time.Sleep(2 * time.Second)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("the spike evaluator did not catch up within 10 minutes")
}

// collect reads the anomalies topic as a read_committed subscriber would.
func (h *harness) collect(ctx context.Context) error {
	cl, err := kafka.NewClient(h.kcfg,
		kgo.ConsumeTopics(h.kcfg.Topics.Anomalies),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var perr error
		fs.EachRecord(func(r *kgo.Record) {
			a := &eventv1.Anomaly{}
			if err := protojson.Unmarshal(r.Value, a); err != nil {
				perr = fmt.Errorf("an anomaly record is not canonical JSON: %w", err)
				return
			}
			h.mu.Lock()
			h.observed = append(h.observed, Observed{Anomaly: a, At: r.Timestamp})
			h.mu.Unlock()
		})
		if perr != nil {
			return perr
		}
	}
}

// proto renders the event as pricing publishes it.
func (e *Event) proto() *eventv1.PricedUsage {
	id := e.Run + "-" + strconv.Itoa(int(e.Seq))
	at := time.Unix(0, e.At)
	u := &eventv1.UsageEvent{
		EventId: id, TenantId: e.Tenant, RunId: e.Run, TraceId: e.Run, SessionId: e.Session,
		App: e.Agent.app, Project: e.Agent.project, Environment: "production",
		StepKind: e.Kind, StepId: id, ParentStepId: e.Run + "-root", ToolName: e.Tool,
		StartTime: timestamppb.New(at.Add(-300 * time.Millisecond)), EndTime: timestamppb.New(at),
		Source: &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_OTLP, Name: "eval"},
	}
	if e.Root {
		u.StepId, u.ParentStepId = e.Run+"-root", ""
		u.Agent = &eventv1.Agent{Name: e.agentName}
	}
	p := &eventv1.PricedUsage{
		PricedId: id, Usage: u, PricingStatus: eventv1.PricingStatus_PRICING_STATUS_PRICED,
	}
	if e.Kind == eventv1.StepKind_STEP_KIND_LLM {
		u.Provider, u.Model = e.Model.provider, e.Model.name
		u.Quantities = []*eventv1.Quantity{{
			Kind: eventv1.QuantityKind_QUANTITY_KIND_INPUT, Unit: eventv1.Unit_UNIT_TOKENS,
			Amount: e.Prompt,
		}}
		p.EffectiveCost = &eventv1.Money{CurrencyCode: "USD", Nanos: e.Cost}
		if e.Failed {
			u.Status = eventv1.CallStatus_CALL_STATUS_ERROR
		}
	}
	return p
}
