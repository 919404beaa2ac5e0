package kafka_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/costplane/costplane/libs/kafka"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

func TestProtoRecordRoundTrip(t *testing.T) {
	in := &eventv1.UsageEvent{EventId: "ev-1", TenantId: "t-1", Model: "gpt-5"}
	rec, err := kafka.ProtoRecord(kafka.TopicUsage, []byte("t-1/run-1"), in)
	if err != nil {
		t.Fatalf("ProtoRecord: %v", err)
	}

	ct, _ := kafka.Header(rec, kafka.HeaderContentType)
	wantCT := "application/x-protobuf; messageType=costplane.event.v1.UsageEvent"
	if ct != wantCT {
		t.Errorf("content-type = %q, want %q", ct, wantCT)
	}

	var out eventv1.UsageEvent
	if err := kafka.UnmarshalProto(rec, &out); err != nil {
		t.Fatalf("UnmarshalProto: %v", err)
	}
	if diff := cmp.Diff(in, &out, protocmp.Transform()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestUnmarshalProtoRejectsOtherType(t *testing.T) {
	rec, err := kafka.ProtoRecord(kafka.TopicOutcomes, nil, &eventv1.Outcome{OutcomeId: "o"})
	if err != nil {
		t.Fatalf("ProtoRecord: %v", err)
	}

	err = kafka.UnmarshalProto(rec, &eventv1.UsageEvent{})
	if !errors.Is(err, kafka.ErrContentType) {
		t.Errorf("UnmarshalProto of an Outcome into a UsageEvent = %v, want ErrContentType", err)
	}

	rec.Headers = nil
	err = kafka.UnmarshalProto(rec, &eventv1.Outcome{})
	if !errors.Is(err, kafka.ErrContentType) {
		t.Errorf("UnmarshalProto without header = %v, want ErrContentType", err)
	}
}

func TestJSONRecord(t *testing.T) {
	in := &eventv1.BudgetAlert{AlertId: "b-1", TenantId: "t-1"}
	rec, err := kafka.JSONRecord(kafka.TopicBudgetAlerts, []byte("t-1/b-1"), in)
	if err != nil {
		t.Fatalf("JSONRecord: %v", err)
	}

	if ct, _ := kafka.Header(rec, kafka.HeaderContentType); ct != "application/json" {
		t.Errorf("content-type = %q, want application/json", ct)
	}
	var out eventv1.BudgetAlert
	if err := protojson.Unmarshal(rec.Value, &out); err != nil {
		t.Fatalf("value is not protobuf JSON: %v", err)
	}
	if diff := cmp.Diff(in, &out, protocmp.Transform()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
