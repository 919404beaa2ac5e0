package anomaly

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/pg"
	anomalyv1 "github.com/costplane/costplane/proto/gen/go/costplane/anomaly/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/alert"
)

// ListAnomalies lists the caller's anomalies, most recently detected
// first.
func (s *Service) ListAnomalies(ctx context.Context, req *anomalyv1.ListAnomaliesRequest) (
	*anomalyv1.ListAnomaliesResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	f, listing, err := listFilter(req)
	if err != nil {
		return nil, err
	}
	f.AfterTime, f.AfterID, err = decodeToken(req.GetPageToken(), t+"|"+listing)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	f.Limit = size + 1

	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	items, err := alert.List(ctx, s.deps.Pool, t, f)
	if err != nil {
		return nil, s.toStatus(ctx, err, "")
	}

	resp := &anomalyv1.ListAnomaliesResponse{Anomalies: items}
	if len(items) > size {
		resp.Anomalies = items[:size]
		last := items[size-1]
		resp.NextPageToken = encodeToken(t+"|"+listing, last.GetDetectTime().AsTime(),
			last.GetAnomalyId())
	}
	return resp, nil
}

// listFilter checks a list request and returns its filter and a canonical
// description of it, which page tokens carry.
func listFilter(req *anomalyv1.ListAnomaliesRequest) (alert.Filter, string, error) {
	var (
		f  alert.Filter
		vs apierr.Violations
	)
	for i, k := range req.GetKinds() {
		if _, ok := eventv1.AnomalyKind_name[int32(k)]; !ok || k == 0 {
			vs.Add(fmt.Sprintf("kinds[%d]", i), "unknown anomaly kind")
		}
		f.Kinds = append(f.Kinds, int16(k))
	}
	for i, st := range req.GetStatuses() {
		if _, ok := eventv1.AlertStatus_name[int32(st)]; !ok || st == 0 {
			vs.Add(fmt.Sprintf("statuses[%d]", i), "unknown alert status")
		}
		f.Statuses = append(f.Statuses, int16(st))
	}
	if sev := req.GetMinSeverity(); sev != 0 {
		if _, ok := eventv1.Severity_name[int32(sev)]; !ok {
			vs.Add("min_severity", "unknown severity")
		}
		f.MinSeverity = int16(sev)
	}
	for i, cond := range req.GetScope() {
		k, v, ok := strings.Cut(cond, "=")
		if !ok || k == "" {
			vs.Add(fmt.Sprintf("scope[%d]", i), `must read "dimension=value"`)
			continue
		}
		if f.Scope == nil {
			f.Scope = map[string]string{}
		}
		f.Scope[k] = v
	}
	if t := req.GetStartTime(); t != nil {
		f.From = t.AsTime()
	}
	if t := req.GetEndTime(); t != nil {
		f.To = t.AsTime()
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		vs.Add("end_time", "must be after start_time")
	}
	if err := vs.Err(); err != nil {
		return f, "", err
	}

	slices.Sort(f.Kinds)
	slices.Sort(f.Statuses)
	scope := slices.Sorted(func(yield func(string) bool) {
		for k, v := range f.Scope {
			if !yield(k + "=" + v) {
				return
			}
		}
	})
	listing := fmt.Sprint(f.Kinds, f.Statuses, f.MinSeverity, scope, f.From.UnixNano(),
		f.To.UnixNano())
	return f, listing, nil
}

// GetAnomaly returns one of the caller's anomalies.
func (s *Service) GetAnomaly(ctx context.Context, req *anomalyv1.GetAnomalyRequest) (
	*anomalyv1.GetAnomalyResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetAnomalyId() == "" {
		return nil, apierr.Invalid("anomaly_id", "must not be empty")
	}
	a, err := alert.Get(ctx, s.deps.Pool, t, req.GetAnomalyId())
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetAnomalyId())
	}
	return &anomalyv1.GetAnomalyResponse{Anomaly: a}, nil
}

// AcknowledgeAnomaly marks an open anomaly acknowledged.
func (s *Service) AcknowledgeAnomaly(
	ctx context.Context, req *anomalyv1.AcknowledgeAnomalyRequest,
) (*anomalyv1.AcknowledgeAnomalyResponse, error) {
	a, err := s.setStatus(ctx, req.GetAnomalyId(), req.GetNote(),
		eventv1.AlertStatus_ALERT_STATUS_ACKNOWLEDGED)
	if err != nil {
		return nil, err
	}
	return &anomalyv1.AcknowledgeAnomalyResponse{Anomaly: a}, nil
}

// ResolveAnomaly marks an anomaly resolved.
func (s *Service) ResolveAnomaly(ctx context.Context, req *anomalyv1.ResolveAnomalyRequest) (
	*anomalyv1.ResolveAnomalyResponse, error,
) {
	a, err := s.setStatus(ctx, req.GetAnomalyId(), req.GetNote(),
		eventv1.AlertStatus_ALERT_STATUS_RESOLVED)
	if err != nil {
		return nil, err
	}
	return &anomalyv1.ResolveAnomalyResponse{Anomaly: a}, nil
}

// maxNote bounds the note on a status change.
const maxNote = 2000

func (s *Service) setStatus(ctx context.Context, id, note string, to eventv1.AlertStatus) (
	*eventv1.Anomaly, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkChange(id, note); err != nil {
		return nil, err
	}
	var a *eventv1.Anomaly
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		var err error
		a, err = alert.SetStatus(ctx, tx, t, id, to, note, s.now())
		return err
	})
	if err != nil {
		return nil, s.toStatus(ctx, err, id)
	}
	s.publisher.Notify()
	return a, nil
}

func checkChange(id, note string) error {
	var vs apierr.Violations
	if id == "" {
		vs.Add("anomaly_id", "must not be empty")
	}
	if len(note) > maxNote {
		vs.Add("note", fmt.Sprintf("must be at most %d bytes", maxNote))
	}
	return vs.Err()
}

// MarkFalsePositive marks an anomaly a false positive and suppresses its
// pattern.
func (s *Service) MarkFalsePositive(
	ctx context.Context, req *anomalyv1.MarkFalsePositiveRequest,
) (*anomalyv1.MarkFalsePositiveResponse, error) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkChange(req.GetAnomalyId(), req.GetNote()); err != nil {
		return nil, err
	}
	var (
		a    *eventv1.Anomaly
		supp alert.Suppression
	)
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		var err error
		a, supp, err = alert.MarkFalsePositive(ctx, tx, t, req.GetAnomalyId(), req.GetNote(),
			s.now())
		return err
	})
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetAnomalyId())
	}
	s.gate.Forget(t)
	s.publisher.Notify()
	return &anomalyv1.MarkFalsePositiveResponse{
		Anomaly: a, Suppression: suppressionProto(supp),
	}, nil
}
