package usage

import (
	"crypto/sha256"
	"encoding/hex"
)

// Event ids are prefixed by how they were derived, so that ids from two
// derivations can never collide, while the same source fact seen by two
// ingestion paths derives the same id.
const (
	spanIDPrefix     = "span:"
	responseIDPrefix = "resp:"
	hashIDPrefix     = "hash:"
)

// SpanEventID returns the event id of the step a trace span describes, from
// the hex trace and span ids. A span replayed or sent twice keeps its id.
func SpanEventID(traceIDHex, spanIDHex string) string {
	return spanIDPrefix + traceIDHex + ":" + spanIDHex
}

// AppendSpanEventID appends SpanEventID of the binary trace and span ids to
// dst, hex-encoding them on the way, for callers that avoid allocations.
func AppendSpanEventID(dst []byte, traceID, spanID []byte) []byte {
	dst = append(dst, spanIDPrefix...)
	dst = hex.AppendEncode(dst, traceID)
	dst = append(dst, ':')
	return hex.AppendEncode(dst, spanID)
}

// ResponseEventID returns the event id of a provider response, from the
// canonical provider name and the provider's response id.
func ResponseEventID(provider, responseID string) string {
	return responseIDPrefix + provider + ":" + responseID
}

// HashEventID returns an event id derived from parts, for sources that have
// no natural id, such as a connector's usage bucket (account, model, hour).
// Parts are separated unambiguously, so ("a", "bc") and ("ab", "c") differ.
func HashEventID(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		l := uint64(len(p))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hashIDPrefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// DedupKey returns the key under which the same provider request is
// recognised when it arrives by two paths (a trace and a gateway log, say):
// the canonical provider and the provider's response or request id. It is
// empty when the id is unknown.
func DedupKey(provider, responseID string) string {
	if responseID == "" {
		return ""
	}
	return provider + "/" + responseID
}
