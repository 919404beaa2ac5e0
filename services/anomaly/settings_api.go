package anomaly

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/apierr"
	anomalyv1 "github.com/costplane/costplane/proto/gen/go/costplane/anomaly/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/alert"
	"github.com/costplane/costplane/services/anomaly/internal/policy"
)

// GetAnomalySettings returns the caller's settings with defaults filled
// in.
func (s *Service) GetAnomalySettings(ctx context.Context, _ *anomalyv1.GetAnomalySettingsRequest) (
	*anomalyv1.GetAnomalySettingsResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	set, err := policy.Get(ctx, s.deps.Pool, t)
	if err != nil {
		return nil, s.toStatus(ctx, err, t)
	}
	return &anomalyv1.GetAnomalySettingsResponse{Settings: settingsProto(set)}, nil
}

// UpdateAnomalySettings replaces the caller's settings. Every invalid
// field is reported, by name.
func (s *Service) UpdateAnomalySettings(
	ctx context.Context, req *anomalyv1.UpdateAnomalySettingsRequest,
) (*anomalyv1.UpdateAnomalySettingsResponse, error) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetSettings() == nil {
		return nil, apierr.Invalid("settings", "must be set")
	}
	set, vs := settingsFromProto(req.GetSettings(), "settings")
	vs = append(vs, set.Validate("settings")...)
	if err := vs.Err(); err != nil {
		return nil, err
	}

	now := s.now()
	set, err = policy.Put(ctx, s.deps.Pool, t, set, now)
	if err != nil {
		return nil, s.toStatus(ctx, err, t)
	}
	s.policies.Set(t, set, now)
	return &anomalyv1.UpdateAnomalySettingsResponse{Settings: settingsProto(set)}, nil
}

var sensitivities = map[anomalyv1.Sensitivity]string{
	anomalyv1.Sensitivity_SENSITIVITY_UNSPECIFIED: "",
	anomalyv1.Sensitivity_SENSITIVITY_LOW:         policy.SensitivityLow,
	anomalyv1.Sensitivity_SENSITIVITY_MEDIUM:      policy.SensitivityMedium,
	anomalyv1.Sensitivity_SENSITIVITY_HIGH:        policy.SensitivityHigh,
}

// settingsFromProto converts what the caller sent; the violations are
// those the conversion itself finds (unknown enum values, bad
// currencies), Settings.Validate finds the rest.
func settingsFromProto(p *anomalyv1.AnomalySettings, prefix string) (policy.Settings, apierr.Violations) {
	var vs apierr.Violations
	sens, ok := sensitivities[p.GetSensitivity()]
	if !ok {
		vs.Add(prefix+".sensitivity", "unknown sensitivity")
	}
	set := policy.Settings{
		Sensitivity:       sens,
		RunawayMultiplier: p.GetRunawayMultiplier(),
		SpikeRelative:     p.GetSpikeRelativeThreshold(),
		ToolLoop:          p.GetToolLoopThreshold(),
		RetryLoop:         p.GetRetryLoopThreshold(),
	}
	money := func(name string, m *eventv1.Money) *int64 {
		if m == nil {
			return nil
		}
		if c := m.GetCurrencyCode(); c != "" && !currencyCode(c) {
			vs.Add(prefix+"."+name+".currency_code", "must be an ISO 4217 code such as USD")
		}
		n := m.GetNanos()
		return &n
	}
	set.SpikeFloor = money("spike_floor", p.GetSpikeFloor())
	set.RunFloor = money("run_floor", p.GetRunFloor())
	set.SessionFloor = money("session_floor", p.GetSessionFloor())
	set.NewSpendFloor = money("new_spend_floor", p.GetNewSpendFloor())
	set.RunCeiling = money("run_ceiling", p.GetRunCeiling())

	for _, ds := range p.GetDimensionSets() {
		set.DimensionSets = append(set.DimensionSets, append([]string{}, ds.GetDimensions()...))
	}
	for _, c := range p.GetCategories() {
		cat := policy.Category{Name: c.GetName()}
		for _, r := range c.GetRules() {
			cat.Rules = append(cat.Rules, policy.CategoryRule{
				Bucket: r.GetBucket(), Dimension: r.GetDimension(), Values: r.GetValues(),
			})
		}
		set.Categories = append(set.Categories, cat)
	}
	for i, m := range p.GetMutes() {
		mute := policy.Mute{Scope: m.GetScope(), Reason: m.GetReason()}
		for _, k := range m.GetKinds() {
			mute.Kinds = append(mute.Kinds, int32(k))
		}
		if u := m.GetUntil(); u != nil {
			if err := u.CheckValid(); err != nil {
				vs.Add(fmt.Sprintf("%s.mutes[%d].until", prefix, i), "is not a valid time")
			}
			mute.Until = u.AsTime()
		}
		set.Mutes = append(set.Mutes, mute)
	}
	return set, vs
}

func currencyCode(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// settingsProto renders settings with the defaults filled in.
func settingsProto(set policy.Settings) *anomalyv1.AnomalySettings {
	eff := set.Effective()
	sens := anomalyv1.Sensitivity_SENSITIVITY_MEDIUM
	for k, v := range sensitivities {
		if v != "" && v == set.Sensitivity {
			sens = k
		}
	}
	money := func(n int64) *eventv1.Money { return &eventv1.Money{Nanos: n} }
	p := &anomalyv1.AnomalySettings{
		Sensitivity:            sens,
		SpikeFloor:             money(eff.SpikeFloor),
		RunFloor:               money(eff.RunFloor),
		SessionFloor:           money(eff.SessionFloor),
		NewSpendFloor:          money(eff.NewSpendFloor),
		RunawayMultiplier:      eff.RunawayMultiplier,
		SpikeRelativeThreshold: eff.SpikeRelative,
		ToolLoopThreshold:      int32(eff.ToolLoop),
		RetryLoopThreshold:     int32(eff.RetryLoop),
	}
	if eff.RunCeiling > 0 {
		p.RunCeiling = money(eff.RunCeiling)
	}
	for _, ds := range eff.DimensionSets {
		p.DimensionSets = append(p.DimensionSets, &anomalyv1.DimensionSet{Dimensions: ds.Dims})
	}
	for _, c := range set.Categories {
		cp := &anomalyv1.Category{Name: c.Name}
		for _, r := range c.Rules {
			cp.Rules = append(cp.Rules, &anomalyv1.CategoryRule{
				Bucket: r.Bucket, Dimension: r.Dimension, Values: r.Values,
			})
		}
		p.Categories = append(p.Categories, cp)
	}
	for _, m := range set.Mutes {
		mp := &anomalyv1.Mute{Scope: m.Scope, Reason: m.Reason}
		for _, k := range m.Kinds {
			mp.Kinds = append(mp.Kinds, eventv1.AnomalyKind(k))
		}
		if !m.Until.IsZero() {
			mp.Until = timestamppb.New(m.Until)
		}
		p.Mutes = append(p.Mutes, mp)
	}
	if !set.UpdateTime.IsZero() {
		p.UpdateTime = timestamppb.New(set.UpdateTime)
	}
	return p
}

// ListSuppressions lists the caller's suppressions, newest first.
func (s *Service) ListSuppressions(ctx context.Context, req *anomalyv1.ListSuppressionsRequest) (
	*anomalyv1.ListSuppressionsResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, afterID, err := decodeToken(req.GetPageToken(), t+"|suppressions")
	if err != nil {
		return nil, err
	}
	list, err := alert.ListSuppressions(ctx, s.deps.Pool, t, after, afterID, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err, "")
	}

	resp := &anomalyv1.ListSuppressionsResponse{}
	for i, sp := range list {
		if i == size {
			last := list[size-1]
			resp.NextPageToken = encodeToken(t+"|suppressions", last.CreateTime, last.ID)
			break
		}
		resp.Suppressions = append(resp.Suppressions, suppressionProto(sp))
	}
	return resp, nil
}

// DeleteSuppression removes one of the caller's suppressions.
func (s *Service) DeleteSuppression(ctx context.Context, req *anomalyv1.DeleteSuppressionRequest) (
	*anomalyv1.DeleteSuppressionResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetSuppressionId() == "" {
		return nil, apierr.Invalid("suppression_id", "must not be empty")
	}
	if err := alert.DeleteSuppression(ctx, s.deps.Pool, t, req.GetSuppressionId()); err != nil {
		return nil, s.toStatus(ctx, err, req.GetSuppressionId())
	}
	s.gate.Forget(t)
	return &anomalyv1.DeleteSuppressionResponse{}, nil
}

func suppressionProto(sp alert.Suppression) *anomalyv1.Suppression {
	p := &anomalyv1.Suppression{
		SuppressionId: sp.ID,
		Kind:          sp.Kind,
		Scope:         sp.Scope,
		Measure:       sp.Measure,
		Limit:         sp.Limit,
		AnomalyId:     sp.AnomalyID,
		Note:          sp.Note,
		CreateTime:    timestamppb.New(sp.CreateTime),
	}
	if !sp.ExpireTime.IsZero() {
		p.ExpireTime = timestamppb.New(sp.ExpireTime)
	}
	return p
}
