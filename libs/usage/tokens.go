package usage

import (
	"strings"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// MaxAmount is the largest quantity amount an event may carry. No single
// request or usage bucket comes near it; a larger figure is a broken source,
// and the bound keeps sums of buckets far from int64 overflow.
const MaxAmount = 1_000_000_000_000_000

// Convention says how a source counts its token details against its totals.
// Sources disagree: OpenAI and the OpenTelemetry GenAI conventions count
// cached tokens inside the input total and reasoning inside the output
// total; Anthropic and Bedrock report cache reads and writes beside the
// input; Gemini reports thoughts beside the candidates (output).
type Convention struct {
	// CacheInInput is true when the reported input total already includes
	// cache reads and cache writes.
	CacheInInput bool
	// ReasoningInOutput is true when the reported output total already
	// includes reasoning tokens.
	ReasoningInOutput bool
}

// The conventions of the sources costplane reads.
var (
	ConventionOpenAI    = Convention{CacheInInput: true, ReasoningInOutput: true}
	ConventionOTel      = Convention{CacheInInput: true, ReasoningInOutput: true}
	ConventionAnthropic = Convention{CacheInInput: false, ReasoningInOutput: true}
	ConventionBedrock   = Convention{CacheInInput: false, ReasoningInOutput: true}
	ConventionGemini    = Convention{CacheInInput: true, ReasoningInOutput: false}
)

// NativeConvention returns the convention of a provider's own usage
// reports, for connectors and gateways that read them raw. Vertex AI serves
// both Gemini and Claude, so the model decides there. Unknown providers are
// assumed to follow OpenAI, which most compatible APIs copy.
func NativeConvention(provider, model string) Convention {
	switch provider {
	case ProviderAnthropic:
		return ConventionAnthropic
	case ProviderAWSBedrock:
		return ConventionBedrock
	case ProviderGCPGemini, ProviderGCPGenAI:
		return ConventionGemini
	case ProviderGCPVertexAI:
		if strings.Contains(strings.ToLower(model), "claude") {
			return ConventionAnthropic
		}
		return ConventionGemini
	default:
		return ConventionOpenAI
	}
}

// Tokens is a token usage report as a source gives it. Input and Output are
// the source's totals, read according to a Convention; audio and image
// tokens are always counted inside them.
type Tokens struct {
	Input        int64
	Output       int64
	CacheRead    int64
	CacheWrite5m int64
	CacheWrite1h int64
	Reasoning    int64
	InputAudio   int64
	OutputAudio  int64
	InputImage   int64
	OutputImage  int64
}

// Flag marks a report that Normalize could not take at face value. The
// quantities are still recorded as well as they can be, and the flag goes
// with the event so that the figure can be traced back.
type Flag string

// Flags that Normalize raises.
const (
	// FlagNegativeCount: a count was negative and was read as zero.
	FlagNegativeCount Flag = "negative_count"
	// FlagCountTooLarge: a count exceeded MaxAmount and was capped.
	FlagCountTooLarge Flag = "count_too_large"
	// FlagInputDetailsExceedInput: cache, audio or image tokens that the
	// convention counts inside the input added up to more than the input;
	// the uncached input bucket was recorded as zero.
	FlagInputDetailsExceedInput Flag = "input_details_exceed_input"
	// FlagOutputDetailsExceedOutput: reasoning, audio or image tokens that
	// the convention counts inside the output added up to more than the
	// output; the plain output bucket was recorded as zero.
	FlagOutputDetailsExceedOutput Flag = "output_details_exceed_output"
)

// Normalize converts t, read under convention c, into non-overlapping
// quantities: input is uncached text input only, output excludes reasoning,
// and every token is in exactly one bucket. When no flag is returned the
// input-side buckets add up to InputTotal(c) and the output-side buckets to
// OutputTotal(c). Zero buckets are left out.
func (t Tokens) Normalize(c Convention) ([]*eventv1.Quantity, []Flag) {
	bs, n, flags := t.Buckets(c)
	qs := make([]*eventv1.Quantity, n)
	for i, b := range bs[:n] {
		qs[i] = &eventv1.Quantity{Kind: b.Kind, Unit: eventv1.Unit_UNIT_TOKENS, Amount: b.Amount}
	}
	return qs, flags
}

// NumTokenBuckets is the number of token buckets Buckets can return.
const NumTokenBuckets = 10

// Bucket is one normalized token bucket.
type Bucket struct {
	Kind   eventv1.QuantityKind
	Amount int64
}

// Buckets is Normalize for callers that build the quantities themselves,
// such as an ingestor allocating a whole event at once: it returns the
// non-zero buckets in the first n entries of an array, in a fixed order.
func (t Tokens) Buckets(c Convention) (bs [NumTokenBuckets]Bucket, n int, flags []Flag) {
	t, flags = t.clamped()
	input, output := t.uncached(c), t.plainOutput(c)
	if input < 0 {
		input, flags = 0, append(flags, FlagInputDetailsExceedInput)
	}
	if output < 0 {
		output, flags = 0, append(flags, FlagOutputDetailsExceedOutput)
	}

	all := [NumTokenBuckets]Bucket{
		{eventv1.QuantityKind_QUANTITY_KIND_INPUT, input},
		{eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ, t.CacheRead},
		{eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_5M, t.CacheWrite5m},
		{eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_1H, t.CacheWrite1h},
		{eventv1.QuantityKind_QUANTITY_KIND_OUTPUT, output},
		{eventv1.QuantityKind_QUANTITY_KIND_REASONING, t.Reasoning},
		{eventv1.QuantityKind_QUANTITY_KIND_INPUT_AUDIO, t.InputAudio},
		{eventv1.QuantityKind_QUANTITY_KIND_OUTPUT_AUDIO, t.OutputAudio},
		{eventv1.QuantityKind_QUANTITY_KIND_INPUT_IMAGE, t.InputImage},
		{eventv1.QuantityKind_QUANTITY_KIND_OUTPUT_IMAGE, t.OutputImage},
	}
	for _, b := range all {
		if b.Amount > 0 {
			bs[n] = b
			n++
		}
	}
	return bs, n, flags
}

// InputTotal is every input-side token of the report, cached or not.
func (t Tokens) InputTotal(c Convention) int64 {
	if c.CacheInInput {
		return t.Input
	}
	return t.Input + t.CacheRead + t.CacheWrite5m + t.CacheWrite1h
}

// OutputTotal is every output-side token of the report, reasoning included.
func (t Tokens) OutputTotal(c Convention) int64 {
	if c.ReasoningInOutput {
		return t.Output
	}
	return t.Output + t.Reasoning
}

func (t Tokens) uncached(c Convention) int64 {
	in := t.Input - t.InputAudio - t.InputImage
	if c.CacheInInput {
		in -= t.CacheRead + t.CacheWrite5m + t.CacheWrite1h
	}
	return in
}

func (t Tokens) plainOutput(c Convention) int64 {
	out := t.Output - t.OutputAudio - t.OutputImage
	if c.ReasoningInOutput {
		out -= t.Reasoning
	}
	return out
}

// clamped returns t with every count within [0, MaxAmount], flagging what
// it had to change.
func (t Tokens) clamped() (Tokens, []Flag) {
	var neg, big bool
	clamp := func(v int64) int64 {
		switch {
		case v < 0:
			neg = true
			return 0
		case v > MaxAmount:
			big = true
			return MaxAmount
		}
		return v
	}
	t = Tokens{
		Input: clamp(t.Input), Output: clamp(t.Output), CacheRead: clamp(t.CacheRead),
		CacheWrite5m: clamp(t.CacheWrite5m), CacheWrite1h: clamp(t.CacheWrite1h),
		Reasoning: clamp(t.Reasoning), InputAudio: clamp(t.InputAudio),
		OutputAudio: clamp(t.OutputAudio), InputImage: clamp(t.InputImage),
		OutputImage: clamp(t.OutputImage),
	}

	var flags []Flag
	if neg {
		flags = append(flags, FlagNegativeCount)
	}
	if big {
		flags = append(flags, FlagCountTooLarge)
	}
	return t, flags
}

// InferConvention returns the convention under which t adds up to total,
// a total token count the source reported beside its details. Sources do
// not always follow the convention they claim (an instrumentation may copy
// a provider's raw counts into attributes that the OpenTelemetry
// conventions define as inclusive), and the total tells them apart.
// Without a total, or when it fits fallback, or fits no convention or
// several, fallback is returned.
func (t Tokens) InferConvention(total int64, fallback Convention) Convention {
	if total <= 0 || t.fits(fallback, total) {
		return fallback
	}
	// Only an axis with tokens on it can be told apart; the others keep
	// the fallback's reading.
	cacheAxis := []bool{fallback.CacheInInput}
	if t.CacheRead+t.CacheWrite5m+t.CacheWrite1h > 0 {
		cacheAxis = []bool{true, false}
	}
	reasoningAxis := []bool{fallback.ReasoningInOutput}
	if t.Reasoning > 0 {
		reasoningAxis = []bool{true, false}
	}

	var found Convention
	n := 0
	for _, cache := range cacheAxis {
		for _, reasoning := range reasoningAxis {
			c := Convention{CacheInInput: cache, ReasoningInOutput: reasoning}
			if t.fits(c, total) {
				found, n = c, n+1
			}
		}
	}
	if n != 1 {
		return fallback
	}
	return found
}

func (t Tokens) fits(c Convention, total int64) bool {
	return t.InputTotal(c)+t.OutputTotal(c) == total
}
