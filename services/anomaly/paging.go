package anomaly

import (
	"strconv"
	"time"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/paging"
)

const maxPageSize = 500

func pageSize(requested int32) (int, error) { return paging.Size(requested, maxPageSize) }

// A page token names its listing (so that a token is not replayed on
// another) and the sort key of the last item shown: a time and an id.

func encodeToken(listing string, t time.Time, id string) string {
	return paging.Encode("v1", listing, strconv.FormatInt(t.UnixNano(), 10), id)
}

// decodeToken returns the position a token names; an empty token starts
// at the beginning and returns an empty id.
func decodeToken(token, listing string) (time.Time, string, error) {
	bad := apierr.Invalid("page_token", "is not a token from a previous page of this listing")
	pos, ok := paging.Decode(token, "v1", listing, 2)
	if !ok {
		return time.Time{}, "", bad
	}
	if pos == nil {
		return time.Time{}, "", nil
	}
	nanos, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || pos[1] == "" {
		return time.Time{}, "", bad
	}
	return time.Unix(0, nanos), pos[1], nil
}
