package budget

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/money"
	"github.com/costplane/costplane/services/budget/internal/budgets"
)

func budgetProto(b *budgets.Budget) *budgetv1.Budget {
	pb := &budgetv1.Budget{
		BudgetId:    b.ID,
		DisplayName: b.Name,
		Scope:       &budgetv1.Scope{PerspectiveId: b.PerspectiveID},
		Amount:      money.New(b.Currency, b.Amount),
		Period:      budgetv1.Period(b.Period.Kind),
		StartTime:   timestamppb.New(b.Period.Start),
		Enforcement: budgetv1.Enforcement(b.Enforcement),
		WebhookUrl:  b.WebhookURL,
		Revision:    b.Revision,
		CreateTime:  timestamppb.New(b.Created),
		UpdateTime:  timestamppb.New(b.Updated),
	}
	for _, f := range b.Filters {
		pb.Scope.Filters = append(pb.Scope.Filters, &budgetv1.ScopeFilter{
			Dimension: f.Dimension, Include: f.Include, Exclude: f.Exclude,
		})
	}
	for _, t := range b.Thresholds {
		pb.Thresholds = append(pb.Thresholds, &budgetv1.Threshold{
			Kind: eventv1.BudgetThresholdKind(t.Kind), BasisPoints: t.BasisPoints,
		})
	}
	return pb
}

func timestampOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
