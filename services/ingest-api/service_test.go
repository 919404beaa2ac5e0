package ingestapi_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	ingestv1 "github.com/costplane/costplane/proto/gen/go/costplane/ingest/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/kafka"
)

// published is one record as the tests compare it.
type published struct {
	Key string
	Msg proto.Message
}

func decodeAll[M proto.Message](t *testing.T, recs []*kgo.Record, newMsg func() M) []published {
	t.Helper()
	out := make([]published, len(recs))
	for i, r := range recs {
		m := newMsg()
		// UnmarshalProto also checks the content-type header.
		if err := kafka.UnmarshalProto(r, m); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		out[i] = published{Key: string(r.Key), Msg: m}
	}
	slices.SortFunc(out, func(a, b published) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func TestReportUsagePublishesWhatWasSent(t *testing.T) {
	f := start(t)
	sent := []*eventv1.UsageEvent{
		usageEvent("e-1", "run-1", "sess-1"),
		usageEvent("e-2", "", "sess-1"),
		usageEvent("e-3", "", ""),
	}
	sent[2].TenantId = "acme"
	sent[2].Source = &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_GATEWAY, Name: "proxy"}

	ctx, cancel := withKey(f.ingestKey)
	defer cancel()
	resp, err := f.client.ReportUsage(ctx, &ingestv1.ReportUsageRequest{Events: sent})
	if err != nil {
		t.Fatalf("ReportUsage: %v", err)
	}
	if resp.GetAccepted() != 3 {
		t.Errorf("accepted = %d, want 3", resp.GetAccepted())
	}

	want := make([]published, len(sent))
	for i, ev := range sent {
		w := proto.Clone(ev).(*eventv1.UsageEvent)
		w.TenantId = "acme"
		if w.Source == nil {
			w.Source = &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_API, Name: "api"}
		}
		want[i] = published{Msg: w}
	}
	want[0].Key, want[1].Key, want[2].Key = "acme/run-1", "acme/sess-1", "acme/e-3"
	slices.SortFunc(want, func(a, b published) int { return strings.Compare(a.Key, b.Key) })
	got := decodeAll(t, readTopic(t, f.brokers, kafka.TopicUsage),
		func() *eventv1.UsageEvent { return &eventv1.UsageEvent{} })
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("records on %s (-want +got):\n%s", kafka.TopicUsage, diff)
	}
	if n := counter(t, f.reg, "costplane_ingest_api_accepted_total", "usage", ""); n != 3 {
		t.Errorf("accepted metric = %v, want 3", n)
	}
}

func TestReportUsageRetryWritesTheSameRecords(t *testing.T) {
	f := start(t)
	// The second event has no id: it gets one derived from its content.
	first := &ingestv1.ReportUsageRequest{Events: []*eventv1.UsageEvent{
		usageEvent("e-1", "run-1", ""), usageEvent("", "run-1", ""),
	}}
	second := proto.Clone(first).(*ingestv1.ReportUsageRequest)
	ctx, cancel := withKey(f.ingestKey)
	defer cancel()
	for _, req := range []*ingestv1.ReportUsageRequest{first, second} {
		if _, err := f.client.ReportUsage(ctx, req); err != nil {
			t.Fatalf("ReportUsage: %v", err)
		}
	}

	// Downstream dedup needs each retried event to repeat its key and id
	// with the same content.
	byID := map[string][]published{}
	for _, r := range readTopic(t, f.brokers, kafka.TopicUsage) {
		ev, err := decodeUsage(r)
		if err != nil {
			t.Fatal(err)
		}
		byID[ev.GetEventId()] = append(byID[ev.GetEventId()], published{string(r.Key), ev})
	}
	if len(byID) != 2 || byID["e-1"] == nil {
		t.Fatalf("event ids %v, want e-1 and one derived id", slices.Collect(maps.Keys(byID)))
	}
	for id, copies := range byID {
		if len(copies) != 2 {
			t.Fatalf("event %s written %d times, want 2", id, len(copies))
		}
		if diff := cmp.Diff(copies[0], copies[1], protocmp.Transform()); diff != "" {
			t.Errorf("event %s first and retried (-first +retry):\n%s", id, diff)
		}
	}
}

func decodeUsage(r *kgo.Record) (*eventv1.UsageEvent, error) {
	ev := &eventv1.UsageEvent{}
	if err := kafka.UnmarshalProto(r, ev); err != nil {
		return nil, fmt.Errorf("decoding a usage record: %w", err)
	}
	return ev, nil
}

// rejection is what a test expects of a refused call.
type rejection struct {
	code    codes.Code
	fields  []string
	message string
}

func checkRejection(t *testing.T, err error, want rejection) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != want.code {
		t.Fatalf("code = %v (%v), want %v", st.Code(), err, want.code)
	}
	var fields []string
	for _, v := range apierr.FieldViolations(err) {
		fields = append(fields, v.Field)
	}
	if diff := cmp.Diff(want.fields, fields); diff != "" {
		t.Errorf("violated fields (-want +got):\n%s", diff)
	}
	if !strings.Contains(st.Message(), want.message) {
		t.Errorf("message %q does not contain %q", st.Message(), want.message)
	}
}

func TestReportUsageRejects(t *testing.T) {
	f := start(t)
	tests := []struct {
		name  string
		key   string
		batch func() []*eventv1.UsageEvent
		want  rejection
	}{{
		name: "field and index, whole batch",
		batch: func() []*eventv1.UsageEvent {
			evs := someEvents(5)
			evs[3].Quantities[0].Amount = -1
			evs[1].EndTime = nil
			evs[1].StartTime = nil
			return evs
		},
		want: rejection{codes.InvalidArgument,
			[]string{"events[1].end_time", "events[3].quantities[0].amount"},
			"2 of 5 events invalid; the whole batch was rejected and nothing was published"},
	}, {
		name: "tenant mismatch",
		batch: func() []*eventv1.UsageEvent {
			evs := someEvents(2)
			evs[1].TenantId = "globex"
			return evs
		},
		want: rejection{codes.InvalidArgument, []string{"events[1].tenant_id"},
			`must be empty or "acme"`},
	}, {
		name: "duplicate ids",
		batch: func() []*eventv1.UsageEvent {
			evs := someEvents(4)
			evs[3].EventId = evs[0].EventId
			return evs
		},
		want: rejection{codes.InvalidArgument, []string{"events[3].event_id"},
			`repeats events[0].event_id "ev-0"`},
	}, {
		name:  "too many events",
		batch: func() []*eventv1.UsageEvent { return someEvents(51) },
		want: rejection{codes.InvalidArgument, []string{"events"},
			"has 51 entries; the limit is 50 per request"},
	}, {
		name: "request too large",
		batch: func() []*eventv1.UsageEvent {
			evs := someEvents(40)
			for _, ev := range evs {
				ev.Labels["note"] = strings.Repeat("x", 2000)
			}
			return evs
		},
		want: rejection{codes.InvalidArgument, []string{"events"}, "the limit is 65536 bytes"},
	}, {
		name:  "no key",
		key:   noKey,
		batch: func() []*eventv1.UsageEvent { return someEvents(1) },
		want:  rejection{code: codes.Unauthenticated, message: "missing API key"},
	}, {
		name:  "key without the ingest scope",
		key:   f.readKey,
		batch: func() []*eventv1.UsageEvent { return someEvents(1) },
		want:  rejection{code: codes.PermissionDenied, message: "ingest scope"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := f.ingestKey
			if tt.key != "" {
				key = tt.key
			}
			ctx, cancel := withKey(key)
			defer cancel()
			_, err := f.client.ReportUsage(ctx, &ingestv1.ReportUsageRequest{Events: tt.batch()})
			checkRejection(t, err, tt.want)
		})
	}

	if recs := readTopic(t, f.brokers, kafka.TopicUsage); len(recs) != 0 {
		t.Errorf("%d records on %s after rejected calls, want 0", len(recs), kafka.TopicUsage)
	}
	if n := counter(t, f.reg, "costplane_ingest_api_rejected_total", "usage",
		"batch_rejected"); n != 3+1+3 {
		t.Errorf("batch_rejected metric = %v, want 7", n)
	}
}

// noKey makes a test call without a key.
const noKey = "-"

func someEvents(n int) []*eventv1.UsageEvent {
	evs := make([]*eventv1.UsageEvent, n)
	for i := range evs {
		evs[i] = usageEvent(fmt.Sprintf("ev-%d", i), "run-1", "")
	}
	return evs
}

func TestReportOutcomes(t *testing.T) {
	f := start(t)
	sent := []*eventv1.Outcome{
		outcome("o-1", "run-1", "sess-1"),
		outcome("o-2", "", "sess-1"),
		outcome("o-3", "", ""),
	}
	sent[2].Type = "workflow_completed"
	sent[2].Value = nil

	ctx, cancel := withKey(f.ingestKey)
	defer cancel()
	for range 2 { // The retry must write the same records again.
		req := &ingestv1.ReportOutcomesRequest{Outcomes: cloneAll(sent)}
		resp, err := f.client.ReportOutcomes(ctx, req)
		if err != nil {
			t.Fatalf("ReportOutcomes: %v", err)
		}
		if resp.GetAccepted() != 3 {
			t.Errorf("accepted = %d, want 3", resp.GetAccepted())
		}
	}

	var want []published
	for _, key := range []string{"acme/run-1", "acme/sess-1", "acme/o-3"} {
		i := len(want) / 2
		w := proto.Clone(sent[i]).(*eventv1.Outcome)
		w.TenantId = "acme"
		want = append(want, published{Key: key, Msg: w}, published{Key: key, Msg: w})
	}
	slices.SortFunc(want, func(a, b published) int { return strings.Compare(a.Key, b.Key) })
	got := decodeAll(t, readTopic(t, f.brokers, kafka.TopicOutcomes),
		func() *eventv1.Outcome { return &eventv1.Outcome{} })
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("records on %s (-want +got):\n%s", kafka.TopicOutcomes, diff)
	}
}

func cloneAll(os []*eventv1.Outcome) []*eventv1.Outcome {
	out := make([]*eventv1.Outcome, len(os))
	for i, o := range os {
		out[i] = proto.Clone(o).(*eventv1.Outcome)
	}
	return out
}

func TestReportOutcomesRejects(t *testing.T) {
	f := start(t)
	bad := []*eventv1.Outcome{
		outcome("o-1", "", ""), outcome("", "", ""), outcome("o-1", "", ""), outcome("o-4", "", ""),
	}
	bad[3].Type = "Ticket Resolved"
	bad[3].Time = ts(time.Now().AddDate(0, 0, 2))
	bad[3].Value.Nanos = -1

	ctx, cancel := withKey(f.ingestKey)
	defer cancel()
	_, err := f.client.ReportOutcomes(ctx, &ingestv1.ReportOutcomesRequest{Outcomes: bad})
	checkRejection(t, err, rejection{codes.InvalidArgument, []string{
		"outcomes[1].outcome_id", "outcomes[2].outcome_id",
		"outcomes[3].type", "outcomes[3].time", "outcomes[3].value.nanos",
	}, "3 of 4 outcomes invalid"})
	if recs := readTopic(t, f.brokers, kafka.TopicOutcomes); len(recs) != 0 {
		t.Errorf("%d records on %s after a rejected call, want 0", len(recs), kafka.TopicOutcomes)
	}
}

func TestKafkaDownIsUnavailable(t *testing.T) {
	f := start(t)
	f.cluster.Close()

	ctx, cancel := withKey(f.ingestKey)
	defer cancel()
	calls := map[string]func() error{
		"usage": func() error {
			_, err := f.client.ReportUsage(ctx,
				&ingestv1.ReportUsageRequest{Events: someEvents(2)})
			return err
		},
		"outcome": func() error {
			_, err := f.client.ReportOutcomes(ctx, &ingestv1.ReportOutcomesRequest{
				Outcomes: []*eventv1.Outcome{outcome("o-1", "", "")},
			})
			return err
		},
	}
	for kind, call := range calls {
		started := time.Now()
		err := call()
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("%s with kafka down: %v, want UNAVAILABLE", kind, err)
		}
		if d, ok := apierr.RetryDelay(err); !ok || d != 3*time.Second {
			t.Errorf("%s retry delay = %v, %v; want 3s", kind, d, ok)
		}
		if took := time.Since(started); took > 10*time.Second {
			t.Errorf("%s took %v to answer with a 2s produce timeout", kind, took)
		}
	}
	if n := counter(t, f.reg, "costplane_ingest_api_rejected_total", "usage",
		"kafka_unavailable"); n != 2 {
		t.Errorf("kafka_unavailable metric = %v, want 2", n)
	}
}

// counter returns the value of a counter of kind (and reason, if not
// empty), or 0 when the series does not exist.
func counter(t *testing.T, reg *prometheus.Registry, name, kind, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && (reason == "" || labels["reason"] == reason) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
