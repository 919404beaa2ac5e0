package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	ingestv1 "github.com/costplane/costplane/proto/gen/go/costplane/ingest/v1"
)

// Outcome batching: a batch goes out when it is this large or this old.
const (
	outcomeBatch    = 100
	outcomeInterval = time.Second
	// maxPending bounds the outcomes kept for a retry while the API is
	// down; older ones are dropped and counted as failed.
	maxPending  = 2000
	callTimeout = 10 * time.Second
	nanosPerCnt = 10_000_000
)

// outcomeReporter sends outcomes to IngestService.ReportOutcomes in
// batches, over gRPC, with the tenant's key.
type outcomeReporter struct {
	conn      *grpc.ClientConn
	client    ingestv1.IngestServiceClient
	header    []string
	log       *slog.Logger
	pending   []*eventv1.Outcome
	lastFlush time.Time
	reported  int
	failed    int
}

func newOutcomeReporter(cfg Config, log *slog.Logger) (*outcomeReporter, error) {
	creds := credentials.NewClientTLSFromCert(nil, "")
	if cfg.Insecure {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(cfg.APIEndpoint, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("connecting to the ingest api at %s: %w", cfg.APIEndpoint, err)
	}
	return &outcomeReporter{
		conn:      conn,
		client:    ingestv1.NewIngestServiceClient(conn),
		header:    []string{cfg.KeyHeader, keyValue(cfg)},
		log:       log,
		lastFlush: time.Now(),
	}, nil
}

// outcomeOf is the outcome a run reports, linked to its run (the trace,
// which ingest-otlp uses as the run id), session, agent and customer.
func outcomeOf(r *runPlan, traceID trace.TraceID, end time.Time) *eventv1.Outcome {
	run := traceID.String()
	o := &eventv1.Outcome{
		OutcomeId:  "lg_" + run,
		Time:       timestamppb.New(end),
		Type:       r.outcome.kind,
		RunId:      run,
		SessionId:  r.session.id,
		AgentId:    r.agent.id,
		CustomerId: r.session.customer,
		App:        r.app.name,
		Labels:     map[string]string{"environment": r.app.env, "source": "costplane-loadgen"},
	}
	if r.outcome.cents > 0 {
		o.Value = &eventv1.Money{CurrencyCode: "USD", Nanos: r.outcome.cents * nanosPerCnt}
	}
	return o
}

func (o *outcomeReporter) add(ctx context.Context, out *eventv1.Outcome) {
	o.pending = append(o.pending, out)
	if len(o.pending) >= outcomeBatch || time.Since(o.lastFlush) >= outcomeInterval {
		o.flush(ctx)
	}
}

// flush sends what is pending. Outcomes the API could not take for now are
// kept for the next flush; rejected ones are dropped and counted.
func (o *outcomeReporter) flush(ctx context.Context) {
	o.lastFlush = time.Now()
	for len(o.pending) > 0 {
		n := min(len(o.pending), outcomeBatch)
		err := o.send(ctx, o.pending[:n])
		if retryable(err) {
			o.log.WarnContext(ctx, "ingest api unavailable; keeping outcomes for a retry",
				slog.Int("pending", len(o.pending)), slog.Any("error", err))
			o.dropOverflow(ctx)
			return
		}
		if err != nil {
			o.failed += n
			o.log.ErrorContext(ctx, "ingest api rejected outcomes",
				slog.Int("outcomes", n), slog.Any("error", err))
		} else {
			o.reported += n
		}
		o.pending = o.pending[n:]
	}
}

func (o *outcomeReporter) send(ctx context.Context, batch []*eventv1.Outcome) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, o.header...)
	_, err := o.client.ReportOutcomes(ctx, &ingestv1.ReportOutcomesRequest{Outcomes: batch})
	if err != nil {
		return fmt.Errorf("reporting %d outcomes: %w", len(batch), err)
	}
	return nil
}

func (o *outcomeReporter) dropOverflow(ctx context.Context) {
	if over := len(o.pending) - maxPending; over > 0 {
		o.failed += over
		o.pending = o.pending[over:]
		o.log.WarnContext(ctx, "dropped outcomes the ingest api could not take",
			slog.Int("dropped", over))
	}
}

func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}

// close sends what is left, once, and closes the connection.
func (o *outcomeReporter) close(ctx context.Context) {
	o.flush(ctx)
	if n := len(o.pending); n > 0 {
		o.failed += n
		o.log.WarnContext(ctx, "outcomes left unsent at the end", slog.Int("outcomes", n))
	}
	if err := o.conn.Close(); err != nil {
		o.log.WarnContext(ctx, "closing the ingest api connection", slog.Any("error", err))
	}
}
