package dims

import "strings"

// NumKinds is the number of quantity kinds the store keeps apart, kind 0
// included. Kind numbers are those of costplane.event.v1.QuantityKind;
// kind 0 holds money that no cost line explains.
const NumKinds = 17

// NumTokenKinds is the number of token kinds: kinds 1 to 10.
const NumTokenKinds = 10

// kindNames are the token type dimension's values, indexed by kind.
var kindNames = [NumKinds]string{
	"other", "input", "cache_read", "cache_write_5m", "cache_write_1h", "output",
	"reasoning", "input_audio", "output_audio", "input_image", "output_image",
	"requests", "web_searches", "images", "audio_seconds", "characters", "compute_seconds",
}

// TokenColumns are the rollup columns of token kinds 1 to 10, in order.
var TokenColumns = [NumTokenKinds]string{
	"tok_input", "tok_cache_read", "tok_cache_write_5m", "tok_cache_write_1h", "tok_output",
	"tok_reasoning", "tok_input_audio", "tok_output_audio", "tok_input_image",
	"tok_output_image",
}

// KindName returns the token type value of kind k.
func KindName(k int) string {
	if k < 0 || k >= NumKinds {
		return kindNames[0]
	}
	return kindNames[k]
}

// ParseKind returns the kind whose token type value is name.
func ParseKind(name string) (int, bool) {
	for k, n := range kindNames {
		if strings.EqualFold(n, name) {
			return k, true
		}
	}
	return 0, false
}

// TokenKindNames returns the names of token kinds 1 to 10.
func TokenKindNames() []string {
	return append([]string(nil), kindNames[1:NumTokenKinds+1]...)
}

// Column names of per-kind measures in the rollups: QuantityColumns for
// kinds 1 to 16 (token kinds are the TokenColumns), ListColumns and
// EffectiveColumns for kinds 0 to 16.
var (
	QuantityColumns  = kindColumns(1, NumKinds, "qty_")
	ListColumns      = kindColumns(0, NumKinds, "list_")
	EffectiveColumns = kindColumns(0, NumKinds, "eff_")
)

func kindColumns(from, to int, prefix string) []string {
	out := make([]string, 0, to-from)
	for k := from; k < to; k++ {
		if prefix == "qty_" && k <= NumTokenKinds {
			out = append(out, TokenColumns[k-1])
			continue
		}
		out = append(out, prefix+kindNames[k])
	}
	return out
}
