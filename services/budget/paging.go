package budget

import (
	"encoding/base64"
	"strings"

	"github.com/costplane/costplane/libs/apierr"
)

const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// pageSize applies the default to 0 and caps large sizes.
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

// A page token names its listing and the position after the previous
// page. It is opaque to clients: base64 keeps them from building one.

func encodeToken(listing string, pos ...string) string {
	parts := append([]string{"v1", listing}, pos...)
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

// decodeToken returns the n position parts of token, which must come from
// the same listing; an empty token returns nil.
func decodeToken(token, listing string, n int) ([]string, error) {
	if token == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != n+2 || parts[0] != "v1" || parts[1] != listing {
		return nil, apierr.Invalid("page_token",
			"is not a token from a previous page of this listing")
	}
	return parts[2:], nil
}

func apiBadToken() error {
	return apierr.Invalid("page_token", "is not a token from a previous page of this listing")
}
