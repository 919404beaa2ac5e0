package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/dims"
)

// line is one PricedUsage record, decoded and checked.
type line struct {
	rec      *kgo.Record
	msg      *eventv1.PricedUsage
	ev       *eventv1.UsageEvent
	tenant   string
	pricedID string
	// corrects is the event id a correction corrects; empty on a first
	// pricing.
	corrects string
	start    time.Time
	end      time.Time
	day      time.Time
	bucket   time.Time
	currency string
	// runID and stepID place the line in a run: run_id, else the trace
	// id; step_id, else the event id. Both are empty outside runs.
	runID  string
	stepID string
	// traced lines take part in the trace join.
	traced bool
	amount agg
	// base is the line's dimension set with the agent it carried; the
	// join may replace the agent.
	base dims.Set
}

// lineKey identifies a line within a tenant.
type lineKey struct{ tenant, pricedID string }

func (l *line) key() lineKey { return lineKey{l.tenant, l.pricedID} }

func (l *line) isCorrection() bool { return l.corrects != "" }

// errReject marks a record that cannot be stored, with the reason.
var errReject = errors.New("rejected")

func reject(field, reason string) error {
	return fmt.Errorf("%w: %s: %s", errReject, field, reason)
}

// decoder turns records into lines.
type decoder struct {
	defaultCurrency string
	labelKeys       map[string]bool
	now             func() time.Time
	retention       time.Duration
	maxAhead        time.Duration
}

func (d *decoder) decode(rec *kgo.Record) (*line, error) {
	msg := &eventv1.PricedUsage{}
	if err := kafka.UnmarshalProto(rec, msg); err != nil {
		return nil, reject("value", err.Error())
	}
	ev := msg.GetUsage()
	if ev == nil {
		return nil, reject("usage", "is required")
	}
	if errs := usage.Validate(ev); len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", errReject, errs.Prefixed("usage").Error())
	}
	if msg.GetPricedId() == "" {
		return nil, reject("priced_id", "is required")
	}

	l := &line{
		rec: rec, msg: msg, ev: ev, tenant: ev.GetTenantId(), pricedID: msg.GetPricedId(),
		corrects: msg.GetCorrectsEventId(),
	}
	if err := d.setTime(l); err != nil {
		return nil, err
	}
	if err := d.setMoney(l); err != nil {
		return nil, err
	}
	d.setPlace(l)
	l.base = d.baseDims(l)
	return l, nil
}

// setTime places the line at its usage's start (its end when the start
// is unknown), and refuses times whose raw partition retention has dropped
// or that lie too far ahead: such a line could not be deduplicated.
func (d *decoder) setTime(l *line) error {
	ev := l.ev
	switch {
	case ev.GetStartTime() != nil:
		l.start = ev.GetStartTime().AsTime().UTC()
	case ev.GetEndTime() != nil:
		l.start = ev.GetEndTime().AsTime().UTC()
	default:
		return reject("usage.start_time", "is required")
	}
	l.end = l.start
	if ev.GetEndTime() != nil && !ev.GetEndTime().AsTime().Before(l.start) {
		l.end = ev.GetEndTime().AsTime().UTC()
	}

	now := d.now().UTC()
	if d.retention > 0 && l.start.Before(dayOf(now).Add(-d.retention)) {
		return reject("usage.start_time", fmt.Sprintf(
			"is older than the raw line retention of %s", d.retention))
	}
	if l.start.After(now.Add(d.maxAhead)) {
		return reject("usage.start_time", fmt.Sprintf("is more than %s in the future", d.maxAhead))
	}
	l.day = dayOf(l.start)
	l.bucket = l.start.Truncate(time.Hour)
	return nil
}

func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// setMoney fills the line's amounts. A correction carries money only: its
// quantities, events and requests were counted by the pricing it corrects.
func (d *decoder) setMoney(l *line) error {
	msg := l.msg
	cur, err := d.currencyOf(msg)
	if err != nil {
		return err
	}
	l.currency = cur

	a := &l.amount
	a.list = msg.GetListCost().GetNanos()
	a.eff = msg.GetEffectiveCost().GetNanos()
	for i, cl := range msg.GetCostLines() {
		k := kindIndex(cl.GetKind())
		for _, m := range []*eventv1.Money{cl.GetListCost(), cl.GetEffectiveCost()} {
			if m != nil && m.GetCurrencyCode() != "" && m.GetCurrencyCode() != cur {
				return reject(fmt.Sprintf("cost_lines[%d]", i), "currency differs from the event's")
			}
		}
		a.kindList[k] += cl.GetListCost().GetNanos()
		a.kindEff[k] += cl.GetEffectiveCost().GetNanos()
	}
	a.kindList[0] += a.list - sum(a.kindList[:])
	a.kindEff[0] += a.eff - sum(a.kindEff[:])

	if !l.isCorrection() {
		a.events = 1
		a.requests = l.ev.GetRequestCount()
		if msg.GetPricingStatus() == eventv1.PricingStatus_PRICING_STATUS_UNPRICED {
			a.unpriced = 1
		}
		for _, q := range l.ev.GetQuantities() {
			a.kindQty[kindIndex(q.GetKind())] += q.GetAmount()
		}
	}
	return nil
}

// currencyOf returns the one currency of the record's money, or the
// default when it carries none (an unpriced event).
func (d *decoder) currencyOf(msg *eventv1.PricedUsage) (string, error) {
	list, eff := msg.GetListCost().GetCurrencyCode(), msg.GetEffectiveCost().GetCurrencyCode()
	switch {
	case list != "" && eff != "" && list != eff:
		return "", reject("effective_cost.currency_code", "differs from list_cost.currency_code")
	case eff != "":
		return eff, nil
	case list != "":
		return list, nil
	}
	if c := msg.GetUsage().GetReportedCost().GetCurrencyCode(); c != "" &&
		msg.GetPricingStatus() == eventv1.PricingStatus_PRICING_STATUS_REPORTED {
		return c, nil
	}
	return d.defaultCurrency, nil
}

func kindIndex(k eventv1.QuantityKind) int {
	if k < 0 || int(k) >= dims.NumKinds {
		return 0
	}
	return int(k)
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

// setPlace puts the line in its run and step. A span's run is its trace
// unless the event names another; an event of a run without a step id is
// a step of its own, named by its event id.
func (d *decoder) setPlace(l *line) {
	ev := l.ev
	l.runID = ev.GetRunId()
	if l.runID == "" {
		l.runID = ev.GetTraceId()
	}
	if l.runID == "" {
		return
	}
	l.stepID = ev.GetStepId()
	l.traced = l.stepID != "" && ev.GetTraceId() != ""
	if l.stepID == "" {
		l.stepID = ev.GetEventId()
	}
}

func (d *decoder) baseDims(l *line) dims.Set {
	ev := l.ev
	s := dims.Set{
		Currency:         l.currency,
		Provider:         ev.GetProvider(),
		Account:          ev.GetAccount(),
		Project:          ev.GetProject(),
		Model:            ev.GetModel(),
		ModelVersion:     ev.GetModelVersion(),
		Region:           ev.GetRegion(),
		ServiceTier:      ev.GetServiceTier(),
		InferenceProfile: ev.GetInferenceProfile(),
		Operation:        ev.GetOperation(),
		App:              ev.GetApp(),
		Customer:         ev.GetCustomerId(),
		Environment:      ev.GetEnvironment(),
		Source:           ev.GetSource().GetName(),
	}
	setAgent(&s, ev.GetAgent())
	for k, v := range ev.GetLabels() {
		if d.labelKeys != nil && !d.labelKeys[k] {
			continue
		}
		if s.Labels == nil {
			s.Labels = make(map[string]string, len(ev.GetLabels()))
		}
		s.Labels[k] = v
	}
	return s
}

func setAgent(s *dims.Set, a *eventv1.Agent) {
	s.Agent = dims.AgentKey(a.GetId(), a.GetName())
	s.AgentName = a.GetName()
	s.AgentVersion = a.GetVersion()
}
