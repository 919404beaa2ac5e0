package ingestapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/kafka"
)

// Record headers, shared by every record: franz-go only reads them.
var (
	usageHeaders   = []kgo.RecordHeader{contentType(&eventv1.UsageEvent{})}
	outcomeHeaders = []kgo.RecordHeader{contentType(&eventv1.Outcome{})}
)

// contentType is the header kafka.UnmarshalProto expects on a record
// carrying msg.
func contentType(msg proto.Message) kgo.RecordHeader {
	name := string(msg.ProtoReflect().Descriptor().FullName())
	return kgo.RecordHeader{
		Key:   kafka.HeaderContentType,
		Value: []byte(kafka.ContentTypeProto + "; messageType=" + name),
	}
}

func newRecord(topic string, key, value []byte, headers []kgo.RecordHeader) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: key, Value: value, Headers: headers}
}

// marshalDeterministic encodes msg with map entries in a fixed order, so
// that a retried item is written byte for byte as before.
func marshalDeterministic(msg proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(msg)
}

// publish writes recs and waits for Kafka's acknowledgement of all of them.
func (s *Service) publish(ctx context.Context, kind string, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.producer.Produce(ctx, recs...); err != nil {
		return s.publishFailed(ctx, kind, len(recs), err)
	}
	s.metrics.accepted.WithLabelValues(kind).Add(float64(len(recs)))
	return nil
}

// errNotPublished wraps a produce failure that is not Kafka being down, such
// as a record over the broker's size limit.
var errNotPublished = errors.New("records not published")

func (s *Service) publishFailed(ctx context.Context, kind string, n int, err error) error {
	if errors.Is(err, kafka.ErrUnavailable) {
		s.metrics.reject(kind, reasonUnavailable, n)
		s.log.WarnContext(ctx, "kafka did not take a batch; answering unavailable",
			slog.String("kind", kind), slog.Int("items", n), slog.Any("error", err))
		return unavailable(kind, s.cfg.RetryAfter)
	}
	return s.internal(ctx, kind, n, fmt.Errorf("%w: %w", errNotPublished, err))
}
