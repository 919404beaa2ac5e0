package consumer

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/detect"
	"github.com/costplane/costplane/services/anomaly/internal/finding"
	"github.com/costplane/costplane/services/anomaly/internal/policy"
	"github.com/costplane/costplane/services/anomaly/internal/store"
)

// newSpend records the batch's spend per scope and item and reports
// spend on a provider or model the scope never used before.
//
// A scope (the tenant, a project, an app) must have had spend for
// NewSpendMinAge before its new items alert: everything is new to a
// tenant that just started or an app that just launched. An item alerts
// once its spend reaches the tenant's floor within NewSpendWindow of its
// first spend, and once only. A new model of a new provider alerts as
// the provider; an item new to the whole tenant alerts at the tenant
// only, not again in its project and app.
func (c *Consumer) newSpend(ctx context.Context, tx pgx.Tx, b *detect.Batch, st *staged) error {
	rows, err := store.UpsertSpend(ctx, tx, b.Spend)
	if err != nil {
		return err
	}
	idx := make(map[detect.SpendKey]*store.Seen, len(rows))
	for i := range rows {
		idx[rows[i].Key] = &rows[i]
	}
	var wm time.Time
	for _, m := range b.Marks() {
		if m.After(wm) {
			wm = m
		}
	}

	var alerted []detect.SpendKey
	for i := range rows {
		s := &rows[i]
		if c.spendOld(s, wm) {
			st.oldSpend = append(st.oldSpend, s.Key)
			continue
		}
		if s.Key.Item == "" || s.Alerted || !c.spendIsNew(s, idx, wm, b) {
			continue
		}
		st.findings = append(st.findings, newSpendFinding(s, wm, b.Policies().For(s.Key.Tenant)))
		alerted = append(alerted, s.Key)
	}
	return store.MarkSpendAlerted(ctx, tx, alerted)
}

// spendOld reports whether a key no longer needs recording: an item no
// longer new, or a scope old enough for its new items to alert.
func (c *Consumer) spendOld(s *store.Seen, wm time.Time) bool {
	age := wm.Sub(s.First)
	if s.Key.Item == "" {
		return age >= c.cfg.NewSpendMinAge
	}
	return age > c.cfg.NewSpendWindow
}

// spendIsNew decides whether item spend s alerts.
func (c *Consumer) spendIsNew(
	s *store.Seen, idx map[detect.SpendKey]*store.Seen, wm time.Time, b *detect.Batch,
) bool {
	pol := b.Policies().For(s.Key.Tenant)
	if s.Cost < max(pol.NewSpendFloor, 1) {
		return false
	}
	// A row absent from idx was skipped as old, hence mature.
	mature := func(scope string) bool {
		r := idx[detect.SpendKey{Tenant: s.Key.Tenant, Scope: scope}]
		return r == nil || s.First.Sub(r.First) >= c.cfg.NewSpendMinAge
	}
	if !mature("") || !mature(s.Key.Scope) {
		return false
	}
	isNew := func(k detect.SpendKey) bool {
		r := idx[k]
		return r != nil && wm.Sub(r.First) <= c.cfg.NewSpendWindow
	}
	item := policy.ParseSeriesKey(s.Key.Item)
	if _, isModel := item[policy.DimModel]; isModel {
		provider := policy.SeriesKey([]string{policy.DimProvider},
			[]string{item[policy.DimProvider]})
		if isNew(detect.SpendKey{Tenant: s.Key.Tenant, Scope: s.Key.Scope, Item: provider}) {
			return false
		}
	}
	if s.Key.Scope != "" && isNew(detect.SpendKey{Tenant: s.Key.Tenant, Item: s.Key.Item}) {
		return false
	}
	return true
}

func newSpendFinding(s *store.Seen, wm time.Time, pol *policy.Effective) finding.Finding {
	scope := policy.ParseSeriesKey(s.Key.Scope)
	item := policy.ParseSeriesKey(s.Key.Item)
	dims := maps.Clone(scope)
	maps.Copy(dims, item)

	what := "provider " + item[policy.DimProvider]
	if m, ok := item[policy.DimModel]; ok {
		what = fmt.Sprintf("model %s (%s)", m, item[policy.DimProvider])
	}
	where := "the tenant"
	for k, v := range scope {
		where = fmt.Sprintf("%s %s", k, v)
	}
	sev := eventv1.Severity_SEVERITY_WARNING
	if floor := max(pol.NewSpendFloor, 1); s.Cost/10 >= floor {
		sev = eventv1.Severity_SEVERITY_CRITICAL
	}
	return finding.Finding{
		Tenant:      s.Key.Tenant,
		Kind:        eventv1.AnomalyKind_ANOMALY_KIND_NEW_SPEND,
		Pattern:     s.Key.Scope + "|" + s.Key.Item,
		Scope:       dims,
		WindowStart: s.First.UTC(),
		WindowEnd:   wm.UTC(),
		Actual:      s.Cost,
		Currency:    s.Currency,
		Severity:    sev,
		Summary: fmt.Sprintf("first spend on %s in %s: %s since %s", what, where,
			finding.FormatMoney(s.Cost, s.Currency), s.First.UTC().Format(time.RFC3339)),
		Suppression: finding.SuppressionKey{Scope: dims, Measure: finding.MeasureNone},
	}
}
