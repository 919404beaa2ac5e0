package loadgen_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/services/loadgen"
)

const testSeed = 20261201

// TestTrafficThroughTheReceiver sends generated traffic through the SDK's
// OTLP exporters to the real receiver of services/ingest-otlp, and
// outcomes to the real ingest API, and reads what reached Kafka.
func TestTrafficThroughTheReceiver(t *testing.T) {
	ids := map[string][]string{}
	for _, protocol := range []string{loadgen.ProtocolGRPC, loadgen.ProtocolHTTP} {
		t.Run(protocol, func(t *testing.T) {
			s := startStack(t)
			cfg := loadgen.Config{
				OTLPEndpoint: s.otlpGRPC, Protocol: protocol, APIEndpoint: s.api,
				Outcomes: true, APIKey: testKey, KeyHeader: "authorization",
				Insecure: true, Rate: 500, Count: 80, Seed: testSeed,
			}
			if protocol == loadgen.ProtocolHTTP {
				// A URL, and the key in the plain header, as a collector
				// config would have it.
				cfg.OTLPEndpoint = "http://" + s.otlpHTTP + "/v1/traces"
				cfg.KeyHeader = "x-costplane-key"
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stats, err := loadgen.Generate(ctx, cfg, log.Discard())
			if err != nil {
				t.Fatalf("Generate: %v (stats %+v)", err, stats)
			}

			events := usageEvents(t, readTopic(t, s.brokers, kafka.TopicUsage))
			checkEvents(t, stats, events)
			checkOutcomes(t, stats, events,
				outcomes(t, readTopic(t, s.brokers, kafka.TopicOutcomes)))
			for _, ev := range events {
				ids[protocol] = append(ids[protocol], ev.GetEventId())
			}
			slices.Sort(ids[protocol])
		})
	}

	// The same seed made the same spans, whatever the transport.
	if diff := cmp.Diff(ids[loadgen.ProtocolGRPC], ids[loadgen.ProtocolHTTP]); diff != "" {
		t.Errorf("event ids of the same seed over grpc and http (-grpc +http):\n%s", diff)
	}
}

// found tallies what the events carry.
type found struct {
	kinds     map[eventv1.StepKind]int
	providers map[string]int
	buckets   map[eventv1.QuantityKind]int
	models    map[string]string // model -> inference profile
	agents    map[string]bool
	apps      map[string]bool
}

func checkEvents(t *testing.T, stats loadgen.Stats, events []*eventv1.UsageEvent) {
	t.Helper()
	if stats.Runs != 80 || len(events) != stats.Spans || stats.SpansExported != stats.Spans {
		t.Fatalf("%d events on Kafka for %d runs, %d spans (%d exported); want one per span",
			len(events), stats.Runs, stats.Spans, stats.SpansExported)
	}
	f := found{
		kinds: map[eventv1.StepKind]int{}, providers: map[string]int{},
		buckets: map[eventv1.QuantityKind]int{}, models: map[string]string{},
		agents: map[string]bool{}, apps: map[string]bool{},
	}
	for _, ev := range events {
		checkEvent(t, ev)
		f.add(ev)
	}

	if f.kinds[eventv1.StepKind_STEP_KIND_AGENT] != stats.Runs {
		t.Errorf("%d agent steps for %d runs", f.kinds[eventv1.StepKind_STEP_KIND_AGENT], stats.Runs)
	}
	want := []string{"anthropic", "aws.bedrock", "gcp.gemini", "openai"}
	if diff := cmp.Diff(want, sortedKeys(f.providers)); diff != "" {
		t.Errorf("providers of model calls (-want +got):\n%s", diff)
	}
	if got := f.models["anthropic.claude-sonnet-4-5-20250929-v1:0"]; got != "cross-region" {
		t.Errorf("bedrock profile id resolved to profile %q, want cross-region", got)
	}
	f.checkCoverage(t)
}

func checkEvent(t *testing.T, ev *eventv1.UsageEvent) {
	t.Helper()
	ok := ev.GetTenantId() == "demo" &&
		ev.GetSource().GetKind() == eventv1.SourceKind_SOURCE_KIND_OTLP &&
		strings.HasPrefix(ev.GetSessionId(), "conv_") &&
		strings.HasPrefix(ev.GetCustomerId(), "cust_") &&
		strings.HasPrefix(ev.GetUserId(), "usr_") &&
		ev.GetApp() != "" && ev.GetEnvironment() != "" && ev.GetRunId() == ev.GetTraceId()
	if !ok {
		t.Fatalf("event lacks tenant, source, session, customer, user, app or run: %v", ev)
	}
	if ev.GetStepKind() == eventv1.StepKind_STEP_KIND_AGENT &&
		(ev.GetAgent().GetName() == "" || !strings.HasPrefix(ev.GetAgent().GetId(), "agt_")) {
		t.Fatalf("agent step without its agent: %v", ev)
	}
	if ev.GetStepKind() == eventv1.StepKind_STEP_KIND_TOOL && ev.GetToolName() == "" {
		t.Fatalf("tool step without its tool: %v", ev)
	}
	ok = ev.GetStatus() == eventv1.CallStatus_CALL_STATUS_ERROR || ev.GetDedupKey() != ""
	if ev.GetStepKind() == eventv1.StepKind_STEP_KIND_LLM && !ok {
		t.Fatalf("model call without a dedup key from its response id: %v", ev)
	}
}

func (f *found) add(ev *eventv1.UsageEvent) {
	f.kinds[ev.GetStepKind()]++
	f.apps[ev.GetApp()] = true
	if ev.GetStepKind() == eventv1.StepKind_STEP_KIND_AGENT {
		f.agents[ev.GetAgent().GetName()] = true
	}
	if ev.GetStepKind() != eventv1.StepKind_STEP_KIND_LLM {
		return
	}
	f.providers[ev.GetProvider()]++
	f.models[ev.GetModel()] = ev.GetInferenceProfile()
	for _, q := range ev.GetQuantities() {
		if q.GetAmount() > 0 {
			f.buckets[q.GetKind()]++
		}
	}
}

func (f *found) checkCoverage(t *testing.T) {
	t.Helper()
	for _, k := range []eventv1.QuantityKind{
		eventv1.QuantityKind_QUANTITY_KIND_INPUT, eventv1.QuantityKind_QUANTITY_KIND_OUTPUT,
		eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ,
		eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_5M,
		eventv1.QuantityKind_QUANTITY_KIND_REASONING,
	} {
		if f.buckets[k] == 0 {
			t.Errorf("no event with a %v quantity", k)
		}
	}
	if f.kinds[eventv1.StepKind_STEP_KIND_TOOL] == 0 {
		t.Error("no tool steps")
	}
	if len(f.apps) < 4 || len(f.agents) < 5 {
		t.Errorf("apps %v, agents %v: want at least 4 and 5", f.apps, f.agents)
	}
}

func checkOutcomes(t *testing.T, stats loadgen.Stats, events []*eventv1.UsageEvent,
	outs []*eventv1.Outcome,
) {
	t.Helper()
	if stats.Outcomes == 0 || len(outs) != stats.Outcomes || stats.OutcomesReported != len(outs) {
		t.Fatalf("%d outcomes on Kafka, %d planned, %d reported", len(outs), stats.Outcomes,
			stats.OutcomesReported)
	}
	runs := map[string]*eventv1.UsageEvent{}
	for _, ev := range events {
		if ev.GetStepKind() == eventv1.StepKind_STEP_KIND_AGENT {
			runs[ev.GetRunId()] = ev
		}
	}
	for _, o := range outs {
		run, ok := runs[o.GetRunId()]
		if !ok || o.GetTenantId() != "demo" || o.GetSessionId() != run.GetSessionId() ||
			o.GetAgentId() != run.GetAgent().GetId() || o.GetCustomerId() != run.GetCustomerId() {
			t.Errorf("outcome %v does not match its run %v", o, run)
		}
	}
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestWrongKeyIsReported checks that traffic the receiver refuses is
// reported as incomplete, never as done.
func TestWrongKeyIsReported(t *testing.T) {
	s := startStack(t)
	for _, protocol := range []string{loadgen.ProtocolGRPC, loadgen.ProtocolHTTP} {
		t.Run(protocol, func(t *testing.T) {
			cfg := loadgen.DefaultConfig()
			cfg.Protocol, cfg.OTLPEndpoint = protocol, s.otlpGRPC
			if protocol == loadgen.ProtocolHTTP {
				cfg.OTLPEndpoint = s.otlpHTTP
			}
			cfg.APIEndpoint, cfg.APIKey = s.api, "cp_wrong_key"
			cfg.Rate, cfg.Count, cfg.Seed = 1000, 30, testSeed

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stats, err := loadgen.Generate(ctx, cfg, log.Discard())
			if !errors.Is(err, loadgen.ErrIncomplete) {
				t.Fatalf("Generate with a wrong key = %v, want ErrIncomplete", err)
			}
			if stats.SpansExported != 0 || stats.SpansFailed != stats.Spans ||
				stats.OutcomesFailed != stats.Outcomes {
				t.Errorf("stats %+v: want every span and outcome failed", stats)
			}
		})
	}
}
