// Package finding is what a detector reports: one condition, with the
// stable id that makes a re-detection update the same anomaly.
package finding

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// Finding is one detected condition, before it is stored.
type Finding struct {
	Tenant string
	Kind   eventv1.AnomalyKind
	// Pattern identifies the condition within tenant and kind: a run, a
	// run and a tool, a series and the start of an episode. It decides
	// the anomaly id.
	Pattern string
	Scope   map[string]string

	WindowStart time.Time
	WindowEnd   time.Time
	Actual      int64
	Expected    int64
	Currency    string
	Severity    eventv1.Severity
	// Count is how many times a loop repeated; 0 for other kinds.
	Count int64

	Runs     []string
	Sessions []string
	Summary  string

	// Suppression describes the generalized pattern a false positive of
	// this finding suppresses, and the value compared with a
	// suppression's limit.
	Suppression SuppressionKey
	Measure     int64
}

// SuppressionKey is the pattern a false positive generalizes to: the
// same kind in the same scope, such as "agent=resolver&tool_name=search".
type SuppressionKey struct {
	Scope map[string]string
	// Measure names what Finding.Measure holds.
	Measure string
}

// Measures compared with suppression limits.
const (
	MeasureCost  = "cost_nanos"
	MeasureCount = "count"
	MeasureRatio = "ratio_milli"
	// MeasureNone suppresses the pattern whatever its size.
	MeasureNone = "none"
)

// ID returns the stable anomaly id of a finding: the same tenant, kind and
// pattern always give the same id.
func ID(tenant string, kind eventv1.AnomalyKind, pattern string) string {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(kind.String()))
	h.Write([]byte{0})
	h.Write([]byte(pattern))
	sum := h.Sum(nil)
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:15])
	return "an_" + strings.ToLower(enc)
}

// ID returns the finding's anomaly id.
func (f *Finding) ID() string { return ID(f.Tenant, f.Kind, f.Pattern) }

// Severe returns the higher of two severities.
func Severe(a, b eventv1.Severity) eventv1.Severity {
	if a > b {
		return a
	}
	return b
}

// FormatMoney renders nanos for a summary, such as "12.3456 USD".
func FormatMoney(nanos int64, currency string) string {
	sign := ""
	if nanos < 0 {
		sign, nanos = "-", -nanos
	}
	whole, frac := nanos/1_000_000_000, nanos%1_000_000_000/100_000
	if currency == "" {
		currency = "(no currency)"
	}
	return fmt.Sprintf("%s%d.%04d %s", sign, whole, frac, currency)
}

// KindLabel is the metric label of a kind: "runaway_run" for
// ANOMALY_KIND_RUNAWAY_RUN.
func KindLabel(k eventv1.AnomalyKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "ANOMALY_KIND_"))
}
