package pricing_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/services/pricing"
)

func TestConfigDefaults(t *testing.T) {
	var got pricing.Config
	noEnv := func(string) (string, bool) { return "", false }
	if err := config.Load("pricing", &got, nil, noEnv); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff(pricing.DefaultConfig(), got); diff != "" {
		t.Errorf("DefaultConfig differs from the struct tags (-default +tags):\n%s", diff)
	}
}

func TestConfigValidateNamesTheSetting(t *testing.T) {
	tests := []struct {
		set  func(*pricing.Config)
		want string
	}{
		{func(c *pricing.Config) { c.LedgerGroup = c.Group }, "PRICING_LEDGER_GROUP"},
		{func(c *pricing.Config) { c.RepriceChunk = 0 }, "PRICING_REPRICE_CHUNK"},
		{func(c *pricing.Config) { c.RatesMaxStale = c.RatesPoll }, "PRICING_RATES_MAX_STALE"},
		{func(c *pricing.Config) { c.RepriceSettle = c.RatesMaxStale / 2 }, "PRICING_REPRICE_SETTLE"},
	}
	for _, tc := range tests {
		c := pricing.DefaultConfig()
		tc.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want an error naming %s", err, tc.want)
		}
	}
}
