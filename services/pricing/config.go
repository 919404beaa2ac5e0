package pricing

import (
	"errors"
	"time"
)

// Config holds the pricing service's own settings. Read it with
// libs/config; every default works on the embedded stack. Kafka and
// PostgreSQL come from the host (see Deps).
type Config struct {
	// Group is the consumer group of the pricing consumer (usage topic to
	// priced topic).
	Group string `env:"PRICING_GROUP" default:"costplane-pricing" help:"pricing consumer group"`
	// LedgerGroup is the consumer group that copies the priced topic into
	// pricing.ledger.
	LedgerGroup string `env:"PRICING_LEDGER_GROUP" default:"costplane-pricing-ledger" help:"ledger consumer group"`
	// TransactionalID of the pricing consumer; empty means Group-hostname.
	// Each replica needs its own, stable across its restarts.
	TransactionalID string `env:"PRICING_TRANSACTIONAL_ID" default:"" help:"consumer transactional id"`
	// Workers price one batch in parallel; 0 means GOMAXPROCS.
	Workers int `env:"PRICING_WORKERS" default:"0" help:"pricing goroutines per batch"`

	// RatesPoll is how often tenant rates are checked for changes when no
	// notification came; notifications apply a change at once.
	RatesPoll time.Duration `env:"PRICING_RATES_POLL" default:"2s" help:"rates poll interval"`
	// RatesMaxStale pauses pricing when the rates could not be refreshed
	// for this long (PostgreSQL unreachable), rather than price at rates
	// that may have changed. It bounds how old the rates of any priced
	// record can be, which RepriceSettle relies on.
	RatesMaxStale time.Duration `env:"PRICING_RATES_MAX_STALE" default:"15s" help:"rates staleness bound"`

	// RepriceTransactionalID of the reprice worker's producer; empty
	// means "costplane-pricing-reprice-" + hostname.
	RepriceTransactionalID string `env:"PRICING_REPRICE_TRANSACTIONAL_ID" default:"" help:"reprice transactional id"`
	RepriceChunk           int    `env:"PRICING_REPRICE_CHUNK" default:"500" help:"events per reprice transaction"`
	// RepricePoll is how often an idle reprice worker looks for jobs.
	RepricePoll time.Duration `env:"PRICING_REPRICE_POLL" default:"2s" help:"reprice poll interval"`
	// RepriceLease is how long a job stays with a worker that died.
	RepriceLease time.Duration `env:"PRICING_REPRICE_LEASE" default:"1m" help:"reprice lease"`
	// RepriceSettle delays a job after it is started, so that every
	// pricing consumer prices with rates at least as new as the job (it
	// must exceed RatesMaxStale) and the ledger holds what they priced
	// with older ones.
	RepriceSettle time.Duration `env:"PRICING_REPRICE_SETTLE" default:"20s" help:"reprice start delay"`
	// RepriceCatchUp bounds the wait for the ledger to catch up with the
	// priced topic before a job runs.
	RepriceCatchUp time.Duration `env:"PRICING_REPRICE_CATCH_UP" default:"1m" help:"ledger catch-up wait"`

	// WhatIfMaxEvents bounds the past events one PriceUsage call prices.
	WhatIfMaxEvents int `env:"PRICING_WHATIF_MAX_EVENTS" default:"100000" help:"history events per PriceUsage"`
}

// DefaultConfig returns the settings the struct tags default to, for tests
// and tools that do not load the environment.
func DefaultConfig() Config {
	return Config{
		Group:           "costplane-pricing",
		LedgerGroup:     "costplane-pricing-ledger",
		RatesPoll:       2 * time.Second,
		RatesMaxStale:   15 * time.Second,
		RepriceChunk:    500,
		RepricePoll:     2 * time.Second,
		RepriceLease:    time.Minute,
		RepriceSettle:   20 * time.Second,
		RepriceCatchUp:  time.Minute,
		WhatIfMaxEvents: 100_000,
	}
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	checks := []struct {
		ok   bool
		what string
	}{
		{c.Group != "", "PRICING_GROUP must not be empty"},
		{c.LedgerGroup != "" && c.LedgerGroup != c.Group,
			"PRICING_LEDGER_GROUP must be set and differ from PRICING_GROUP"},
		{c.Workers >= 0, "PRICING_WORKERS must not be negative"},
		{c.RatesPoll >= 10*time.Millisecond, "PRICING_RATES_POLL must be at least 10ms"},
		{c.RatesMaxStale > c.RatesPoll, "PRICING_RATES_MAX_STALE must exceed PRICING_RATES_POLL"},
		{c.RepriceChunk >= 1 && c.RepriceChunk <= 10_000,
			"PRICING_REPRICE_CHUNK must be between 1 and 10000"},
		{c.RepricePoll >= 10*time.Millisecond, "PRICING_REPRICE_POLL must be at least 10ms"},
		{c.RepriceLease >= time.Second, "PRICING_REPRICE_LEASE must be at least 1s"},
		{c.RepriceSettle >= c.RatesMaxStale,
			"PRICING_REPRICE_SETTLE must be at least PRICING_RATES_MAX_STALE"},
		{c.RepriceCatchUp >= 0, "PRICING_REPRICE_CATCH_UP must not be negative"},
		{c.WhatIfMaxEvents >= 1, "PRICING_WHATIF_MAX_EVENTS must be at least 1"},
	}
	var errs []error
	for _, chk := range checks {
		if !chk.ok {
			errs = append(errs, errors.New(chk.what))
		}
	}
	return errors.Join(errs...)
}
