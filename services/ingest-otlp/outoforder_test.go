package ingestotlp

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// TestOutOfOrderTrace splits one agent trace over three OTLP requests and
// sends them through the receiver in end order (agent span last, as a
// BatchSpanProcessor delivers it) and in reverse order, with the ingest
// trace cache on and off. A consumer reads the topic through a TraceJoin,
// as the downstream services do, and every step must end up attributed to
// the right agent, run and session.
func TestOutOfOrderTrace(t *testing.T) {
	tests := []struct {
		name    string
		reverse bool
		cache   bool
		// stampedAtIngest: the chat spans reach Kafka already attributed.
		stampedAtIngest bool
	}{
		{"end order, cache off: the join attributes", false, false, false},
		{"end order, cache on: the join attributes", false, true, false},
		{"reverse order, cache off: the join attributes", true, false, false},
		{"reverse order, cache on: ingest stamps at once", true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := startStack(t, stackOpts{mutate: func(c *Config) {
				if !tc.cache {
					c.TraceCacheTraces = 0
				}
			}})
			spans, names := agentTrace(t)
			batches := [][]sdktrace.ReadOnlySpan{spans[:2], spans[2:4], spans[4:]}
			if tc.reverse {
				slices.Reverse(batches)
			}
			exportBatches(t, st.httpAddr, batches)

			evs := st.readEvents(t, len(wantAgentTrace), 10*time.Second)
			first := byName(evs, names)["chat gpt-4o"]
			if stamped := first.GetAgent().GetName() == "support"; stamped != tc.stampedAtIngest {
				t.Errorf("chat stamped with its agent at ingest: %v, want %v", stamped,
					tc.stampedAtIngest)
			}

			checkAgentTrace(t, consumeWithJoin(evs), names, spans[0].SpanContext().TraceID(),
				wantAfterJoin(tc.reverse && tc.cache))
		})
	}
}

// wantAfterJoin is wantAgentTrace, except that the LLM call under the
// skipped GET /kb span keeps that span as its parent unless the receiver
// saw GET /kb first and could link it to the agent.
func wantAfterJoin(linkedAtIngest bool) map[string]stepView {
	out := map[string]stepView{}
	for k, v := range wantAgentTrace {
		out[k] = v
	}
	if !linkedAtIngest {
		v := out["chat gpt-4o-mini"]
		v.Parent = "GET /kb"
		out["chat gpt-4o-mini"] = v
	}
	return out
}

func exportBatches(t *testing.T, addr string, batches [][]sdktrace.ReadOnlySpan) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(addr),
		otlptracehttp.WithInsecure(),
		otlptracehttp.WithHeaders(map[string]string{"authorization": "Bearer " + testKey}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = exp.Shutdown(ctx) }()
	for i, b := range batches {
		if err := exp.ExportSpans(ctx, b); err != nil {
			t.Fatalf("exporting batch %d: %v", i, err)
		}
	}
}

// consumeWithJoin plays a downstream consumer: it stores each event in
// topic order and applies the corrections the join reports.
func consumeWithJoin(evs []keyedEvent) []keyedEvent {
	j := usage.NewTraceJoin(usage.JoinConfig{})
	stored := map[string]*eventv1.UsageEvent{}
	for _, e := range evs {
		for _, c := range j.Add(e.ev) {
			ev := stored[c.EventID]
			ev.Agent, ev.SessionId, ev.ParentStepId = c.Agent, c.SessionID, c.ParentStepID
		}
		stored[e.ev.GetEventId()] = e.ev
	}
	return evs
}

func byName(evs []keyedEvent, names map[string]string) map[string]*eventv1.UsageEvent {
	out := map[string]*eventv1.UsageEvent{}
	for _, e := range evs {
		out[names[e.ev.GetStepId()]] = e.ev
	}
	return out
}
