package anomaly

import (
	"errors"
	"time"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/libs/service"
)

// Settings are the anomaly service's own settings, shared by the
// standalone binary and the all-in-one one. Per-tenant thresholds are
// not here: tenants set them through UpdateAnomalySettings.
type Settings struct {
	Group           string `env:"ANOMALY_GROUP" default:"costplane-anomaly" help:"consumer group of priced usage"`
	TransactionalID string `env:"ANOMALY_TRANSACTIONAL_ID" default:"costplane-anomaly-publisher" help:"Kafka transactional id of the alert publisher, shared by all instances"`
	// MaxPollRecords replaces KAFKA_MAX_POLL_RECORDS for this consumer:
	// larger batches mean fewer, larger transactions.
	MaxPollRecords int `env:"ANOMALY_MAX_POLL_RECORDS" default:"5000" help:"records per batch"`

	RunIdle        time.Duration `env:"ANOMALY_RUN_IDLE" default:"15m" help:"a run without events this long has ended"`
	RunDoneGrace   time.Duration `env:"ANOMALY_RUN_DONE_GRACE" default:"30s" help:"wait for stragglers after a run's top-level agent step"`
	SessionIdle    time.Duration `env:"ANOMALY_SESSION_IDLE" default:"30m" help:"a session without events this long has ended"`
	MinBaseline    int           `env:"ANOMALY_MIN_BASELINE" default:"30" help:"completed runs or sessions a baseline needs"`
	BaselineDays   int           `env:"ANOMALY_BASELINE_DAYS" default:"7" help:"days of runs and sessions in a baseline"`
	NewSpendWindow time.Duration `env:"ANOMALY_NEW_SPEND_WINDOW" default:"24h" help:"how long spend on a model or provider counts as new"`
	NewSpendMinAge time.Duration `env:"ANOMALY_NEW_SPEND_MIN_AGE" default:"168h" help:"history a scope needs before new spend in it alerts"`

	SpikeWindow     time.Duration `env:"ANOMALY_SPIKE_WINDOW" default:"1h" help:"spend window judged for spikes"`
	SpikeMinHistory time.Duration `env:"ANOMALY_SPIKE_MIN_HISTORY" default:"168h" help:"history a series needs before spikes are judged"`
	SpikeCooldown   time.Duration `env:"ANOMALY_SPIKE_COOLDOWN" default:"2h" help:"quiet time that ends a spike episode"`
	SpikeLateness   time.Duration `env:"ANOMALY_SPIKE_LATENESS" default:"2m" help:"how late events may arrive for a bucket"`
	SpikeWeeks      int           `env:"ANOMALY_SPIKE_WEEKS" default:"4" help:"weeks of history in a seasonal baseline"`
	EvalInterval    time.Duration `env:"ANOMALY_EVAL_INTERVAL" default:"10s" help:"how often the spike evaluator looks for closed buckets"`

	Retention5m time.Duration `env:"ANOMALY_RETENTION_5M" default:"336h" help:"5-minute series retention"`
	Retention1h time.Duration `env:"ANOMALY_RETENTION_1H" default:"1440h" help:"hourly series retention"`

	PublishBatch int           `env:"ANOMALY_PUBLISH_BATCH" default:"500" help:"records per publish transaction"`
	PublishPoll  time.Duration `env:"ANOMALY_PUBLISH_POLL" default:"1s" help:"outbox check interval without a notification"`

	SettingsTTL  time.Duration `env:"ANOMALY_SETTINGS_TTL" default:"30s" help:"how long tenant settings are cached"`
	QueryTimeout time.Duration `env:"ANOMALY_QUERY_TIMEOUT" default:"30s" help:"bound of one API call, and of stopping"`
}

// DefaultSettings returns the settings the struct tags default to.
func DefaultSettings() Settings {
	return Settings{
		Group:           "costplane-anomaly",
		TransactionalID: "costplane-anomaly-publisher",
		MaxPollRecords:  5000,
		RunIdle:         15 * time.Minute,
		RunDoneGrace:    30 * time.Second,
		SessionIdle:     30 * time.Minute,
		MinBaseline:     30,
		BaselineDays:    7,
		NewSpendWindow:  24 * time.Hour,
		NewSpendMinAge:  7 * 24 * time.Hour,
		SpikeWindow:     time.Hour,
		SpikeMinHistory: 7 * 24 * time.Hour,
		SpikeCooldown:   2 * time.Hour,
		SpikeLateness:   2 * time.Minute,
		SpikeWeeks:      4,
		EvalInterval:    10 * time.Second,
		Retention5m:     14 * 24 * time.Hour,
		Retention1h:     60 * 24 * time.Hour,
		PublishBatch:    500,
		PublishPoll:     time.Second,
		SettingsTTL:     30 * time.Second,
		QueryTimeout:    30 * time.Second,
	}
}

// Validate checks that the settings can work.
func (s Settings) Validate() error {
	checks := []struct {
		ok   bool
		what string
	}{
		{s.Group != "", "ANOMALY_GROUP must not be empty"},
		{s.TransactionalID != "", "ANOMALY_TRANSACTIONAL_ID must not be empty"},
		{s.MaxPollRecords >= 1, "ANOMALY_MAX_POLL_RECORDS must be at least 1"},
		{s.RunIdle > 0, "ANOMALY_RUN_IDLE must be positive"},
		{s.RunDoneGrace >= 0, "ANOMALY_RUN_DONE_GRACE must not be negative"},
		{s.SessionIdle > 0, "ANOMALY_SESSION_IDLE must be positive"},
		{s.MinBaseline >= 1, "ANOMALY_MIN_BASELINE must be at least 1"},
		{s.BaselineDays >= 1, "ANOMALY_BASELINE_DAYS must be at least 1"},
		{s.NewSpendWindow > 0, "ANOMALY_NEW_SPEND_WINDOW must be positive"},
		{s.NewSpendMinAge >= 0, "ANOMALY_NEW_SPEND_MIN_AGE must not be negative"},
		{s.SpikeWindow >= 5*time.Minute && s.SpikeWindow%(5*time.Minute) == 0,
			"ANOMALY_SPIKE_WINDOW must be a positive multiple of 5m"},
		{s.SpikeMinHistory >= 24*time.Hour, "ANOMALY_SPIKE_MIN_HISTORY must be at least 24h"},
		{s.SpikeCooldown >= 0, "ANOMALY_SPIKE_COOLDOWN must not be negative"},
		{s.SpikeLateness >= 0, "ANOMALY_SPIKE_LATENESS must not be negative"},
		{s.SpikeWeeks >= 1, "ANOMALY_SPIKE_WEEKS must be at least 1"},
		{s.EvalInterval > 0, "ANOMALY_EVAL_INTERVAL must be positive"},
		{s.Retention5m >= s.SpikeWindow+24*time.Hour,
			"ANOMALY_RETENTION_5M must cover a day more than ANOMALY_SPIKE_WINDOW"},
		{s.Retention1h >= time.Duration(s.SpikeWeeks+1)*7*24*time.Hour,
			"ANOMALY_RETENTION_1H must cover ANOMALY_SPIKE_WEEKS plus a week"},
		{s.PublishBatch >= 1, "ANOMALY_PUBLISH_BATCH must be at least 1"},
		{s.PublishPoll > 0, "ANOMALY_PUBLISH_POLL must be positive"},
		{s.SettingsTTL > 0, "ANOMALY_SETTINGS_TTL must be positive"},
		{s.QueryTimeout > 0, "ANOMALY_QUERY_TIMEOUT must be positive"},
	}
	var errs []error
	for _, c := range checks {
		if !c.ok {
			errs = append(errs, errors.New(c.what))
		}
	}
	return errors.Join(errs...)
}

// Config is the configuration of the standalone anomaly process.
type Config struct {
	service.Base
	Anomaly Settings
	Kafka   kafka.Config
	Server  server.Config
	Auth    auth.Config
}

// Validate checks that the settings can work.
func (c Config) Validate() error {
	errs := []error{c.Base.Validate(), c.Anomaly.Validate(), c.Kafka.Validate(),
		c.Server.Validate(), c.Auth.Validate()}
	if len(c.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must not be empty"))
	}
	return errors.Join(errs...)
}
