package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
)

// testService has a method that panics and one that blocks until released
// or its context ends.
type testService struct {
	release chan struct{}
	entered chan struct{}
}

func (s *testService) Register(g *grpc.Server) {
	unary := func(name string, h func(ctx context.Context) error) grpc.MethodDesc {
		return grpc.MethodDesc{MethodName: name, Handler: func(srv any, ctx context.Context,
			dec func(any) error, icpt grpc.UnaryServerInterceptor,
		) (any, error) {
			in := new(emptypb.Empty)
			if err := dec(in); err != nil {
				return nil, err
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.v1.Test/" + name}
			return icpt(ctx, in, info, func(ctx context.Context, _ any) (any, error) {
				return &emptypb.Empty{}, h(ctx)
			})
		}}
	}
	g.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.v1.Test",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unary("Panic", func(context.Context) error { panic("boom") }),
			unary("Block", func(ctx context.Context) error {
				close(s.entered)
				<-s.release // Ignores ctx on purpose: a stuck handler.
				return nil
			}),
		},
	}, s)
}

type running struct {
	conn        *grpc.ClientConn
	metricsAddr string
	cancel      context.CancelFunc
	done        chan error
}

func start(t *testing.T, svc *testService, shutdown time.Duration) *running {
	t.Helper()
	metricsLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	metricsAddr := metricsLis.Addr().String()
	metricsLis.Close() // The server opens it again; a tiny race is fine in tests.

	cfg := server.Config{
		GRPCAddr: "127.0.0.1:0", MetricsAddr: metricsAddr,
		ShutdownTimeout: shutdown, MaxRecvBytes: 1 << 20,
	}
	srv, err := server.New(cfg, log.Discard())
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	srv.Register(svc)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{metricsAddr: metricsAddr, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Serve(ctx, lis) }()

	r.conn, err = grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { r.conn.Close() })
	return r
}

func TestServer(t *testing.T) {
	svc := &testService{release: make(chan struct{}), entered: make(chan struct{})}
	r := start(t, svc, time.Second)
	ctx := context.Background()

	err := r.conn.Invoke(ctx, "/test.v1.Test/Panic", &emptypb.Empty{}, &emptypb.Empty{})
	st := status.Convert(err)
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "boom") {
		t.Errorf("panicking call = %v; want INTERNAL without the panic value", err)
	}

	health := healthpb.NewHealthClient(r.conn)
	for _, name := range []string{"", "test.v1.Test"} {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q = %v, %v; want SERVING", name, resp, err)
		}
	}

	body := scrape(t, r.metricsAddr)
	want := `grpc_server_handled_total{grpc_code="Internal",grpc_method="Panic",` +
		`grpc_service="test.v1.Test",grpc_type="unary"} 1`
	if !strings.Contains(body, want) {
		t.Errorf("metrics lack %q:\n%s", want, body)
	}

	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestShutdownCutsStuckCalls(t *testing.T) {
	svc := &testService{release: make(chan struct{}), entered: make(chan struct{})}
	defer close(svc.release)
	const timeout = 200 * time.Millisecond
	r := start(t, svc, timeout)

	called := make(chan error, 1)
	go func() {
		called <- r.conn.Invoke(context.Background(), "/test.v1.Test/Block",
			&emptypb.Empty{}, &emptypb.Empty{})
	}()
	<-svc.entered

	began := time.Now()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop although its shutdown is bounded")
	}
	if took := time.Since(began); took < timeout {
		t.Errorf("shutdown took %s; want it to wait about %s for the call", took, timeout)
	}
	if err := <-called; status.Code(err) != codes.Unavailable {
		t.Errorf("cut call = %v; want UNAVAILABLE", err)
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	var lastErr error
	for range 50 {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			lastErr = err
			time.Sleep(20 * time.Millisecond)
			continue
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading metrics: %v", err)
		}
		return string(b)
	}
	t.Fatalf("scraping metrics: %v", lastErr)
	return ""
}

func TestConfigValidate(t *testing.T) {
	good := server.Config{GRPCAddr: ":0", ShutdownTimeout: time.Second, MaxRecvBytes: 1}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", good, err)
	}
	for _, bad := range []server.Config{
		{ShutdownTimeout: time.Second, MaxRecvBytes: 1},
		{GRPCAddr: ":0", MaxRecvBytes: 1},
		{GRPCAddr: ":0", ShutdownTimeout: time.Second},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", bad)
		}
	}
}
