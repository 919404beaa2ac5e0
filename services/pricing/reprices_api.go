package pricing

import (
	"context"
	"fmt"
	"strings"
	"time"

	pricingv1 "github.com/costplane/costplane/proto/gen/go/costplane/pricing/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/money"
	"github.com/costplane/costplane/services/pricing/internal/reprice"
)

// StartReprice creates a pending reprice of the caller's usage in a time
// range. The reprice worker starts it after a short settle delay (see
// Config.RepriceSettle); follow it with GetReprice.
func (s *Service) StartReprice(ctx context.Context, req *pricingv1.StartRepriceRequest) (
	*pricingv1.StartRepriceResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}

	var v apierr.Violations
	from := requiredTime(&v, "start_time", req.GetStartTime())
	to := requiredTime(&v, "end_time", req.GetEndTime())
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		v.Add("end_time", "must be after start_time")
	}
	reason := strings.TrimSpace(req.GetReason())
	switch {
	case reason == "":
		v.Add("reason", "is required: say why prices are recomputed")
	case len(reason) > maxDescriptionLen:
		v.Add("reason", fmt.Sprintf("must be at most %d bytes", maxDescriptionLen))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}

	j, err := s.jobs.Create(ctx, reprice.Job{
		TenantID: p.TenantID, ID: newID("rp", time.Now()), From: from, To: to, Reason: reason,
	})
	if err != nil {
		return nil, s.toStatus(ctx, err, "")
	}
	s.worker.Wake()
	return &pricingv1.StartRepriceResponse{Reprice: repriceProto(j)}, nil
}

// GetReprice returns one reprice of the caller's tenant.
func (s *Service) GetReprice(ctx context.Context, req *pricingv1.GetRepriceRequest) (
	*pricingv1.GetRepriceResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetRepriceId() == "" {
		return nil, apierr.Invalid("reprice_id", "is required")
	}

	j, err := s.jobs.Get(ctx, p.TenantID, req.GetRepriceId())
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetRepriceId())
	}
	return &pricingv1.GetRepriceResponse{Reprice: repriceProto(j)}, nil
}

// ListReprices lists the caller's reprices, newest first.
func (s *Service) ListReprices(ctx context.Context, req *pricingv1.ListRepricesRequest) (
	*pricingv1.ListRepricesResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	before, err := decodeToken(req.GetPageToken(), p.TenantID)
	if err != nil {
		return nil, err
	}

	js, err := s.jobs.List(ctx, p.TenantID, before, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err, "")
	}
	js, next := page(js, size, p.TenantID, func(j reprice.Job) string { return j.ID })

	out := &pricingv1.ListRepricesResponse{NextPageToken: next}
	for _, j := range js {
		out.Reprices = append(out.Reprices, repriceProto(j))
	}
	return out, nil
}

var repriceStates = map[reprice.State]pricingv1.RepriceState{
	reprice.StatePending:   pricingv1.RepriceState_REPRICE_STATE_PENDING,
	reprice.StateRunning:   pricingv1.RepriceState_REPRICE_STATE_RUNNING,
	reprice.StateSucceeded: pricingv1.RepriceState_REPRICE_STATE_SUCCEEDED,
	reprice.StateFailed:    pricingv1.RepriceState_REPRICE_STATE_FAILED,
}

func repriceProto(j reprice.Job) *pricingv1.Reprice {
	out := &pricingv1.Reprice{
		RepriceId:        j.ID,
		StartTime:        timestampOrNil(j.From),
		EndTime:          timestampOrNil(j.To),
		Reason:           j.Reason,
		State:            repriceStates[j.State],
		ScannedCount:     j.Scanned,
		CorrectedCount:   j.Corrected,
		NewlyPricedCount: j.NewlyPriced,
		UnpricedCount:    j.Unpriced,
		Error:            j.Error,
		CreateTime:       timestampOrNil(j.CreateTime),
		UpdateTime:       timestampOrNil(j.UpdateTime),
		FinishTime:       timestampOrNil(j.FinishTime),
	}
	if j.Currency != "" {
		out.ListCostDelta = money.New(j.Currency, j.ListDelta)
		out.EffectiveCostDelta = money.New(j.Currency, j.EffectiveDelta)
	}
	return out
}
