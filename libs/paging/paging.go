// Package paging holds what every paged list read shares: the page size
// rule and opaque page tokens that name their listing, so a token from one
// listing (another tenant's, another filter's) is refused on another.
package paging

import (
	"encoding/base64"
	"strings"

	"github.com/costplane/costplane/libs/apierr"
)

// DefaultSize is the page size of a request that asks for none.
const DefaultSize = 50

// Size applies DefaultSize to 0 and caps sizes above max, as AIP-158 asks;
// a negative size is invalid.
func Size(requested int32, max int) (int, error) {
	switch {
	case requested < 0:
		return 0, apierr.Invalid("page_size", "must not be negative")
	case requested == 0:
		return DefaultSize, nil
	case int(requested) > max:
		return max, nil
	}
	return int(requested), nil
}

// Encode returns a token of the given kind (a version or a token scheme,
// such as "v1") for a position in listing. base64 keeps clients from
// building tokens by hand and relying on their form.
func Encode(kind, listing string, pos ...string) string {
	parts := append([]string{kind, listing}, pos...)
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

// Decode returns the n position parts of token when it was encoded with
// the same kind and listing; ok is false otherwise. An empty token, the
// first page, returns nil and true.
func Decode(token, kind, listing string, n int) (pos []string, ok bool) {
	if token == "" {
		return nil, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, false
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != n+2 || parts[0] != kind || parts[1] != listing {
		return nil, false
	}
	return parts[2:], true
}

// Cut trims items, fetched with one row more than size, to size and
// returns the token of the next page (keyed by next of the last item
// shown), empty on the last page.
func Cut[T any](items []T, size int, next func(last T) string) ([]T, string) {
	if len(items) <= size {
		return items, ""
	}
	items = items[:size]
	return items, next(items[size-1])
}
