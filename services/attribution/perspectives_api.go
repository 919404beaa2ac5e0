package attribution

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/apierr"
	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	"github.com/costplane/costplane/services/attribution/internal/category"
	"github.com/costplane/costplane/services/attribution/internal/docs"
)

const perspectiveKind = "perspective"

// checkPerspective validates a perspective and returns its stored body.
func checkPerspective(p *attributionv1.Perspective) ([]byte, error) {
	if p == nil {
		return nil, apierr.Invalid("perspective", "is required")
	}
	var v apierr.Violations
	if !category.ValidID(p.GetPerspectiveId()) {
		v.Add("perspective.perspective_id", "must be 1-63 lower-case letters, digits and dashes")
	}
	if len(p.GetDisplayName()) > 200 {
		v.Add("perspective.display_name", "must be at most 200 characters")
	}
	if len(p.GetDescription()) > 2000 {
		v.Add("perspective.description", "must be at most 2000 characters")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, err := queryFromProto("perspective.query", p.GetQuery()); err != nil {
		return nil, err
	}
	body := proto.Clone(p).(*attributionv1.Perspective)
	body.Revision, body.CreateTime, body.UpdateTime = 0, nil, nil
	b, err := protojson.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding perspective: %w", err)
	}
	return b, nil
}

func perspectiveProto(d docs.Doc) (*attributionv1.Perspective, error) {
	p := &attributionv1.Perspective{}
	if err := protojson.Unmarshal(d.Body, p); err != nil {
		return nil, fmt.Errorf("decoding perspective %s: %w", d.ID, err)
	}
	p.PerspectiveId, p.Revision = d.ID, d.Revision
	p.CreateTime, p.UpdateTime = timestamppb.New(d.CreateTime), timestamppb.New(d.UpdateTime)
	return p, nil
}

// CreatePerspective saves a new view.
func (s *Service) CreatePerspective(ctx context.Context,
	req *attributionv1.CreatePerspectiveRequest,
) (*attributionv1.CreatePerspectiveResponse, error) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	body, err := checkPerspective(req.GetPerspective())
	if err != nil {
		return nil, err
	}
	id := req.GetPerspective().GetPerspectiveId()
	d, err := s.perspectives.Create(ctx, t, id, body)
	if err != nil {
		return nil, s.toStatus(ctx, err, perspectiveKind, id)
	}
	p, err := perspectiveProto(d)
	if err != nil {
		return nil, s.toStatus(ctx, err, perspectiveKind, id)
	}
	return &attributionv1.CreatePerspectiveResponse{Perspective: p}, nil
}

// GetPerspective returns one view.
func (s *Service) GetPerspective(ctx context.Context, req *attributionv1.GetPerspectiveRequest) (
	*attributionv1.GetPerspectiveResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	id := req.GetPerspectiveId()
	d, err := s.perspectives.Get(ctx, t, id)
	if err != nil {
		return nil, s.toStatus(ctx, err, perspectiveKind, id)
	}
	p, err := perspectiveProto(d)
	if err != nil {
		return nil, s.toStatus(ctx, err, perspectiveKind, id)
	}
	return &attributionv1.GetPerspectiveResponse{Perspective: p}, nil
}

// ListPerspectives lists the tenant's views by id.
func (s *Service) ListPerspectives(ctx context.Context,
	req *attributionv1.ListPerspectivesRequest,
) (*attributionv1.ListPerspectivesResponse, error) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := decodeKeyToken(req.GetPageToken(), "perspectives")
	if err != nil {
		return nil, err
	}
	ds, err := s.perspectives.List(ctx, t, after, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err, perspectiveKind, "")
	}
	out := &attributionv1.ListPerspectivesResponse{}
	if len(ds) > size {
		ds = ds[:size]
		out.NextPageToken = encodeKeyToken("perspectives", ds[size-1].ID)
	}
	for _, d := range ds {
		p, err := perspectiveProto(d)
		if err != nil {
			return nil, s.toStatus(ctx, err, perspectiveKind, d.ID)
		}
		out.Perspectives = append(out.Perspectives, p)
	}
	return out, nil
}

// UpdatePerspective replaces a view.
func (s *Service) UpdatePerspective(ctx context.Context,
	req *attributionv1.UpdatePerspectiveRequest,
) (*attributionv1.UpdatePerspectiveResponse, error) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	body, err := checkPerspective(req.GetPerspective())
	if err != nil {
		return nil, err
	}
	id := req.GetPerspective().GetPerspectiveId()
	d, err := s.perspectives.Update(ctx, t, id, body, req.GetPerspective().GetRevision())
	if err != nil {
		return nil, s.toStatus(ctx, err, perspectiveKind, id)
	}
	p, err := perspectiveProto(d)
	if err != nil {
		return nil, s.toStatus(ctx, err, perspectiveKind, id)
	}
	return &attributionv1.UpdatePerspectiveResponse{Perspective: p}, nil
}

// DeletePerspective removes a view.
func (s *Service) DeletePerspective(ctx context.Context,
	req *attributionv1.DeletePerspectiveRequest,
) (*attributionv1.DeletePerspectiveResponse, error) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.perspectives.Delete(ctx, t, req.GetPerspectiveId()); err != nil {
		return nil, s.toStatus(ctx, err, perspectiveKind, req.GetPerspectiveId())
	}
	return &attributionv1.DeletePerspectiveResponse{}, nil
}
