package attribution

import (
	"errors"
	"time"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/libs/service"
)

// Settings are the attribution service's own settings, shared by the
// standalone binary and the all-in-one one.
type Settings struct {
	// RawRetention keeps raw lines this long by dropping day partitions;
	// older usage is refused, since it could not be deduplicated.
	RawRetention    time.Duration `env:"ATTRIBUTION_RAW_RETENTION" default:"2160h" help:"raw line retention; 0 keeps all"`
	HourlyRetention time.Duration `env:"ATTRIBUTION_HOURLY_RETENTION" default:"9600h" help:"hourly rollup retention; 0 keeps all"`
	RunRetention    time.Duration `env:"ATTRIBUTION_RUN_RETENTION" default:"2160h" help:"runs, steps, sessions, outcomes retention"`
	PartitionsAhead int           `env:"ATTRIBUTION_PARTITIONS_AHEAD" default:"3" help:"day partitions created ahead"`
	// MaintenanceInterval is how often partitions are created and
	// retention applied.
	MaintenanceInterval time.Duration `env:"ATTRIBUTION_MAINTENANCE_INTERVAL" default:"1h" help:"maintenance period"`
	// DefaultCurrency is given to usage that carries no money.
	DefaultCurrency string `env:"ATTRIBUTION_DEFAULT_CURRENCY" default:"USD" help:"currency of unpriced usage"`
	// RollupLabelKeys limits the label keys kept in rollups; empty keeps
	// every key. Raw lines keep all labels.
	RollupLabelKeys []string      `env:"ATTRIBUTION_ROLLUP_LABEL_KEYS" default:"" help:"label keys in rollups; empty: all"`
	PricedGroup     string        `env:"ATTRIBUTION_PRICED_GROUP" default:"costplane-attribution" help:"consumer group of priced usage"`
	OutcomesGroup   string        `env:"ATTRIBUTION_OUTCOMES_GROUP" default:"costplane-attribution-outcomes" help:"consumer group of outcomes"`
	QueryTimeout    time.Duration `env:"ATTRIBUTION_QUERY_TIMEOUT" default:"30s" help:"bound of one API call"`
}

// DefaultSettings returns the settings the struct tags default to.
func DefaultSettings() Settings {
	return Settings{
		RawRetention:        2160 * time.Hour,
		HourlyRetention:     9600 * time.Hour,
		RunRetention:        2160 * time.Hour,
		PartitionsAhead:     3,
		MaintenanceInterval: time.Hour,
		DefaultCurrency:     "USD",
		PricedGroup:         "costplane-attribution",
		OutcomesGroup:       "costplane-attribution-outcomes",
		QueryTimeout:        30 * time.Second,
	}
}

// Validate checks that the settings can work.
func (s Settings) Validate() error {
	checks := []struct {
		ok   bool
		what string
	}{
		{s.RawRetention >= 0, "ATTRIBUTION_RAW_RETENTION must not be negative"},
		{s.HourlyRetention >= 0, "ATTRIBUTION_HOURLY_RETENTION must not be negative"},
		{s.RunRetention >= 0, "ATTRIBUTION_RUN_RETENTION must not be negative"},
		{s.PartitionsAhead >= 0, "ATTRIBUTION_PARTITIONS_AHEAD must not be negative"},
		{s.MaintenanceInterval > 0, "ATTRIBUTION_MAINTENANCE_INTERVAL must be positive"},
		{len(s.DefaultCurrency) == 3, "ATTRIBUTION_DEFAULT_CURRENCY must be an ISO 4217 code"},
		{s.PricedGroup != "", "ATTRIBUTION_PRICED_GROUP must not be empty"},
		{s.OutcomesGroup != "", "ATTRIBUTION_OUTCOMES_GROUP must not be empty"},
		{s.QueryTimeout > 0, "ATTRIBUTION_QUERY_TIMEOUT must be positive"},
	}
	var errs []error
	for _, c := range checks {
		if !c.ok {
			errs = append(errs, errors.New(c.what))
		}
	}
	return errors.Join(errs...)
}

// Config is the configuration of the standalone attribution process.
type Config struct {
	service.Base
	Attribution Settings
	Kafka       kafka.Config
	Server      server.Config
	Auth        auth.Config
}

// Validate checks that the settings can work.
func (c Config) Validate() error {
	errs := []error{c.Base.Validate(), c.Attribution.Validate(), c.Kafka.Validate(),
		c.Server.Validate(), c.Auth.Validate()}
	if len(c.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must not be empty"))
	}
	return errors.Join(errs...)
}
