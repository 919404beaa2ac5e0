package scope

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

func TestMatch(t *testing.T) {
	ev := &eventv1.UsageEvent{
		Provider: "openai", Model: "gpt-4o", Project: "search",
		Agent:  &eventv1.Agent{Name: "triage"},
		Labels: map[string]string{"team": "core", "empty": ""},
	}
	a := FromUsage(ev, nil)

	tests := []struct {
		name    string
		filters []Filter
		want    bool
	}{
		{"no filters", nil, true},
		{"include hit", []Filter{{Dimension: "provider", Include: []string{"anthropic", "openai"}}}, true},
		{"include miss", []Filter{{Dimension: "provider", Include: []string{"anthropic"}}}, false},
		{"exclude hit", []Filter{{Dimension: "model", Exclude: []string{"gpt-4o"}}}, false},
		{"exclude miss", []Filter{{Dimension: "model", Exclude: []string{"o3"}}}, true},
		{"filters are anded", []Filter{
			{Dimension: "provider", Include: []string{"openai"}},
			{Dimension: "project", Include: []string{"ads"}},
		}, false},
		{"agent falls back to the name", []Filter{{Dimension: "agent", Include: []string{"triage"}}}, true},
		{"label", []Filter{{Dimension: "label:team", Include: []string{"core"}}}, true},
		{"missing value is empty", []Filter{{Dimension: "customer", Include: []string{""}}}, true},
		{"empty label is missing", []Filter{{Dimension: "label:empty", Exclude: []string{""}}}, false},
	}
	for _, tc := range tests {
		m, err := Compile(tc.filters, Env{})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Match(&a); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	keys := NewLabelKeys([]string{"team"})
	errs := Validate([]Filter{
		{Dimension: "provider", Include: []string{"openai"}},
		{Dimension: "colour", Include: []string{"red"}},
		{Dimension: "label:owner", Include: []string{"x"}},
		{Dimension: "model"},
		{Dimension: "provider", Exclude: []string{"x"}},
		{Dimension: "project", Include: []string{"a"}, Exclude: []string{"a"}},
	}, keys)

	var got []string
	for _, e := range errs {
		got = append(got, e.Field)
	}
	want := []string{
		"filters[1].dimension", "filters[2].dimension", "filters[3].include",
		"filters[4].dimension", "filters[5].exclude",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if !errors.Is(errs[0], ErrUnknownDimension) || !errors.Is(errs[1], ErrUntrackedLabel) {
		t.Errorf("errors do not wrap their sentinels: %v, %v", errs[0], errs[1])
	}
}

// A tuple decodes to what was encoded, and equal tuples get equal ids
// whatever the order labels were set in.
func TestEncodeDecode(t *testing.T) {
	a, unknown := FromMap(map[string]string{"provider": "openai", "label:b": "2", "app": "x"},
		map[string]string{"a": "1"}, nil)
	if len(unknown) != 0 {
		t.Fatalf("unknown = %v", unknown)
	}
	b, _ := FromMap(map[string]string{"app": "x", "provider": "openai"},
		map[string]string{"b": "2", "a": "1"}, nil)

	ja, ida := a.Encode()
	_, idb := b.Encode()
	if ida != idb {
		t.Errorf("equal tuples got ids %x and %x", ida, idb)
	}
	back, err := Decode(ja)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, back); diff != "" {
		t.Errorf("round trip (-encoded +decoded):\n%s", diff)
	}
	if _, err := Decode([]byte(`{"colour":"red"}`)); !errors.Is(err, ErrUnknownDimension) {
		t.Errorf("decoding an unknown dimension: %v", err)
	}
}

func TestLabelKeysLimitWhatIsKept(t *testing.T) {
	ev := &eventv1.UsageEvent{Labels: map[string]string{"team": "core", "request": "r-1"}}
	a := FromUsage(ev, NewLabelKeys([]string{"team"}))
	if diff := cmp.Diff(map[string]string{"team": "core"}, a.Labels); diff != "" {
		t.Errorf("labels kept (-want +got):\n%s", diff)
	}
}
