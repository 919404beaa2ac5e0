package catalog

import (
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// NumKinds bounds the QuantityKind values a Rates array can hold.
const NumKinds = int(eventv1.QuantityKind_QUANTITY_KIND_COMPUTE_SECONDS) + 1

// kindInfo names a quantity kind in the data files and says which unit its
// amounts must be counted in.
type kindInfo struct {
	name string
	unit eventv1.Unit
}

var kinds = [NumKinds]kindInfo{
	eventv1.QuantityKind_QUANTITY_KIND_INPUT:           {"input", eventv1.Unit_UNIT_TOKENS},
	eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ:      {"cache_read", eventv1.Unit_UNIT_TOKENS},
	eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_5M:  {"cache_write_5m", eventv1.Unit_UNIT_TOKENS},
	eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_1H:  {"cache_write_1h", eventv1.Unit_UNIT_TOKENS},
	eventv1.QuantityKind_QUANTITY_KIND_OUTPUT:          {"output", eventv1.Unit_UNIT_TOKENS},
	eventv1.QuantityKind_QUANTITY_KIND_REASONING:       {"reasoning", eventv1.Unit_UNIT_TOKENS},
	eventv1.QuantityKind_QUANTITY_KIND_INPUT_AUDIO:     {"input_audio", eventv1.Unit_UNIT_TOKENS},
	eventv1.QuantityKind_QUANTITY_KIND_OUTPUT_AUDIO:    {"output_audio", eventv1.Unit_UNIT_TOKENS},
	eventv1.QuantityKind_QUANTITY_KIND_INPUT_IMAGE:     {"input_image", eventv1.Unit_UNIT_TOKENS},
	eventv1.QuantityKind_QUANTITY_KIND_OUTPUT_IMAGE:    {"output_image", eventv1.Unit_UNIT_TOKENS},
	eventv1.QuantityKind_QUANTITY_KIND_REQUESTS:        {"requests", eventv1.Unit_UNIT_REQUESTS},
	eventv1.QuantityKind_QUANTITY_KIND_WEB_SEARCHES:    {"web_searches", eventv1.Unit_UNIT_CALLS},
	eventv1.QuantityKind_QUANTITY_KIND_IMAGES:          {"images", eventv1.Unit_UNIT_IMAGES},
	eventv1.QuantityKind_QUANTITY_KIND_AUDIO_SECONDS:   {"audio_seconds", eventv1.Unit_UNIT_SECONDS},
	eventv1.QuantityKind_QUANTITY_KIND_CHARACTERS:      {"characters", eventv1.Unit_UNIT_CHARACTERS},
	eventv1.QuantityKind_QUANTITY_KIND_COMPUTE_SECONDS: {"compute_seconds", eventv1.Unit_UNIT_SECONDS},
}

var kindByName = func() map[string]eventv1.QuantityKind {
	m := make(map[string]eventv1.QuantityKind, NumKinds)
	for k, info := range kinds {
		if info.name != "" {
			m[info.name] = eventv1.QuantityKind(k)
		}
	}
	return m
}()

// KindName is the data-file name of a quantity kind ("cache_write_1h"), or
// the enum's own name for a kind the catalog does not know.
func KindName(k eventv1.QuantityKind) string {
	if int(k) > 0 && int(k) < NumKinds {
		return kinds[k].name
	}
	return k.String()
}

// Known reports whether the catalog can price a kind at all.
func Known(k eventv1.QuantityKind) bool {
	return int(k) > 0 && int(k) < NumKinds
}

// KindUnit is the unit a kind's amounts are counted in.
func KindUnit(k eventv1.QuantityKind) eventv1.Unit {
	if int(k) > 0 && int(k) < NumKinds {
		return kinds[k].unit
	}
	return eventv1.Unit_UNIT_UNSPECIFIED
}

// IsToken reports whether a kind counts tokens. Tier multipliers and long
// context apply to token kinds only.
func IsToken(k eventv1.QuantityKind) bool {
	return KindUnit(k) == eventv1.Unit_UNIT_TOKENS
}

// IsPromptKind reports whether a kind counts toward the prompt size that
// selects a long-context price (see the package doc).
func IsPromptKind(k eventv1.QuantityKind) bool {
	switch k {
	case eventv1.QuantityKind_QUANTITY_KIND_INPUT,
		eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ,
		eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_5M,
		eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_1H,
		eventv1.QuantityKind_QUANTITY_KIND_INPUT_AUDIO,
		eventv1.QuantityKind_QUANTITY_KIND_INPUT_IMAGE:
		return true
	}
	return false
}

// Rates holds one price per quantity kind, in nanos per one million units,
// with a bit set for each kind that has a price. A kind without a bit has no
// price: it is never read as zero.
type Rates struct {
	perMillion [NumKinds]int64
	has        uint32
}

// Get returns the price of a kind and whether there is one.
func (r *Rates) Get(k eventv1.QuantityKind) (int64, bool) {
	if int(k) <= 0 || int(k) >= NumKinds || r.has&(1<<uint(k)) == 0 {
		return 0, false
	}
	return r.perMillion[k], true
}

// Set gives a kind a price.
func (r *Rates) Set(k eventv1.QuantityKind, perMillionNanos int64) {
	r.perMillion[k] = perMillionNanos
	r.has |= 1 << uint(k)
}

// Has reports whether a kind has a price.
func (r *Rates) Has(k eventv1.QuantityKind) bool {
	_, ok := r.Get(k)
	return ok
}

// Kinds lists the kinds that have a price, in enum order.
func (r *Rates) Kinds() []eventv1.QuantityKind {
	var out []eventv1.QuantityKind
	for k := 1; k < NumKinds; k++ {
		if r.has&(1<<uint(k)) != 0 {
			out = append(out, eventv1.QuantityKind(k))
		}
	}
	return out
}
