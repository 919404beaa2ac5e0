package costplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/services/costplane"
)

func TestBadSettingStopsStartNamingIt(t *testing.T) {
	cases := map[string]map[string]string{
		"DEMO_RUNS":        {"DEMO_RUNS": "-3"},
		"EMBEDDED_PG_PORT": {"EMBEDDED_PG_PORT": "seventy"},
		"LOG_LEVEL":        {"LOG_LEVEL": "loud"},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			var cfg costplane.Config
			err := config.Load("costplane", &cfg, nil, lookup(env))
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("Load with %v: error %v, want one naming %s", env, err, name)
			}
		})
	}
}

// TestWholeSystemPricesAndAttributesDemoTraffic starts the all-in-one on
// a fresh database of the test PostgreSQL, lets the demo load run, and
// reads its cost back through the REST gateway: ingestion, pricing and
// attribution all had to work for a cost to show. It runs on the embedded
// broker, and on the real one when KAFKA_BROKERS is set.
func TestWholeSystemPricesAndAttributesDemoTraffic(t *testing.T) {
	t.Run("kfake", func(t *testing.T) { wholeSystem(t, "") })
	if brokers := os.Getenv("KAFKA_BROKERS"); brokers != "" {
		t.Run("kafka", func(t *testing.T) { wholeSystem(t, brokers) })
	}
}

func wholeSystem(t *testing.T, brokers string) {
	dbURL := freshDatabase(t)
	rest, grpcAddr := freeAddr(t), freeAddr(t)
	env := map[string]string{
		"DATABASE_URL":          dbURL,
		"COSTPLANE_DATA_DIR":    t.TempDir(),
		"EMBEDDED_KAFKA_PORT":   "0",
		"GATEWAY_ADDR":          rest,
		"GRPC_ADDR":             grpcAddr,
		"GATEWAY_GRPC_ENDPOINT": grpcAddr,
		"OTLP_GRPC_ADDR":        freeAddr(t),
		"OTLP_HTTP_ADDR":        freeAddr(t),
		"METRICS_ADDR":          freeAddr(t),
		"DEMO_RUNS":             "20",
		"DEV_API_KEY":           "",
		// A tenant of its own, so records a shared broker still holds
		// from earlier runs cannot be what the explorer shows.
		"BOOTSTRAP_TENANT": fmt.Sprintf("t%d", time.Now().UnixNano()),
	}
	if brokers != "" {
		env["KAFKA_BROKERS"] = brokers
	}
	var cfg costplane.Config
	if err := config.Load("costplane", &cfg, nil, lookup(env)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var banner bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	go func() { done <- costplane.Run(ctx, cfg, logger, &banner) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("Run did not stop within 60s of cancel")
		}
	})

	key := readKey(t, cfg.DataDir, done)
	base := "http://" + rest
	waitHealthy(t, base, done)
	if code := status(t, base+"/v1/models", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET /v1/models without a key: status %d, want 401", code)
	}

	query := `{"query":{"time_range":{"start_time":%q,"end_time":%q},` +
		`"granularity":"GRANULARITY_DAY","group_by":[{"dimension":"DIMENSION_AGENT"}]}}`
	now := time.Now().UTC()
	body := fmt.Sprintf(query, now.Add(-72*time.Hour).Format(time.RFC3339),
		now.Add(time.Hour).Format(time.RFC3339))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		total, agents := explorerTotal(t, base, key, body)
		if total > 0 && agents > 1 {
			t.Logf("explorer: %d agents, %d nano-USD", agents, total)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attributed cost after 2m (agents %d, total %d)", agents, total)
		}
		time.Sleep(time.Second)
	}
	for _, path := range []string{"/v1/anomalies", "/v1/budgets", "/v1/models?page_size=1"} {
		if code := status(t, base+path, key); code != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", path, code)
		}
	}
}

func explorerTotal(t *testing.T, base, key, body string) (int64, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/costs:query", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0 // the gateway may not listen yet
	}
	defer resp.Body.Close()
	var out struct {
		Series []struct {
			Total struct {
				EffectiveCostNanos string `json:"effective_cost_nanos"`
			} `json:"total"`
		} `json:"series"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /v1/costs:query: %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decoding explorer answer: %v", err)
	}
	var total int64
	for _, s := range out.Series {
		n, err := strconv.ParseInt(s.Total.EffectiveCostNanos, 10, 64)
		if err != nil {
			t.Fatalf("effective_cost_nanos %q: %v", s.Total.EffectiveCostNanos, err)
		}
		total += n
	}
	return total, len(out.Series)
}

func status(t *testing.T, u, key string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitHealthy waits until the gateway answers, which it does once every
// service is built.
func waitHealthy(t *testing.T, base string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("Run ended before serving: %v", err)
		default:
		}
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("gateway not healthy within 2m")
}

// readKey waits for the development key the bootstrap writes.
func readKey(t *testing.T, dir string, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("Run ended before serving: %v", err)
		default:
		}
		if b, err := os.ReadFile(dir + "/dev-api-key"); err == nil {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("no development key written within 1m")
	return ""
}

// freshDatabase creates an empty database beside DATABASE_URL's, so the
// bootstrap tenant and migrations start from nothing, and drops it after.
func freshDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		t.Skip("DATABASE_URL not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("costplane_aio_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
		conn.Close(ctx)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}
