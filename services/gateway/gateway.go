// Package gateway serves costplane's REST API: every gRPC service under
// /v1 through grpc-gateway, the OpenAPI document at /openapi.json and a
// liveness probe at /healthz.
//
// The gateway holds no credentials and makes no decisions: it forwards the
// caller's Authorization header (or the configured key header) to the gRPC
// services, which authenticate, and renders their statuses as JSON
// {code, message, details} with the matching HTTP status.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	adminv1 "github.com/costplane/costplane/proto/gen/go/costplane/admin/v1"
	anomalyv1 "github.com/costplane/costplane/proto/gen/go/costplane/anomaly/v1"
	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	ingestv1 "github.com/costplane/costplane/proto/gen/go/costplane/ingest/v1"
	pricingv1 "github.com/costplane/costplane/proto/gen/go/costplane/pricing/v1"
	"github.com/costplane/costplane/proto/gen/go/openapi"

	"github.com/costplane/costplane/libs/server"
)

// Config holds the gateway's settings. Names carry a GATEWAY_ prefix so
// that the all-in-one binary can load them beside the gRPC server's.
type Config struct {
	Addr string `env:"GATEWAY_ADDR" default:":8080" help:"REST listen address"`
	// GRPCEndpoint serves every service that has no endpoint of its own;
	// an empty per-service endpoint means this one.
	GRPCEndpoint    string `env:"GATEWAY_GRPC_ENDPOINT" default:"127.0.0.1:9090" help:"gRPC address"`
	AdminEndpoint   string `env:"GATEWAY_ADMIN_ENDPOINT" default:"" help:"AdminService address"`
	IngestEndpoint  string `env:"GATEWAY_INGEST_ENDPOINT" default:"" help:"IngestService address"`
	PricingEndpoint string `env:"GATEWAY_PRICING_ENDPOINT" default:"" help:"PricingService address"`
	// AttributionEndpoint serves the explorer, categories, perspectives,
	// unit economics and run services.
	AttributionEndpoint string `env:"GATEWAY_ATTRIBUTION_ENDPOINT" default:"" help:"attribution address"`
	BudgetEndpoint      string `env:"GATEWAY_BUDGET_ENDPOINT" default:"" help:"BudgetService address"`
	AnomalyEndpoint     string `env:"GATEWAY_ANOMALY_ENDPOINT" default:"" help:"AnomalyService address"`
	// KeyHeader is forwarded besides Authorization; empty forwards none.
	KeyHeader       string        `env:"GATEWAY_KEY_HEADER" default:"x-costplane-key" help:"key header"`
	MaxBodyBytes    int64         `env:"GATEWAY_MAX_BODY_BYTES" default:"16777216" help:"body limit"`
	ShutdownTimeout time.Duration `env:"GATEWAY_SHUTDOWN_TIMEOUT" default:"10s" help:"shutdown grace"`
}

// Validate checks that the settings can work.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("GATEWAY_ADDR must not be empty"))
	}
	if c.GRPCEndpoint == "" &&
		(c.AdminEndpoint == "" || c.IngestEndpoint == "" || c.PricingEndpoint == "" ||
			c.AttributionEndpoint == "" || c.BudgetEndpoint == "" || c.AnomalyEndpoint == "") {
		errs = append(errs, errors.New("GATEWAY_GRPC_ENDPOINT must be set "+
			"unless every service has an endpoint of its own"))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("GATEWAY_MAX_BODY_BYTES must be positive"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("GATEWAY_SHUTDOWN_TIMEOUT must be positive"))
	}
	return errors.Join(errs...)
}

// backend is one gRPC service the gateway exposes.
type backend struct {
	name     string
	endpoint func(Config) string
	register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
}

// backends lists every service with REST bindings in proto/api.yaml; a new
// service is one more line here.
var backends = []backend{
	{
		name:     "admin",
		endpoint: func(c Config) string { return c.AdminEndpoint },
		register: adminv1.RegisterAdminServiceHandler,
	},
	{
		name:     "ingest",
		endpoint: func(c Config) string { return c.IngestEndpoint },
		register: ingestv1.RegisterIngestServiceHandler,
	},
	{
		name:     "pricing",
		endpoint: func(c Config) string { return c.PricingEndpoint },
		register: pricingv1.RegisterPricingServiceHandler,
	},
	{
		name:     "attribution explorer",
		endpoint: func(c Config) string { return c.AttributionEndpoint },
		register: attributionv1.RegisterCostExplorerServiceHandler,
	},
	{
		name:     "attribution categories",
		endpoint: func(c Config) string { return c.AttributionEndpoint },
		register: attributionv1.RegisterCostCategoryServiceHandler,
	},
	{
		name:     "attribution perspectives",
		endpoint: func(c Config) string { return c.AttributionEndpoint },
		register: attributionv1.RegisterPerspectiveServiceHandler,
	},
	{
		name:     "attribution economics",
		endpoint: func(c Config) string { return c.AttributionEndpoint },
		register: attributionv1.RegisterUnitEconomicsServiceHandler,
	},
	{
		name:     "attribution runs",
		endpoint: func(c Config) string { return c.AttributionEndpoint },
		register: attributionv1.RegisterRunServiceHandler,
	},
	{
		name:     "budget",
		endpoint: func(c Config) string { return c.BudgetEndpoint },
		register: budgetv1.RegisterBudgetServiceHandler,
	},
	{
		name:     "anomaly",
		endpoint: func(c Config) string { return c.AnomalyEndpoint },
		register: anomalyv1.RegisterAnomalyServiceHandler,
	},
}

// Option changes how New builds a Gateway.
type Option func(*Gateway)

// WithRegistry records HTTP request metrics in reg.
func WithRegistry(reg prometheus.Registerer) Option {
	return func(g *Gateway) { g.registry = reg }
}

// Gateway is the REST front of the gRPC services.
type Gateway struct {
	cfg      Config
	logger   *slog.Logger
	registry prometheus.Registerer
	conns    []*grpc.ClientConn
	handler  http.Handler
}

// New builds the gateway. Connections to the services are opened lazily,
// so the services need not be up yet.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("checking gateway config: %w", err)
	}
	g := &Gateway{cfg: cfg, logger: logger}
	for _, opt := range opts {
		opt(g)
	}

	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions: protojson.MarshalOptions{UseProtoNames: true},
		}),
		runtime.WithErrorHandler(g.writeError),
		runtime.WithIncomingHeaderMatcher(g.matchHeader),
	)
	if err := g.registerBackends(mux); err != nil {
		g.Close()
		return nil, err
	}

	h, err := g.routes(mux)
	if err != nil {
		g.Close()
		return nil, err
	}
	g.handler = h
	return g, nil
}

// registerBackends connects to each service, one connection per distinct
// endpoint, and routes its REST bindings to it.
func (g *Gateway) registerBackends(mux *runtime.ServeMux) error {
	byEndpoint := make(map[string]*grpc.ClientConn)
	for _, b := range backends {
		endpoint := b.endpoint(g.cfg)
		if endpoint == "" {
			endpoint = g.cfg.GRPCEndpoint
		}
		conn, ok := byEndpoint[endpoint]
		if !ok {
			// TODO: TLS to the services; plaintext is safe only while the
			// gateway and the services share a host or a private network.
			var err error
			conn, err = grpc.NewClient(endpoint,
				grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return fmt.Errorf("connecting to %s service at %s: %w", b.name, endpoint, err)
			}
			byEndpoint[endpoint] = conn
			g.conns = append(g.conns, conn)
		}
		// The context only matters to handlers registered from an endpoint.
		if err := b.register(context.Background(), mux, conn); err != nil {
			return fmt.Errorf("registering %s handlers: %w", b.name, err)
		}
	}
	return nil
}

func (g *Gateway) routes(api http.Handler) (http.Handler, error) {
	mux := http.NewServeMux()
	mux.Handle("/v1/", g.limitBody(api, g.cfg.MaxBodyBytes))
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n")) // Nothing to do if the client has gone.
	})
	if g.registry == nil {
		return mux, nil
	}
	return instrument(g.registry, mux)
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapi.Document) // Nothing to do if the client has gone.
}

// matchHeader forwards the key header, besides what grpc-gateway forwards
// by default (Authorization among it).
func (g *Gateway) matchHeader(key string) (string, bool) {
	if g.cfg.KeyHeader != "" && strings.EqualFold(key, g.cfg.KeyHeader) {
		return strings.ToLower(key), true
	}
	return runtime.DefaultHeaderMatcher(key)
}

func instrument(reg prometheus.Registerer, h http.Handler) (http.Handler, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_http_requests_total",
		Help: "REST requests served by the gateway, by method and status code.",
	}, []string{"method", "code"})
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gateway_http_request_seconds",
		Help:    "Time the gateway took to answer REST requests.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method"})
	for _, c := range []prometheus.Collector{requests, seconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering gateway metrics: %w", err)
		}
	}
	return promhttp.InstrumentHandlerDuration(seconds,
		promhttp.InstrumentHandlerCounter(requests, h)), nil
}

// Handler returns the gateway's HTTP handler, for tests or for mounting it
// in another server.
func (g *Gateway) Handler() http.Handler {
	return g.handler
}

// Run serves the REST API on the configured address until ctx ends, then
// closes the connections to the services.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.Close()
	return server.NewHTTP("gateway", g.cfg.Addr, g.handler, g.cfg.ShutdownTimeout, g.logger).
		Run(ctx)
}

// Close closes the connections to the services. Run does it on return.
func (g *Gateway) Close() {
	for _, c := range g.conns {
		if err := c.Close(); err != nil {
			g.logger.Warn("closing grpc connection", slog.Any("error", err))
		}
	}
	g.conns = nil
}
