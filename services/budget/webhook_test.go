package budget_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/services/budget/internal/alerts"
)

// hook is a webhook receiver that fails its first calls.
type hook struct {
	mu       sync.Mutex
	failures int
	calls    []*http.Request
	bodies   [][]byte
	times    []time.Time
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, r)
	h.bodies = append(h.bodies, body)
	h.times = append(h.times, time.Now())
	if h.failures > 0 {
		h.failures--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Webhooks are retried with exponential backoff until delivered or out of
// attempts, against real HTTP servers on loopback.
func TestWebhookRetriesUntilDelivered(t *testing.T) {
	e := newEnv(t, brokers(t, "kfake"))
	s := testSettings()
	s.WebhookSecret = "s3cret"
	// Backoff well above the 200 ms poll, so that the gaps between
	// attempts show the backoff and not the polling.
	s.WebhookBackoffMin = 300 * time.Millisecond
	s.WebhookBackoffMax = 1200 * time.Millisecond
	s.WebhookMaxAttempts = 4
	e.start(s, true)
	ctx := e.tenantCtx("acme")

	flaky := &hook{failures: 2}
	flakySrv := httptest.NewServer(flaky)
	defer flakySrv.Close()
	dead := &hook{failures: 1 << 30}
	deadSrv := httptest.NewServer(dead)
	defer deadSrv.Close()

	for id, url := range map[string]string{"flaky": flakySrv.URL, "dead": deadSrv.URL} {
		b := validBudget(id)
		b.Thresholds = []*budgetv1.Threshold{{Kind: actual, BasisPoints: 5000}}
		b.WebhookUrl = url
		if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b}); err != nil {
			t.Fatal(err)
		}
	}
	e.produce(priced{tenant: "acme", id: "big", day: today(), nanos: usd(60), project: "a"})

	states := func() (map[string]*budgetv1.AlertRecord, error) {
		resp, err := e.client.ListBudgetAlerts(ctx, &budgetv1.ListBudgetAlertsRequest{})
		if err != nil {
			return nil, err
		}
		out := map[string]*budgetv1.AlertRecord{}
		for _, r := range resp.GetAlerts() {
			out[r.GetAlert().GetBudgetId()] = r
		}
		return out, nil
	}
	eventually(t, 30*time.Second, func() error {
		st, err := states()
		if err != nil {
			return err
		}
		if st["flaky"].GetWebhookState() != budgetv1.DeliveryState_DELIVERY_STATE_DELIVERED ||
			st["dead"].GetWebhookState() != budgetv1.DeliveryState_DELIVERY_STATE_FAILED {
			return fmt.Errorf("webhook states: %v", st)
		}
		return nil
	})

	st, _ := states()
	if n := st["flaky"].GetWebhookAttempts(); n != 3 {
		t.Errorf("flaky webhook attempts = %d, want 3", n)
	}
	if n := st["dead"].GetWebhookAttempts(); n != int32(s.WebhookMaxAttempts) {
		t.Errorf("dead webhook attempts = %d, want %d", n, s.WebhookMaxAttempts)
	}
	if st["flaky"].GetPublishTime() == nil {
		t.Error("alert not marked published")
	}

	// Delays after attempts 1, 2, 3 are nominally 300, 600 and 1200 ms,
	// each jittered into [nominal/2, nominal], plus up to a poll.
	dead.mu.Lock()
	for i := 1; i < len(dead.times); i++ {
		gap := dead.times[i].Sub(dead.times[i-1])
		nominal := s.WebhookBackoffMin << (i - 1)
		if gap < nominal/2 || gap > nominal+s.PublishInterval+300*time.Millisecond {
			t.Errorf("gap before attempt %d = %s, want %s-%s", i+1, gap, nominal/2,
				nominal+s.PublishInterval)
		}
	}
	dead.mu.Unlock()

	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	last := flaky.calls[len(flaky.calls)-1]
	body := flaky.bodies[len(flaky.bodies)-1]
	var a eventv1.BudgetAlert
	if err := protojson.Unmarshal(body, &a); err != nil {
		t.Fatalf("webhook body is not a BudgetAlert: %v", err)
	}
	if got := last.Header.Get(alerts.HeaderWebhookAlertID); got != a.GetAlertId() || got == "" {
		t.Errorf("alert id header = %q, body id %q", got, a.GetAlertId())
	}
	ts := last.Header.Get(alerts.HeaderWebhookTimestamp)
	if got, want := last.Header.Get(alerts.HeaderWebhookSignature),
		alerts.Sign("s3cret", ts, body); got != want {
		t.Errorf("signature = %q, want %q", got, want)
	}
}

// A webhook URL that passed validation (here because private addresses
// were allowed when the budget was written) is still refused when the
// connection is made by a service that does not allow them: the receiver
// on loopback never sees a call.
func TestWebhookRefusedAtConnectTime(t *testing.T) {
	e := newEnv(t, brokers(t, "kfake"))
	e.start(testSettings(), false) // allows private addresses
	ctx := e.tenantCtx("acme")

	h := &hook{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	b := validBudget("team-a")
	b.Thresholds = []*budgetv1.Threshold{{Kind: actual, BasisPoints: 5000}}
	b.WebhookUrl = srv.URL
	if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b}); err != nil {
		t.Fatal(err)
	}

	e.stop(0)
	s := testSettings()
	s.WebhookAllowPrivate = false
	s.WebhookMaxAttempts = 1
	e.start(s, true)
	e.produce(priced{tenant: "acme", id: "big", day: today(), nanos: usd(60), project: "a"})

	eventually(t, 30*time.Second, func() error {
		resp, err := e.client.ListBudgetAlerts(ctx, &budgetv1.ListBudgetAlertsRequest{})
		if err != nil {
			return err
		}
		if len(resp.GetAlerts()) != 1 {
			return fmt.Errorf("%d alerts", len(resp.GetAlerts()))
		}
		r := resp.GetAlerts()[0]
		if r.GetWebhookState() != budgetv1.DeliveryState_DELIVERY_STATE_FAILED ||
			!strings.Contains(r.GetWebhookLastError(), alerts.ErrPrivateAddress.Error()) {
			return fmt.Errorf("delivery %s: %q", r.GetWebhookState(), r.GetWebhookLastError())
		}
		return nil
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.calls) != 0 {
		t.Errorf("receiver saw %d calls, want none", len(h.calls))
	}
}
