package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"strings"
)

// A token is "cp_" + key id + "_" + secret, both in lower-case base32, so it
// survives URLs, headers and shells unquoted and splits without ambiguity.
const (
	tokenPrefix = "cp_"
	keyIDBytes  = 10 // 16 characters
	secretBytes = 32 // 52 characters, 256 random bits
	prefixLen   = 4

	minKeyIDLen  = 4
	maxKeyIDLen  = 32
	minSecretLen = 32 // 160 bits, the least a plain SHA-256 is fit for
	maxSecretLen = 128
)

var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newToken draws a fresh key id and secret.
func newToken() (keyID, secret string, err error) {
	id := make([]byte, keyIDBytes)
	sec := make([]byte, secretBytes)
	if _, err := rand.Read(id); err != nil {
		return "", "", fmt.Errorf("drawing key id: %w", err)
	}
	if _, err := rand.Read(sec); err != nil {
		return "", "", fmt.Errorf("drawing secret: %w", err)
	}
	return encoding.EncodeToString(id), encoding.EncodeToString(sec), nil
}

func formatToken(keyID, secret string) string {
	return tokenPrefix + keyID + "_" + secret
}

// parseToken splits a presented token; any error is ErrInvalidKey.
func parseToken(token string) (keyID, secret string, err error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return "", "", ErrInvalidKey
	}
	keyID, secret, ok = strings.Cut(rest, "_")
	if !ok || !validPart(keyID, minKeyIDLen, maxKeyIDLen) ||
		!validPart(secret, minSecretLen, maxSecretLen) {
		return "", "", ErrInvalidKey
	}
	return keyID, secret, nil
}

func validPart(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// hashSecret is a plain SHA-256: secrets carry at least 160 random bits,
// so a slow password hash would add cost to every call and no safety.
func hashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

func secretMatches(secret string, hash []byte) bool {
	return subtle.ConstantTimeCompare(hashSecret(secret), hash) == 1
}
