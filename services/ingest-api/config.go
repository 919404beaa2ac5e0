package ingestapi

import (
	"errors"
	"time"
)

// Config holds the service's settings. Read it with libs/config; every
// default works on the embedded stack.
type Config struct {
	// MaxBatch bounds the events or outcomes of one request, so that one
	// call stays one reasonably sized Kafka produce.
	MaxBatch int `env:"INGEST_MAX_BATCH" default:"1000" help:"items per request"`
	// MaxRequestBytes bounds a request's protobuf size. The gRPC server's
	// own limit (GRPC_MAX_RECV_BYTES) should be larger, so that callers get
	// this service's error, which says what to do, rather than the
	// transport's.
	MaxRequestBytes int `env:"INGEST_MAX_REQUEST_BYTES" default:"8388608" help:"request size limit"`
	// MaxFuture is how far past the server's clock an event's end time or
	// an outcome's time may be; more is a broken clock or a unit mistake.
	MaxFuture time.Duration `env:"INGEST_MAX_FUTURE" default:"1h" help:"largest clock skew accepted"`
	// RetryAfter is the delay suggested to callers when Kafka cannot take
	// the records.
	RetryAfter time.Duration `env:"INGEST_RETRY_AFTER" default:"5s" help:"Retry-After on outage"`

	// UsageTopic and OutcomesTopic receive the records; the host sets them
	// from its Kafka settings. Empty means the DESIGN §4 names.
	UsageTopic    string
	OutcomesTopic string
}

// DefaultConfig returns the settings the struct tags default to, for hosts
// that build the config in code.
func DefaultConfig() Config {
	return Config{
		MaxBatch:        1000,
		MaxRequestBytes: 8 << 20,
		MaxFuture:       time.Hour,
		RetryAfter:      5 * time.Second,
	}
}

// Bounds of the settings that Validate enforces.
const (
	maxMaxBatch        = 100_000
	minMaxRequestBytes = 1024
)

// Validate checks that the settings can work.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBatch < 1 || c.MaxBatch > maxMaxBatch {
		errs = append(errs, errors.New("INGEST_MAX_BATCH must be between 1 and 100000"))
	}
	if c.MaxRequestBytes < minMaxRequestBytes {
		errs = append(errs, errors.New("INGEST_MAX_REQUEST_BYTES must be at least 1024"))
	}
	if c.MaxFuture < 0 {
		errs = append(errs, errors.New("INGEST_MAX_FUTURE must not be negative"))
	}
	if c.RetryAfter < time.Second {
		errs = append(errs, errors.New("INGEST_RETRY_AFTER must be at least 1s"))
	}
	return errors.Join(errs...)
}
