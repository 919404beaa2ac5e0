package budget_test

import (
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// The README's example alert is a BudgetAlert as the topic carries it:
// strict canonical JSON, every field of the message set.
func TestReadmeAlertExample(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "Example record value:\n\n```json\n")
	if !ok {
		t.Fatal("README has no example record")
	}
	example, _, _ := strings.Cut(rest, "```")

	var a eventv1.BudgetAlert
	if err := protojson.Unmarshal([]byte(example), &a); err != nil {
		t.Fatalf("example is not a BudgetAlert: %v", err)
	}
	fields := a.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		if f := fields.Get(i); !a.ProtoReflect().Has(f) {
			t.Errorf("example lacks %s", f.JSONName())
		}
	}
	again, err := protojson.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	var b eventv1.BudgetAlert
	if err := protojson.Unmarshal(again, &b); err != nil || b.GetAlertId() != a.GetAlertId() {
		t.Errorf("round trip: %v", err)
	}
}
