package admin

import (
	"errors"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/libs/service"
)

// Config is the configuration of the standalone admin process.
type Config struct {
	service.Base
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
	errs := []error{c.Base.Validate(), c.Server.Validate(), c.Auth.Validate()}
	if c.DevAPIKey != "" && c.BootstrapTenant == "" {
		errs = append(errs, errors.New("DEV_API_KEY needs BOOTSTRAP_TENANT"))
	}
	return errors.Join(errs...)
}
