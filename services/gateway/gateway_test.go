package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/proto/gen/go/openapi"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/auth/authtest"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/admin"
	"github.com/costplane/costplane/services/gateway"
)

// startAdmin serves the admin service on a loopback port, as cmd/admin
// does, and returns its address and an operator key.
func startAdmin(t *testing.T) (addr, token string) {
	t.Helper()
	store, _ := authtest.NewStore(t)
	token, err := store.Bootstrap(context.Background(), "ops", "")
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}

	logger := log.Discard()
	authn := auth.NewAuthenticator(auth.NewVerifier(store, time.Second), admin.Scopes(),
		"x-costplane-key", logger)
	cfg := server.Config{
		GRPCAddr: "127.0.0.1:0", ShutdownTimeout: time.Second, MaxRecvBytes: 1 << 20,
	}
	srv, err := server.New(cfg, logger, server.WithUnaryInterceptors(authn.Unary()))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	srv.Register(admin.New(store, logger))

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String(), token
}

// unreachable returns a loopback address where nothing listens.
func unreachable(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func startGateway(t *testing.T, grpcAddr, ingestAddr string) *httptest.Server {
	t.Helper()
	cfg := gateway.Config{
		Addr: "unused", GRPCEndpoint: grpcAddr, IngestEndpoint: ingestAddr,
		KeyHeader: "x-costplane-key", MaxBodyBytes: 1 << 20, ShutdownTimeout: time.Second,
	}
	gw, err := gateway.New(cfg, log.Discard())
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	t.Cleanup(gw.Close)
	ts := httptest.NewServer(gw.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func call(t *testing.T, method, url, body string, header http.Header) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatalf("building request: %v", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("decoding %s: %v", raw, err)
		}
	}
	return r
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func TestREST(t *testing.T) {
	grpcAddr, token := startAdmin(t)
	ts := startGateway(t, grpcAddr, "")

	t.Run("no key is 401 json", func(t *testing.T) {
		r := call(t, http.MethodGet, ts.URL+"/v1/whoami", "", nil)
		if r.status != http.StatusUnauthorized {
			t.Fatalf("status = %d (%s), want 401", r.status, r.raw)
		}
		if r.body["code"] != float64(16) || r.body["message"] == "" {
			t.Errorf("body = %s; want code 16 and a message", r.raw)
		}
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	})

	t.Run("oversized body is 413 json", func(t *testing.T) {
		big := `{"tenant_id":"` + strings.Repeat("x", 2<<20) + `"}`
		for name, body := range map[string]io.Reader{
			"with length": strings.NewReader(big),
			"chunked":     struct{ io.Reader }{strings.NewReader(big)},
		} {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/tenants", body)
			req.Header = bearer(token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge ||
				!strings.Contains(string(raw), "GATEWAY_MAX_BODY_BYTES") {
				t.Errorf("%s: status %d %s; want 413 naming the limit", name, resp.StatusCode, raw)
			}
		}
	})

	t.Run("bearer is forwarded", func(t *testing.T) {
		r := call(t, http.MethodGet, ts.URL+"/v1/whoami", "", bearer(token))
		if r.status != http.StatusOK {
			t.Fatalf("status = %d (%s), want 200", r.status, r.raw)
		}
		tenant, _ := r.body["tenant"].(map[string]any)
		if tenant["tenant_id"] != "ops" {
			t.Errorf("whoami = %s; want tenant_id ops in proto field names", r.raw)
		}
	})

	t.Run("key header is forwarded", func(t *testing.T) {
		h := http.Header{"X-Costplane-Key": {token}}
		if r := call(t, http.MethodGet, ts.URL+"/v1/whoami", "", h); r.status != http.StatusOK {
			t.Errorf("status = %d (%s), want 200", r.status, r.raw)
		}
	})

	t.Run("bad field is 400 naming it", func(t *testing.T) {
		r := call(t, http.MethodPost, ts.URL+"/v1/tenants", `{"tenant_id":"Not_Valid"}`,
			bearer(token))
		if r.status != http.StatusBadRequest {
			t.Fatalf("status = %d (%s), want 400", r.status, r.raw)
		}
		want := []any{map[string]any{
			"@type": "type.googleapis.com/google.rpc.BadRequest",
			"field_violations": []any{map[string]any{
				"field": "tenant_id",
				"description": "must be 2-63 lower-case letters, digits and dashes, " +
					"starting and ending with a letter or digit",
			}},
		}}
		if diff := cmp.Diff(want, r.body["details"]); diff != "" {
			t.Errorf("details mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("good call is 200", func(t *testing.T) {
		r := call(t, http.MethodPost, ts.URL+"/v1/tenants", `{"tenant_id":"acme","name":"Acme"}`,
			bearer(token))
		if r.status != http.StatusOK {
			t.Fatalf("status = %d (%s), want 200", r.status, r.raw)
		}
		tenant, _ := r.body["tenant"].(map[string]any)
		delete(tenant, "create_time")
		// operator is false, and unpopulated fields are left out.
		want := map[string]any{"tenant_id": "acme", "name": "Acme"}
		if diff := cmp.Diff(want, tenant); diff != "" {
			t.Errorf("tenant mismatch (-want +got):\n%s", diff)
		}

		r = call(t, http.MethodGet, ts.URL+"/v1/tenants/acme", "", bearer(token))
		if r.status != http.StatusOK {
			t.Errorf("GET /v1/tenants/acme status = %d (%s), want 200", r.status, r.raw)
		}
		r = call(t, http.MethodPost, ts.URL+"/v1/tenants", `{"tenant_id":"acme"}`, bearer(token))
		if r.status != http.StatusConflict {
			t.Errorf("creating acme again: status = %d (%s), want 409", r.status, r.raw)
		}
	})

	t.Run("unknown route is 404 json", func(t *testing.T) {
		r := call(t, http.MethodGet, ts.URL+"/v1/nothing-here", "", bearer(token))
		if r.status != http.StatusNotFound || r.body["code"] != float64(5) {
			t.Errorf("status = %d (%s), want 404 with code 5", r.status, r.raw)
		}
	})
}

func TestUnreachableServiceIs503(t *testing.T) {
	grpcAddr, token := startAdmin(t)
	ts := startGateway(t, grpcAddr, unreachable(t))

	r := call(t, http.MethodPost, ts.URL+"/v1/usage", `{"events":[]}`, bearer(token))
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status = %d (%s), want 503", r.status, r.raw)
	}
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	if msg, _ := r.body["message"].(string); strings.Contains(msg, "127.0.0.1") {
		t.Errorf("message %q leaks the service address", msg)
	}
}

func TestOpenAPIAndHealth(t *testing.T) {
	ts := startGateway(t, unreachable(t), "")

	r := call(t, http.MethodGet, ts.URL+"/openapi.json", "", nil)
	if r.status != http.StatusOK || !bytes.Equal(r.raw, openapi.Document) {
		t.Errorf("/openapi.json: status %d, %d bytes; want 200 and the embedded document",
			r.status, len(r.raw))
	}
	if _, ok := r.body["paths"].(map[string]any)["/v1/tenants"]; !ok {
		t.Errorf("/openapi.json lacks /v1/tenants")
	}

	if r := call(t, http.MethodGet, ts.URL+"/healthz", "", nil); r.status != http.StatusOK {
		t.Errorf("/healthz status = %d, want 200", r.status)
	}
}
