package budget_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/services/gateway"
)

// restClient calls the service through the production REST gateway.
type restClient struct {
	t     testing.TB
	base  string
	token string
}

// rest serves the REST gateway in front of the env's latest service.
func (e *env) rest(token string) *restClient {
	e.t.Helper()
	g, err := gateway.New(gateway.Config{Addr: "127.0.0.1:0", GRPCEndpoint: e.addr,
		KeyHeader: "x-costplane-key", MaxBodyBytes: 1 << 20, ShutdownTimeout: time.Second},
		log.New(testWriter{e.t}, slog.LevelWarn, "gateway"))
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	e.t.Cleanup(func() { srv.Close(); g.Close() })
	return &restClient{t: e.t, base: srv.URL, token: token}
}

// do sends a request with body (nil for none) and decodes the JSON answer
// into out; it returns the HTTP status.
func (c *restClient) do(method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decoding %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}
