package rates_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/costplane/costplane/libs/log"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/catalog"
	"github.com/costplane/costplane/services/pricing/internal/rates"
	"github.com/costplane/costplane/services/pricing/internal/testenv"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

func day(s string) time.Time {
	t, _ := time.Parse(time.DateOnly, s)
	return t
}

func discount(tenant, id, provider string, bp int64, from, to string) rates.Rate {
	r := rates.Rate{
		TenantID: tenant, ID: id, Kind: rates.KindDiscount, Provider: provider, PercentOffBP: bp,
	}
	if from != "" {
		r.From = day(from)
	}
	if to != "" {
		r.To = day(to)
	}
	return r
}

func TestStoreCreateListLoad(t *testing.T) {
	store := rates.NewStore(testenv.DB(t))
	ctx := context.Background()

	in := []rates.Rate{
		discount("t-a", "r1", "anthropic", 1500, "2026-01-01", ""),
		{
			TenantID: "t-a", ID: "r2", Kind: rates.KindFixedPrice, Model: "gpt-4.1",
			QuantityKind: eventv1.QuantityKind_QUANTITY_KIND_INPUT, PricePerMillionNanos: 1_800_000_000,
		},
		{
			TenantID: "t-a", ID: "r3", Kind: rates.KindCustomModel, Provider: "self-hosted",
			Model: "llama-ft", PricePerHourNanos: 2_500_000_000,
			UnitPrices: []rates.UnitPrice{
				{Kind: eventv1.QuantityKind_QUANTITY_KIND_INPUT, PerMillionNanos: 100_000_000},
			},
		},
		{
			TenantID: "t-a", ID: "r4", Kind: rates.KindDeployment, Provider: "azure.ai.openai",
			Model: "gpt-4o", Deployment: "prod-chat",
		},
		discount("t-b", "r5", "openai", 500, "", ""),
	}
	for _, r := range in {
		if _, err := store.Create(ctx, r); err != nil {
			t.Fatalf("Create(%s): %v", r.ID, err)
		}
	}

	got, err := store.List(ctx, "t-a", rates.ListFilter{Limit: 10})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	ignore := cmpopts.IgnoreFields(rates.Rate{}, "CreateTime")
	if diff := cmp.Diff(in[:4], got, ignore); diff != "" {
		t.Errorf("List of t-a (-want +got):\n%s", diff)
	}

	tr, err := store.Load(ctx, "t-a")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var custom catalog.Rates
	custom.Set(eventv1.QuantityKind_QUANTITY_KIND_INPUT, 100_000_000)
	want := &pricebook.TenantRates{
		Discounts: []pricebook.Discount{{
			ID: "r1", Scope: pricebook.Scope{Provider: "anthropic"}, PercentOffBP: 1500,
			Validity: pricebook.Validity{From: day("2026-01-01")},
		}},
		FixedRates: []pricebook.FixedRate{{
			ID: "r2", Scope: pricebook.Scope{Model: "gpt-4.1"},
			Kind: eventv1.QuantityKind_QUANTITY_KIND_INPUT, PerMillionNanos: 1_800_000_000,
		}},
		CustomModels: []pricebook.CustomModel{{
			ID: "r3", Provider: "self-hosted", Model: "llama-ft", Rates: custom,
			PerHourNanos: 2_500_000_000,
		}},
		Deployments: map[string]string{"prod-chat": "gpt-4o"},
	}
	if diff := cmp.Diff(want, tr, cmp.AllowUnexported(catalog.Rates{})); diff != "" {
		t.Errorf("Load of t-a (-want +got):\n%s", diff)
	}
	if err := tr.Validate(); err != nil {
		t.Errorf("loaded rates do not validate: %v", err)
	}
}

func TestStoreOverlap(t *testing.T) {
	store := rates.NewStore(testenv.DB(t))
	ctx := context.Background()
	if _, err := store.Create(ctx, discount("t", "base", "anthropic", 1000, "2026-01-01", "2026-07-01")); err != nil {
		t.Fatalf("Create: %v", err)
	}

	tests := []struct {
		name    string
		rate    rates.Rate
		overlap bool
	}{
		{"inside", discount("t", "x1", "anthropic", 1, "2026-03-01", "2026-04-01"), true},
		{"open end over it", discount("t", "x2", "anthropic", 1, "2026-06-30", ""), true},
		{"open start over it", discount("t", "x3", "anthropic", 1, "", "2026-01-02"), true},
		{"right after: to is exclusive", discount("t", "ok1", "anthropic", 1, "2026-07-01", ""), false},
		{"right before", discount("t", "ok2", "anthropic", 1, "2025-01-01", "2026-01-01"), false},
		{"another scope", discount("t", "ok3", "openai", 1, "", ""), false},
		{"another tenant", discount("u", "ok4", "anthropic", 1, "", ""), false},
	}
	for _, tc := range tests {
		_, err := store.Create(ctx, tc.rate)
		var oe *rates.OverlapError
		if got := errors.As(err, &oe); got != tc.overlap {
			t.Errorf("%s: Create error %v, want overlap %t", tc.name, err, tc.overlap)
			continue
		}
		if tc.overlap && oe.Existing.ID != "base" {
			t.Errorf("%s: overlaps %s, want base", tc.name, oe.Existing.ID)
		}
	}

	// A deleted rate no longer blocks its slot.
	if _, err := store.Delete(ctx, "t", "base"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := store.Create(ctx, discount("t", "x1", "anthropic", 1, "2026-03-01", "2026-04-01")); err != nil {
		t.Errorf("Create over a deleted rate: %v", err)
	}
}

func TestStoreDeleteIsTenantScoped(t *testing.T) {
	store := rates.NewStore(testenv.DB(t))
	ctx := context.Background()
	if _, err := store.Create(ctx, discount("t-a", "r1", "openai", 100, "", "")); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := store.Delete(ctx, "t-b", "r1"); !errors.Is(err, rates.ErrNotFound) {
		t.Errorf("Delete by another tenant: %v, want ErrNotFound", err)
	}
	r, err := store.Delete(ctx, "t-a", "r1")
	if err != nil || r.DeleteTime.IsZero() {
		t.Fatalf("Delete: %+v, %v; want a delete time", r, err)
	}
	again, err := store.Delete(ctx, "t-a", "r1")
	if err != nil || !again.DeleteTime.Equal(r.DeleteTime) {
		t.Errorf("second Delete: %+v, %v; want the same delete time %v", again, err, r.DeleteTime)
	}
	live, err := store.List(ctx, "t-a", rates.ListFilter{Limit: 10})
	if err != nil || len(live) != 0 {
		t.Errorf("List after delete: %v, %v; want none", live, err)
	}
	all, err := store.List(ctx, "t-a", rates.ListFilter{Limit: 10, ShowDeleted: true})
	if err != nil || len(all) != 1 {
		t.Errorf("List with deleted: %v, %v; want r1", all, err)
	}
}

// TestCacheFollowsChanges checks both refresh paths: a notification
// applies a change at once even with a long poll interval, and polling
// finds a change whose notification was lost.
func TestCacheFollowsChanges(t *testing.T) {
	db := testenv.DB(t)
	store := rates.NewStore(db)
	ctx := context.Background()

	run := func(t *testing.T, poll time.Duration) *rates.Cache {
		c := rates.NewCache(store, log.Discard(), poll, 2*poll)
		if err := c.Load(ctx); err != nil {
			t.Fatalf("Load: %v", err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(rctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
		return c
	}

	t.Run("notify", func(t *testing.T) {
		c := run(t, time.Hour)
		// Let LISTEN take effect; a change before it is found by the
		// refresh that follows LISTEN anyway.
		time.Sleep(200 * time.Millisecond)
		if _, err := store.Create(ctx, discount("t-n", "r1", "openai", 700, "", "")); err != nil {
			t.Fatalf("Create: %v", err)
		}
		testenv.Eventually(t, 5*time.Second, func() (bool, error) {
			tr := c.Get("t-n")
			return tr != nil && len(tr.Discounts) == 1, nil
		})
	})

	t.Run("poll", func(t *testing.T) {
		c := run(t, 100*time.Millisecond)
		// Written by hand, without pg_notify: only polling can see it.
		_, err := db.Exec(ctx, `WITH r AS (
			UPDATE pricing.rates_revision SET revision = revision + 1 RETURNING revision)
			INSERT INTO pricing.tenant_rates (tenant_id, rate_id, kind, provider, percent_off_bp, revision)
			SELECT 't-p', 'r1', 'discount', 'openai', 900, revision FROM r`)
		if err != nil {
			t.Fatalf("inserting: %v", err)
		}
		testenv.Eventually(t, 5*time.Second, func() (bool, error) {
			tr := c.Get("t-p")
			return tr != nil && len(tr.Discounts) == 1 && tr.Discounts[0].PercentOffBP == 900, nil
		})
		if err := c.Check(); err != nil {
			t.Errorf("Check of a polled cache: %v", err)
		}
	})
}

func TestCacheStale(t *testing.T) {
	c := rates.NewCache(rates.NewStore(nil), log.Discard(), time.Second, 2*time.Second)
	if err := c.Check(); !errors.Is(err, rates.ErrStale) {
		t.Errorf("Check before Load: %v, want ErrStale", err)
	}
}
