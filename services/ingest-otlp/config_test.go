package ingestotlp

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/libs/config"
)

func TestConfigDefaults(t *testing.T) {
	var cfg Config
	noEnv := func(string) (string, bool) { return "", false }
	if err := config.Load("ingest-otlp", &cfg, nil, noEnv); err != nil {
		t.Fatalf("defaults do not load: %v", err)
	}
	got := []any{cfg.GRPCAddr, cfg.HTTPAddr, cfg.MaxBodyBytes, cfg.SessionAttributes,
		cfg.TraceCacheTraces}
	want := []any{":4317", ":4318", 16 << 20, []string{"gen_ai.conversation.id", "session.id"},
		10000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"no grpc address", func(c *Config) { c.GRPCAddr = "" }, "OTLP_GRPC_ADDR"},
		{"tiny body limit", func(c *Config) { c.MaxBodyBytes = 10 }, "OTLP_MAX_BODY_BYTES"},
		{"short retry", func(c *Config) { c.RetryAfter = 0 }, "OTLP_RETRY_AFTER"},
		{"bad label rule", func(c *Config) { c.LabelAttributes = []string{"x="} },
			"OTLP_LABEL_ATTRIBUTES"},
		{"bad convention", func(c *Config) { c.TokenConventions = []string{"openai"} },
			"OTLP_TOKEN_CONVENTIONS"},
		{"negative cache", func(c *Config) { c.TraceCacheSpans = -1 }, "OTLP_TRACE_CACHE_"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
