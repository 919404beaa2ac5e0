package admin

import (
	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/paging"
)

const maxPageSize = 500

func pageSize(requested int32) (int, error) { return paging.Size(requested, maxPageSize) }

// A page token names its listing (scope) and the last item of the
// previous page.

func encodeToken(scope, last string) string { return paging.Encode("v1", scope, last) }

// decodeToken returns the last item named by token, which must come from
// the same listing scope. An empty token starts at the beginning.
func decodeToken(token, scope string) (string, error) {
	pos, ok := paging.Decode(token, "v1", scope, 1)
	if !ok || (pos != nil && pos[0] == "") {
		return "", apierr.Invalid("page_token",
			"is not a token from a previous page of this listing")
	}
	if pos == nil {
		return "", nil
	}
	return pos[0], nil
}

// page cuts items, fetched with one extra row, to size and returns the
// token of the next page, empty on the last one.
func page[T any](items []T, size int, scope string, id func(T) string) ([]T, string) {
	return paging.Cut(items, size, func(last T) string { return encodeToken(scope, id(last)) })
}
