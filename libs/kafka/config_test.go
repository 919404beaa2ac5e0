package kafka_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/kafka"
)

func TestConfigDefaults(t *testing.T) {
	var got kafka.Config
	noEnv := func(string) (string, bool) { return "", false }
	if err := config.Load("test", &got, nil, noEnv); err != nil {
		t.Fatalf("Load: %v", err)
	}

	if diff := cmp.Diff(kafka.DefaultConfig(), got); diff != "" {
		t.Errorf("loaded defaults differ from DefaultConfig (-want +got):\n%s", diff)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"KAFKA_BROKERS":          "a:9092, b:9093",
		"KAFKA_TOPIC_PARTITIONS": "12",
		"KAFKA_TOPIC_RETENTION":  "24h",
		"KAFKA_TOPIC_USAGE":      "staging.usage",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	var got kafka.Config
	if err := config.Load("test", &got, nil, lookup); err != nil {
		t.Fatalf("Load: %v", err)
	}

	want := kafka.DefaultConfig()
	want.Brokers = []string{"a:9092", "b:9093"}
	want.TopicPartitions = 12
	want.TopicRetention = 24 * time.Hour
	want.Topics.Usage = "staging.usage"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*kafka.Config)
		ok     bool
	}{
		{"defaults", func(*kafka.Config) {}, true},
		{"brokers", func(c *kafka.Config) { c.Brokers = []string{"127.0.0.1:19092"} }, true},
		{"broker without port", func(c *kafka.Config) { c.Brokers = []string{"kafka"} }, false},
		{"broker bad port", func(c *kafka.Config) { c.Brokers = []string{"kafka:0"} }, false},
		{"zero partitions", func(c *kafka.Config) { c.TopicPartitions = 0 }, false},
		{"zero replicas", func(c *kafka.Config) { c.ReplicationFactor = 0 }, false},
		{"negative retention", func(c *kafka.Config) { c.TopicRetention = -time.Hour }, false},
		{"no produce timeout", func(c *kafka.Config) { c.ProduceTimeout = 0 }, false},
		{"zero batch", func(c *kafka.Config) { c.MaxPollRecords = 0 }, false},
		{"start latest", func(c *kafka.Config) { c.ConsumerStart = kafka.StartLatest }, true},
		{"start unknown", func(c *kafka.Config) { c.ConsumerStart = "middle" }, false},
		{"topic with space", func(c *kafka.Config) { c.Topics.Billing = "bill ing" }, false},
		{"empty topic", func(c *kafka.Config) { c.Topics.UsageDLQ = "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kafka.DefaultConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestTopicSpecs(t *testing.T) {
	cfg := kafka.DefaultConfig()
	cfg.TopicRetention = time.Hour

	var names []string
	for _, s := range cfg.TopicSpecs() {
		names = append(names, s.Name)
		if s.Partitions != 6 || s.ReplicationFactor != 1 {
			t.Errorf("%s: partitions %d replicas %d, want 6 and 1",
				s.Name, s.Partitions, s.ReplicationFactor)
		}
		if got := s.Configs["retention.ms"]; got != "3600000" {
			t.Errorf("%s: retention.ms = %q, want 3600000", s.Name, got)
		}
	}

	want := []string{
		kafka.TopicUsage, kafka.TopicUsagePriced, kafka.TopicOutcomes, kafka.TopicBilling,
		kafka.TopicAnomalies, kafka.TopicBudgetAlerts, kafka.TopicUsageDLQ,
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("topic names (-want +got):\n%s", diff)
	}
}
