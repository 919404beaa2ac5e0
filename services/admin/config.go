package admin

import (
	"errors"
	"fmt"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
)

// Config is the configuration of the standalone admin process.
type Config struct {
	DatabaseURL string `env:"DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/costplane?sslmode=disable" help:"PostgreSQL URL"`
	// DatabaseMaxConns of 0 keeps the driver's default.
	DatabaseMaxConns int32  `env:"DATABASE_MAX_CONNS" default:"0" help:"connection limit"`
	LogLevel         string `env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error"`
	// BootstrapTenant, when set, is an operator tenant created at start with
	// a development key; DevAPIKey (cp_<id>_<secret>) fixes that key. See
	// auth.Store.Bootstrap.
	BootstrapTenant string `env:"BOOTSTRAP_TENANT" default:"" help:"operator tenant to create"`
	DevAPIKey       string `env:"DEV_API_KEY" default:"" help:"fixed development key"`

	Server server.Config
	Auth   auth.Config
}

// Validate checks that the settings can work.
func (c Config) Validate() error {
	errs := []error{c.Server.Validate(), c.Auth.Validate()}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL must not be empty"))
	}
	if c.DatabaseMaxConns < 0 {
		errs = append(errs, errors.New("DATABASE_MAX_CONNS must not be negative"))
	}
	if _, err := log.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	if c.DevAPIKey != "" && c.BootstrapTenant == "" {
		errs = append(errs, errors.New("DEV_API_KEY needs BOOTSTRAP_TENANT"))
	}
	return errors.Join(errs...)
}
