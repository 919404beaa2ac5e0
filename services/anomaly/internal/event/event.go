// Package event turns priced usage records into the compact form the
// detectors work on, and rejects records they cannot judge.
package event

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/costplane/costplane/libs/kafka"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// Event is what the detectors need of one PricedUsage.
type Event struct {
	Tenant string
	// ID is the priced id: unique per pricing of an event, so that a
	// correction is not mistaken for a duplicate.
	ID         string
	Correction bool

	Provider    string
	Model       string
	Project     string
	App         string
	Agent       string
	Account     string
	Environment string
	Customer    string
	Region      string
	ServiceTier string
	Labels      map[string]string

	// Run is the run id, else the trace id: OTLP events carry both.
	Run      string
	Session  string
	StepKind eventv1.StepKind
	// Root is set on a run's top-level agent step, which ends last.
	Root   bool
	Tool   string
	Failed bool
	// Prompt is every input token of the call, cached or not: a request
	// sent again has the same prompt.
	Prompt int64

	// Time is when the usage ended (else began), in event time.
	Time     time.Time
	Cost     int64
	Currency string

	Partition int32
	// Appended is when the record reached Kafka.
	Appended time.Time
}

// ErrInvalid means a record cannot be judged; the message names the
// field.
var ErrInvalid = errors.New("invalid priced usage")

// Decode reads rec, a PricedUsage as pricing writes it. msg is reused
// scratch space and may be nil.
func Decode(rec *kgo.Record, msg *eventv1.PricedUsage) (Event, error) {
	if msg == nil {
		msg = &eventv1.PricedUsage{}
	}
	if err := unmarshal(rec, msg); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	u := msg.GetUsage()
	if u.GetTenantId() == "" {
		return Event{}, fmt.Errorf("%w: usage.tenant_id: empty", ErrInvalid)
	}
	id := msg.GetPricedId()
	if id == "" {
		id = u.GetEventId()
	}
	if id == "" {
		return Event{}, fmt.Errorf("%w: priced_id: empty", ErrInvalid)
	}

	ev := Event{
		Tenant:      u.GetTenantId(),
		ID:          id,
		Correction:  msg.GetCorrectsEventId() != "",
		Provider:    u.GetProvider(),
		Model:       u.GetModel(),
		Project:     u.GetProject(),
		App:         u.GetApp(),
		Agent:       agentName(u.GetAgent()),
		Account:     u.GetAccount(),
		Environment: u.GetEnvironment(),
		Customer:    u.GetCustomerId(),
		Region:      u.GetRegion(),
		ServiceTier: u.GetServiceTier(),
		Labels:      u.GetLabels(),
		Run:         u.GetRunId(),
		Session:     u.GetSessionId(),
		StepKind:    u.GetStepKind(),
		Root: u.GetStepKind() == eventv1.StepKind_STEP_KIND_AGENT &&
			u.GetParentStepId() == "",
		Tool:      u.GetToolName(),
		Failed:    u.GetStatus() == eventv1.CallStatus_CALL_STATUS_ERROR,
		Prompt:    promptTokens(u.GetQuantities()),
		Time:      eventTime(u, rec),
		Partition: rec.Partition,
		Appended:  rec.Timestamp,
	}
	if ev.Run == "" {
		ev.Run = u.GetTraceId()
	}
	if err := ev.setCost(msg.GetEffectiveCost()); err != nil {
		return Event{}, err
	}

	return ev, nil
}

// pricedContentType is the content type pricing writes, as
// kafka.ProtoRecord spells it.
var pricedContentType = kafka.ContentTypeProto + "; messageType=" +
	string((&eventv1.PricedUsage{}).ProtoReflect().Descriptor().FullName())

// unmarshal decodes rec into msg. The header pricing writes is compared
// as bytes, which spares parsing it as a media type for every record;
// any other spelling takes the full check.
func unmarshal(rec *kgo.Record, msg *eventv1.PricedUsage) error {
	for i := len(rec.Headers) - 1; i >= 0; i-- {
		h := rec.Headers[i]
		if h.Key != kafka.HeaderContentType {
			continue
		}
		if string(h.Value) != pricedContentType {
			break
		}
		if err := proto.Unmarshal(rec.Value, msg); err != nil {
			return fmt.Errorf("decoding priced usage: %w", err)
		}
		return nil
	}
	return kafka.UnmarshalProto(rec, msg)
}

// setCost takes the effective cost. Unpriced usage has none and costs
// nothing here: it still counts as a step of its run.
func (ev *Event) setCost(m *eventv1.Money) error {
	if m == nil {
		return nil
	}
	code := m.GetCurrencyCode()
	if m.GetNanos() != 0 && !validCurrency(code) {
		return fmt.Errorf("%w: effective_cost.currency_code: %q is not an ISO 4217 code",
			ErrInvalid, code)
	}
	ev.Cost, ev.Currency = m.GetNanos(), code
	return nil
}

func validCurrency(code string) bool {
	if len(code) != 3 {
		return false
	}
	for i := range 3 {
		if code[i] < 'A' || code[i] > 'Z' {
			return false
		}
	}
	return true
}

func agentName(a *eventv1.Agent) string {
	if n := a.GetName(); n != "" {
		return n
	}
	return a.GetId()
}

func promptTokens(qs []*eventv1.Quantity) int64 {
	var n int64
	for _, q := range qs {
		switch q.GetKind() {
		case eventv1.QuantityKind_QUANTITY_KIND_INPUT,
			eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ,
			eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_5M,
			eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_1H:
			n += q.GetAmount()
		}
	}
	return n
}

func eventTime(u *eventv1.UsageEvent, rec *kgo.Record) time.Time {
	if t := u.GetEndTime(); t != nil && t.IsValid() {
		return t.AsTime()
	}
	if t := u.GetStartTime(); t != nil && t.IsValid() {
		return t.AsTime()
	}
	return rec.Timestamp
}

// Hash is the 64-bit FNV-1a hash of s. It is stable across processes, so
// hashes may be stored.
func Hash(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}
