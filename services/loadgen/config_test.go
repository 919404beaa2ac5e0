package loadgen

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/libs/config"
)

func TestDefaultConfigMatchesTags(t *testing.T) {
	var fromTags Config
	env := map[string]string{"LOADGEN_API_KEY": "k"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := config.Load("costplane-loadgen", &fromTags, nil, lookup); err != nil {
		t.Fatalf("loading defaults: %v", err)
	}
	want := DefaultConfig()
	want.APIKey = "k"
	if diff := cmp.Diff(want, fromTags); diff != "" {
		t.Errorf("DefaultConfig and the struct tags differ (-code +tags):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"defaults with a key", func(*Config) {}, true},
		{"no key", func(c *Config) { c.APIKey = "" }, false},
		{"unknown protocol", func(c *Config) { c.Protocol = "udp" }, false},
		{"no rate", func(c *Config) { c.Rate = 0 }, false},
		{"negative count", func(c *Config) { c.Count = -1 }, false},
		{"outcomes without api", func(c *Config) { c.APIEndpoint = "" }, false},
		{"no outcomes, no api", func(c *Config) { c.APIEndpoint, c.Outcomes = "", false }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.APIKey = "k"
			tt.mutate(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
