package ingestotlp

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/services/ingest-otlp/internal/genai"
	"github.com/costplane/costplane/services/ingest-otlp/internal/otlp"
)

// maxListedRejections bounds the spans named in a partial success message.
const maxListedRejections = 10

const (
	transportGRPC = "grpc"
	transportHTTP = "http"
)

// export maps the decoded spans in w, stamps them from the trace cache and
// publishes them. A nil error means Kafka acknowledged every event.
func (s *Service) export(ctx context.Context, tenant string, w *work,
) (*collectortracepb.ExportTraceServiceResponse, error) {
	res := &w.result
	s.mapper.Map(tenant, &w.traces, res)
	s.cache.stamp(tenant, res)

	if err := s.pub.publish(ctx, res.Events); err != nil {
		s.log.WarnContext(ctx, "cannot publish usage events; asking the client to retry",
			slog.String("tenant_id", tenant), slog.Int("events", len(res.Events)),
			slog.Any("error", err))
		return nil, err
	}

	s.metrics.answered(res)
	if len(res.Rejected) > 0 {
		s.log.DebugContext(ctx, "rejected malformed genai spans",
			slog.String("tenant_id", tenant), slog.Int("rejected", len(res.Rejected)),
			slog.String("first", res.Rejected[0].String()))
	}
	return response(res), nil
}

// response reports the rejected spans in partial_success, as OTLP asks:
// the request itself succeeded and must not be retried.
func response(res *genai.Result) *collectortracepb.ExportTraceServiceResponse {
	out := &collectortracepb.ExportTraceServiceResponse{}
	if len(res.Rejected) == 0 {
		return out
	}
	out.PartialSuccess = &collectortracepb.ExportTracePartialSuccess{
		RejectedSpans: int64(len(res.Rejected)),
		ErrorMessage:  rejectionMessage(res.Rejected),
	}
	return out
}

func rejectionMessage(rs []genai.Rejection) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(rs)))
	b.WriteString(" malformed GenAI spans rejected: ")
	for i, r := range rs[:min(len(rs), maxListedRejections)] {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.String())
	}
	if n := len(rs) - maxListedRejections; n > 0 {
		b.WriteString("; and " + strconv.Itoa(n) + " more")
	}
	return b.String()
}

// Export implements the OTLP/gRPC trace service.
func (s *Service) Export(ctx context.Context, req *collectortracepb.ExportTraceServiceRequest,
) (*collectortracepb.ExportTraceServiceResponse, error) {
	start := time.Now()
	p, ok := auth.FromContext(ctx)
	if !ok {
		// The authenticator runs before every call; this is a wiring bug.
		return nil, apierr.Unauthenticated("missing API key")
	}

	w := s.getWork()
	defer s.putWork(w)
	otlp.FromProto(req, &w.traces)
	resp, err := s.export(ctx, p.TenantID, w)
	s.metrics.duration.WithLabelValues(transportGRPC).Observe(time.Since(start).Seconds())
	if err != nil {
		s.metrics.requests.WithLabelValues(transportGRPC, outcomeUnavailable).Inc()
		return nil, apierr.Unavailable("cannot store spans right now; retry later",
			s.cfg.RetryAfter)
	}

	s.metrics.requests.WithLabelValues(transportGRPC, outcomeOf(resp)).Inc()
	return resp, nil
}

func outcomeOf(resp *collectortracepb.ExportTraceServiceResponse) string {
	if resp.GetPartialSuccess().GetRejectedSpans() > 0 {
		return outcomePartial
	}
	return outcomeOK
}
