package otlp

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed means a request body is not a well-formed protobuf message.
var ErrMalformed = errors.New("malformed protobuf")

// Field numbers of the OTLP trace messages that the decoder reads.
const (
	fieldRequestResourceSpans = 1

	fieldResourceSpansResource   = 1
	fieldResourceSpansScopeSpans = 2
	fieldResourceAttributes      = 1
	fieldScopeSpansSpans         = 2

	fieldSpanTraceID      = 1
	fieldSpanSpanID       = 2
	fieldSpanParentSpanID = 4
	fieldSpanName         = 5
	fieldSpanStart        = 7
	fieldSpanEnd          = 8
	fieldSpanAttributes   = 9
	fieldSpanStatus       = 15
	fieldStatusCode       = 3

	fieldKeyValueKey   = 1
	fieldKeyValueValue = 2

	fieldAnyString = 1
	fieldAnyBool   = 2
	fieldAnyInt    = 3
	fieldAnyDouble = 4
	fieldAnyArray  = 5
	fieldAnyKVList = 6
	fieldAnyBytes  = 7
)

// field is one decoded field: its number, wire type and value.
type field struct {
	num   protowire.Number
	typ   protowire.Type
	bytes []byte
	u64   uint64
}

// DecodeProto decodes a binary ExportTraceServiceRequest into t, which
// should be empty. It reads the same fields as the generated code and, like
// it, skips unknown fields and fields of an unexpected wire type; it does
// not check fields it does not read, nor UTF-8 (the mapping validates the
// strings it keeps). Strings and ids in t alias b, so b must not change
// while t is in use.
func DecodeProto(b []byte, t *Traces) error {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return fmt.Errorf("decoding export request: %w", ErrMalformed)
		}
		b = b[n:]
		if f.num == fieldRequestResourceSpans && f.typ == protowire.BytesType {
			if err := decodeResourceSpans(f.bytes, t.nextResource()); err != nil {
				return fmt.Errorf("decoding export request: %w", err)
			}
		}
	}
	return nil
}

// nextField consumes one field of b. It returns a negative length when b
// is malformed. Tags and lengths under 128, nearly all of them in OTLP,
// take a fast path.
func nextField(b []byte) (field, int) {
	if len(b) >= 2 && b[0] < 0x80 && b[0]&7 == byte(protowire.BytesType) && b[1] < 0x80 {
		end := 2 + int(b[1])
		if end > len(b) || b[0]>>3 == 0 {
			return field{}, -1
		}
		return field{num: protowire.Number(b[0] >> 3), typ: protowire.BytesType,
			bytes: b[2:end:end]}, end
	}
	return nextFieldSlow(b)
}

func nextFieldSlow(b []byte) (field, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return field{}, -1
	}
	f := field{num: num, typ: typ}
	var m int
	switch typ {
	case protowire.BytesType:
		f.bytes, m = protowire.ConsumeBytes(b[n:])
	case protowire.VarintType:
		f.u64, m = protowire.ConsumeVarint(b[n:])
	case protowire.Fixed64Type:
		f.u64, m = protowire.ConsumeFixed64(b[n:])
	case protowire.Fixed32Type:
		var v uint32
		v, m = protowire.ConsumeFixed32(b[n:])
		f.u64 = uint64(v)
	default:
		// Groups (deprecated, never used by OTLP) are skipped whole; a
		// stray end-group tag is an error, as in the generated code.
		m = protowire.ConsumeFieldValue(num, typ, b[n:])
	}
	if m < 0 {
		return field{}, -1
	}
	return f, n + m
}

func decodeResourceSpans(b []byte, r *Resource) error {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return ErrMalformed
		}
		b = b[n:]
		if f.typ != protowire.BytesType {
			continue
		}
		var err error
		switch f.num {
		case fieldResourceSpansResource:
			r.Attrs, err = decodeAttrList(f.bytes, fieldResourceAttributes, r.Attrs)
		case fieldResourceSpansScopeSpans:
			err = decodeScopeSpans(f.bytes, r)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeAttrList appends the KeyValue fields numbered num of message b.
func decodeAttrList(b []byte, num protowire.Number, dst []KeyValue) ([]KeyValue, error) {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return dst, ErrMalformed
		}
		b = b[n:]
		if f.num != num || f.typ != protowire.BytesType {
			continue
		}
		kv, err := decodeKeyValue(f.bytes)
		if err != nil {
			return dst, err
		}
		dst = append(dst, kv)
	}
	return dst, nil
}

func decodeScopeSpans(b []byte, r *Resource) error {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return ErrMalformed
		}
		b = b[n:]
		if f.num != fieldScopeSpansSpans || f.typ != protowire.BytesType {
			continue
		}
		if err := decodeSpan(f.bytes, r.nextSpan()); err != nil {
			return err
		}
	}
	return nil
}

func decodeSpan(b []byte, s *Span) error {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return ErrMalformed
		}
		b = b[n:]
		if err := s.set(f); err != nil {
			return err
		}
	}
	return nil
}

// set stores one field of a span. Fields of an unexpected wire type are
// unknown fields, as the generated code treats them.
func (s *Span) set(f field) error {
	var err error
	switch {
	case f.typ == protowire.BytesType:
		err = s.setBytes(f)
	case f.num == fieldSpanStart && f.typ == protowire.Fixed64Type:
		s.StartNanos = f.u64
	case f.num == fieldSpanEnd && f.typ == protowire.Fixed64Type:
		s.EndNanos = f.u64
	}
	return err
}

func (s *Span) setBytes(f field) error {
	var err error
	switch f.num {
	case fieldSpanTraceID:
		s.TraceID = f.bytes
	case fieldSpanSpanID:
		s.SpanID = f.bytes
	case fieldSpanParentSpanID:
		s.ParentSpanID = f.bytes
	case fieldSpanName:
		s.Name = aliasString(f.bytes)
	case fieldSpanAttributes:
		var kv KeyValue
		kv, err = decodeKeyValue(f.bytes)
		s.Attrs = append(s.Attrs, kv)
	case fieldSpanStatus:
		err = decodeStatus(f.bytes, s)
	}
	return err
}

func decodeStatus(b []byte, s *Span) error {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return ErrMalformed
		}
		b = b[n:]
		if f.num == fieldStatusCode && f.typ == protowire.VarintType {
			s.StatusCode = int32(f.u64)
		}
	}
	return nil
}

func decodeKeyValue(b []byte) (KeyValue, error) {
	var kv KeyValue
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return kv, ErrMalformed
		}
		b = b[n:]
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case fieldKeyValueKey:
			kv.Key = aliasString(f.bytes)
		case fieldKeyValueValue:
			// A repeated value field merges into the first, as in the
			// generated code: the last oneof member seen wins.
			if err := decodeAnyValue(f.bytes, &kv.Value); err != nil {
				return kv, err
			}
		}
	}
	return kv, nil
}

func decodeAnyValue(b []byte, v *Value) error {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return ErrMalformed
		}
		b = b[n:]
		v.set(f)
	}
	return nil
}

func (v *Value) set(f field) {
	switch {
	case f.num == fieldAnyString && f.typ == protowire.BytesType:
		*v = Value{Kind: KindString, Str: aliasString(f.bytes)}
	case f.num == fieldAnyBool && f.typ == protowire.VarintType:
		*v = Value{Kind: KindBool, Bool: f.u64 != 0}
	case f.num == fieldAnyInt && f.typ == protowire.VarintType:
		*v = Value{Kind: KindInt, Int: int64(f.u64)}
	case f.num == fieldAnyDouble && f.typ == protowire.Fixed64Type:
		*v = Value{Kind: KindDouble, Double: math.Float64frombits(f.u64)}
	case f.num == fieldAnyArray && f.typ == protowire.BytesType:
		*v = Value{Kind: KindArray}
	case f.num == fieldAnyKVList && f.typ == protowire.BytesType:
		*v = Value{Kind: KindKVList}
	case f.num == fieldAnyBytes && f.typ == protowire.BytesType:
		*v = Value{Kind: KindBytes, Str: aliasString(f.bytes)}
	}
}

// aliasString returns b as a string without copying it. The caller owns b
// and promises not to change it while the string is in use.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
