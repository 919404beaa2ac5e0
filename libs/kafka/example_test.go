package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// A consumer that writes PostgreSQL: decode, reject what cannot be
// decoded, write the rest with tx. The runner commits the writes and the
// offsets together.
func ExampleRunner() {
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg := kafka.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:19092"}
	db, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:55432/costplane")
	if err != nil {
		fmt.Println(err)
		return
	}

	handle := func(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) ([]kafka.Reject, error) {
		var rejects []kafka.Reject
		for _, r := range recs {
			var ev eventv1.PricedUsage
			if err := kafka.UnmarshalProto(r, &ev); err != nil {
				rejects = append(rejects, kafka.Reject{Record: r, Reason: err.Error()})
				continue
			}
			// ... write ev with tx ...
		}
		return rejects, nil
	}

	r, err := kafka.NewRunner(cfg, db, kafka.RunnerConfig{
		Group:        "attribution",
		Topics:       []string{cfg.Topics.UsagePriced},
		OffsetsTable: "attribution.kafka_offsets",
	}, handle, kafka.WithLogger(log), kafka.WithRegisterer(prometheus.DefaultRegisterer))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = r.Run(ctx) // until ctx is done
}

// An ingestor answers success only after the acknowledgement, and 503
// when Kafka is unavailable.
func ExampleProducer_Produce() {
	ctx := context.Background()
	cfg := kafka.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:19092"}
	p, err := kafka.NewProducer(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	ev := &eventv1.UsageEvent{EventId: "ev-1", TenantId: "t-1"}
	rec, err := kafka.ProtoRecord(cfg.Topics.Usage, []byte("t-1/ev-1"), ev)
	if err != nil {
		fmt.Println(err)
		return
	}
	switch err := p.Produce(ctx, rec); {
	case errors.Is(err, kafka.ErrUnavailable):
		// answer 503 with Retry-After
	case err != nil:
		// answer 500; the detail goes to the log
	}
}
