package attribution

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/paging"
)

const maxPageSize = 1000

func pageSize(requested int32) (int, error) { return paging.Size(requested, maxPageSize) }

// A page token carries the offset of the next page and the scope of the
// listing it belongs to: a hash of the request without its paging fields,
// so that a token is refused by any other request. It is opaque to
// clients.

// scopeOf hashes msg, whose paging fields the caller has cleared.
func scopeOf(msg proto.Message) string {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

func encodeToken(scope string, offset int) string {
	return paging.Encode("v1", scope, strconv.Itoa(offset))
}

// decodeToken returns the offset a token names; an empty token is 0.
func decodeToken(token, scope string) (int, error) {
	pos, ok := paging.Decode(token, "v1", scope, 1)
	if !ok {
		return 0, errBadToken
	}
	if pos == nil {
		return 0, nil
	}
	n, err := strconv.Atoi(pos[0])
	if err != nil || n < 0 {
		return 0, errBadToken
	}
	return n, nil
}

var errBadToken = apierr.Invalid("page_token",
	"is not a token from a previous page of this request")

// nextToken returns the token of the page after one of size items at
// offset, given that the listing has more when more is true.
func nextToken(scope string, offset, size int, more bool) string {
	if !more {
		return ""
	}
	return encodeToken(scope, offset+size)
}

// Keyset tokens carry the last id of the previous page instead.

func encodeKeyToken(scope, last string) string { return paging.Encode("k1", scope, last) }

// decodeKeyToken returns the last id a token names; empty starts over.
func decodeKeyToken(token, scope string) (string, error) {
	pos, ok := paging.Decode(token, "k1", scope, 1)
	if !ok || (pos != nil && pos[0] == "") {
		return "", errBadToken
	}
	if pos == nil {
		return "", nil
	}
	return pos[0], nil
}
