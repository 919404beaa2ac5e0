package ingestotlp

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// failProduce makes the broker drop every produce request while down is
// set, as a broker that cannot take writes does.
func failProduce(st *stack, down *atomic.Bool) {
	st.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		st.cluster.KeepControl()
		if !down.Load() {
			return nil, nil, false
		}
		return nil, errors.New("broker cannot take writes"), true
	})
}

// TestKafkaDownIsRetryable checks that when Kafka does not acknowledge, the
// receiver answers 503 with Retry-After or UNAVAILABLE with a retry delay,
// never success, and accepts the same request once Kafka is back.
func TestKafkaDownIsRetryable(t *testing.T) {
	st := startStack(t, stackOpts{produceTimeout: time.Second})
	var down atomic.Bool
	down.Store(true)
	failProduce(st, &down)

	req := exportRequest(chatSpan(1, 10))
	body := mustMarshal(t, req)
	resp, out := post(t, st.httpAddr, httpCase{contentTypeProto, "", testKey, body})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("http: status %d, Retry-After %q, body %q; want 503 and 2",
			resp.StatusCode, resp.Header.Get("Retry-After"), out)
	}

	client := grpcClient(t, st.grpcAddr)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-costplane-key", testKey)
	_, err := client.Export(ctx, req)
	if status.Code(err) != codes.Unavailable || retryDelay(err) != 2*time.Second {
		t.Errorf("grpc: %v (retry delay %s); want UNAVAILABLE with a 2s delay", err,
			retryDelay(err))
	}

	// Once Kafka is back, a client retrying as told gets through; the
	// client reconnects with backoff, so the first retries may still fail.
	down.Store(false)
	var code int
	for range 20 {
		resp, _ := post(t, st.httpAddr, httpCase{contentTypeProto, "", testKey, body})
		if code = resp.StatusCode; code != http.StatusServiceUnavailable {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code != http.StatusOK {
		t.Fatalf("after recovery: status %d, want 200", code)
	}
	if _, err := client.Export(ctx, req); err != nil {
		t.Fatalf("after recovery: grpc %v", err)
	}
	if evs := st.readEvents(t, 1, 5*time.Second); len(evs) == 0 {
		t.Error("no event on Kafka after the retried request succeeded")
	}
}

func grpcClient(t *testing.T, addr string) collectortracepb.TraceServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return collectortracepb.NewTraceServiceClient(conn)
}

func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

func TestGRPCNeedsKey(t *testing.T) {
	st := startStack(t, stackOpts{})
	_, err := grpcClient(t, st.grpcAddr).Export(context.Background(), exportRequest(chatSpan(1, 1)))
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("Export without a key: %v, want UNAUTHENTICATED", err)
	}
}
