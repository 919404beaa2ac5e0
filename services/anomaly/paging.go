package anomaly

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

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

// A page token names its listing (so that a token is not replayed on
// another) and the sort key of the last item shown: a time and an id. It
// is opaque to clients.

func encodeToken(listing string, t time.Time, id string) string {
	raw := strings.Join([]string{"v1", listing, strconv.FormatInt(t.UnixNano(), 10), id}, "\x00")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeToken returns the position a token names; an empty token starts
// at the beginning and returns an empty id.
func decodeToken(token, listing string) (time.Time, string, error) {
	if token == "" {
		return time.Time{}, "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	parts := strings.Split(string(raw), "\x00")
	bad := apierr.Invalid("page_token", "is not a token from a previous page of this listing")
	if err != nil || len(parts) != 4 || parts[0] != "v1" || parts[1] != listing || parts[3] == "" {
		return time.Time{}, "", bad
	}
	nanos, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return time.Time{}, "", bad
	}
	return time.Unix(0, nanos), parts[3], nil
}
