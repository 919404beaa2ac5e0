package ingestapi

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	ingestv1 "github.com/costplane/costplane/proto/gen/go/costplane/ingest/v1"

	"github.com/costplane/costplane/libs/usage"
)

// SourceName is the source name given to events that arrive without one.
const SourceName = "api"

const kindUsage = "usage"

// ReportUsage publishes a batch of usage events to the usage topic.
func (s *Service) ReportUsage(ctx context.Context, req *ingestv1.ReportUsageRequest) (
	*ingestv1.ReportUsageResponse, error,
) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	events := req.GetEvents()
	if err := s.checkLimits(kindUsage, "events", len(events), proto.Size(req)); err != nil {
		return nil, err
	}

	b := prepareUsage(s.rules(p.TenantID), events)
	if b.failed() {
		return nil, s.rejectBatch(ctx, kindUsage, b)
	}
	recs, err := usageRecords(s.cfg.UsageTopic, events)
	if err != nil {
		return nil, s.internal(ctx, kindUsage, len(events), err)
	}
	if err := s.publish(ctx, kindUsage, recs); err != nil {
		return nil, err
	}

	return &ingestv1.ReportUsageResponse{Accepted: int32(len(recs))}, nil
}

// prepareUsage fills the defaults of every event in place and checks it.
// The events are ready to publish when the batch has no problem.
func prepareUsage(r rules, events []*eventv1.UsageEvent) *batch {
	b := newBatch("events", len(events))
	for i, ev := range events {
		derived := ev.GetEventId() == ""
		errs, reason := prepareEvent(r, ev)
		if d, dup := b.duplicate(i, "event_id", ev.GetEventId(), derivedHint(derived)); dup {
			errs = append(errs, d)
			reason = worse(reason, reasonDuplicateID)
		}
		b.item(i, reason, errs)
	}
	return b
}

// prepareEvent checks one event against the caller's tenant, fills what the
// API defaults and validates the result as every ingestor does.
func prepareEvent(r rules, ev *eventv1.UsageEvent) (usage.FieldErrors, string) {
	if ev == nil {
		return usage.FieldErrors{{Field: "event", Reason: "is required"}}, reasonInvalid
	}
	var c checker
	reason := reasonInvalid
	if !c.tenant(ev.GetTenantId(), r) {
		reason = reasonTenantMismatch
	}
	applyUsageDefaults(r.tenant, ev)

	derive := ev.GetEventId() == ""
	for _, e := range usage.Validate(ev) {
		// An empty id is derived below, once the event is known to be
		// valid, so its absence is no problem.
		if !(derive && e.Field == "event_id") {
			c.errs = append(c.errs, e)
		}
	}
	if end := ev.GetEndTime(); end != nil && end.CheckValid() == nil {
		c.within("end_time", end, r)
	}
	if derive && len(c.errs) == 0 {
		deriveEventID(ev, &c)
	}

	return c.errs, reason
}

// applyUsageDefaults sets the tenant and the API source, and brings the
// provider and model to the canonical names the pricing catalog uses.
func applyUsageDefaults(tenant string, ev *eventv1.UsageEvent) {
	ev.TenantId = tenant
	if ev.Source == nil {
		ev.Source = &eventv1.Source{}
	}
	if ev.Source.Kind == eventv1.SourceKind_SOURCE_KIND_UNSPECIFIED {
		ev.Source.Kind = eventv1.SourceKind_SOURCE_KIND_API
	}
	if ev.Source.Name == "" {
		ev.Source.Name = SourceName
	}

	ev.Provider = usage.CanonicalProvider(ev.Provider)
	if ev.Model == "" && ev.ModelVersion != "" {
		model, profile := usage.CanonicalModel(ev.Provider, ev.ModelVersion)
		ev.Model = model
		if ev.InferenceProfile == "" {
			ev.InferenceProfile = profile
		}
	}
}

// deriveEventID gives an event sent without an id one that is a hash of
// its content, so that resending the same event yields the same id.
//
// TODO: the hash covers protobuf's deterministic encoding, which is stable
// within one build but not promised across protobuf-go releases, so a
// retry that straddles an upgrade could count an id-less event twice. It is
// safe for now because retries come within minutes; the API documents that
// clients should send their own event_id.
func deriveEventID(ev *eventv1.UsageEvent, c *checker) {
	// Not usage.Marshal: its encoding leaves the order of labels open.
	b, err := marshalDeterministic(ev)
	if err != nil {
		c.add("event_id", "is missing and cannot be derived from the event: send one")
		return
	}
	ev.EventId = usage.HashEventID(SourceName, string(b))
}

// derivedHint explains a duplicate of an id the client did not send.
func derivedHint(derived bool) string {
	if !derived {
		return ""
	}
	return " (both events have no event_id and are identical; send event_ids if both are real)"
}

// usageRecords encodes ready events as records keyed by usage.RecordKey.
func usageRecords(topic string, events []*eventv1.UsageEvent) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, len(events))
	for i, ev := range events {
		value, err := usage.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("encoding events[%d]: %w", i, err)
		}
		recs[i] = newRecord(topic, usage.RecordKey(ev), value, usageHeaders)
	}
	return recs, nil
}
