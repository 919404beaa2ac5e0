package kafka

import (
	"errors"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Reject is a record a handler cannot process, with the reason, which
// should name the field and the problem ("tenant_id: empty"). The runner
// sends it to the dead-letter topic and moves on.
type Reject struct {
	Record *kgo.Record
	Reason string
}

// Headers added to a dead-lettered record, beside its own headers.
const (
	HeaderDLQReason          = "costplane-dlq-reason"
	HeaderDLQSourceTopic     = "costplane-dlq-source-topic"
	HeaderDLQSourcePartition = "costplane-dlq-source-partition"
	HeaderDLQSourceOffset    = "costplane-dlq-source-offset"
	HeaderDLQConsumer        = "costplane-dlq-consumer"
)

// deadLetter copies the rejected record to topic with its key, value and
// headers, plus headers telling where it came from, who rejected it and
// why, so that an operator can replay it after a fix. The timestamp is
// left to be the time of rejection, so that the dead letter's retention
// starts when it is written; an old timestamp would also make franz-go
// time the record out at once when a delivery timeout is set.
func deadLetter(topic, consumer string, rej Reject) *kgo.Record {
	src := rej.Record
	reason := rej.Reason
	if reason == "" {
		reason = "unspecified"
	}

	headers := make([]kgo.RecordHeader, 0, len(src.Headers)+5)
	headers = append(headers, src.Headers...)
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDLQSourceTopic, Value: []byte(src.Topic)},
		kgo.RecordHeader{
			Key:   HeaderDLQSourcePartition,
			Value: strconv.AppendInt(nil, int64(src.Partition), 10),
		},
		kgo.RecordHeader{
			Key:   HeaderDLQSourceOffset,
			Value: strconv.AppendInt(nil, src.Offset, 10),
		},
		kgo.RecordHeader{Key: HeaderDLQConsumer, Value: []byte(consumer)},
	)

	return &kgo.Record{Topic: topic, Key: src.Key, Value: src.Value, Headers: headers}
}

// deadLetters turns rejects into dead-letter records. A reject that does
// not name a record of the batch is a handler bug; it is reported rather
// than guessed at, and so is a record rejected twice, which is sent once.
func deadLetters(
	topic, consumer string, batch []*kgo.Record, rejects []Reject,
) ([]*kgo.Record, error) {
	if len(rejects) == 0 {
		return nil, nil
	}
	inBatch := make(map[*kgo.Record]bool, len(batch))
	for _, r := range batch {
		inBatch[r] = false
	}

	out := make([]*kgo.Record, 0, len(rejects))
	for _, rej := range rejects {
		sent, ok := inBatch[rej.Record]
		if !ok {
			return nil, errForeignReject
		}
		if sent {
			continue
		}
		inBatch[rej.Record] = true
		out = append(out, deadLetter(topic, consumer, rej))
	}

	return out, nil
}

// errForeignReject means a handler rejected a record it was not given.
var errForeignReject = errors.New("handler rejected a record that is not in its batch")
