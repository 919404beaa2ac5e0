package scope

import (
	"errors"
	"testing"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// teams sorts spend into buckets the way attribution would: first rule
// that matches wins, the rest goes to the default bucket.
var teams = Category{
	ID: "teams", Default: "Unattributed",
	Rules: []CategoryRule{
		{Bucket: "search", Conditions: []Condition{
			{Dimension: "project", Operator: OpIn, Values: []string{"search", "rank"}},
		}},
		{Bucket: "ml", Conditions: []Condition{
			{Dimension: "model", Operator: OpPrefix, Values: []string{"o3", "o4"}},
			{Dimension: "label:env", Operator: OpNotIn, Values: []string{"dev"}},
		}},
		{Bucket: "research", Conditions: []Condition{
			{Dimension: "agent", Operator: OpRegex, Values: []string{"^agt_res.*er$"}},
		}},
		{Bucket: "euro", Conditions: []Condition{
			{Dimension: "currency", Operator: OpIn, Values: []string{"EUR"}},
		}},
		{Bucket: "tagged", Conditions: []Condition{
			{Dimension: "customer", Operator: OpExists},
		}},
	},
}

func TestCategoryBuckets(t *testing.T) {
	tests := []struct {
		name     string
		ev       *eventv1.UsageEvent
		currency string
		want     string
	}{
		{"in", &eventv1.UsageEvent{Project: "rank", Model: "o3"}, "USD", "search"},
		{"first rule wins", &eventv1.UsageEvent{Project: "search", CustomerId: "c"}, "USD",
			"search"},
		{"prefix and not in", &eventv1.UsageEvent{Model: "o4-mini",
			Labels: map[string]string{"env": "prod"}}, "USD", "ml"},
		{"not in fails", &eventv1.UsageEvent{Model: "o4-mini",
			Labels: map[string]string{"env": "dev"}}, "USD", "Unattributed"},
		{"regex", &eventv1.UsageEvent{Agent: &eventv1.Agent{Id: "agt_researcher"}}, "USD",
			"research"},
		{"currency decided at compile time", &eventv1.UsageEvent{}, "EUR", "euro"},
		{"exists", &eventv1.UsageEvent{CustomerId: "c1"}, "USD", "tagged"},
		{"default", &eventv1.UsageEvent{Project: "ads"}, "USD", "Unattributed"},
	}
	for _, tc := range tests {
		a := FromUsage(tc.ev, nil)
		for _, bucket := range []string{"search", "ml", "research", "euro", "tagged",
			"Unattributed"} {
			m, err := Compile([]Filter{{Dimension: "category:teams", Include: []string{bucket}}},
				Env{Categories: []Category{teams}, Currency: tc.currency})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Match(&a); got != (bucket == tc.want) {
				t.Errorf("%s: in bucket %s = %v, want bucket %s", tc.name, bucket, got, tc.want)
			}
		}
	}

	excl, err := Compile([]Filter{{Dimension: "category:teams", Exclude: []string{"search"}}},
		Env{Categories: []Category{teams}, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	for project, want := range map[string]bool{"search": false, "ads": true} {
		a := FromUsage(&eventv1.UsageEvent{Project: project}, nil)
		if got := excl.Match(&a); got != want {
			t.Errorf("excluding search, project %s matches = %v, want %v", project, got, want)
		}
	}

	_, err = Compile([]Filter{{Dimension: "category:other", Include: []string{"x"}}},
		Env{Categories: []Category{teams}})
	if !errors.Is(err, ErrUnknownCategory) {
		t.Errorf("undefined category: %v, want ErrUnknownCategory", err)
	}
}

func TestValidateCategory(t *testing.T) {
	c := Category{ID: "c", Rules: []CategoryRule{
		{Bucket: "a", Conditions: []Condition{{Dimension: "token_type", Operator: OpIn,
			Values: []string{"input"}}}},
		{Bucket: "b", Conditions: []Condition{{Dimension: "label:team", Operator: OpIn,
			Values: []string{"x"}}}},
		{Bucket: "c", Conditions: []Condition{{Dimension: "model", Operator: OpRegex,
			Values: []string{`(?<=a)b`}}}},
		{Bucket: "d", Conditions: []Condition{{Dimension: "model", Operator: OpIn}}},
		{Bucket: "e", Conditions: []Condition{{Dimension: "currency", Operator: OpIn,
			Values: []string{"USD"}}}},
	}}
	got := ValidateCategory(&c, NewLabelKeys([]string{"env"}))
	if len(got) != 4 {
		t.Errorf("problems = %q, want four: token type, untracked label, regex, no values", got)
	}
	if got := ValidateCategory(&teams, nil); len(got) != 0 {
		t.Errorf("teams: %q, want no problems", got)
	}
}

func TestCheckSplits(t *testing.T) {
	c := Category{ID: "c", Splits: []Split{{Bucket: "platform", Targets: []string{"a", "b"}}}}
	tests := []struct {
		f    Filter
		want bool // refused
	}{
		{Filter{Include: []string{"a"}}, true},
		{Filter{Include: []string{"platform"}}, true},
		{Filter{Include: []string{"z"}}, false},
		{Filter{Exclude: []string{"z"}}, true},
	}
	for _, tc := range tests {
		if err := c.CheckSplits(tc.f); errors.Is(err, ErrSplitBucket) != tc.want {
			t.Errorf("%+v: %v, want refused %v", tc.f, err, tc.want)
		}
	}
	all := Category{ID: "c", Splits: []Split{{Bucket: "platform"}}}
	if err := all.CheckSplits(Filter{Include: []string{"z"}}); !errors.Is(err, ErrSplitBucket) {
		t.Errorf("split over every bucket: %v, want refused", err)
	}
	if err := (&Category{}).CheckSplits(Filter{Exclude: []string{"z"}}); err != nil {
		t.Errorf("no splits: %v", err)
	}
}
