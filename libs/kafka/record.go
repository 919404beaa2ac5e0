package kafka

import (
	"errors"
	"fmt"
	"mime"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Header names and content types of costplane records (DESIGN §3).
const (
	HeaderContentType = "content-type"
	ContentTypeProto  = "application/x-protobuf"
	ContentTypeJSON   = "application/json"
)

// ErrContentType means a record's content-type header does not announce
// the message the caller expected.
var ErrContentType = errors.New("unexpected content type")

// ProtoRecord builds a record carrying msg as binary protobuf, with a
// content-type header naming the message type so that any reader can
// tell what it holds.
func ProtoRecord(topic string, key []byte, msg proto.Message) (*kgo.Record, error) {
	value, err := proto.Marshal(msg)
	if err != nil {
		name := msg.ProtoReflect().Descriptor().FullName()
		return nil, fmt.Errorf("encoding %s: %w", name, err)
	}

	return &kgo.Record{
		Topic:   topic,
		Key:     key,
		Value:   value,
		Headers: []kgo.RecordHeader{contentTypeHeader(ContentTypeProto, msg)},
	}, nil
}

// JSONRecord builds a record carrying msg as canonical protobuf JSON, the
// format of the alert topics, which subscribers read without the schema.
func JSONRecord(topic string, key []byte, msg proto.Message) (*kgo.Record, error) {
	value, err := protojson.Marshal(msg)
	if err != nil {
		name := msg.ProtoReflect().Descriptor().FullName()
		return nil, fmt.Errorf("encoding %s as json: %w", name, err)
	}

	return &kgo.Record{
		Topic:   topic,
		Key:     key,
		Value:   value,
		Headers: []kgo.RecordHeader{{Key: HeaderContentType, Value: []byte(ContentTypeJSON)}},
	}, nil
}

func contentTypeHeader(base string, msg proto.Message) kgo.RecordHeader {
	// Written by hand because mime.FormatMediaType lowercases parameter
	// names, and readers of other stacks expect messageType. A full name
	// is a valid token, so it needs no quoting.
	name := string(msg.ProtoReflect().Descriptor().FullName())
	v := base + "; messageType=" + name
	return kgo.RecordHeader{Key: HeaderContentType, Value: []byte(v)}
}

// UnmarshalProto decodes a record made by ProtoRecord into msg. It fails
// with ErrContentType when the header names another message type, so that
// a record on the wrong topic is rejected rather than misread.
func UnmarshalProto(r *kgo.Record, msg proto.Message) error {
	want := string(msg.ProtoReflect().Descriptor().FullName())
	ct, ok := Header(r, HeaderContentType)
	if !ok {
		return fmt.Errorf("decoding %s: no %s header: %w", want, HeaderContentType, ErrContentType)
	}

	// ParseMediaType lowercases parameter names, hence messagetype.
	base, params, err := mime.ParseMediaType(ct)
	if err != nil || base != ContentTypeProto || params["messagetype"] != want {
		return fmt.Errorf("decoding %s: content type %q: %w", want, ct, ErrContentType)
	}
	if err := proto.Unmarshal(r.Value, msg); err != nil {
		return fmt.Errorf("decoding %s: %w", want, err)
	}

	return nil
}

// Header returns the value of the last header named key.
func Header(r *kgo.Record, key string) (string, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value), true
		}
	}
	return "", false
}
