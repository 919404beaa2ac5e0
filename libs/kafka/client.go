package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// NewClient builds a franz-go client for cfg's brokers. opts are applied
// after the ones derived from cfg, so they win.
func NewClient(cfg Config, opts ...kgo.Opt) (*kgo.Client, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("creating kafka client: no brokers configured")
	}

	cl, err := kgo.NewClient(append(baseOpts(cfg), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}

	return cl, nil
}

func baseOpts(cfg Config) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.DialTimeout(cfg.DialTimeout),
	}
}

// Option adjusts a Producer, Runner or TxnRunner.
type Option func(*options)

type options struct {
	log        *slog.Logger
	registerer prometheus.Registerer
	kgoOpts    []kgo.Opt
	onCommit   func(Commit)
}

// WithLogger sets the logger; the default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithRegisterer registers the metrics with r. Without it the metrics are
// kept but not exported. Several runners may share one registerer; their
// series are told apart by the group label.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) { o.registerer = r }
}

// WithClientOpts appends franz-go options to the ones the package sets,
// for tuning (fetch sizes, linger, SASL, TLS). Options that change the
// delivery guarantees (acks, isolation, auto-commit) must not be passed.
func WithClientOpts(opts ...kgo.Opt) Option {
	return func(o *options) { o.kgoOpts = append(o.kgoOpts, opts...) }
}

// WithOnCommit calls fn after every committed batch of a Runner or
// TxnRunner, from the consuming goroutine; fn must be quick. Tests use it
// to follow progress.
func WithOnCommit(fn func(Commit)) Option {
	return func(o *options) { o.onCommit = fn }
}

// Commit describes one committed batch.
type Commit struct {
	Group    string
	Records  int // records given to the handler
	Rejected int // records sent to the dead-letter topic
	// Offsets holds, per topic and partition, the next offset to
	// consume after this batch.
	Offsets map[string]map[int32]int64
}

func buildOptions(opts []Option) options {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, fn := range opts {
		fn(&o)
	}
	if o.registerer == nil {
		// A private registry keeps the code paths identical whether
		// or not the caller exports metrics.
		o.registerer = prometheus.NewRegistry()
	}
	return o
}

// kgoLogger sends franz-go's own log lines to slog. franz-go logs a lot at
// info level during rebalances, so only warnings and errors pass.
type kgoLogger struct {
	log *slog.Logger
}

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	l.log.Log(context.Background(), lvl, "franz-go: "+msg, keyvals...)
}
