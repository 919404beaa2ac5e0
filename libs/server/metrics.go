package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// callMetrics counts gRPC calls by method and code and times them.
type callMetrics struct {
	handled *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

func newCallMetrics(reg prometheus.Registerer) (*callMetrics, error) {
	handled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grpc_server_handled_total",
		Help: "gRPC calls completed on the server, by method and status code.",
	}, []string{"grpc_service", "grpc_method", "grpc_type", "grpc_code"})
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "grpc_server_handling_seconds",
		Help:    "Time the server took to complete gRPC calls.",
		Buckets: prometheus.DefBuckets,
	}, []string{"grpc_service", "grpc_method", "grpc_type"})

	var err error
	if handled, err = register(reg, handled); err != nil {
		return nil, err
	}
	if seconds, err = register(reg, seconds); err != nil {
		return nil, err
	}

	return &callMetrics{handled: handled, seconds: seconds}, nil
}

// register registers c, or returns the collector already registered under
// the same name, so that two servers can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func (m *callMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo,
	handler grpc.UnaryHandler,
) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(info.FullMethod, "unary", start, err)
	return resp, err
}

func (m *callMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo,
	handler grpc.StreamHandler,
) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observe(info.FullMethod, streamType(info), start, err)
	return err
}

func (m *callMetrics) observe(fullMethod, kind string, start time.Time, err error) {
	svc, method := splitMethod(fullMethod)
	m.handled.WithLabelValues(svc, method, kind, status.Code(err).String()).Inc()
	m.seconds.WithLabelValues(svc, method, kind).Observe(time.Since(start).Seconds())
}

func streamType(info *grpc.StreamServerInfo) string {
	switch {
	case info.IsClientStream && info.IsServerStream:
		return "bidi_stream"
	case info.IsClientStream:
		return "client_stream"
	default:
		return "server_stream"
	}
}

// splitMethod splits "/pkg.Service/Method" into its service and method.
func splitMethod(full string) (service, method string) {
	service, method, ok := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	if !ok {
		return "unknown", full
	}
	return service, method
}
