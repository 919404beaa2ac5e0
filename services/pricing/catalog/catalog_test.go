package catalog

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

func TestEmbeddedCatalogIntegrity(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	if got := len(c.Models()); got < 150 {
		t.Errorf("catalog has %d models, want at least 150", got)
	}
	wantProviders := []string{
		"anthropic", "aws.bedrock", "azure.ai.openai", "cohere", "deepseek",
		"gcp.gemini", "gcp.vertex_ai", "groq", "mistral_ai", "openai", "x_ai",
	}
	for _, name := range wantProviders {
		p, ok := c.Provider(name)
		if !ok {
			t.Errorf("provider %s missing", name)
			continue
		}
		t.Logf("%-16s %3d models", name, len(p.Models))
	}

	for _, m := range c.Models() {
		for _, p := range m.Prices {
			// Load already enforces these; the test states them so that a
			// weakened validator fails here too.
			if !strings.HasPrefix(p.Source, "https://") {
				t.Errorf("%s %s: source %q", m.Name, p.ID, p.Source)
			}
			if _, err := time.Parse(time.DateOnly, p.AsOf); err != nil {
				t.Errorf("%s %s: as_of %q", m.Name, p.ID, p.AsOf)
			}
			in, okIn := p.Rates.Get(eventv1.QuantityKind_QUANTITY_KIND_INPUT)
			out, okOut := p.Rates.Get(eventv1.QuantityKind_QUANTITY_KIND_OUTPUT)
			if !okIn || !okOut || in < 0 || out < 0 {
				t.Errorf("%s %s: input/output prices missing or negative", m.Name, p.ID)
			}
			reasoning, _ := p.Rates.Get(eventv1.QuantityKind_QUANTITY_KIND_REASONING)
			if reasoning != out {
				t.Errorf("%s %s: reasoning %d is not billed at output %d", m.Name, p.ID, reasoning, out)
			}
		}
	}
}

func TestVersionIsStable(t *testing.T) {
	a, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if a.Version() != b.Version() || !strings.HasPrefix(a.Version(), "cat-") {
		t.Errorf("versions %q and %q, want equal and prefixed", a.Version(), b.Version())
	}
	changed, err := Parse(fstest.MapFS{"x.yaml": {Data: []byte(validFile)}})
	if err != nil {
		t.Fatal(err)
	}
	if changed.Version() == a.Version() {
		t.Error("different data gave the same version")
	}
}

func TestPricesAreIntegerNanos(t *testing.T) {
	c, err := Parse(fstest.MapFS{"x.yaml": {Data: []byte(validFile)}})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := c.Model("acme", "m1")
	if !ok {
		t.Fatal("model m1 missing")
	}
	r := &m.Prices[0].Rates
	checks := []struct {
		kind eventv1.QuantityKind
		want int64
	}{
		// "2.50" per million is 2.5e9 nanos per million.
		{eventv1.QuantityKind_QUANTITY_KIND_INPUT, 2_500_000_000},
		// "0.0375" per million.
		{eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ, 37_500_000},
		{eventv1.QuantityKind_QUANTITY_KIND_OUTPUT, 10_000_000_000},
		// $10 per 1,000 calls is $10,000 per million calls.
		{eventv1.QuantityKind_QUANTITY_KIND_WEB_SEARCHES, 10_000_000_000_000},
		// No reasoning price given: billed at output.
		{eventv1.QuantityKind_QUANTITY_KIND_REASONING, 10_000_000_000},
	}
	for _, c := range checks {
		got, ok := r.Get(c.kind)
		if !ok || got != c.want {
			t.Errorf("%s = %d (%v), want %d", KindName(c.kind), got, ok, c.want)
		}
	}
	if r.Has(eventv1.QuantityKind_QUANTITY_KIND_INPUT_AUDIO) {
		t.Error("input_audio has a price, want none: no price is never zero")
	}
}

const validFile = `
provider: acme
currency: USD
first_party: true
models:
  - model: m1
    source: https://acme.example/pricing
    as_of: 2026-11-01
    prices:
      - per_million: {input: "2.50", cache_read: "0.0375", output: "10"}
        per_thousand: {web_searches: "10.00"}
`

func TestParseRejectsBadData(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"overlapping ranges", `
provider: acme
currency: USD
models:
  - model: m1
    source: https://acme.example/p
    as_of: 2026-01-01
    prices:
      - effective_to: 2026-03-01
        per_million: {input: "1", output: "2"}
      - effective_from: 2026-02-01
        per_million: {input: "1", output: "2"}
`, "overlap"},
		{"missing output", `
provider: acme
currency: USD
models:
  - model: m1
    source: https://acme.example/p
    as_of: 2026-01-01
    prices:
      - per_million: {input: "1"}
`, "no output price"},
		{"missing source", `
provider: acme
currency: USD
models:
  - model: m1
    as_of: 2026-01-01
    prices:
      - per_million: {input: "1", output: "2"}
`, "not an https URL"},
		{"missing as_of", `
provider: acme
currency: USD
models:
  - model: m1
    source: https://acme.example/p
    prices:
      - per_million: {input: "1", output: "2"}
`, "as_of"},
		{"float-looking price with too many places", `
provider: acme
currency: USD
models:
  - model: m1
    source: https://acme.example/p
    as_of: 2026-01-01
    prices:
      - per_million: {input: "0.0000000001", output: "2"}
`, "more than 9 decimal places"},
		{"duplicate alias", `
provider: acme
currency: USD
models:
  - model: m1
    aliases: [shared]
    source: https://acme.example/p
    as_of: 2026-01-01
    prices:
      - per_million: {input: "1", output: "2"}
  - model: m2
    aliases: [Shared]
    source: https://acme.example/p
    as_of: 2026-01-01
    prices:
      - per_million: {input: "1", output: "2"}
`, "alias"},
		{"incomplete long context", `
provider: acme
currency: USD
models:
  - model: m1
    source: https://acme.example/p
    as_of: 2026-01-01
    prices:
      - per_million: {input: "1", cache_read: "0.1", output: "2"}
        long_context:
          threshold_tokens: 200000
          per_million: {input: "2", output: "3"}
`, "long_context does not price cache_read"},
		{"unknown kind", `
provider: acme
currency: USD
models:
  - model: m1
    source: https://acme.example/p
    as_of: 2026-01-01
    prices:
      - per_million: {input: "1", output: "2", thoughts: "3"}
`, "unknown quantity kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(fstest.MapFS{"acme.yaml": {Data: []byte(tt.file)}})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
}

func TestNoUnqualifiedIDIsAmbiguous(t *testing.T) {
	a := `
provider: a
currency: USD
first_party: true
models:
  - model: same
    source: https://a.example/p
    as_of: 2026-01-01
    prices: [{per_million: {input: "1", output: "2"}}]
`
	b := strings.ReplaceAll(a, "provider: a", "provider: b")
	_, err := Parse(fstest.MapFS{"a.yaml": {Data: []byte(a)}, "b.yaml": {Data: []byte(b)}})
	if err == nil || !strings.Contains(err.Error(), "unqualified id") {
		t.Errorf("err = %v, want an ambiguous unqualified id", err)
	}
}
