// Package policy holds a tenant's detection settings: what the tenant
// chose (Settings, stored as JSON), the values the detectors apply once
// defaults fill the gaps (Effective), and their validation.
package policy

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/money"
)

// Sensitivity presets.
const (
	SensitivityLow    = "low"
	SensitivityMedium = "medium"
	SensitivityHigh   = "high"
)

// Settings is what a tenant configured. Nil and zero fields take the
// defaults, so that a change of default reaches every tenant that did
// not choose otherwise.
type Settings struct {
	Sensitivity       string     `json:"sensitivity,omitempty"`
	SpikeFloor        *int64     `json:"spike_floor_nanos,omitempty"`
	RunFloor          *int64     `json:"run_floor_nanos,omitempty"`
	SessionFloor      *int64     `json:"session_floor_nanos,omitempty"`
	NewSpendFloor     *int64     `json:"new_spend_floor_nanos,omitempty"`
	RunCeiling        *int64     `json:"run_ceiling_nanos,omitempty"`
	RunawayMultiplier float64    `json:"runaway_multiplier,omitempty"`
	SpikeRelative     float64    `json:"spike_relative_threshold,omitempty"`
	ToolLoop          int32      `json:"tool_loop_threshold,omitempty"`
	RetryLoop         int32      `json:"retry_loop_threshold,omitempty"`
	DimensionSets     [][]string `json:"dimension_sets,omitempty"`
	Categories        []Category `json:"categories,omitempty"`
	Mutes             []Mute     `json:"mutes,omitempty"`
	UpdateTime        time.Time  `json:"update_time,omitzero"`
}

// Category sorts spend into buckets by its first matching rule.
type Category struct {
	Name  string         `json:"name"`
	Rules []CategoryRule `json:"rules"`
}

// CategoryRule matches one dimension against values; a value ending in
// "*" matches by prefix.
type CategoryRule struct {
	Bucket    string   `json:"bucket"`
	Dimension string   `json:"dimension"`
	Values    []string `json:"values"`
}

// OtherBucket holds spend that no rule of a category matches.
const OtherBucket = "other"

// Mute silences anomalies of some kinds in some scope.
type Mute struct {
	Kinds  []int32           `json:"kinds,omitempty"`
	Scope  map[string]string `json:"scope,omitempty"`
	Until  time.Time         `json:"until,omitzero"`
	Reason string            `json:"reason,omitempty"`
}

// Defaults applied where a tenant chose nothing.
const (
	DefaultSpikeFloor = 5 * money.NanosPerUnit
	DefaultRunFloor   = 1 * money.NanosPerUnit
	// A session floor of two run floors: a session is several runs.
	DefaultSessionFloor  = 2 * money.NanosPerUnit
	DefaultNewSpendFloor = 1 * money.NanosPerUnit
	DefaultToolLoop      = 8
	DefaultRetryLoop     = 5
)

// DefaultDimensionSets are the spend series every tenant gets unless it
// chooses others: the total and each main dimension alone.
var DefaultDimensionSets = [][]string{
	{}, {DimProvider}, {DimModel}, {DimProject}, {DimApp}, {DimAgent},
}

// preset is what a sensitivity sets.
type preset struct {
	runaway   float64 // multiple of the P95
	relative  float64 // spike: fraction above expected
	z         float64 // spike: robust z-score
	loopScale float64 // applied to the loop thresholds
}

var presets = map[string]preset{
	SensitivityLow:    {runaway: 6, relative: 1.0, z: 7, loopScale: 1.5},
	SensitivityMedium: {runaway: 4, relative: 0.5, z: 5.5, loopScale: 1},
	SensitivityHigh:   {runaway: 3, relative: 0.3, z: 4.5, loopScale: 0.75},
}

// Effective is what the detectors apply for one tenant.
type Effective struct {
	SpikeFloor        int64
	RunFloor          int64
	SessionFloor      int64
	NewSpendFloor     int64
	RunCeiling        int64 // 0: none
	RunawayMultiplier float64
	SpikeRelative     float64
	SpikeZ            float64
	ToolLoop          int64
	RetryLoop         int64
	DimensionSets     []DimensionSet
	Categories        map[string]Category
	Mutes             []Mute
}

// Default is the policy of a tenant that configured nothing.
func Default() *Effective { return Settings{}.Effective() }

// Effective fills the defaults in. The settings must be valid.
func (s Settings) Effective() *Effective {
	p := presets[SensitivityMedium]
	if v, ok := presets[s.Sensitivity]; ok {
		p = v
	}
	e := &Effective{
		SpikeFloor:        orDefault(s.SpikeFloor, DefaultSpikeFloor),
		RunFloor:          orDefault(s.RunFloor, DefaultRunFloor),
		SessionFloor:      orDefault(s.SessionFloor, DefaultSessionFloor),
		NewSpendFloor:     orDefault(s.NewSpendFloor, DefaultNewSpendFloor),
		RunCeiling:        orDefault(s.RunCeiling, 0),
		RunawayMultiplier: orFloat(s.RunawayMultiplier, p.runaway),
		SpikeRelative:     orFloat(s.SpikeRelative, p.relative),
		SpikeZ:            p.z,
		ToolLoop:          scaled(s.ToolLoop, DefaultToolLoop, p.loopScale),
		RetryLoop:         scaled(s.RetryLoop, DefaultRetryLoop, p.loopScale),
		Categories:        make(map[string]Category, len(s.Categories)),
		Mutes:             s.Mutes,
	}
	for _, c := range s.Categories {
		e.Categories[c.Name] = c
	}
	sets := s.DimensionSets
	if len(sets) == 0 {
		sets = DefaultDimensionSets
	}
	for _, dims := range sets {
		e.DimensionSets = append(e.DimensionSets, newDimensionSet(dims))
	}
	return e
}

func orDefault(v *int64, def int64) int64 {
	if v == nil {
		return def
	}
	return *v
}

func orFloat(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// scaled applies a sensitivity's scale to a default threshold, and leaves
// a threshold the tenant chose as it is.
func scaled(v int32, def int64, scale float64) int64 {
	if v > 0 {
		return int64(v)
	}
	return max(2, int64(math.Round(float64(def)*scale)))
}

// Muted reports whether a mute silences an anomaly of kind with scope at
// now.
func (e *Effective) Muted(kind int32, scope map[string]string, now time.Time) bool {
	for _, m := range e.Mutes {
		if !m.Until.IsZero() && !now.Before(m.Until) {
			continue
		}
		if len(m.Kinds) > 0 && !containsKind(m.Kinds, kind) {
			continue
		}
		if scopeHolds(scope, m.Scope) {
			return true
		}
	}
	return false
}

func containsKind(kinds []int32, k int32) bool {
	for _, v := range kinds {
		if v == k {
			return true
		}
	}
	return false
}

// scopeHolds reports whether scope has every dimension of want with the
// same value.
func scopeHolds(scope, want map[string]string) bool {
	for k, v := range want {
		if scope[k] != v {
			return false
		}
	}
	return true
}

// Validate checks settings and returns every violation, with fields named
// under prefix (such as "settings").
func (s Settings) Validate(prefix string) apierr.Violations {
	var vs apierr.Violations
	field := func(name string) string { return prefix + "." + name }

	if s.Sensitivity != "" && presets[s.Sensitivity] == (preset{}) {
		vs.Add(field("sensitivity"), "unknown sensitivity")
	}
	floors := []struct {
		name string
		v    *int64
	}{
		{"spike_floor", s.SpikeFloor}, {"run_floor", s.RunFloor},
		{"session_floor", s.SessionFloor}, {"new_spend_floor", s.NewSpendFloor},
		{"run_ceiling", s.RunCeiling},
	}
	for _, f := range floors {
		if f.v != nil && *f.v < 0 {
			vs.Add(field(f.name+".nanos"), "must not be negative")
		}
	}
	s.validateNumbers(&vs, field)
	s.validateCategories(&vs, field)
	s.validateDimensionSets(&vs, field)
	s.validateMutes(&vs, field)

	return vs
}

func (s Settings) validateNumbers(vs *apierr.Violations, field func(string) string) {
	switch m := s.RunawayMultiplier; {
	case math.IsNaN(m) || math.IsInf(m, 0) || m < 0:
		vs.Add(field("runaway_multiplier"), "must be a positive number or 0 for the default")
	case m != 0 && m < 1:
		vs.Add(field("runaway_multiplier"), "must be at least 1: below it every run alerts")
	}
	if r := s.SpikeRelative; math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
		vs.Add(field("spike_relative_threshold"), "must be a positive number or 0 for the default")
	}
	if s.ToolLoop < 0 || s.ToolLoop == 1 {
		vs.Add(field("tool_loop_threshold"), "must be at least 2, or 0 for the default")
	}
	if s.RetryLoop < 0 || s.RetryLoop == 1 {
		vs.Add(field("retry_loop_threshold"), "must be at least 2, or 0 for the default")
	}
}

func (s Settings) validateCategories(vs *apierr.Violations, field func(string) string) {
	seen := map[string]bool{}
	for i, c := range s.Categories {
		at := fmt.Sprintf("categories[%d]", i)
		switch {
		case c.Name == "" || len(c.Name) > 64 || strings.ContainsAny(c.Name, "=&:"):
			vs.Add(field(at+".name"), "must be 1-64 characters without '=', '&' or ':'")
		case seen[c.Name]:
			vs.Add(field(at+".name"), "is used by another category")
		}
		seen[c.Name] = true
		if len(c.Rules) == 0 {
			vs.Add(field(at+".rules"), "must not be empty")
		}
		for j, r := range c.Rules {
			rat := fmt.Sprintf("%s.rules[%d]", at, j)
			if r.Bucket == "" {
				vs.Add(field(rat+".bucket"), "must not be empty")
			}
			if err := checkDimension(r.Dimension, nil); err != "" {
				vs.Add(field(rat+".dimension"), err)
			}
			if len(r.Values) == 0 {
				vs.Add(field(rat+".values"), "must not be empty")
			}
		}
	}
}

func (s Settings) validateDimensionSets(vs *apierr.Violations, field func(string) string) {
	cats := make(map[string]bool, len(s.Categories))
	for _, c := range s.Categories {
		cats[c.Name] = true
	}
	if len(s.DimensionSets) > MaxDimensionSets {
		vs.Add(field("dimension_sets"), fmt.Sprintf("at most %d sets", MaxDimensionSets))
	}
	for i, set := range s.DimensionSets {
		if len(set) > 3 {
			vs.Add(field(fmt.Sprintf("dimension_sets[%d].dimensions", i)), "at most 3 dimensions")
		}
		seen := map[string]bool{}
		for j, d := range set {
			at := field(fmt.Sprintf("dimension_sets[%d].dimensions[%d]", i, j))
			if err := checkDimension(d, cats); err != "" {
				vs.Add(at, err)
			} else if seen[d] {
				vs.Add(at, "appears twice in the set")
			}
			seen[d] = true
		}
	}
}

func (s Settings) validateMutes(vs *apierr.Violations, field func(string) string) {
	for i, m := range s.Mutes {
		at := fmt.Sprintf("mutes[%d]", i)
		for j, k := range m.Kinds {
			if k <= 0 || k > maxKind {
				vs.Add(field(fmt.Sprintf("%s.kinds[%d]", at, j)), "unknown anomaly kind")
			}
		}
		for d := range m.Scope {
			if err := checkScopeKey(d); err != "" {
				vs.Add(field(fmt.Sprintf("%s.scope[%s]", at, d)), err)
			}
		}
	}
}

// maxKind is the highest AnomalyKind value.
const maxKind = 6

// MaxDimensionSets bounds the series a tenant's spend fans out to.
const MaxDimensionSets = 16
