package attribution

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/costplane/costplane/libs/apierr"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// pageSize applies the default to 0 and caps large sizes (AIP-158).
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
	raw := "v1\x00" + scope + "\x00" + strconv.Itoa(offset)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeToken returns the offset a token names; an empty token is 0.
func decodeToken(token, scope string) (int, error) {
	if token == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != 3 || parts[0] != "v1" || parts[1] != scope {
		return 0, errBadToken
	}
	n, err := strconv.Atoi(parts[2])
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

func encodeKeyToken(scope, last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("k1\x00" + scope + "\x00" + last))
}

// decodeKeyToken returns the last id a token names; empty starts over.
func decodeKeyToken(token, scope string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != 3 || parts[0] != "k1" || parts[1] != scope || parts[2] == "" {
		return "", errBadToken
	}
	return parts[2], nil
}
