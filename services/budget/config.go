package budget

import (
	"errors"
	"time"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/libs/service"
)

// Settings are the budget service's own settings, shared by the standalone
// binary and the all-in-one one.
type Settings struct {
	Group string `env:"BUDGET_GROUP" default:"costplane-budget" help:"consumer group of priced usage"`
	// LabelKeys limits the labels kept in the daily spend store, and so
	// the label:<key> dimensions budgets may filter on; empty keeps all.
	LabelKeys []string `env:"BUDGET_LABEL_KEYS" default:"" help:"label keys budgets can use; empty: all"`
	// HistoryDays of a budget's daily spend are backfilled and fitted by
	// the forecaster.
	HistoryDays int `env:"BUDGET_HISTORY_DAYS" default:"120" help:"forecast history in days"`
	// DedupWindow is how long a priced record's id is remembered; a
	// duplicate send later than that would count twice.
	DedupWindow time.Duration `env:"BUDGET_DEDUP_WINDOW" default:"168h" help:"duplicate detection window"`
	// SpendRetention keeps the daily spend stores this long.
	SpendRetention time.Duration `env:"BUDGET_SPEND_RETENTION" default:"9600h" help:"daily spend retention"`
	// StateRefresh is how often the in-memory state rereads period
	// totals, which other members of the group may have changed.
	StateRefresh time.Duration `env:"BUDGET_STATE_REFRESH" default:"2s" help:"in-memory state refresh"`
	// PublishInterval bounds how late an alert raised by another member
	// is published; this member's alerts go out at once.
	PublishInterval  time.Duration `env:"BUDGET_PUBLISH_INTERVAL" default:"1s" help:"alert outbox poll"`
	ForecastInterval time.Duration `env:"BUDGET_FORECAST_INTERVAL" default:"10m" help:"forecast refit period"`
	MaintenanceEvery time.Duration `env:"BUDGET_MAINTENANCE_INTERVAL" default:"1h" help:"retention period"`

	WebhookTimeout     time.Duration `env:"BUDGET_WEBHOOK_TIMEOUT" default:"10s" help:"webhook call timeout"`
	WebhookMaxAttempts int           `env:"BUDGET_WEBHOOK_MAX_ATTEMPTS" default:"12" help:"webhook attempts"`
	WebhookBackoffMin  time.Duration `env:"BUDGET_WEBHOOK_BACKOFF_MIN" default:"2s" help:"first retry delay"`
	WebhookBackoffMax  time.Duration `env:"BUDGET_WEBHOOK_BACKOFF_MAX" default:"10m" help:"longest retry delay"`
	// WebhookSecret, when set, signs webhook bodies with HMAC-SHA256.
	WebhookSecret string `env:"BUDGET_WEBHOOK_SECRET" default:"" help:"webhook signing secret"`
	// WebhookAllowPrivate lets webhooks reach loopback and private
	// networks. Off, a webhook URL naming such an address is refused and
	// connections to one are refused at dial time, so that an admin key
	// cannot make the service probe its own network; turn it on only
	// where every admin is trusted with that network, such as a laptop.
	WebhookAllowPrivate bool `env:"BUDGET_WEBHOOK_ALLOW_PRIVATE" default:"false" help:"webhooks may reach private addresses"`

	// AttributionEndpoint is the gRPC address of the attribution service,
	// which resolves perspective and cost-category scopes; empty refuses
	// them.
	AttributionEndpoint string        `env:"BUDGET_ATTRIBUTION_ENDPOINT" default:"" help:"attribution gRPC address"`
	QueryTimeout        time.Duration `env:"BUDGET_QUERY_TIMEOUT" default:"30s" help:"bound of one API call"`
}

// DefaultSettings returns the settings the struct tags default to.
func DefaultSettings() Settings {
	return Settings{
		Group:              "costplane-budget",
		HistoryDays:        120,
		DedupWindow:        168 * time.Hour,
		SpendRetention:     9600 * time.Hour,
		StateRefresh:       2 * time.Second,
		PublishInterval:    time.Second,
		ForecastInterval:   10 * time.Minute,
		MaintenanceEvery:   time.Hour,
		WebhookTimeout:     10 * time.Second,
		WebhookMaxAttempts: 12,
		WebhookBackoffMin:  2 * time.Second,
		WebhookBackoffMax:  10 * time.Minute,
		QueryTimeout:       30 * time.Second,
	}
}

// Validate checks that the settings can work.
func (s Settings) Validate() error {
	checks := []struct {
		ok   bool
		what string
	}{
		{s.Group != "", "BUDGET_GROUP must not be empty"},
		{s.HistoryDays >= 14 && s.HistoryDays <= 1000, "BUDGET_HISTORY_DAYS must be 14-1000"},
		{s.DedupWindow >= time.Hour, "BUDGET_DEDUP_WINDOW must be at least 1h"},
		{s.SpendRetention >= 24*time.Hour*time.Duration(s.HistoryDays),
			"BUDGET_SPEND_RETENTION must cover BUDGET_HISTORY_DAYS"},
		{s.StateRefresh > 0, "BUDGET_STATE_REFRESH must be positive"},
		{s.PublishInterval > 0, "BUDGET_PUBLISH_INTERVAL must be positive"},
		{s.ForecastInterval >= time.Second, "BUDGET_FORECAST_INTERVAL must be at least 1s"},
		{s.MaintenanceEvery > 0, "BUDGET_MAINTENANCE_INTERVAL must be positive"},
		{s.WebhookTimeout > 0, "BUDGET_WEBHOOK_TIMEOUT must be positive"},
		{s.WebhookMaxAttempts >= 1, "BUDGET_WEBHOOK_MAX_ATTEMPTS must be at least 1"},
		{s.WebhookBackoffMin > 0 && s.WebhookBackoffMax >= s.WebhookBackoffMin,
			"BUDGET_WEBHOOK_BACKOFF_MIN must be positive and at most BUDGET_WEBHOOK_BACKOFF_MAX"},
		{s.QueryTimeout > 0, "BUDGET_QUERY_TIMEOUT must be positive"},
	}
	var errs []error
	for _, c := range checks {
		if !c.ok {
			errs = append(errs, errors.New(c.what))
		}
	}
	return errors.Join(errs...)
}

// Config is the configuration of the standalone budget process.
type Config struct {
	service.Base
	Budget Settings
	Kafka  kafka.Config
	Server server.Config
	Auth   auth.Config
}

// Validate checks that the settings can work.
func (c Config) Validate() error {
	errs := []error{c.Base.Validate(), c.Budget.Validate(), c.Kafka.Validate(),
		c.Server.Validate(), c.Auth.Validate()}
	if len(c.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must not be empty"))
	}
	return errors.Join(errs...)
}
