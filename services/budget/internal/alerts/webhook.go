package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/kafka"
)

// Webhook request headers.
const (
	HeaderWebhookAlertID   = "Costplane-Alert-Id"
	HeaderWebhookAttempt   = "Costplane-Attempt"
	HeaderWebhookTimestamp = "Costplane-Timestamp"
	// HeaderWebhookSignature is "sha256=" and the hex HMAC-SHA256, keyed
	// with the configured secret, of the timestamp, a dot and the body.
	HeaderWebhookSignature = "Costplane-Signature"
)

// DeliveryOptions configure a Deliverer.
type DeliveryOptions struct {
	MaxAttempts int
	BackoffMin  time.Duration
	BackoffMax  time.Duration
	// Secret signs bodies when not empty.
	Secret   string
	Interval time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
	// OnResult is told "delivered", "retry" or "failed" per attempt.
	OnResult func(result string)
}

// Deliverer posts alerts to their budgets' webhooks, at least once, with
// exponential backoff and jitter between attempts. Receivers deduplicate
// on the Costplane-Alert-Id header. Several members may run one: a due
// delivery is claimed by pushing its next attempt a lease ahead, in a
// short transaction, before the call is made.
type Deliverer struct {
	db   *pgxpool.Pool
	http *http.Client
	o    DeliveryOptions
}

// NewDeliverer returns a deliverer.
func NewDeliverer(db *pgxpool.Pool, client *http.Client, o DeliveryOptions) *Deliverer {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OnResult == nil {
		o.OnResult = func(string) {}
	}
	return &Deliverer{db: db, http: client, o: o}
}

// Run delivers due webhooks until ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	t := time.NewTicker(d.o.Interval)
	defer t.Stop()
	for {
		if _, err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.o.Logger.Warn("delivering webhooks failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

const (
	// lease is how long a claimed delivery is hidden from other members;
	// it outlasts any call the client's timeout allows.
	lease = 5 * time.Minute

	claimDeliveriesSQL = `UPDATE budget.webhook_deliveries w
SET next_attempt_time = $2::timestamptz + $3::interval, attempts = w.attempts + 1
FROM (
	SELECT alert_id FROM budget.webhook_deliveries
	WHERE next_attempt_time <= $2 ORDER BY next_attempt_time LIMIT $1
	FOR UPDATE SKIP LOCKED
) due, budget.alerts a
WHERE w.alert_id = due.alert_id AND a.alert_id = w.alert_id
RETURNING w.alert_id, w.url, w.attempts, a.payload`

	deliveredSQL = `UPDATE budget.webhook_deliveries
SET next_attempt_time = NULL, deliver_time = $2, last_error = ''
WHERE alert_id = $1`
	retrySQL = `UPDATE budget.webhook_deliveries
SET next_attempt_time = $2, last_error = $3 WHERE alert_id = $1`
	giveUpSQL = `UPDATE budget.webhook_deliveries
SET next_attempt_time = NULL, fail_time = $2, last_error = $3 WHERE alert_id = $1`
)

type delivery struct {
	alertID, url string
	attempt      int
	payload      []byte
}

// DeliverDue makes one attempt at every due delivery, up to a batch, and
// returns how many it attempted.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	now := d.o.Now()
	rows, err := d.db.Query(ctx, claimDeliveriesSQL, 50, now, lease)
	if err != nil {
		return 0, fmt.Errorf("claiming webhook deliveries: %w", err)
	}
	var (
		due []delivery
		w   delivery
		p   string
	)
	_, err = pgx.ForEachRow(rows, []any{&w.alertID, &w.url, &w.attempt, &p}, func() error {
		w.payload = []byte(p)
		due = append(due, w)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("claiming webhook deliveries: %w", err)
	}

	for _, w := range due {
		if err := d.attempt(ctx, w); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// attempt posts one delivery and records the outcome; it returns an error
// only when the outcome cannot be recorded.
func (d *Deliverer) attempt(ctx context.Context, w delivery) error {
	callErr := d.post(ctx, w)
	now := d.o.Now()
	var err error
	switch {
	case callErr == nil:
		d.o.OnResult("delivered")
		_, err = d.db.Exec(ctx, deliveredSQL, w.alertID, now)
	case w.attempt >= d.o.MaxAttempts:
		d.o.OnResult("failed")
		d.o.Logger.Warn("webhook delivery given up", "alert_id", w.alertID,
			"attempts", w.attempt, "error", callErr)
		_, err = d.db.Exec(ctx, giveUpSQL, w.alertID, now, callErr.Error())
	default:
		d.o.OnResult("retry")
		next := now.Add(Backoff(w.attempt, d.o.BackoffMin, d.o.BackoffMax))
		_, err = d.db.Exec(ctx, retrySQL, w.alertID, next, callErr.Error())
	}
	if err != nil {
		return fmt.Errorf("recording webhook attempt of %s: %w", w.alertID, err)
	}
	return nil
}

func (d *Deliverer) post(ctx context.Context, w delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(w.payload))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	ts := strconv.FormatInt(d.o.Now().Unix(), 10)
	req.Header.Set("Content-Type", kafka.ContentTypeJSON)
	req.Header.Set("User-Agent", "costplane-budget")
	req.Header.Set(HeaderWebhookAlertID, w.alertID)
	req.Header.Set(HeaderWebhookAttempt, strconv.Itoa(w.attempt))
	req.Header.Set(HeaderWebhookTimestamp, ts)
	if d.o.Secret != "" {
		req.Header.Set(HeaderWebhookSignature, Sign(d.o.Secret, ts, w.payload))
	}

	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("posting: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// Sign returns the signature header value of body sent at timestamp ts.
func Sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Backoff is the delay after failed attempt n (from 1): doubling from lo,
// capped at hi, with "equal jitter" (half fixed, half random) so that
// deliveries failing together do not retry together.
func Backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}
