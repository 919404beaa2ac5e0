package ingestapi

import (
	"context"
	"fmt"
	"regexp"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	ingestv1 "github.com/costplane/costplane/proto/gen/go/costplane/ingest/v1"

	"github.com/costplane/costplane/libs/usage"
)

const kindOutcome = "outcome"

// maxOutcomeTypeLen bounds an outcome type such as "ticket_resolved".
const maxOutcomeTypeLen = 128

var outcomeTypePattern = regexp.MustCompile(`^[a-z0-9_.]+$`)

// ReportOutcomes publishes a batch of business outcomes to the outcomes
// topic.
func (s *Service) ReportOutcomes(ctx context.Context, req *ingestv1.ReportOutcomesRequest) (
	*ingestv1.ReportOutcomesResponse, error,
) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	outcomes := req.GetOutcomes()
	if err := s.checkLimits(kindOutcome, "outcomes", len(outcomes), proto.Size(req)); err != nil {
		return nil, err
	}

	b := prepareOutcomes(s.rules(p.TenantID), outcomes)
	if b.failed() {
		return nil, s.rejectBatch(ctx, kindOutcome, b)
	}
	recs, err := outcomeRecords(s.cfg.OutcomesTopic, outcomes)
	if err != nil {
		return nil, s.internal(ctx, kindOutcome, len(outcomes), err)
	}
	if err := s.publish(ctx, kindOutcome, recs); err != nil {
		return nil, err
	}

	return &ingestv1.ReportOutcomesResponse{Accepted: int32(len(recs))}, nil
}

// prepareOutcomes sets the tenant of every outcome in place and checks it.
func prepareOutcomes(r rules, outcomes []*eventv1.Outcome) *batch {
	b := newBatch("outcomes", len(outcomes))
	for i, o := range outcomes {
		errs, reason := prepareOutcome(r, o)
		if d, dup := b.duplicate(i, "outcome_id", o.GetOutcomeId(), ""); dup {
			errs = append(errs, d)
			reason = worse(reason, reasonDuplicateID)
		}
		b.item(i, reason, errs)
	}
	return b
}

func prepareOutcome(r rules, o *eventv1.Outcome) (usage.FieldErrors, string) {
	if o == nil {
		return usage.FieldErrors{{Field: "outcome", Reason: "is required"}}, reasonInvalid
	}
	var c checker
	reason := reasonInvalid
	if !c.tenant(o.GetTenantId(), r) {
		reason = reasonTenantMismatch
	}
	o.TenantId = r.tenant

	c.text("outcome_id", o.GetOutcomeId(), usage.MaxIDLen, true)
	c.outcomeType(o.GetType())
	c.requiredTime("time", o.GetTime(), r)
	c.money("value", o.GetValue())
	for _, f := range []struct{ name, value string }{
		{"session_id", o.GetSessionId()}, {"run_id", o.GetRunId()},
		{"agent_id", o.GetAgentId()}, {"customer_id", o.GetCustomerId()},
	} {
		c.text(f.name, f.value, usage.MaxIDLen, false)
	}
	c.text("app", o.GetApp(), usage.MaxNameLen, false)
	c.labels(o.GetLabels())

	return c.errs, reason
}

func (c *checker) outcomeType(t string) {
	switch {
	case t == "":
		c.add("type", "is required")
	case len(t) > maxOutcomeTypeLen:
		c.add("type", fmt.Sprintf("must be at most %d bytes", maxOutcomeTypeLen))
	case !outcomeTypePattern.MatchString(t):
		c.add("type", "must be lower-case letters, digits, '_' and '.', "+
			"such as ticket_resolved")
	}
}

// OutcomeKey returns the record key of an outcome: the tenant, a slash,
// then the run id, else the session id, else the outcome id, so that an
// outcome lands in the partition of the run or session it belongs to.
func OutcomeKey(o *eventv1.Outcome) []byte {
	id := o.GetOutcomeId()
	switch {
	case o.GetRunId() != "":
		id = o.GetRunId()
	case o.GetSessionId() != "":
		id = o.GetSessionId()
	}
	return []byte(o.GetTenantId() + "/" + id)
}

// outcomeRecords encodes ready outcomes as records keyed by OutcomeKey.
func outcomeRecords(topic string, outcomes []*eventv1.Outcome) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, len(outcomes))
	for i, o := range outcomes {
		value, err := marshalDeterministic(o)
		if err != nil {
			return nil, fmt.Errorf("encoding outcomes[%d]: %w", i, err)
		}
		recs[i] = newRecord(topic, OutcomeKey(o), value, outcomeHeaders)
	}
	return recs, nil
}
