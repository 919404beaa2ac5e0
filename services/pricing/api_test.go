package pricing_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	pricingv1 "github.com/costplane/costplane/proto/gen/go/costplane/pricing/v1"
	"github.com/costplane/costplane/services/pricing"
	"github.com/costplane/costplane/services/pricing/internal/ledger"
	"github.com/costplane/costplane/services/pricing/internal/testenv"
)

// apiFixture is the pricing API on a loopback port, as the all-in-one
// binary serves it, with tenants a and b.
type apiFixture struct {
	conn   *grpc.ClientConn
	client pricingv1.PricingServiceClient
	db     *pgxpool.Pool
	tokens map[string]string // a-admin, a-read, b-admin
}

func setupAPI(t *testing.T) *apiFixture {
	t.Helper()
	db := testenv.DB(t)
	store := auth.NewStore(db)
	ctx := context.Background()
	f := &apiFixture{db: db, tokens: map[string]string{}}
	for _, id := range []string{"ten-a", "ten-b"} {
		if _, err := store.CreateTenant(ctx, auth.Tenant{ID: id, Name: id}); err != nil {
			t.Fatalf("CreateTenant: %v", err)
		}
	}
	for name, k := range map[string]struct {
		tenant string
		scope  auth.Scope
	}{"a-admin": {"ten-a", auth.ScopeAdmin}, "a-read": {"ten-a", auth.ScopeRead}, "b-admin": {"ten-b", auth.ScopeAdmin}} {
		_, token, err := store.CreateKey(ctx, k.tenant, name, []auth.Scope{k.scope, auth.ScopeRead})
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		f.tokens[name] = token
	}

	logger := log.Discard()
	svc := newService(t, testConfig(), db, kafka.DefaultConfig(), testenv.Book(t, nil))
	authn := auth.NewAuthenticator(auth.NewVerifier(store, time.Second), pricing.Scopes(), "", logger)
	srv, err := server.New(server.Config{
		GRPCAddr: "127.0.0.1:0", ShutdownTimeout: time.Second, MaxRecvBytes: 1 << 20,
	}, logger, server.WithUnaryInterceptors(authn.Unary()))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	srv.Register(svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	f.conn, f.client = conn, pricingv1.NewPricingServiceClient(conn)
	return f
}

func (f *apiFixture) as(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+f.tokens[key])
}

// wantField checks that err is INVALID_ARGUMENT naming field.
func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("%s: %v, want INVALID_ARGUMENT", what, err)
		return
	}
	var fields []string
	for _, v := range apierr.FieldViolations(err) {
		fields = append(fields, v.Field)
	}
	if !slices.Contains(fields, field) {
		t.Errorf("%s: violations on %v, want one on %s (%v)", what, fields, field, err)
	}
}

func TestListModels(t *testing.T) {
	f := setupAPI(t)
	ctx := f.as("a-read")

	got, err := f.client.ListModels(ctx, &pricingv1.ListModelsRequest{
		Provider: "claude", Query: "Sonnet 4.5",
	})
	if err != nil {
		t.Fatalf("ListModels: %v", err)
	}
	if len(got.GetModels()) != 1 || got.GetModels()[0].GetModel() != "claude-sonnet-4-5" {
		t.Fatalf("search for Sonnet 4.5 at anthropic: %v", got.GetModels())
	}
	m := got.GetModels()[0]
	if len(m.GetPrices()) != 1 || m.GetPrices()[0].GetLongContext().GetThresholdTokens() != 200_000 ||
		m.GetCurrency() != "USD" || m.GetPrices()[0].GetSource() == "" {
		t.Errorf("claude-sonnet-4-5 prices: %v", m.GetPrices())
	}

	// Paging walks the same list as one large page.
	all, err := f.client.ListModels(ctx, &pricingv1.ListModelsRequest{Query: "gpt", PageSize: 500})
	if err != nil {
		t.Fatalf("ListModels: %v", err)
	}
	var paged []string
	token := ""
	for {
		p, err := f.client.ListModels(ctx, &pricingv1.ListModelsRequest{
			Query: "gpt", PageSize: 7, PageToken: token,
		})
		if err != nil {
			t.Fatalf("ListModels page: %v", err)
		}
		for _, m := range p.GetModels() {
			paged = append(paged, m.GetProvider()+"/"+m.GetModel())
		}
		if token = p.GetNextPageToken(); token == "" {
			break
		}
	}
	var whole []string
	for _, m := range all.GetModels() {
		whole = append(whole, m.GetProvider()+"/"+m.GetModel())
	}
	if len(whole) < 10 {
		t.Errorf("only %d gpt models: %v", len(whole), whole)
	}
	if diff := cmp.Diff(whole, paged); diff != "" {
		t.Errorf("paged listing (-whole +paged):\n%s", diff)
	}

	_, err = f.client.ListModels(ctx, &pricingv1.ListModelsRequest{Provider: "nope"})
	wantField(t, "unknown provider", err, "provider")
	_, err = f.client.ListModels(ctx, &pricingv1.ListModelsRequest{Query: "x", PageToken: token + "bad"})
	wantField(t, "foreign page token", err, "page_token")
}

// TestGetModelPrice: claude-sonnet-4-5 lists input at $3 per million; the
// batch tier halves it; tenant a's 15 % discount makes $2.55.
func TestGetModelPrice(t *testing.T) {
	f := setupAPI(t)
	at := timestamppb.New(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	price := func(ctx context.Context, req *pricingv1.GetModelPriceRequest) map[eventv1.QuantityKind][2]int64 {
		t.Helper()
		req.Time = at
		got, err := f.client.GetModelPrice(ctx, req)
		if err != nil {
			t.Fatalf("GetModelPrice(%v): %v", req, err)
		}
		out := map[eventv1.QuantityKind][2]int64{}
		for _, p := range got.GetPrices() {
			out[p.GetQuantityKind()] = [2]int64{
				p.GetListPricePerMillionNanos(), p.GetEffectivePricePerMillionNanos(),
			}
		}
		return out
	}

	std := price(f.as("a-read"), &pricingv1.GetModelPriceRequest{
		Provider: "anthropic", Model: "claude-sonnet-4-5-20250929",
	})
	if std[kIn] != [2]int64{3_000_000_000, 3_000_000_000} || std[kOut] != [2]int64{15_000_000_000, 15_000_000_000} {
		t.Errorf("standard input %v output %v", std[kIn], std[kOut])
	}
	batch := price(f.as("a-read"), &pricingv1.GetModelPriceRequest{
		Provider: "anthropic", Model: "claude-sonnet-4-5", ServiceTier: "batch",
	})
	if batch[kIn] != [2]int64{1_500_000_000, 1_500_000_000} {
		t.Errorf("batch input %v, want 1.5 $/M", batch[kIn])
	}
	long := price(f.as("a-read"), &pricingv1.GetModelPriceRequest{
		Provider: "anthropic", Model: "claude-sonnet-4-5", LongContext: true,
	})
	if long[kIn] != [2]int64{6_000_000_000, 6_000_000_000} {
		t.Errorf("long-context input %v, want 6 $/M", long[kIn])
	}

	_, err := f.client.CreateRate(f.as("a-admin"), &pricingv1.CreateRateRequest{Rate: &pricingv1.Rate{
		Kind: pricingv1.RateKind_RATE_KIND_DISCOUNT, Scope: &pricingv1.RateScope{Provider: "anthropic"},
		Discount: &pricingv1.Discount{PercentOffBasisPoints: 1500},
	}})
	if err != nil {
		t.Fatalf("CreateRate: %v", err)
	}
	disc := price(f.as("a-read"), &pricingv1.GetModelPriceRequest{Provider: "anthropic", Model: "claude-sonnet-4-5"})
	if disc[kIn] != [2]int64{3_000_000_000, 2_550_000_000} {
		t.Errorf("discounted input %v, want list 3 and effective 2.55 $/M", disc[kIn])
	}
	other := price(f.as("b-admin"), &pricingv1.GetModelPriceRequest{Provider: "anthropic", Model: "claude-sonnet-4-5"})
	if other[kIn] != [2]int64{3_000_000_000, 3_000_000_000} {
		t.Errorf("tenant b sees tenant a's discount: %v", other[kIn])
	}

	_, err = f.client.GetModelPrice(f.as("a-read"), &pricingv1.GetModelPriceRequest{
		Provider: "acme", Model: "acme-llm-9",
	})
	if status.Code(err) != codes.NotFound {
		t.Errorf("price of an unknown model: %v, want NOT_FOUND", err)
	}
}

// TestPriceUsage prices hypothetical events and past usage on another
// model. 1200 input and 450 output tokens cost 3,600,000 + 6,750,000 =
// 10,350,000 nanos on claude-sonnet-4-5, and 2,400,000 + 3,600,000 =
// 6,000,000 on gpt-4.1 ($2 in, $8 out).
func TestPriceUsage(t *testing.T) {
	f := setupAPI(t)
	ev := func(tenant, id, agent string) *eventv1.UsageEvent {
		e := testenv.Event(tenant, id, "anthropic", "claude-sonnet-4-5", "2026-11-03T10:00:00Z",
			testenv.Q{Kind: kIn, Amount: 1200}, testenv.Q{Kind: kOut, Amount: 450})
		e.Agent = &eventv1.Agent{Id: agent}
		return e
	}

	got, err := f.client.PriceUsage(f.as("a-read"), &pricingv1.PriceUsageRequest{
		Events: []*eventv1.UsageEvent{ev("ignored", "e1", "bot")},
	})
	if err != nil {
		t.Fatalf("PriceUsage: %v", err)
	}
	if got.GetEffectiveCost().GetNanos() != 10_350_000 || got.GetPricedCount() != 1 ||
		got.GetPriced()[0].GetUsage().GetTenantId() != "ten-a" {
		t.Errorf("as sent: %v", got)
	}
	got, err = f.client.PriceUsage(f.as("a-read"), &pricingv1.PriceUsageRequest{
		Events: []*eventv1.UsageEvent{ev("ten-a", "e1", "bot")},
		Target: &pricingv1.ModelTarget{Provider: "openai", Model: "gpt-4.1"},
	})
	if err != nil || got.GetEffectiveCost().GetNanos() != 6_000_000 {
		t.Errorf("on gpt-4.1: %v, %v; want 6000000", got, err)
	}

	// History: tenant a's bot ran twice, another agent once; tenant b's
	// usage is not a's.
	fillHistory(t, f.db, ev("ten-a", "h1", "bot"), ev("ten-a", "h2", "bot"), ev("ten-a", "h3", "other"),
		ev("ten-b", "h4", "bot"))
	got, err = f.client.PriceUsage(f.as("a-read"), &pricingv1.PriceUsageRequest{
		History: &pricingv1.UsageFilter{
			StartTime: timestamppb.New(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)),
			EndTime:   timestamppb.New(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)),
			AgentId:   "bot",
		},
		Target: &pricingv1.ModelTarget{Provider: "openai", Model: "gpt-4.1"},
	})
	if err != nil {
		t.Fatalf("PriceUsage history: %v", err)
	}
	if got.GetPricedCount() != 2 || got.GetEffectiveCost().GetNanos() != 12_000_000 ||
		got.GetRecordedEffectiveCost().GetNanos() != 20_700_000 || len(got.GetPriced()) != 0 {
		t.Errorf("the bot's history on gpt-4.1: %v; want 2 events, 12000000 instead of 20700000", got)
	}

	_, err = f.client.PriceUsage(f.as("a-read"), &pricingv1.PriceUsageRequest{})
	wantField(t, "nothing to price", err, "events")
	_, err = f.client.PriceUsage(f.as("a-read"), &pricingv1.PriceUsageRequest{
		History: &pricingv1.UsageFilter{StartTime: timestamppb.Now()},
	})
	wantField(t, "history without an end", err, "history.end_time")
}

func fillHistory(t *testing.T, db *pgxpool.Pool, evs ...*eventv1.UsageEvent) {
	t.Helper()
	book := testenv.Book(t, nil)
	var recs []*kgo.Record
	for _, ev := range evs {
		pu := book.Price(ev, nil)
		pu.PriceVersion = 1
		r, err := kafka.ProtoRecord("priced", []byte(ev.GetEventId()), pu)
		if err != nil {
			t.Fatalf("ProtoRecord: %v", err)
		}
		recs = append(recs, r)
	}
	err := pg.InTx(context.Background(), db, func(tx pgx.Tx) error {
		_, err := ledger.New(log.Discard()).Handle(context.Background(), tx, recs)
		return err
	})
	if err != nil {
		t.Fatalf("filling the ledger: %v", err)
	}
}

func TestCreateRateValidation(t *testing.T) {
	f := setupAPI(t)
	ctx := f.as("a-admin")
	discount := func(bp int32) *pricingv1.Rate {
		return &pricingv1.Rate{
			Kind:      pricingv1.RateKind_RATE_KIND_DISCOUNT,
			Scope:     &pricingv1.RateScope{Provider: "openai"},
			Discount:  &pricingv1.Discount{PercentOffBasisPoints: bp},
			ValidFrom: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		}
	}
	if _, err := f.client.CreateRate(ctx, &pricingv1.CreateRateRequest{Rate: discount(1000)}); err != nil {
		t.Fatalf("CreateRate: %v", err)
	}

	tests := []struct {
		name  string
		rate  *pricingv1.Rate
		field string
	}{
		{"negative percent", func() *pricingv1.Rate {
			r := discount(-5)
			r.Scope.Provider = "anthropic"
			return r
		}(), "rate.discount.percent_off_basis_points"},
		{"over 100 %", discount(10_001), "rate.discount.percent_off_basis_points"},
		{"unknown kind", &pricingv1.Rate{Kind: pricingv1.RateKind(42)}, "rate.kind"},
		{"no kind", &pricingv1.Rate{}, "rate.kind"},
		{"overlapping validity", discount(2000), "rate.valid_from"},
		{"terms of another kind", &pricingv1.Rate{
			Kind: pricingv1.RateKind_RATE_KIND_DISCOUNT, Discount: &pricingv1.Discount{},
			FixedPrice: &pricingv1.FixedPrice{},
		}, "rate.fixed_price"},
		{"unknown quantity kind", &pricingv1.Rate{
			Kind:       pricingv1.RateKind_RATE_KIND_FIXED_PRICE,
			FixedPrice: &pricingv1.FixedPrice{QuantityKind: eventv1.QuantityKind(99)},
		}, "rate.fixed_price.quantity_kind"},
		{"negative fixed price", &pricingv1.Rate{
			Kind: pricingv1.RateKind_RATE_KIND_FIXED_PRICE,
			FixedPrice: &pricingv1.FixedPrice{
				QuantityKind: kIn, PricePerMillionNanos: -1,
			},
		}, "rate.fixed_price.price_per_million_nanos"},
		{"unknown provider", func() *pricingv1.Rate {
			r := discount(100)
			r.Scope.Provider = "nope"
			return r
		}(), "rate.scope.provider"},
		{"unknown model", func() *pricingv1.Rate {
			r := discount(100)
			r.Scope.Model = "gpt-99"
			return r
		}(), "rate.scope.model"},
		{"empty validity", func() *pricingv1.Rate {
			r := discount(100)
			r.Scope.Provider = "mistral"
			r.ValidTo = r.ValidFrom
			return r
		}(), "rate.valid_to"},
		{"custom model without prices", &pricingv1.Rate{
			Kind: pricingv1.RateKind_RATE_KIND_CUSTOM_MODEL, Scope: &pricingv1.RateScope{Model: "mine"},
			CustomModel: &pricingv1.CustomModel{},
		}, "rate.custom_model"},
		{"deployment of an unknown model", &pricingv1.Rate{
			Kind: pricingv1.RateKind_RATE_KIND_DEPLOYMENT, Scope: &pricingv1.RateScope{Model: "gpt-99"},
			Deployment: &pricingv1.Deployment{Deployment: "prod"},
		}, "rate.scope.model"},
	}
	for _, tc := range tests {
		_, err := f.client.CreateRate(ctx, &pricingv1.CreateRateRequest{Rate: tc.rate})
		wantField(t, tc.name, err, tc.field)
	}
}

func TestRatesAreTenantScoped(t *testing.T) {
	f := setupAPI(t)
	created, err := f.client.CreateRate(f.as("a-admin"), &pricingv1.CreateRateRequest{Rate: &pricingv1.Rate{
		Kind:  pricingv1.RateKind_RATE_KIND_CUSTOM_MODEL,
		Scope: &pricingv1.RateScope{Provider: "self-hosted", Model: "Llama-FT"},
		CustomModel: &pricingv1.CustomModel{
			UnitPrices:        []*pricingv1.UnitPrice{{QuantityKind: kIn, PricePerMillionNanos: 100_000_000}},
			PricePerHourNanos: 2_000_000_000,
		},
	}})
	if err != nil {
		t.Fatalf("CreateRate: %v", err)
	}
	id := created.GetRate().GetRateId()
	if created.GetRate().GetScope().GetModel() != "llama-ft" {
		t.Errorf("custom model stored as %q, want llama-ft", created.GetRate().GetScope().GetModel())
	}

	_, err = f.client.CreateRate(f.as("a-read"), &pricingv1.CreateRateRequest{Rate: created.GetRate()})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("CreateRate with a read key: %v, want PERMISSION_DENIED", err)
	}
	list, err := f.client.ListRates(f.as("b-admin"), &pricingv1.ListRatesRequest{})
	if err != nil || len(list.GetRates()) != 0 {
		t.Errorf("tenant b lists %v (%v), want nothing", list.GetRates(), err)
	}
	_, err = f.client.DeleteRate(f.as("b-admin"), &pricingv1.DeleteRateRequest{RateId: id})
	if status.Code(err) != codes.NotFound {
		t.Errorf("tenant b deletes a's rate: %v, want NOT_FOUND", err)
	}

	// The custom model prices at once: 1000 input tokens at $0.10 per
	// million cost 100,000 nanos.
	got, err := f.client.PriceUsage(f.as("a-read"), &pricingv1.PriceUsageRequest{
		Events: []*eventv1.UsageEvent{testenv.Event("ten-a", "e", "self-hosted", "llama-ft",
			"2026-11-01T00:00:00Z", testenv.Q{Kind: kIn, Amount: 1000})},
	})
	if err != nil || got.GetEffectiveCost().GetNanos() != 100_000 {
		t.Errorf("custom model price: %v, %v; want 100000", got, err)
	}

	deleted, err := f.client.DeleteRate(f.as("a-admin"), &pricingv1.DeleteRateRequest{RateId: id})
	if err != nil || deleted.GetRate().GetDeleteTime() == nil {
		t.Fatalf("DeleteRate: %v, %v", deleted, err)
	}
	list, err = f.client.ListRates(f.as("a-admin"), &pricingv1.ListRatesRequest{ShowDeleted: true})
	if err != nil || len(list.GetRates()) != 1 {
		t.Errorf("ListRates with deleted: %v, %v", list, err)
	}
}

func TestRepriceRequests(t *testing.T) {
	f := setupAPI(t)
	from := timestamppb.New(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	_, err := f.client.StartReprice(f.as("a-admin"), &pricingv1.StartRepriceRequest{StartTime: from})
	wantField(t, "no end", err, "end_time")
	_, err = f.client.StartReprice(f.as("a-admin"), &pricingv1.StartRepriceRequest{
		StartTime: from, EndTime: from,
	})
	wantField(t, "empty range", err, "end_time")
	wantField(t, "no reason", err, "reason")
	_, err = f.client.StartReprice(f.as("a-read"), &pricingv1.StartRepriceRequest{})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("StartReprice with a read key: %v, want PERMISSION_DENIED", err)
	}

	var ids []string
	for range 3 {
		got, err := f.client.StartReprice(f.as("a-admin"), &pricingv1.StartRepriceRequest{
			StartTime: from, EndTime: timestamppb.New(from.AsTime().Add(time.Hour)), Reason: "test",
		})
		if err != nil {
			t.Fatalf("StartReprice: %v", err)
		}
		if got.GetReprice().GetState() != pricingv1.RepriceState_REPRICE_STATE_PENDING {
			t.Errorf("new reprice in state %s", got.GetReprice().GetState())
		}
		ids = append(ids, got.GetReprice().GetRepriceId())
	}
	_, err = f.client.GetReprice(f.as("b-admin"), &pricingv1.GetRepriceRequest{RepriceId: ids[0]})
	if status.Code(err) != codes.NotFound {
		t.Errorf("tenant b reads a's reprice: %v, want NOT_FOUND", err)
	}

	var listed []string
	token := ""
	for {
		page, err := f.client.ListReprices(f.as("a-admin"), &pricingv1.ListRepricesRequest{
			PageSize: 2, PageToken: token,
		})
		if err != nil {
			t.Fatalf("ListReprices: %v", err)
		}
		for _, r := range page.GetReprices() {
			listed = append(listed, r.GetRepriceId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	slices.Reverse(ids)
	if diff := cmp.Diff(ids, listed); diff != "" {
		t.Errorf("reprices newest first (-want +got):\n%s", diff)
	}
}
