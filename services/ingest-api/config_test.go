package ingestapi

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/libs/config"
)

func TestDefaultConfigMatchesTags(t *testing.T) {
	var fromTags Config
	noEnv := func(string) (string, bool) { return "", false }
	if err := config.Load("ingest-api", &fromTags, nil, noEnv); err != nil {
		t.Fatalf("loading defaults: %v", err)
	}
	if diff := cmp.Diff(DefaultConfig(), fromTags); diff != "" {
		t.Errorf("DefaultConfig and the struct tags differ (-code +tags):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no batch", func(c *Config) { c.MaxBatch = 0 }, false},
		{"huge batch", func(c *Config) { c.MaxBatch = 1_000_000 }, false},
		{"tiny requests", func(c *Config) { c.MaxRequestBytes = 100 }, false},
		{"negative skew", func(c *Config) { c.MaxFuture = -1 }, false},
		{"retry too soon", func(c *Config) { c.RetryAfter = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
