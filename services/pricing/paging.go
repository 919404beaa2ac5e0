package pricing

import (
	"encoding/base64"
	"strings"

	"github.com/costplane/costplane/libs/apierr"
)

const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// pageSize applies the default to 0 and caps large sizes, as AIP-158 asks.
func pageSize(requested int32) (int, error) {
	switch {
	case requested < 0:
		return 0, apierr.Invalid("page_size", "must not be negative")
	case requested == 0:
		return defaultPageSize, nil
	case requested > maxPageSize:
		return maxPageSize, nil
	}
	return int(requested), nil
}

// A page token names its listing (scope: the tenant and the filter) and
// the last item of the previous page. It is opaque to clients: base64
// keeps them from building one by hand.

func encodeToken(scope, last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1\x00" + scope + "\x00" + last))
}

// decodeToken returns the last item named by token, which must come from
// the same listing scope. An empty token starts at the beginning.
func decodeToken(token, scope string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != 3 || parts[0] != "v1" || parts[1] != scope || parts[2] == "" {
		return "", apierr.Invalid("page_token",
			"is not a token from a previous page of this listing")
	}
	return parts[2], nil
}

// page cuts items, fetched with one extra row, to size and returns the
// token of the next page, empty on the last one.
func page[T any](items []T, size int, scope string, id func(T) string) ([]T, string) {
	if len(items) <= size {
		return items, ""
	}
	items = items[:size]
	return items, encodeToken(scope, id(items[size-1]))
}
