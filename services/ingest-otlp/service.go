// Package ingestotlp is costplane's OpenTelemetry receiver: the OTLP/gRPC
// trace service and OTLP/HTTP POST /v1/traces (protobuf or JSON, gzip or
// not), authenticated by a tenant API key. It maps spans that follow the
// OpenTelemetry GenAI or OpenInference conventions to UsageEvents and
// answers success only once Kafka acknowledged them.
//
//	svc, err := ingestotlp.New(cfg, ingestotlp.Deps{Logger: l, Verifier: v, Producer: p})
//	err = svc.Run(ctx)
package ingestotlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	// Registers the gzip codec, so that exporters may compress requests.
	_ "google.golang.org/grpc/encoding/gzip"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/ingest-otlp/internal/genai"
	"github.com/costplane/costplane/services/ingest-otlp/internal/otlp"
)

// ExportMethod is the gRPC method of the OTLP trace service.
const ExportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// DefaultKeyHeader is the header besides "authorization: Bearer" that may
// carry the API key when Config.KeyHeader is empty.
const DefaultKeyHeader = "x-costplane-key"

// Deps are what the receiver needs from its host.
type Deps struct {
	Logger *slog.Logger
	// Verifier checks API keys; the key must hold the ingest scope.
	Verifier auth.KeyVerifier
	// Producer writes the events; *kafka.Producer in production.
	Producer Producer
	// Registry receives the metrics; nil makes one, served on
	// Config.MetricsAddr.
	Registry *prometheus.Registry
}

// Service is the receiver. It serves once: Run cannot be called again
// after it returned.
type Service struct {
	collectortracepb.UnimplementedTraceServiceServer

	cfg     Config
	log     *slog.Logger
	mapper  *genai.Mapper
	cache   *traceCache
	pub     *publisher
	metrics *metrics
	authn   *auth.Authenticator
	grpc    *server.Server
	works   sync.Pool
}

// work is the memory one request uses, reused across requests.
type work struct {
	body   []byte
	traces otlp.Traces
	result genai.Result
}

// New builds the receiver.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("checking ingest-otlp config: %w", err)
	}
	if deps.Logger == nil || deps.Verifier == nil || deps.Producer == nil {
		return nil, errors.New("ingest-otlp needs a logger, a key verifier and a producer")
	}
	mcfg, _ := cfg.mapping() // Validate has parsed it already.
	mapper, err := genai.NewMapper(mcfg)
	if err != nil {
		return nil, fmt.Errorf("building the genai mapping: %w", err)
	}
	reg := deps.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	if cfg.Topic == "" {
		cfg.Topic = kafka.TopicUsage
	}
	if cfg.KeyHeader == "" {
		cfg.KeyHeader = DefaultKeyHeader
	}

	s := &Service{
		cfg:     cfg,
		log:     deps.Logger,
		mapper:  mapper,
		cache:   newTraceCache(cfg),
		pub:     newPublisher(deps.Producer, cfg.Topic),
		metrics: m,
		authn: auth.NewAuthenticator(deps.Verifier, MethodScopes(), cfg.KeyHeader,
			deps.Logger),
	}
	if s.grpc, err = s.newGRPCServer(reg); err != nil {
		return nil, err
	}
	return s, nil
}

// MethodScopes are the scopes the receiver's gRPC methods require, for a
// host that registers the service on a server of its own.
func MethodScopes() auth.MethodScopes {
	return auth.MethodScopes{ExportMethod: auth.ScopeIngest}
}

func (s *Service) newGRPCServer(reg *prometheus.Registry) (*server.Server, error) {
	srv, err := server.New(server.Config{
		GRPCAddr:        s.cfg.GRPCAddr,
		MetricsAddr:     s.cfg.MetricsAddr,
		ShutdownTimeout: s.cfg.ShutdownTimeout,
		MaxRecvBytes:    s.cfg.MaxBodyBytes,
	}, s.log, server.WithRegistry(reg), server.WithUnaryInterceptors(s.authn.Unary()))
	if err != nil {
		return nil, fmt.Errorf("building the otlp grpc server: %w", err)
	}
	s.Register(srv.GRPC())
	return srv, nil
}

// Register registers the OTLP trace service on g. New already did so on
// the receiver's own server.
func (s *Service) Register(g *grpc.Server) {
	collectortracepb.RegisterTraceServiceServer(g, s)
}

// HTTPHandler serves POST /v1/traces, authentication included.
func (s *Service) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/traces", s.authn.HTTP(auth.ScopeIngest, http.HandlerFunc(s.serveTraces)))
	return mux
}

// Run listens on the configured addresses and serves until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	grpcLis, err := net.Listen("tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listening for otlp/grpc on %s: %w", s.cfg.GRPCAddr, err)
	}
	httpLis, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("listening for otlp/http on %s: %w", s.cfg.HTTPAddr, err)
	}
	return s.Serve(ctx, grpcLis, httpLis)
}

// Serve is Run on listeners the caller opened, such as loopback listeners
// in tests. It closes them.
func (s *Service) Serve(ctx context.Context, grpcLis, httpLis net.Listener) error {
	g := server.NewGroup(s.log, s.cfg.ShutdownTimeout)
	g.Add("otlp-grpc", server.RunFunc(func(ctx context.Context) error {
		return s.grpc.Serve(ctx, grpcLis)
	}))
	h := server.NewHTTP("otlp-http", s.cfg.HTTPAddr, s.HTTPHandler(), s.cfg.ShutdownTimeout, s.log)
	g.Add("otlp-http", server.RunFunc(func(ctx context.Context) error {
		return h.Serve(ctx, httpLis)
	}))
	return g.Run(ctx)
}

func (s *Service) getWork() *work {
	if w, ok := s.works.Get().(*work); ok {
		return w
	}
	return &work{}
}

// putWork keeps w's memory for the next request. Nothing of the request
// may be in use any more: strings in w.traces alias w.body.
func (s *Service) putWork(w *work) {
	w.traces.Reset()
	w.result.Reset()
	w.body = w.body[:0]
	s.works.Put(w)
}
