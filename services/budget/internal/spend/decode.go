package spend

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/scope"
)

// maxEventCost bounds one record's cost (a hundred million currency
// units), so that a corrupt amount is rejected instead of overflowing a
// total and failing every batch after it.
const maxEventCost = 100_000_000 * 1_000_000_000

// event is what the tracker needs of one priced record.
type event struct {
	rec      *kgo.Record
	tenant   string
	id       string // priced_id: unique per pricing of an event
	day      time.Time
	currency string
	cost     int64
	attrs    scope.Attrs
}

// decode turns records into events. Records that cannot be counted are
// rejected with the field at fault; records without a cost (unpriced
// usage) are skipped, since their cost arrives later as a correction with
// an id of its own.
func decode(recs []*kgo.Record, keys scope.LabelKeys) ([]event, []kafka.Reject) {
	evs := make([]event, 0, len(recs))
	var rejects []kafka.Reject
	for _, r := range recs {
		var pu eventv1.PricedUsage
		if err := kafka.UnmarshalProto(r, &pu); err != nil {
			rejects = append(rejects, kafka.Reject{Record: r, Reason: err.Error()})
			continue
		}
		ev, reason := fromPriced(&pu, keys)
		if reason != "" {
			rejects = append(rejects, kafka.Reject{Record: r, Reason: reason})
			continue
		}
		if ev.cost == 0 {
			continue
		}
		ev.rec = r
		evs = append(evs, ev)
	}
	return evs, rejects
}

func fromPriced(pu *eventv1.PricedUsage, keys scope.LabelKeys) (event, string) {
	u := pu.GetUsage()
	ev := event{tenant: u.GetTenantId(), id: pu.GetPricedId()}
	if ev.id == "" && pu.GetCorrectsEventId() == "" {
		// A first pricing's id is its event id.
		ev.id = u.GetEventId()
	}
	switch {
	case ev.tenant == "":
		return ev, "usage.tenant_id: empty"
	case ev.id == "":
		return ev, "priced_id: empty"
	case u.GetStartTime() == nil:
		return ev, "usage.start_time: missing"
	}
	ev.day = period.Day(u.GetStartTime().AsTime())

	cost := pu.GetEffectiveCost()
	ev.cost = cost.GetNanos()
	ev.currency = cost.GetCurrencyCode()
	switch {
	case ev.cost == 0:
		return ev, ""
	case !isCurrencyCode(ev.currency):
		return ev, "effective_cost.currency_code: not an ISO 4217 code"
	case ev.cost > maxEventCost || ev.cost < -maxEventCost:
		return ev, "effective_cost.nanos: implausibly large"
	}

	ev.attrs = scope.FromUsage(u, keys)
	return ev, ""
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
