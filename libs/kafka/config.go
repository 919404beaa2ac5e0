package kafka

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Topic names of DESIGN §4. They are the defaults of the Topics settings;
// a deployment may rename them.
const (
	TopicUsage        = "costplane.usage.v1"
	TopicUsagePriced  = "costplane.usage.priced.v1"
	TopicOutcomes     = "costplane.outcomes.v1"
	TopicBilling      = "costplane.billing.v1"
	TopicAnomalies    = "costplane.anomalies.v1"
	TopicBudgetAlerts = "costplane.budget.alerts.v1"
	TopicUsageDLQ     = "costplane.usage.dlq.v1"
)

// Where a consumer starts on a partition that has no stored offset.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
)

// Config holds the Kafka settings shared by every service. It is meant to
// be embedded in a service's config and read with libs/config.
type Config struct {
	// Brokers empty means the binary starts an embedded broker, where it
	// supports one; Validate accepts it so that such binaries can decide.
	Brokers  []string `env:"KAFKA_BROKERS" default:"" help:"seed brokers, host:port,..."`
	ClientID string   `env:"KAFKA_CLIENT_ID" default:"costplane" help:"client id"`

	// Topic settings apply only to topics created at start-up; an
	// existing topic is left as it is.
	TopicPartitions   int32 `env:"KAFKA_TOPIC_PARTITIONS" default:"6" help:"partitions"`
	ReplicationFactor int16 `env:"KAFKA_REPLICATION_FACTOR" default:"1" help:"replicas"`
	// TopicRetention of zero keeps the broker's default.
	TopicRetention time.Duration `env:"KAFKA_TOPIC_RETENTION" default:"168h" help:"retention"`

	DialTimeout time.Duration `env:"KAFKA_DIAL_TIMEOUT" default:"5s" help:"connect timeout"`
	// ProduceTimeout bounds how long Producer.Produce waits for
	// acknowledgement before it reports ErrUnavailable.
	ProduceTimeout time.Duration `env:"KAFKA_PRODUCE_TIMEOUT" default:"10s" help:"ack wait"`
	// TransactionTimeout is how long the broker keeps a crashed
	// transactional stage's open transaction before aborting it.
	TransactionTimeout time.Duration `env:"KAFKA_TRANSACTION_TIMEOUT" default:"30s" help:"txn"`
	// SessionTimeout is how long a dead consumer holds its partitions.
	SessionTimeout time.Duration `env:"KAFKA_SESSION_TIMEOUT" default:"45s" help:"group session"`

	// MaxPollRecords caps a consumer batch, which is one transaction.
	MaxPollRecords int `env:"KAFKA_MAX_POLL_RECORDS" default:"1000" help:"records per batch"`
	// ConsumerStart applies to partitions with no stored offset.
	ConsumerStart string `env:"KAFKA_CONSUMER_START" default:"earliest" help:"earliest|latest"`

	Topics Topics
}

// Topics names the topics of DESIGN §4.
type Topics struct {
	Usage        string `env:"KAFKA_TOPIC_USAGE" default:"costplane.usage.v1" help:"usage events topic"`
	UsagePriced  string `env:"KAFKA_TOPIC_USAGE_PRICED" default:"costplane.usage.priced.v1" help:"priced usage topic"`
	Outcomes     string `env:"KAFKA_TOPIC_OUTCOMES" default:"costplane.outcomes.v1" help:"outcomes topic"`
	Billing      string `env:"KAFKA_TOPIC_BILLING" default:"costplane.billing.v1" help:"provider billing topic"`
	Anomalies    string `env:"KAFKA_TOPIC_ANOMALIES" default:"costplane.anomalies.v1" help:"anomaly alerts topic"`
	BudgetAlerts string `env:"KAFKA_TOPIC_BUDGET_ALERTS" default:"costplane.budget.alerts.v1" help:"budget alerts topic"`
	UsageDLQ     string `env:"KAFKA_TOPIC_USAGE_DLQ" default:"costplane.usage.dlq.v1" help:"dead-letter topic"`
}

// DefaultConfig returns the settings the struct tags default to, for
// tests and tools that do not load the environment.
func DefaultConfig() Config {
	return Config{
		ClientID:           "costplane",
		TopicPartitions:    6,
		ReplicationFactor:  1,
		TopicRetention:     168 * time.Hour,
		DialTimeout:        5 * time.Second,
		ProduceTimeout:     10 * time.Second,
		TransactionTimeout: 30 * time.Second,
		SessionTimeout:     45 * time.Second,
		MaxPollRecords:     1000,
		ConsumerStart:      StartEarliest,
		Topics: Topics{
			Usage:        TopicUsage,
			UsagePriced:  TopicUsagePriced,
			Outcomes:     TopicOutcomes,
			Billing:      TopicBilling,
			Anomalies:    TopicAnomalies,
			BudgetAlerts: TopicBudgetAlerts,
			UsageDLQ:     TopicUsageDLQ,
		},
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	for _, b := range c.Brokers {
		if err := validateBroker(b); err != nil {
			return fmt.Errorf("KAFKA_BROKERS: %w", err)
		}
	}

	checks := []struct {
		ok   bool
		what string
	}{
		{c.TopicPartitions >= 1, "KAFKA_TOPIC_PARTITIONS must be at least 1"},
		{c.ReplicationFactor >= 1, "KAFKA_REPLICATION_FACTOR must be at least 1"},
		{c.TopicRetention >= 0, "KAFKA_TOPIC_RETENTION must not be negative"},
		{c.DialTimeout > 0, "KAFKA_DIAL_TIMEOUT must be positive"},
		{c.ProduceTimeout > 0, "KAFKA_PRODUCE_TIMEOUT must be positive"},
		{c.TransactionTimeout >= time.Second, "KAFKA_TRANSACTION_TIMEOUT must be at least 1s"},
		{c.SessionTimeout >= time.Second, "KAFKA_SESSION_TIMEOUT must be at least 1s"},
		{c.MaxPollRecords >= 1, "KAFKA_MAX_POLL_RECORDS must be at least 1"},
		{
			c.ConsumerStart == StartEarliest || c.ConsumerStart == StartLatest,
			"KAFKA_CONSUMER_START must be earliest or latest",
		},
	}
	for _, chk := range checks {
		if !chk.ok {
			return errors.New(chk.what)
		}
	}

	return c.Topics.validate()
}

func (t Topics) validate() error {
	for _, name := range t.all() {
		if err := validateTopicName(name); err != nil {
			return err
		}
	}
	return nil
}

func (t Topics) all() []string {
	return []string{
		t.Usage, t.UsagePriced, t.Outcomes, t.Billing,
		t.Anomalies, t.BudgetAlerts, t.UsageDLQ,
	}
}

func validateBroker(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("broker %q: want host:port", addr)
	}
	if host == "" {
		return fmt.Errorf("broker %q: empty host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("broker %q: port must be 1-65535", addr)
	}
	return nil
}

// validateTopicName applies Kafka's rules so that a typo fails at start-up
// rather than at the first produce.
func validateTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("topic %q: invalid name", name)
	}
	ok := strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
			r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) < 0
	if !ok {
		return fmt.Errorf("topic %q: only letters, digits, '.', '_' and '-' are allowed", name)
	}
	return nil
}
