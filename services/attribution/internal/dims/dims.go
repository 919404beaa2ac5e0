// Package dims defines the rollup dimensions: the tuple a rollup row is
// keyed by (a Set), its deterministic id, and the names under which the
// explorer, cost categories and the API refer to each dimension.
package dims

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"slices"
)

// Dimension is something cost can be filtered and grouped by.
type Dimension int

// The dimensions. Label and Category need a key (the label key, the
// category id); TokenType is answered from the per-kind rollups.
const (
	Unspecified Dimension = iota
	Provider
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
	Currency
	Label
	Category
	TokenType
)

// columns maps the dimensions stored on attribution.dimsets to their
// column. Label, Category and TokenType are not plain columns.
var columns = map[Dimension]string{
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
	Currency:         "currency",
}

// Name returns the lower-case name of d, as CSV headers show it.
func Name(d Dimension) string {
	switch d {
	case Label:
		return "label"
	case Category:
		return "category"
	case TokenType:
		return "token_type"
	}
	if c, ok := columns[d]; ok {
		return c
	}
	return "unspecified"
}

// Column returns the attribution.dimsets column of d, if d is one.
func Column(d Dimension) (string, bool) {
	c, ok := columns[d]
	return c, ok
}

// Set is one tuple of dimension values. Agent is the agent's id, or its
// name when it has no id.
type Set struct {
	Currency         string
	Provider         string
	Account          string
	Project          string
	Model            string
	ModelVersion     string
	Region           string
	ServiceTier      string
	InferenceProfile string
	Operation        string
	App              string
	Agent            string
	AgentName        string
	AgentVersion     string
	Customer         string
	Environment      string
	Source           string
	Labels           map[string]string
}

// ID is the 16-byte id of a dimension set.
type ID [16]byte

// Values returns the set's plain values in the column order of Columns.
func (s *Set) Values() []string {
	return []string{
		s.Currency, s.Provider, s.Account, s.Project, s.Model, s.ModelVersion, s.Region,
		s.ServiceTier, s.InferenceProfile, s.Operation, s.App, s.Agent, s.AgentName,
		s.AgentVersion, s.Customer, s.Environment, s.Source,
	}
}

// Columns are the attribution.dimsets columns of Values, then labels.
var Columns = []string{
	"currency", "provider", "account", "project", "model", "model_version", "region",
	"service_tier", "inference_profile", "operation", "app", "agent", "agent_name",
	"agent_version", "customer", "environment", "source", "labels",
}

// ID hashes the set. Every value is length-prefixed and labels are sorted,
// so distinct sets cannot share an encoding; a 128-bit SHA-256 prefix makes
// accidental collisions practically impossible.
func (s *Set) ID() ID {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	write := func(v string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
		h.Write([]byte(v))
	}
	for _, v := range s.Values() {
		write(v)
	}
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		write(k)
		write(s.Labels[k])
	}
	var id ID
	copy(id[:], h.Sum(nil))
	return id
}

// LabelsJSON returns the labels as a JSON object, never null.
func (s *Set) LabelsJSON() []byte {
	if len(s.Labels) == 0 {
		return []byte("{}")
	}
	b, err := json.Marshal(s.Labels)
	if err != nil {
		return []byte("{}") // a map of strings always encodes
	}
	return b
}

// AgentKey is the agent dimension's value for an agent: its id, or its
// name when it has none.
func AgentKey(id, name string) string {
	if id != "" {
		return id
	}
	return name
}
