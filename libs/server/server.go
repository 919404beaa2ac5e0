// Package server runs a costplane gRPC server: the standard health and
// reflection services, logging, panic recovery and Prometheus metrics on
// every call, a /metrics endpoint, and a bounded graceful shutdown.
//
// Services register themselves on the *grpc.Server, so one Server can host
// every service of the all-in-one binary:
//
//	srv, err := server.New(cfg, logger, server.WithUnaryInterceptors(authn.Unary()))
//	srv.Register(admin.New(store, logger), ingest.New(...))
//	err = srv.Run(ctx)
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Config is the listening side of a gRPC server.
type Config struct {
	GRPCAddr string `env:"GRPC_ADDR" default:":9090" help:"gRPC listen address"`
	// MetricsAddr may be empty to serve no /metrics endpoint, for example
	// when the caller mounts Server.MetricsHandler elsewhere.
	MetricsAddr string `env:"METRICS_ADDR" default:":9102" help:"/metrics address; empty: none"`
	// ShutdownTimeout bounds how long in-flight calls may run on shutdown
	// before they are cut.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"10s" help:"shutdown grace"`
	MaxRecvBytes    int           `env:"GRPC_MAX_RECV_BYTES" default:"16777216" help:"request limit"`
}

// Validate checks that the settings can work.
func (c Config) Validate() error {
	var errs []error
	if c.GRPCAddr == "" {
		errs = append(errs, errors.New("GRPC_ADDR must not be empty"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("SHUTDOWN_TIMEOUT must be positive"))
	}
	if c.MaxRecvBytes <= 0 {
		errs = append(errs, errors.New("GRPC_MAX_RECV_BYTES must be positive"))
	}
	return errors.Join(errs...)
}

// Service is a gRPC service implementation that registers itself on a
// server, typically with its generated RegisterXServer function.
type Service interface {
	Register(s *grpc.Server)
}

// Option changes how New builds a Server.
type Option func(*options)

type options struct {
	unary    []grpc.UnaryServerInterceptor
	stream   []grpc.StreamServerInterceptor
	registry *prometheus.Registry
}

// WithUnaryInterceptors adds unary interceptors, such as authentication. They
// run inside the built-in logging, metrics and recovery interceptors, in the
// order given.
func WithUnaryInterceptors(is ...grpc.UnaryServerInterceptor) Option {
	return func(o *options) { o.unary = append(o.unary, is...) }
}

// WithStreamInterceptors adds stream interceptors, like WithUnaryInterceptors.
func WithStreamInterceptors(is ...grpc.StreamServerInterceptor) Option {
	return func(o *options) { o.stream = append(o.stream, is...) }
}

// WithRegistry makes the server record its metrics in reg and serve reg on
// /metrics, so that several components of one process share an endpoint.
// Without it the server makes its own registry with Go and process metrics.
func WithRegistry(reg *prometheus.Registry) Option {
	return func(o *options) { o.registry = reg }
}

// Server is a gRPC server with health, reflection, interceptors and a
// metrics endpoint. It serves once: after Run returns it cannot run again.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	grpc     *grpc.Server
	health   *health.Server
	registry *prometheus.Registry
}

// New builds a Server from cfg. Services are added with Register before Run.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("checking server config: %w", err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.registry == nil {
		o.registry = prometheus.NewRegistry()
		o.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(
			collectors.ProcessCollectorOpts{}))
	}

	m, err := newCallMetrics(o.registry)
	if err != nil {
		return nil, fmt.Errorf("registering grpc metrics: %w", err)
	}
	unary := append([]grpc.UnaryServerInterceptor{
		logUnary(logger), m.unary, recoverUnary(logger),
	}, o.unary...)
	stream := append([]grpc.StreamServerInterceptor{
		logStream(logger), m.stream, recoverStream(logger),
	}, o.stream...)

	s := &Server{
		cfg:      cfg,
		logger:   logger,
		health:   health.NewServer(),
		registry: o.registry,
		grpc: grpc.NewServer(
			grpc.ChainUnaryInterceptor(unary...),
			grpc.ChainStreamInterceptor(stream...),
			grpc.MaxRecvMsgSize(cfg.MaxRecvBytes),
		),
	}
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)

	return s, nil
}

// Register registers services on the server. It must be called before Run.
func (s *Server) Register(services ...Service) {
	for _, svc := range services {
		svc.Register(s.grpc)
	}
}

// GRPC returns the underlying server, for registering services directly.
func (s *Server) GRPC() *grpc.Server {
	return s.grpc
}

// Registry returns the Prometheus registry the server reports into, so that
// services can add their own metrics to the same endpoint.
func (s *Server) Registry() *prometheus.Registry {
	return s.registry
}

// Run listens on the configured addresses and serves until ctx ends, then
// shuts down within the configured timeout.
func (s *Server) Run(ctx context.Context) error {
	lis, err := net.Listen("tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listening for grpc on %s: %w", s.cfg.GRPCAddr, err)
	}
	return s.Serve(ctx, lis)
}

// Serve is Run on a listener the caller opened, such as a loopback listener
// on port 0 in a test. It closes lis.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	g := NewGroup(s.logger, s.cfg.ShutdownTimeout)
	if s.cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.MetricsHandler())
		metrics := NewHTTP("metrics", s.cfg.MetricsAddr, mux, s.cfg.ShutdownTimeout, s.logger)
		g.Add("metrics", metrics)
	}
	g.Add("grpc", RunFunc(func(ctx context.Context) error { return s.serveGRPC(ctx, lis) }))

	return g.Run(ctx)
}

func (s *Server) serveGRPC(ctx context.Context, lis net.Listener) error {
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}

	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(lis) }()
	s.logger.InfoContext(ctx, "grpc server listening", slog.String("addr", lis.Addr().String()))

	select {
	case err := <-served:
		return fmt.Errorf("serving grpc: %w", err)
	case <-ctx.Done():
	}

	s.health.Shutdown()
	s.stop()
	<-served
	s.logger.InfoContext(ctx, "grpc server stopped")

	return nil
}

// stop lets in-flight calls finish for at most the shutdown timeout, then
// cuts the rest: a stuck call or a watch stream must not hold the process.
func (s *Server) stop() {
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()

	timer := time.NewTimer(s.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.logger.Warn("grpc calls still running at shutdown timeout; cutting them",
			slog.Duration("timeout", s.cfg.ShutdownTimeout))
		s.grpc.Stop()
		<-stopped
	}
}

// MetricsHandler serves the server's registry in the Prometheus format.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry})
}
