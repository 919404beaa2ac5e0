package ingest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

var outcomeColumns = []string{
	"tenant_id", "outcome_id", "time", "type", "currency", "value_nanos", "session_id",
	"run_id", "agent_id", "customer_id", "app", "labels",
}

// HandleOutcomes is the kafka.Handler of the outcomes topic. An outcome is
// stored once: the first record of an outcome id wins.
func (s *Store) HandleOutcomes(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) (
	[]kafka.Reject, error,
) {
	var (
		rejects []kafka.Reject
		rows    [][]any
	)
	seen := make(map[lineKey]bool, len(recs))
	for _, rec := range recs {
		o, err := decodeOutcome(rec)
		if err != nil {
			rejects = append(rejects, kafka.Reject{Record: rec, Reason: reasonOf(err)})
			continue
		}
		k := lineKey{o.GetTenantId(), o.GetOutcomeId()}
		if seen[k] {
			continue
		}
		seen[k] = true
		rows = append(rows, outcomeRow(o))
	}
	if len(rows) == 0 {
		return rejects, nil
	}

	if _, err := tx.Exec(ctx, createStagingSQL); err != nil {
		return nil, fmt.Errorf("creating staging tables: %w", err)
	}
	if err := copyThen(ctx, tx, "stage_outcomes", outcomeColumns, rows,
		insertOutcomesSQL); err != nil {
		return nil, fmt.Errorf("writing outcomes: %w", err)
	}
	return rejects, nil
}

func decodeOutcome(rec *kgo.Record) (*eventv1.Outcome, error) {
	o := &eventv1.Outcome{}
	if err := kafka.UnmarshalProto(rec, o); err != nil {
		return nil, reject("value", err.Error())
	}
	checks := []struct {
		ok           bool
		field, cause string
	}{
		{o.GetTenantId() != "", "tenant_id", "is required"},
		{o.GetOutcomeId() != "", "outcome_id", "is required"},
		{o.GetType() != "", "type", "is required"},
		{o.GetTime() != nil && o.GetTime().IsValid(), "time", "is required"},
		{o.GetValue() == nil || isCurrency(o.GetValue().GetCurrencyCode()),
			"value.currency_code", "must be three upper-case letters (ISO 4217)"},
	}
	for _, c := range checks {
		if !c.ok {
			return nil, reject(c.field, c.cause)
		}
	}
	return o, nil
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func outcomeRow(o *eventv1.Outcome) []any {
	var value any
	if o.GetValue() != nil {
		value = o.GetValue().GetNanos()
	}
	labels := []byte("{}")
	if len(o.GetLabels()) > 0 {
		if b, err := json.Marshal(o.GetLabels()); err == nil {
			labels = b
		}
	}
	return []any{
		o.GetTenantId(), o.GetOutcomeId(), o.GetTime().AsTime(), o.GetType(),
		o.GetValue().GetCurrencyCode(), value, o.GetSessionId(), o.GetRunId(),
		o.GetAgentId(), o.GetCustomerId(), o.GetApp(), labels,
	}
}
