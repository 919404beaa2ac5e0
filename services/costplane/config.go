// Package costplane is the all-in-one binary: every costplane service in
// one process, on an embedded Kafka-protocol broker and a private
// PostgreSQL cluster unless real ones are configured.
package costplane

import (
	"errors"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/anomaly"
	"github.com/costplane/costplane/services/attribution"
	"github.com/costplane/costplane/services/budget"
	"github.com/costplane/costplane/services/gateway"
	ingestapi "github.com/costplane/costplane/services/ingest-api"
	ingestotlp "github.com/costplane/costplane/services/ingest-otlp"
	"github.com/costplane/costplane/services/pricing"
)

// Config is every setting of the all-in-one binary. The embedded settings
// apply only when DATABASE_URL or KAFKA_BROKERS are empty.
type Config struct {
	LogLevel string `env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error"`
	DataDir  string `env:"COSTPLANE_DATA_DIR" default:".data" help:"embedded stack data directory"`

	DatabaseURL      string `env:"DATABASE_URL" default:"" help:"PostgreSQL URL; empty: embedded"`
	DatabaseMaxConns int32  `env:"DATABASE_MAX_CONNS" default:"20" help:"pool size"`
	EmbeddedPGPort   int    `env:"EMBEDDED_PG_PORT" default:"5433" help:"embedded PostgreSQL port"`
	PostgresBinDir   string `env:"POSTGRES_BIN_DIR" default:"" help:"PostgreSQL server binaries"`

	EmbeddedKafkaPort int `env:"EMBEDDED_KAFKA_PORT" default:"9092" help:"embedded broker port"`

	BootstrapTenant string `env:"BOOTSTRAP_TENANT" default:"default" help:"operator tenant to create"`
	DevAPIKey       string `env:"DEV_API_KEY" default:"" help:"fixed development key (cp_<id>_<secret>)"`

	// DemoRuns agent runs of generated traffic are sent through OTLP and
	// the API at start-up, so a new user sees data at once; 0 sends none.
	DemoRuns int `env:"DEMO_RUNS" default:"200" help:"demo agent runs at start; 0: none"`

	Kafka     kafka.Config
	Server    server.Config
	Auth      auth.Config
	Gateway   gateway.Config
	IngestAPI ingestapi.Config
	OTLP      ingestotlp.Config

	Pricing     pricing.Config
	Attribution attribution.Settings
	Anomaly     anomaly.Settings
	Budget      budget.Settings
}

// Validate checks the settings the embedded parts own; the blocks
// validate themselves.
func (c Config) Validate() error {
	var errs []error
	if _, err := log.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, errors.New("LOG_LEVEL: "+err.Error()))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("COSTPLANE_DATA_DIR must not be empty"))
	}
	if c.EmbeddedPGPort <= 0 || c.EmbeddedPGPort > 65535 {
		errs = append(errs, errors.New("EMBEDDED_PG_PORT must be a port number"))
	}
	if c.EmbeddedKafkaPort < 0 || c.EmbeddedKafkaPort > 65535 {
		errs = append(errs, errors.New("EMBEDDED_KAFKA_PORT must be a port number"))
	}
	if c.BootstrapTenant == "" {
		errs = append(errs, errors.New("BOOTSTRAP_TENANT must not be empty"))
	}
	if c.DemoRuns < 0 {
		errs = append(errs, errors.New("DEMO_RUNS must not be negative"))
	}
	blocks := []interface{ Validate() error }{
		c.Kafka, c.Server, c.Auth, c.Gateway, c.IngestAPI, c.OTLP,
		c.Pricing, c.Attribution, c.Anomaly, c.Budget,
	}
	for _, v := range blocks {
		if err := v.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
