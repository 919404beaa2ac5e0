// Package scope defines what slice of spend a budget covers: the
// dimensions a usage event is described by (Attrs), filters over them,
// and the compiled Matcher that the consumer and the budget check run on
// every event and request.
//
// The same Attrs describe a stored dimension tuple, so a budget created
// today is matched against past spend with exactly the rules that match
// new events.
package scope

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// Dim is a plain dimension: one string value per event.
type Dim int

// The plain dimensions. Labels are matched by key apart from these.
const (
	Provider Dim = iota
	Account
	Project
	Model
	ModelVersion
	Region
	ServiceTier
	InferenceProfile
	Operation
	App
	Agent
	AgentName
	AgentVersion
	Customer
	Environment
	Source
	APIKey
	numDims
)

// LabelPrefix starts the dimension name of one label: label:team.
const LabelPrefix = "label:"

var dimNames = [numDims]string{
	Provider:         "provider",
	Account:          "account",
	Project:          "project",
	Model:            "model",
	ModelVersion:     "model_version",
	Region:           "region",
	ServiceTier:      "service_tier",
	InferenceProfile: "inference_profile",
	Operation:        "operation",
	App:              "app",
	Agent:            "agent",
	AgentName:        "agent_name",
	AgentVersion:     "agent_version",
	Customer:         "customer",
	Environment:      "environment",
	Source:           "source",
	APIKey:           "api_key",
}

// Name returns the name of d as the API spells it.
func (d Dim) Name() string { return dimNames[d] }

// Names lists the plain dimension names, for error messages.
func Names() []string { return slices.Clone(dimNames[:]) }

// ErrUnknownDimension means a dimension name is not one of Names nor a
// label:<key>.
var ErrUnknownDimension = errors.New("unknown dimension")

// ErrUntrackedLabel means a label key is not among the keys the service
// keeps, so spend by it cannot be told apart.
var ErrUntrackedLabel = errors.New("label key is not tracked")

// Ref names one dimension: a plain one, a label by key, or a cost
// category by id.
type Ref struct {
	Dim   Dim
	Label string // set for a label; Dim is then meaningless
	// Category is set for a cost category, whose value is a bucket
	// that only a compiled Matcher can compute.
	Category string
}

// IsLabel reports whether r names a label.
func (r Ref) IsLabel() bool { return r.Label != "" }

// IsCategory reports whether r names a cost category.
func (r Ref) IsCategory() bool { return r.Category != "" }

// String returns the API name of r.
func (r Ref) String() string {
	switch {
	case r.IsLabel():
		return LabelPrefix + r.Label
	case r.IsCategory():
		return CategoryPrefix + r.Category
	}
	return r.Dim.Name()
}

// ParseRef resolves a dimension name.
func ParseRef(name string) (Ref, error) {
	if id, ok := strings.CutPrefix(name, CategoryPrefix); ok {
		if id == "" {
			return Ref{}, fmt.Errorf("%q: empty category id: %w", name, ErrUnknownDimension)
		}
		return Ref{Category: id}, nil
	}
	if key, ok := strings.CutPrefix(name, LabelPrefix); ok {
		if key == "" {
			return Ref{}, fmt.Errorf("%q: empty label key: %w", name, ErrUnknownDimension)
		}
		return Ref{Label: key}, nil
	}
	for d, n := range dimNames {
		if n == name {
			return Ref{Dim: Dim(d)}, nil
		}
	}
	return Ref{}, fmt.Errorf("%q: %w", name, ErrUnknownDimension)
}

// Attrs are the dimension values of one event, one stored tuple or one
// budget check.
type Attrs struct {
	Values [numDims]string
	Labels map[string]string
}

// Get returns the value of r; missing values are empty, and so are
// categories, which are not attributes.
func (a *Attrs) Get(r Ref) string {
	if r.IsLabel() {
		return a.Labels[r.Label]
	}
	if r.IsCategory() {
		return ""
	}
	return a.Values[r.Dim]
}

// LabelKeys restricts which labels are kept; an empty set keeps all.
type LabelKeys map[string]bool

// NewLabelKeys returns the set of keys; no keys means every key.
func NewLabelKeys(keys []string) LabelKeys {
	if len(keys) == 0 {
		return nil
	}
	out := make(LabelKeys, len(keys))
	for _, k := range keys {
		out[k] = true
	}
	return out
}

// Tracks reports whether labels of key are kept.
func (k LabelKeys) Tracks(key string) bool { return k == nil || k[key] }

// FromUsage returns the dimensions of ev, keeping the labels keys tracks.
func FromUsage(ev *eventv1.UsageEvent, keys LabelKeys) Attrs {
	var a Attrs
	v := &a.Values
	v[Provider] = ev.GetProvider()
	v[Account] = ev.GetAccount()
	v[Project] = ev.GetProject()
	v[Model] = ev.GetModel()
	v[ModelVersion] = ev.GetModelVersion()
	v[Region] = ev.GetRegion()
	v[ServiceTier] = ev.GetServiceTier()
	v[InferenceProfile] = ev.GetInferenceProfile()
	v[Operation] = ev.GetOperation()
	v[App] = ev.GetApp()
	v[Agent] = ev.GetAgent().GetId()
	if v[Agent] == "" {
		v[Agent] = ev.GetAgent().GetName()
	}
	v[AgentName] = ev.GetAgent().GetName()
	v[AgentVersion] = ev.GetAgent().GetVersion()
	v[Customer] = ev.GetCustomerId()
	v[Environment] = ev.GetEnvironment()
	v[Source] = ev.GetSource().GetName()
	v[APIKey] = ev.GetApiKeyId()

	for k, val := range ev.GetLabels() {
		if val == "" || !keys.Tracks(k) {
			continue
		}
		if a.Labels == nil {
			a.Labels = make(map[string]string, len(ev.GetLabels()))
		}
		a.Labels[k] = val
	}
	return a
}

// FromMap builds Attrs from dimension names and labels, as a budget check
// gives them. Unknown names are returned so that the caller can report
// them.
func FromMap(values, labels map[string]string, keys LabelKeys) (Attrs, []string) {
	var a Attrs
	var unknown []string
	for name, v := range values {
		r, err := ParseRef(name)
		switch {
		case err != nil, r.IsCategory(): // a bucket is computed, never given
			unknown = append(unknown, name)
		case r.IsLabel():
			a.setLabel(r.Label, v, keys)
		default:
			a.Values[r.Dim] = v
		}
	}
	for k, v := range labels {
		a.setLabel(k, v, keys)
	}
	slices.Sort(unknown)
	return a, unknown
}

func (a *Attrs) setLabel(k, v string, keys LabelKeys) {
	if v == "" || !keys.Tracks(k) {
		return
	}
	if a.Labels == nil {
		a.Labels = make(map[string]string)
	}
	a.Labels[k] = v
}

// TupleID is the deterministic id of a dimension tuple.
type TupleID [16]byte

// Encode returns the canonical JSON of a, its dimension names as keys and
// empty values left out, and the tuple id derived from it.
func (a *Attrs) Encode() ([]byte, TupleID) {
	m := make(map[string]string, 8+len(a.Labels))
	for d, v := range a.Values {
		if v != "" {
			m[dimNames[d]] = v
		}
	}
	for k, v := range a.Labels {
		m[LabelPrefix+k] = v
	}
	// A map of strings always marshals, with keys sorted, so the same
	// tuple always yields the same bytes.
	b, _ := json.Marshal(m)
	sum := sha256.Sum256(b)
	var id TupleID
	copy(id[:], sum[:])
	return b, id
}

// Decode parses what Encode returned. Unknown keys are an error, since a
// tuple written by a newer version must not be matched as if they were
// absent.
func Decode(b []byte) (Attrs, error) {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return Attrs{}, fmt.Errorf("decoding tuple: %w", err)
	}
	var a Attrs
	for name, v := range m {
		r, err := ParseRef(name)
		if err == nil && r.IsCategory() {
			err = fmt.Errorf("%q: %w", name, ErrUnknownDimension)
		}
		if err != nil {
			return Attrs{}, fmt.Errorf("decoding tuple: %w", err)
		}
		if r.IsLabel() {
			a.setLabel(r.Label, v, nil)
			continue
		}
		a.Values[r.Dim] = v
	}
	return a, nil
}
