package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func nanos(v int64) *int64 { return &v }

// fields returns the fields Validate names, in order.
func fields(s Settings) []string {
	var out []string
	for _, v := range s.Validate("settings") {
		out = append(out, v.Field)
	}
	return out
}

func TestValidateNamesTheBadField(t *testing.T) {
	tests := []struct {
		name string
		s    Settings
		want []string
		// why, when set, must appear in the first violation's text.
		why string
	}{
		{name: "defaults", s: Settings{}},
		{
			name: "negative floors",
			s: Settings{SpikeFloor: nanos(-1), RunFloor: nanos(-5), SessionFloor: nanos(0),
				NewSpendFloor: nanos(-1), RunCeiling: nanos(-2)},
			want: []string{"settings.spike_floor.nanos", "settings.run_floor.nanos",
				"settings.new_spend_floor.nanos", "settings.run_ceiling.nanos"},
			why: "negative",
		},
		{
			name: "unknown dimension",
			s:    Settings{DimensionSets: [][]string{{"provider"}, {"model", "team"}}},
			want: []string{"settings.dimension_sets[1].dimensions[1]"},
			why:  `unknown dimension "team"`,
		},
		{
			name: "category dimension without the category",
			s:    Settings{DimensionSets: [][]string{{"category:cost_center"}}},
			want: []string{"settings.dimension_sets[0].dimensions[0]"},
			why:  "names no category",
		},
		{
			name: "category rule on an unknown dimension",
			s: Settings{Categories: []Category{{Name: "cc", Rules: []CategoryRule{
				{Bucket: "a", Dimension: "colour", Values: []string{"x"}}}}}},
			want: []string{"settings.categories[0].rules[0].dimension"},
		},
		{
			name: "a label needs a key",
			s:    Settings{DimensionSets: [][]string{{"label:"}}},
			want: []string{"settings.dimension_sets[0].dimensions[0]"},
		},
		{
			name: "a dimension twice in a set",
			s:    Settings{DimensionSets: [][]string{{"app", "app"}}},
			want: []string{"settings.dimension_sets[0].dimensions[1]"},
		},
		{
			name: "numbers",
			s: Settings{RunawayMultiplier: 0.5, SpikeRelative: -1, ToolLoop: 1, RetryLoop: -3,
				Sensitivity: "paranoid"},
			want: []string{"settings.sensitivity", "settings.runaway_multiplier",
				"settings.spike_relative_threshold", "settings.tool_loop_threshold",
				"settings.retry_loop_threshold"},
		},
		{
			name: "mutes",
			s: Settings{Mutes: []Mute{{Kinds: []int32{2, 99}, Scope: map[string]string{
				"agent": "a", "colour": "red"}}}},
			want: []string{"settings.mutes[0].kinds[1]", "settings.mutes[0].scope[colour]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := tt.s.Validate("settings")
			if diff := cmp.Diff(tt.want, fields(tt.s)); diff != "" {
				t.Errorf("violated fields (-want +got):\n%s\n%v", diff, vs)
			}
			if tt.why != "" && (len(vs) == 0 || !strings.Contains(vs[0].Description, tt.why)) {
				t.Errorf("first violation %v does not say %q", vs, tt.why)
			}
		})
	}
}

func TestEffectiveFillsDefaultsAndKeepsChoices(t *testing.T) {
	def := Default()
	if def.SpikeFloor != DefaultSpikeFloor || def.RunFloor != DefaultRunFloor ||
		def.SessionFloor != DefaultSessionFloor || def.RunCeiling != 0 {
		t.Errorf("default floors = %d %d %d %d", def.SpikeFloor, def.RunFloor, def.SessionFloor,
			def.RunCeiling)
	}
	if diff := cmp.Diff(len(DefaultDimensionSets), len(def.DimensionSets)); diff != "" {
		t.Errorf("default dimension sets (-want +got):\n%s", diff)
	}

	// A floor of zero is a choice, not a gap: it must not become the
	// default.
	s := Settings{Sensitivity: SensitivityHigh, SpikeFloor: nanos(0), ToolLoop: 20,
		DimensionSets: [][]string{{"agent", "model"}}}
	e := s.Effective()
	if e.SpikeFloor != 0 {
		t.Errorf("chosen spike floor 0 became %d", e.SpikeFloor)
	}
	if e.ToolLoop != 20 {
		t.Errorf("chosen tool loop threshold 20 became %d", e.ToolLoop)
	}
	if e.RetryLoop >= DefaultRetryLoop {
		t.Errorf("high sensitivity retry threshold %d, want below the default %d",
			e.RetryLoop, DefaultRetryLoop)
	}
	if e.RunawayMultiplier >= def.RunawayMultiplier || e.SpikeZ >= def.SpikeZ {
		t.Errorf("high sensitivity (x%g, z %g) is not more sensitive than medium (x%g, z %g)",
			e.RunawayMultiplier, e.SpikeZ, def.RunawayMultiplier, def.SpikeZ)
	}
	if len(e.DimensionSets) != 1 || !e.DimensionSets[0].HasAgent {
		t.Errorf("dimension sets = %+v, want one set with the agent", e.DimensionSets)
	}
	low := Settings{Sensitivity: SensitivityLow}.Effective()
	if low.RunawayMultiplier <= def.RunawayMultiplier || low.SpikeRelative <= def.SpikeRelative {
		t.Errorf("low sensitivity is not less sensitive than medium: %+v", low)
	}
}

func TestMuted(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	e := Settings{Mutes: []Mute{
		{Kinds: []int32{4}, Scope: map[string]string{"agent": "crawler"}},
		{Scope: map[string]string{"app": "batch"}, Until: now.Add(time.Hour)},
		{Scope: map[string]string{"app": "old"}, Until: now},
	}}.Effective()
	tests := []struct {
		kind  int32
		scope map[string]string
		want  bool
	}{
		{4, map[string]string{"agent": "crawler", "run_id": "r1"}, true},
		{2, map[string]string{"agent": "crawler"}, false}, // another kind
		{4, map[string]string{"agent": "other"}, false},
		{1, map[string]string{"app": "batch", "model": "m"}, true},
		{1, map[string]string{"app": "old"}, false}, // expired at now
		{1, map[string]string{}, false},
	}
	for _, tt := range tests {
		if got := e.Muted(tt.kind, tt.scope, now); got != tt.want {
			t.Errorf("Muted(%d, %v) = %v, want %v", tt.kind, tt.scope, got, tt.want)
		}
	}
}

func TestSeriesKeyRoundTrip(t *testing.T) {
	key := SeriesKey([]string{"model", "app"}, []string{"gpt-4o", "a&b=c d"})
	if key != "app=a%26b%3Dc+d&model=gpt-4o" {
		t.Errorf("SeriesKey = %q, want sorted and escaped pairs", key)
	}
	want := map[string]string{"model": "gpt-4o", "app": "a&b=c d"}
	if diff := cmp.Diff(want, ParseSeriesKey(key)); diff != "" {
		t.Errorf("ParseSeriesKey (-want +got):\n%s", diff)
	}
	if SeriesKey(nil, nil) != "" || len(ParseSeriesKey("")) != 0 {
		t.Error("the tenant's total must be the empty key")
	}
}

func TestCategoryBucket(t *testing.T) {
	c := Category{Name: "cc", Rules: []CategoryRule{
		{Bucket: "support", Dimension: "app", Values: []string{"helpdesk", "chat-*"}},
		{Bucket: "research", Dimension: "project", Values: []string{"rd"}},
	}}
	tests := map[string]map[string]string{
		"support":  {"app": "chat-eu"},
		"research": {"app": "x", "project": "rd"},
		"other":    {"app": "chat", "project": "ops"},
	}
	for want, dims := range tests {
		got := c.Bucket(func(d string) string { return dims[d] })
		if got != want {
			t.Errorf("Bucket(%v) = %q, want %q", dims, got, want)
		}
	}
}
