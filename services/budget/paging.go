package budget

import (
	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/paging"
)

const maxPageSize = 500

func pageSize(requested int32) (int, error) { return paging.Size(requested, maxPageSize) }

// A page token names its listing and the position after the previous page.

func encodeToken(listing string, pos ...string) string {
	return paging.Encode("v1", listing, pos...)
}

// decodeToken returns the n position parts of token, which must come from
// the same listing; an empty token returns nil.
func decodeToken(token, listing string, n int) ([]string, error) {
	pos, ok := paging.Decode(token, "v1", listing, n)
	if !ok {
		return nil, apiBadToken()
	}
	return pos, nil
}

func apiBadToken() error {
	return apierr.Invalid("page_token", "is not a token from a previous page of this listing")
}
