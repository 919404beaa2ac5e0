package ingestapi

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	ingestv1 "github.com/costplane/costplane/proto/gen/go/costplane/ingest/v1"

	"github.com/costplane/costplane/libs/usage"
)

// decode reads data as protobuf, as gRPC delivers it, or else as JSON, as
// the REST gateway delivers it.
func decode(data []byte, msg proto.Message) bool {
	if proto.Unmarshal(data, msg) == nil {
		return true
	}
	proto.Reset(msg)
	return protojson.Unmarshal(data, msg) == nil
}

func seed(f *testing.F, msg proto.Message) {
	b, err := proto.Marshal(msg)
	if err != nil {
		f.Fatalf("encoding a seed: %v", err)
	}
	f.Add(b)
	j, err := protojson.Marshal(msg)
	if err != nil {
		f.Fatalf("encoding a seed as json: %v", err)
	}
	f.Add(j)
}

// FuzzPrepareUsage checks that validation never panics, and that a batch
// it passes is publishable: every event valid for the tenant, ids unique.
func FuzzPrepareUsage(f *testing.F) {
	bad := validEvent("")
	bad.Quantities[0].Amount = -3
	bad.TenantId = "globex"
	seed(f, &ingestv1.ReportUsageRequest{Events: events(3)})
	seed(f, &ingestv1.ReportUsageRequest{Events: []*eventv1.UsageEvent{bad, validEvent("")}})
	f.Add([]byte(`{"events":[{"event_id":"x","end_time":"2026-05-01T11:00:00Z"}]}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		req := &ingestv1.ReportUsageRequest{}
		if !decode(data, req) {
			return
		}
		b := prepareUsage(testRules(), req.GetEvents())
		if b.failed() {
			checkRejected(t, b)
			return
		}
		seen := map[string]bool{}
		for i, ev := range req.GetEvents() {
			if errs := usage.Validate(ev); errs != nil || ev.GetTenantId() != "acme" {
				t.Fatalf("events[%d] passed but is %v (tenant %q)", i, errs, ev.GetTenantId())
			}
			if seen[ev.GetEventId()] {
				t.Fatalf("events[%d] passed with a repeated id %q", i, ev.GetEventId())
			}
			seen[ev.GetEventId()] = true
		}
		if _, err := usageRecords("t", req.GetEvents()); err != nil {
			t.Fatalf("a passed batch cannot be encoded: %v", err)
		}
	})
}

// FuzzPrepareOutcomes is FuzzPrepareUsage for outcomes.
func FuzzPrepareOutcomes(f *testing.F) {
	bad := validOutcome("")
	bad.Type = "Bad Type"
	seed(f, &ingestv1.ReportOutcomesRequest{
		Outcomes: []*eventv1.Outcome{validOutcome("a"), validOutcome("b")},
	})
	seed(f, &ingestv1.ReportOutcomesRequest{Outcomes: []*eventv1.Outcome{bad}})

	f.Fuzz(func(t *testing.T, data []byte) {
		req := &ingestv1.ReportOutcomesRequest{}
		if !decode(data, req) {
			return
		}
		b := prepareOutcomes(testRules(), req.GetOutcomes())
		if b.failed() {
			checkRejected(t, b)
			return
		}
		for i, o := range req.GetOutcomes() {
			if o.GetOutcomeId() == "" || o.GetTime() == nil || o.GetTenantId() != "acme" {
				t.Fatalf("outcomes[%d] passed without an id, a time or the tenant: %v", i, o)
			}
		}
		if _, err := outcomeRecords("t", req.GetOutcomes()); err != nil {
			t.Fatalf("a passed batch cannot be encoded: %v", err)
		}
	})
}

// checkRejected checks that a rejection names an item for every problem
// and renders as a status.
func checkRejected(t *testing.T, b *batch) {
	t.Helper()
	if b.badItems() == 0 || b.badItems() > b.size {
		t.Fatalf("%d bad items of %d with %d problems", b.badItems(), b.size, len(b.errs))
	}
	for _, e := range b.errs {
		if len(e.Field) <= len(b.field) || e.Field[:len(b.field)+1] != b.field+"[" {
			t.Fatalf("problem %q does not name an item", e.Error())
		}
	}
	if batchError(b, b.badItems()) == nil {
		t.Fatal("a failed batch gave no error")
	}
}
