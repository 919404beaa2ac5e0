package anomaly_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
	anomalyv1 "github.com/costplane/costplane/proto/gen/go/costplane/anomaly/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly"
	"github.com/costplane/costplane/services/anomaly/internal/alert"
	"github.com/costplane/costplane/services/anomaly/internal/finding"
	"github.com/costplane/costplane/services/anomaly/internal/testdb"
)

// apiService returns a service on a fresh database. The API needs no
// Kafka: records it queues wait in the outbox for the publisher.
func apiService(t *testing.T) (*anomaly.Service, *pgxpool.Pool) {
	t.Helper()
	pool := testdb.New(t)
	svc, err := anomaly.New(anomaly.DefaultSettings(), anomaly.Deps{
		Pool: pool, Kafka: kafka.DefaultConfig(), Logger: log.Discard(),
	})
	if err != nil {
		t.Fatalf("anomaly.New: %v", err)
	}
	return svc, pool
}

func as(tenant string) context.Context {
	return auth.NewContext(context.Background(), auth.Principal{TenantID: tenant,
		Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeAdmin}})
}

// seed stores findings as the detectors would, each detected at its own
// time, and returns their ids in order.
func seed(t *testing.T, pool *pgxpool.Pool, at time.Time, fs ...finding.Finding) []string {
	t.Helper()
	var ids []string
	for i, f := range fs {
		err := pg.InTx(context.Background(), pool, func(tx pgx.Tx) error {
			_, err := alert.Upsert(context.Background(), tx, []finding.Finding{f},
				at.Add(time.Duration(i)*time.Minute))
			return err
		})
		if err != nil {
			t.Fatalf("seeding: %v", err)
		}
		ids = append(ids, f.ID())
	}
	return ids
}

func found(tenant string, kind eventv1.AnomalyKind, pattern string, sev eventv1.Severity,
	scope map[string]string) finding.Finding {
	return finding.Finding{
		Tenant: tenant, Kind: kind, Pattern: pattern, Scope: scope, Currency: "USD",
		Actual: 2 * usd, Expected: usd / 2, Severity: sev, Summary: pattern,
		WindowStart: time.Unix(1_700_000_000, 0), WindowEnd: time.Unix(1_700_000_060, 0),
		Suppression: finding.SuppressionKey{Scope: map[string]string{"agent": scope["agent"]},
			Measure: finding.MeasureCost},
		Measure: 2 * usd,
	}
}

func code(err error) codes.Code { return status.Code(err) }

func fieldsOf(err error) []string {
	var out []string
	for _, v := range apierr.FieldViolations(err) {
		out = append(out, v.Field)
	}
	return out
}

func ids(as []*eventv1.Anomaly) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.GetAnomalyId()
	}
	return out
}

func TestListAndGetAnomalies(t *testing.T) {
	svc, pool := apiService(t)
	const (
		run   = eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN
		loop  = eventv1.AnomalyKind_ANOMALY_KIND_TOOL_LOOP
		spike = eventv1.AnomalyKind_ANOMALY_KIND_SPEND_SPIKE
		warn  = eventv1.Severity_SEVERITY_WARNING
		crit  = eventv1.Severity_SEVERITY_CRITICAL
	)
	at := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	resolver := map[string]string{"agent": "resolver"}
	planner := map[string]string{"agent": "planner"}
	t1 := seed(t, pool, at,
		found("t1", run, "run=a", warn, resolver),
		found("t1", loop, "run=b&tool_name=x", crit, resolver),
		found("t1", spike, "|USD|1", warn, planner),
		found("t1", run, "run=c", crit, planner),
		found("t1", run, "run=d", warn, resolver),
	)
	t2 := seed(t, pool, at, found("t2", run, "run=a", crit, resolver))

	newestFirst := []string{t1[4], t1[3], t1[2], t1[1], t1[0]}
	tests := []struct {
		name string
		req  *anomalyv1.ListAnomaliesRequest
		want []string
	}{
		{"everything", &anomalyv1.ListAnomaliesRequest{}, newestFirst},
		{"kinds", &anomalyv1.ListAnomaliesRequest{
			Kinds: []eventv1.AnomalyKind{loop, spike}}, []string{t1[2], t1[1]}},
		{"min severity", &anomalyv1.ListAnomaliesRequest{MinSeverity: crit},
			[]string{t1[3], t1[1]}},
		{"scope", &anomalyv1.ListAnomaliesRequest{Scope: []string{"agent=planner"}},
			[]string{t1[3], t1[2]}},
		{"time range", &anomalyv1.ListAnomaliesRequest{
			StartTime: timestamppb.New(at.Add(time.Minute)),
			EndTime:   timestamppb.New(at.Add(3 * time.Minute))}, []string{t1[2], t1[1]}},
		{"status", &anomalyv1.ListAnomaliesRequest{
			Statuses: []eventv1.AlertStatus{eventv1.AlertStatus_ALERT_STATUS_RESOLVED}}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := svc.ListAnomalies(as("t1"), tt.req)
			if err != nil {
				t.Fatalf("ListAnomalies: %v", err)
			}
			if diff := cmp.Diff(tt.want, ids(resp.GetAnomalies())); diff != "" {
				t.Errorf("anomalies (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("paging", func(t *testing.T) {
		var got []string
		req := &anomalyv1.ListAnomaliesRequest{PageSize: 2}
		for page := 0; ; page++ {
			resp, err := svc.ListAnomalies(as("t1"), req)
			if err != nil {
				t.Fatalf("page %d: %v", page, err)
			}
			if len(resp.GetAnomalies()) > 2 {
				t.Fatalf("page %d has %d anomalies, want at most 2", page, len(resp.GetAnomalies()))
			}
			got = append(got, ids(resp.GetAnomalies())...)
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
		if diff := cmp.Diff(newestFirst, got); diff != "" {
			t.Errorf("pages (-want +got):\n%s", diff)
		}

		// A token only continues its own listing and tenant.
		first, _ := svc.ListAnomalies(as("t1"), &anomalyv1.ListAnomaliesRequest{PageSize: 1})
		_, err := svc.ListAnomalies(as("t1"), &anomalyv1.ListAnomaliesRequest{PageSize: 1,
			MinSeverity: crit, PageToken: first.GetNextPageToken()})
		if diff := cmp.Diff([]string{"page_token"}, fieldsOf(err)); diff != "" {
			t.Errorf("token of another listing: %v (-want +got fields):\n%s", err, diff)
		}
		_, err = svc.ListAnomalies(as("t2"), &anomalyv1.ListAnomaliesRequest{PageSize: 1,
			PageToken: first.GetNextPageToken()})
		if code(err) != codes.InvalidArgument {
			t.Errorf("another tenant's token: %v, want INVALID_ARGUMENT", err)
		}
	})

	t.Run("bad requests name the field", func(t *testing.T) {
		_, err := svc.ListAnomalies(as("t1"), &anomalyv1.ListAnomaliesRequest{
			PageSize: -1, Scope: []string{"agent"}, Kinds: []eventv1.AnomalyKind{0}})
		want := []string{"kinds[0]", "scope[0]"}
		if diff := cmp.Diff(want, fieldsOf(err)); diff != "" {
			t.Errorf("fields (-want +got):\n%s", diff)
		}
		_, err = svc.ListAnomalies(as("t1"), &anomalyv1.ListAnomaliesRequest{PageSize: -1})
		if diff := cmp.Diff([]string{"page_size"}, fieldsOf(err)); diff != "" {
			t.Errorf("fields (-want +got):\n%s", diff)
		}
	})

	t.Run("tenant scoped", func(t *testing.T) {
		resp, err := svc.ListAnomalies(as("t2"), &anomalyv1.ListAnomaliesRequest{})
		if err != nil || !cmp.Equal(t2, ids(resp.GetAnomalies())) {
			t.Errorf("t2 lists %v (%v), want only its own %v", ids(resp.GetAnomalies()), err, t2)
		}
		_, err = svc.GetAnomaly(as("t2"), &anomalyv1.GetAnomalyRequest{AnomalyId: t1[0]})
		if code(err) != codes.NotFound {
			t.Errorf("t2 getting t1's anomaly: %v, want NOT_FOUND", err)
		}
		got, err := svc.GetAnomaly(as("t1"), &anomalyv1.GetAnomalyRequest{AnomalyId: t1[0]})
		if err != nil || got.GetAnomaly().GetTenantId() != "t1" {
			t.Errorf("GetAnomaly: %v %v", got, err)
		}
		_, err = svc.ListAnomalies(context.Background(), &anomalyv1.ListAnomaliesRequest{})
		if code(err) != codes.Unauthenticated {
			t.Errorf("a call without a principal: %v, want UNAUTHENTICATED", err)
		}
	})
}

func TestStatusChangesAndSuppressions(t *testing.T) {
	svc, pool := apiService(t)
	at := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	resolver := map[string]string{"agent": "resolver"}
	ids := seed(t, pool, at,
		found("t1", eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN, "run=a",
			eventv1.Severity_SEVERITY_WARNING, resolver),
		found("t1", eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN, "run=b",
			eventv1.Severity_SEVERITY_WARNING, resolver))
	ctx := as("t1")

	ack, err := svc.AcknowledgeAnomaly(ctx, &anomalyv1.AcknowledgeAnomalyRequest{AnomalyId: ids[0],
		Note: "looking"})
	if err != nil || ack.GetAnomaly().GetStatus() != eventv1.AlertStatus_ALERT_STATUS_ACKNOWLEDGED ||
		ack.GetAnomaly().GetRevision() != 2 {
		t.Fatalf("AcknowledgeAnomaly: %v %v", ack, err)
	}
	res, err := svc.ResolveAnomaly(ctx, &anomalyv1.ResolveAnomalyRequest{AnomalyId: ids[0]})
	if err != nil || res.GetAnomaly().GetStatus() != eventv1.AlertStatus_ALERT_STATUS_RESOLVED {
		t.Fatalf("ResolveAnomaly: %v %v", res, err)
	}
	_, err = svc.AcknowledgeAnomaly(ctx, &anomalyv1.AcknowledgeAnomalyRequest{AnomalyId: ids[0]})
	if code(err) != codes.FailedPrecondition {
		t.Errorf("acknowledging a resolved anomaly: %v, want FAILED_PRECONDITION", err)
	}
	_, err = svc.ResolveAnomaly(as("t2"), &anomalyv1.ResolveAnomalyRequest{AnomalyId: ids[1]})
	if code(err) != codes.NotFound {
		t.Errorf("t2 resolving t1's anomaly: %v, want NOT_FOUND", err)
	}
	_, err = svc.ResolveAnomaly(ctx, &anomalyv1.ResolveAnomalyRequest{})
	if diff := cmp.Diff([]string{"anomaly_id"}, fieldsOf(err)); diff != "" {
		t.Errorf("resolve without an id (-want +got fields):\n%s", diff)
	}

	fp, err := svc.MarkFalsePositive(ctx, &anomalyv1.MarkFalsePositiveRequest{AnomalyId: ids[1],
		Note: "nightly batch"})
	if err != nil {
		t.Fatalf("MarkFalsePositive: %v", err)
	}
	sp := fp.GetSuppression()
	if fp.GetAnomaly().GetStatus() != eventv1.AlertStatus_ALERT_STATUS_FALSE_POSITIVE ||
		sp.GetLimit() != 4*usd || sp.GetAnomalyId() != ids[1] ||
		!cmp.Equal(sp.GetScope(), resolver) {
		t.Errorf("MarkFalsePositive: %v", fp)
	}

	list, err := svc.ListSuppressions(ctx, &anomalyv1.ListSuppressionsRequest{})
	if err != nil || len(list.GetSuppressions()) != 1 ||
		list.GetSuppressions()[0].GetSuppressionId() != sp.GetSuppressionId() {
		t.Errorf("ListSuppressions: %v %v", list, err)
	}
	other, _ := svc.ListSuppressions(as("t2"), &anomalyv1.ListSuppressionsRequest{})
	if len(other.GetSuppressions()) != 0 {
		t.Errorf("t2 sees t1's suppressions: %v", other)
	}
	_, err = svc.DeleteSuppression(as("t2"), &anomalyv1.DeleteSuppressionRequest{
		SuppressionId: sp.GetSuppressionId()})
	if code(err) != codes.NotFound {
		t.Errorf("t2 deleting t1's suppression: %v, want NOT_FOUND", err)
	}
	if _, err := svc.DeleteSuppression(ctx, &anomalyv1.DeleteSuppressionRequest{
		SuppressionId: sp.GetSuppressionId()}); err != nil {
		t.Errorf("DeleteSuppression: %v", err)
	}

	// Every change is queued for Kafka with its revision.
	var queued int
	if err := pool.QueryRow(context.Background(),
		`SELECT count(*) FROM anomaly.outbox WHERE tenant_id = 't1'`).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if queued != 2+3 {
		t.Errorf("%d records queued, want 2 detections and 3 status changes", queued)
	}
}

func TestSettings(t *testing.T) {
	svc, _ := apiService(t)
	ctx := as("t1")
	money := func(n int64) *eventv1.Money { return &eventv1.Money{CurrencyCode: "USD", Nanos: n} }

	got, err := svc.GetAnomalySettings(ctx, &anomalyv1.GetAnomalySettingsRequest{})
	if err != nil {
		t.Fatalf("GetAnomalySettings: %v", err)
	}
	def := got.GetSettings()
	if def.GetSensitivity() != anomalyv1.Sensitivity_SENSITIVITY_MEDIUM ||
		def.GetSpikeFloor().GetNanos() != 5*usd || len(def.GetDimensionSets()) == 0 {
		t.Errorf("defaults: %v", def)
	}

	bad := []struct {
		name string
		set  *anomalyv1.AnomalySettings
		want []string
	}{
		{"negative floor", &anomalyv1.AnomalySettings{SpikeFloor: money(-1)},
			[]string{"settings.spike_floor.nanos"}},
		{"unknown dimension", &anomalyv1.AnomalySettings{DimensionSets: []*anomalyv1.DimensionSet{
			{Dimensions: []string{"model"}}, {Dimensions: []string{"planet"}}}},
			[]string{"settings.dimension_sets[1].dimensions[0]"}},
		{"both, and a bad currency", &anomalyv1.AnomalySettings{
			RunFloor:      &eventv1.Money{CurrencyCode: "dollars", Nanos: -5},
			DimensionSets: []*anomalyv1.DimensionSet{{Dimensions: []string{"planet"}}}},
			[]string{"settings.run_floor.currency_code", "settings.run_floor.nanos",
				"settings.dimension_sets[0].dimensions[0]"}},
		{"no settings", nil, []string{"settings"}},
	}
	for _, tt := range bad {
		_, err := svc.UpdateAnomalySettings(ctx, &anomalyv1.UpdateAnomalySettingsRequest{
			Settings: tt.set})
		if code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, fieldsOf(err)); diff != "" {
			t.Errorf("%s: fields (-want +got):\n%s", tt.name, diff)
		}
	}

	want := &anomalyv1.AnomalySettings{
		Sensitivity: anomalyv1.Sensitivity_SENSITIVITY_HIGH, SpikeFloor: money(usd),
		RunFloor: money(0), ToolLoopThreshold: 12,
		DimensionSets: []*anomalyv1.DimensionSet{{Dimensions: []string{"category:team", "model"}}},
		Categories: []*anomalyv1.Category{{Name: "team", Rules: []*anomalyv1.CategoryRule{
			{Bucket: "cx", Dimension: "app", Values: []string{"support*"}}}}},
		Mutes: []*anomalyv1.Mute{{Kinds: []eventv1.AnomalyKind{
			eventv1.AnomalyKind_ANOMALY_KIND_NEW_SPEND}, Reason: "trial"}},
	}
	if _, err := svc.UpdateAnomalySettings(ctx, &anomalyv1.UpdateAnomalySettingsRequest{
		Settings: want}); err != nil {
		t.Fatalf("UpdateAnomalySettings: %v", err)
	}
	got, err = svc.GetAnomalySettings(ctx, &anomalyv1.GetAnomalySettingsRequest{})
	if err != nil {
		t.Fatalf("GetAnomalySettings: %v", err)
	}
	s := got.GetSettings()
	checks := []struct {
		what      string
		got, want any
	}{
		{"sensitivity", s.GetSensitivity(), want.GetSensitivity()},
		{"spike floor", s.GetSpikeFloor().GetNanos(), int64(usd)},
		{"run floor", s.GetRunFloor().GetNanos(), int64(0)},
		{"tool loop", s.GetToolLoopThreshold(), int32(12)},
		{"dimension sets", fmt.Sprint(s.GetDimensionSets()), fmt.Sprint(want.GetDimensionSets())},
		{"categories", len(s.GetCategories()), 1},
		{"mutes", len(s.GetMutes()), 1},
		{"update time set", s.GetUpdateTime() != nil, true},
	}
	for _, c := range checks {
		if !cmp.Equal(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}

	other, err := svc.GetAnomalySettings(as("t2"), &anomalyv1.GetAnomalySettingsRequest{})
	if err != nil || other.GetSettings().GetSpikeFloor().GetNanos() != 5*usd {
		t.Errorf("t2's settings changed with t1's: %v %v", other, err)
	}
}
