package category

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	"github.com/costplane/costplane/services/attribution/internal/dims"
)

// FromProto converts the API's category.
func FromProto(p *attributionv1.CostCategory) *Category {
	c := &Category{
		ID: p.GetCategoryId(), Name: p.GetDisplayName(), Default: p.GetDefaultBucket(),
		Revision: p.GetRevision(),
	}
	for _, r := range p.GetRules() {
		rule := Rule{Bucket: r.GetBucket()}
		for _, cond := range r.GetConditions() {
			rule.Conditions = append(rule.Conditions, Condition{
				Ref: Ref{
					Dim:      dims.Dimension(cond.GetDimension().GetDimension()),
					LabelKey: cond.GetDimension().GetLabelKey(),
				},
				Op:     Operator(cond.GetOperator()),
				Values: cond.GetValues(),
			})
		}
		c.Rules = append(c.Rules, rule)
	}
	for _, s := range p.GetSplits() {
		split := Split{Bucket: s.GetBucket(), Method: Method(s.GetMethod()),
			Targets: s.GetTargetBuckets()}
		for _, sh := range s.GetShares() {
			split.Shares = append(split.Shares, Share{sh.GetBucket(), sh.GetBasisPoints()})
		}
		c.Splits = append(c.Splits, split)
	}
	if p.GetCreateTime() != nil {
		c.CreateTime = p.GetCreateTime().AsTime()
	}
	if p.GetUpdateTime() != nil {
		c.UpdateTime = p.GetUpdateTime().AsTime()
	}
	return c
}

// Proto converts the category to the API's message.
func (c *Category) Proto() *attributionv1.CostCategory {
	p := &attributionv1.CostCategory{
		CategoryId: c.ID, DisplayName: c.Name, DefaultBucket: c.Default, Revision: c.Revision,
	}
	for _, r := range c.Rules {
		rule := &attributionv1.CategoryRule{Bucket: r.Bucket}
		for _, cond := range r.Conditions {
			rule.Conditions = append(rule.Conditions, &attributionv1.Condition{
				Dimension: &attributionv1.DimensionRef{
					Dimension: attributionv1.Dimension(cond.Ref.Dim),
					LabelKey:  cond.Ref.LabelKey,
				},
				Operator: attributionv1.ConditionOperator(cond.Op),
				Values:   cond.Values,
			})
		}
		p.Rules = append(p.Rules, rule)
	}
	for _, s := range c.Splits {
		split := &attributionv1.SharedCostSplit{Bucket: s.Bucket,
			Method: attributionv1.SplitMethod(s.Method), TargetBuckets: s.Targets}
		for _, sh := range s.Shares {
			split.Shares = append(split.Shares,
				&attributionv1.SplitShare{Bucket: sh.Bucket, BasisPoints: sh.BasisPoints})
		}
		p.Splits = append(p.Splits, split)
	}
	if !c.CreateTime.IsZero() {
		p.CreateTime = timestamppb.New(c.CreateTime)
		p.UpdateTime = timestamppb.New(c.UpdateTime)
	}
	return p
}
