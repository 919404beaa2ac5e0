package attribution

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/costplane/costplane/libs/apierr"
	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	"github.com/costplane/costplane/services/attribution/internal/explore"
)

// QueryCosts answers an explorer query, one page of series at a time.
func (s *Service) QueryCosts(ctx context.Context, req *attributionv1.QueryCostsRequest) (
	*attributionv1.QueryCostsResponse, error,
) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	scope := scopeOf(&attributionv1.QueryCostsRequest{Query: req.GetQuery(),
		PerspectiveId: req.GetPerspectiveId()})
	offset, err := decodeToken(req.GetPageToken(), scope)
	if err != nil {
		return nil, err
	}

	q, err := s.resolveQuery(ctx, t, req.GetQuery(), req.GetPerspectiveId())
	if err != nil {
		return nil, err
	}
	res, err := s.explorer.Query(ctx, t, q)
	if err != nil {
		return nil, s.toStatus(ctx, err, "cost query", "")
	}

	out := &attributionv1.QueryCostsResponse{
		TimeRange: rangeProto(res.Start, res.End), TotalSeries: int32(len(res.Series)),
	}
	from, to := min(offset, len(res.Series)), min(offset+size, len(res.Series))
	for _, sr := range res.Series[from:to] {
		out.Series = append(out.Series, seriesProto(sr))
	}
	out.NextPageToken = nextToken(scope, offset, size, to < len(res.Series))
	return out, nil
}

// ExportCostsCsv answers an explorer query as CSV, every series at once.
func (s *Service) ExportCostsCsv(ctx context.Context, req *attributionv1.ExportCostsCsvRequest) (
	*attributionv1.ExportCostsCsvResponse, error,
) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	q, err := s.resolveQuery(ctx, t, req.GetQuery(), req.GetPerspectiveId())
	if err != nil {
		return nil, err
	}
	res, err := s.explorer.Query(ctx, t, q)
	if err != nil {
		return nil, s.toStatus(ctx, err, "cost query", "")
	}
	b, err := explore.CSV(res, q)
	if err != nil {
		return nil, s.toStatus(ctx, err, "cost query", "")
	}
	name := fmt.Sprintf("costs-%s-%s.csv", res.Start.Format("20060102T15"),
		res.End.Format("20060102T15"))
	return &attributionv1.ExportCostsCsvResponse{Csv: string(b), FileName: name}, nil
}

// resolveQuery returns the query to run: the perspective's when one is
// named, else the request's.
func (s *Service) resolveQuery(ctx context.Context, t string, q *attributionv1.CostQuery,
	perspective string,
) (explore.Query, error) {
	if perspective == "" {
		if q == nil {
			return explore.Query{}, apierr.Invalid("query", "is required, or a perspective_id")
		}
		return queryFromProto("query", q)
	}
	d, err := s.perspectives.Get(ctx, t, perspective)
	if err != nil {
		return explore.Query{}, s.toStatus(ctx, err, "perspective", perspective)
	}
	p := &attributionv1.Perspective{}
	if err := protojson.Unmarshal(d.Body, p); err != nil {
		return explore.Query{}, s.toStatus(ctx, fmt.Errorf("decoding perspective: %w", err),
			"perspective", perspective)
	}
	return queryFromProto("perspective.query", p.GetQuery())
}
