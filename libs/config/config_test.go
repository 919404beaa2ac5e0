package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type inner struct {
	Brokers []string `env:"TEST_BROKERS" default:"a:1,b:2"`
}

type testConfig struct {
	Name    string        `env:"TEST_NAME" default:"svc"`
	Port    int           `env:"TEST_PORT" default:"8080"`
	Timeout time.Duration `env:"TEST_TIMEOUT" default:"5s" flag:"timeout"`
	Debug   bool          `env:"TEST_DEBUG" default:"false"`
	Inner   inner
}

func (c testConfig) Validate() error {
	if c.Port <= 0 {
		return errors.New("TEST_PORT must be positive")
	}
	return nil
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestLoadPrecedence(t *testing.T) {
	var got testConfig
	err := Load("t", &got, []string{"--timeout=7s", "--test-name=flag"},
		env(map[string]string{"TEST_NAME": "env", "TEST_PORT": "9", "TEST_DEBUG": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	want := testConfig{
		Name: "flag", Port: 9, Timeout: 7 * time.Second, Debug: true,
		Inner: inner{Brokers: []string{"a:1", "b:2"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadNamesTheBadSetting(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		setting string
	}{
		{"bad int from env", map[string]string{"TEST_PORT": "80a"}, nil, "TEST_PORT"},
		{"bad duration from flag", nil, []string{"--timeout=soon"}, "--timeout"},
		{"bad bool", map[string]string{"TEST_DEBUG": "yes please"}, nil, "TEST_DEBUG"},
		{"validate", map[string]string{"TEST_PORT": "-1"}, nil, "TEST_PORT must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg testConfig
			err := Load("t", &cfg, tt.args, env(tt.env))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.setting) {
				t.Errorf("error %q does not name %q", err, tt.setting)
			}
		})
	}
}

func TestLoadSharedSetting(t *testing.T) {
	type block struct {
		Addr string `env:"SHARED_ADDR" default:":1"`
	}
	var got struct {
		A block
		B block
	}
	if err := Load("t", &got, []string{"--shared-addr=:2"}, env(nil)); err != nil {
		t.Fatal(err)
	}
	if got.A.Addr != ":2" || got.B.Addr != ":2" {
		t.Errorf("shared setting = %q, %q; want both \":2\"", got.A.Addr, got.B.Addr)
	}
}
