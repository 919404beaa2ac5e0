// Package usage holds what every costplane ingestor does to a UsageEvent
// before it goes to Kafka: validation that names the bad field, token-bucket
// normalization per provider convention, deterministic event ids, provider
// name canonicalization, the record key and the wire encoding. It also holds
// TraceJoin, which resolves the agent and session of the steps of a trace
// whose spans arrive in any order.
//
// Every ingestor (OTLP, gateways, connectors, the usage API) uses the same
// functions so that one request reported by two paths becomes the same event.
package usage

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// ContentType is the value of the content-type header on Kafka records that
// carry a binary UsageEvent.
const ContentType = "application/x-protobuf; messageType=costplane.event.v1.UsageEvent"

// ContentTypeHeader is the record header that carries ContentType.
const ContentTypeHeader = "content-type"

// Marshal encodes ev in the binary protobuf form written to Kafka.
func Marshal(ev *eventv1.UsageEvent) ([]byte, error) {
	return AppendMarshal(nil, ev)
}

// AppendMarshal appends the binary encoding of ev to dst, so that a caller
// encoding many events can reuse one buffer. The order of labels in the
// encoding is not fixed: events are identified by id, never by their bytes.
func AppendMarshal(dst []byte, ev *eventv1.UsageEvent) ([]byte, error) {
	b, err := proto.MarshalOptions{}.MarshalAppend(dst, ev)
	if err != nil {
		return dst, fmt.Errorf("encoding usage event: %w", err)
	}
	return b, nil
}

// Unmarshal decodes a UsageEvent read from Kafka. It does not validate it:
// consumers call Validate when they need to.
func Unmarshal(b []byte) (*eventv1.UsageEvent, error) {
	ev := &eventv1.UsageEvent{}
	if err := proto.Unmarshal(b, ev); err != nil {
		return nil, fmt.Errorf("decoding usage event: %w", err)
	}
	return ev, nil
}

// RecordKey returns the Kafka record key of ev: the tenant, a slash, then the
// run id, else the session id, else the event id. Keying by run keeps every
// step of a run in one partition (DESIGN §4).
func RecordKey(ev *eventv1.UsageEvent) []byte {
	return AppendRecordKey(nil, ev)
}

// AppendRecordKey appends ev's record key to dst.
func AppendRecordKey(dst []byte, ev *eventv1.UsageEvent) []byte {
	dst = append(dst, ev.GetTenantId()...)
	dst = append(dst, '/')
	switch {
	case ev.GetRunId() != "":
		return append(dst, ev.GetRunId()...)
	case ev.GetSessionId() != "":
		return append(dst, ev.GetSessionId()...)
	default:
		return append(dst, ev.GetEventId()...)
	}
}
