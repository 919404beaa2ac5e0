package budget

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/money"
	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/live"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/projector"
)

const (
	periodSpentSQL = `SELECT spent_nanos FROM budget.budget_periods
WHERE tenant_id = $1 AND budget_uid = $2 AND period_start = $3`
	periodAlertsSQL = `SELECT payload FROM budget.alerts
WHERE tenant_id = $1 AND budget_uid = $2 AND period_start = $3 ORDER BY create_time, alert_id`
)

// GetBudgetStatus reports a budget's current period: spend read from the
// database, the projection from the latest forecast.
func (s *Service) GetBudgetStatus(ctx context.Context, req *budgetv1.GetBudgetStatusRequest) (
	*budgetv1.GetBudgetStatusResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	id := req.GetBudgetId()
	if err := requireID(id); err != nil {
		return nil, err
	}
	st, err := s.status(ctx, t, id)
	if err != nil {
		return nil, s.toStatus(ctx, err, id)
	}
	return &budgetv1.GetBudgetStatusResponse{Status: st}, nil
}

func (s *Service) status(ctx context.Context, tenant, id string) (*budgetv1.BudgetStatus, error) {
	b, err := budgets.Get(ctx, s.deps.Pool, tenant, id)
	if err != nil {
		return nil, err
	}
	c, err := budgets.Compile(b)
	if err != nil {
		return nil, err
	}
	now := s.now()
	st := &budgetv1.BudgetStatus{BudgetId: id, Amount: money.New(b.Currency, b.Amount)}
	span, ok := b.Period.At(now)
	if !ok {
		// Not started: the first period, with nothing spent.
		span = period.Span{Start: b.Period.Start}
		span.End, _ = firstEnd(b.Period)
	}
	st.PeriodStart, st.PeriodEnd = timestamppb.New(span.Start), timestamppb.New(span.End)

	var spent int64
	err = s.deps.Pool.QueryRow(ctx, periodSpentSQL, tenant, b.UID, span.Start).Scan(&spent)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("reading spend of budget %s: %w", id, err)
	}
	st.Spent = money.New(b.Currency, spent)
	st.Remaining = money.New(b.Currency, b.Amount-spent)
	st.UsedBasisPoints, _ = money.MulDiv(spent, 10_000, b.Amount)

	if ok {
		if st.Projection, err = s.projection(ctx, c, span, spent, now); err != nil {
			return nil, err
		}
	}
	if st.Alerts, err = s.periodAlerts(ctx, tenant, b.UID, span.Start); err != nil {
		return nil, err
	}
	return st, nil
}

func firstEnd(spec period.Spec) (time.Time, bool) {
	span, ok := spec.At(spec.Start)
	return span.End, ok
}

// projection returns the budget's projection, fitting its forecast now if
// this member has none for the period yet.
func (s *Service) projection(ctx context.Context, b *budgets.Compiled, span period.Span,
	spent int64, now time.Time) (*budgetv1.Projection, error) {

	p, ok := s.state.Project(b.UID, now)
	if !ok {
		if err := s.projector.Project(ctx, b); err != nil {
			return nil, err
		}
		if p, ok = s.state.Project(b.UID, now); !ok {
			return nil, nil // the state lags the database; a retry will do
		}
	}
	// The state's spend may trail the database by a refresh; the
	// database's is the one shown, so the projection is moved with it.
	live, _, _ := s.state.Spent(b.UID, now)
	shift := spent - live
	p.EndOfPeriod += shift
	p.Lower += shift
	p.Upper += shift

	out := &budgetv1.Projection{
		EndOfPeriod: money.New(b.Currency, p.EndOfPeriod),
		Lower:       money.New(b.Currency, p.Lower),
		Upper:       money.New(b.Currency, p.Upper),
		Method:      p.Method,
		ComputeTime: timestamppb.New(p.Computed),
		ExceedTime:  timestampOrNil(p.Exceed),
	}
	if spent > b.Amount {
		day, err := s.exceededOn(ctx, b, span)
		if err != nil {
			return nil, err
		}
		out.ExceedTime = timestampOrNil(day)
	}
	return out, nil
}

// exceededOn finds the day the period's spend passed the amount.
func (s *Service) exceededOn(ctx context.Context, b *budgets.Compiled, span period.Span) (
	time.Time, error,
) {
	y, err := projector.History(ctx, s.deps.Pool, b, span.Start, span.End)
	if err != nil {
		return time.Time{}, err
	}
	var cum float64
	for i, v := range y {
		if cum += v; cum > float64(b.Amount) {
			return span.Start.AddDate(0, 0, i), nil
		}
	}
	return time.Time{}, nil
}

func (s *Service) periodAlerts(ctx context.Context, tenant, uid string, start time.Time) (
	[]*eventv1.BudgetAlert, error,
) {
	rows, err := s.deps.Pool.Query(ctx, periodAlertsSQL, tenant, uid, start)
	if err != nil {
		return nil, fmt.Errorf("reading alerts: %w", err)
	}
	payloads, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading alerts: %w", err)
	}
	out := make([]*eventv1.BudgetAlert, 0, len(payloads))
	for _, p := range payloads {
		var a eventv1.BudgetAlert
		if err := protojson.Unmarshal([]byte(p), &a); err != nil {
			return nil, fmt.Errorf("decoding stored alert: %w", err)
		}
		out = append(out, &a)
	}
	return out, nil
}

const listAlertsSQL = `SELECT a.alert_id, a.payload, a.create_time, a.publish_time,
	w.attempts, w.deliver_time, w.fail_time, coalesce(w.last_error, '')
FROM budget.alerts a
LEFT JOIN budget.webhook_deliveries w ON w.alert_id = a.alert_id
WHERE a.tenant_id = $1 AND ($2 = '' OR a.budget_id = $2)
	AND ($3::timestamptz IS NULL OR (a.create_time, a.alert_id) < ($3, $4))
ORDER BY a.create_time DESC, a.alert_id DESC
LIMIT $5`

// ListBudgetAlerts lists raised alerts, newest first, with their
// delivery state.
func (s *Service) ListBudgetAlerts(ctx context.Context, req *budgetv1.ListBudgetAlertsRequest) (
	*budgetv1.ListBudgetAlertsResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	if id := req.GetBudgetId(); id != "" {
		if err := requireID(id); err != nil {
			return nil, err
		}
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	listing := "alerts/" + req.GetBudgetId()
	pos, err := decodeToken(req.GetPageToken(), listing, 2)
	if err != nil {
		return nil, err
	}
	var (
		afterTime *time.Time
		afterID   string
	)
	if pos != nil {
		ns, perr := strconv.ParseInt(pos[0], 10, 64)
		if perr != nil {
			return nil, apiBadToken()
		}
		at := time.Unix(0, ns).UTC()
		afterTime, afterID = &at, pos[1]
	}

	rows, err := s.deps.Pool.Query(ctx, listAlertsSQL, t, req.GetBudgetId(), afterTime, afterID,
		size+1)
	if err != nil {
		return nil, s.toStatus(ctx, fmt.Errorf("listing alerts: %w", err), "")
	}
	recs, times, err := collectAlerts(rows)
	if err != nil {
		return nil, s.toStatus(ctx, err, "")
	}
	resp := &budgetv1.ListBudgetAlertsResponse{}
	if len(recs) > size {
		recs = recs[:size]
		last := recs[size-1].GetAlert().GetAlertId()
		resp.NextPageToken = encodeToken(listing,
			strconv.FormatInt(times[size-1].UnixNano(), 10), last)
	}
	resp.Alerts = recs
	return resp, nil
}

func collectAlerts(rows pgx.Rows) ([]*budgetv1.AlertRecord, []time.Time, error) {
	var (
		out   []*budgetv1.AlertRecord
		times []time.Time
	)
	var (
		id, payload, lastErr         string
		created                      time.Time
		published, delivered, failed *time.Time
		attempts                     *int32
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &payload, &created, &published, &attempts,
		&delivered, &failed, &lastErr}, func() error {
		var a eventv1.BudgetAlert
		if err := protojson.Unmarshal([]byte(payload), &a); err != nil {
			return fmt.Errorf("decoding stored alert %s: %w", id, err)
		}
		r := &budgetv1.AlertRecord{Alert: &a, WebhookLastError: lastErr,
			WebhookState: budgetv1.DeliveryState_DELIVERY_STATE_NONE}
		if published != nil {
			r.PublishTime = timestamppb.New(*published)
		}
		if attempts != nil {
			r.WebhookAttempts = *attempts
			r.WebhookState = deliveryState(delivered, failed)
		}
		out = append(out, r)
		times = append(times, created)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing alerts: %w", err)
	}
	return out, times, nil
}

func deliveryState(delivered, failed *time.Time) budgetv1.DeliveryState {
	switch {
	case delivered != nil:
		return budgetv1.DeliveryState_DELIVERY_STATE_DELIVERED
	case failed != nil:
		return budgetv1.DeliveryState_DELIVERY_STATE_FAILED
	}
	return budgetv1.DeliveryState_DELIVERY_STATE_PENDING
}

// Decision of a live check as the API enum.
func decisionProto(d live.Decision) budgetv1.Decision { return budgetv1.Decision(d) }
