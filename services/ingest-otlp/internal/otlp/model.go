// Package otlp decodes OTLP trace export requests, in protobuf or in the
// OTLP/JSON encoding, into the small model the GenAI mapping reads: spans
// with their ids, times, status and attributes, grouped by resource.
//
// The protobuf decoder walks the wire format directly rather than building
// the generated message tree, because that tree costs several allocations
// per attribute and the receiver's hot path decodes hundreds of thousands
// of spans a second.
package otlp

import (
	"math"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// Traces is one export request.
type Traces struct {
	Resources []Resource
}

// Resource is the resource of a ResourceSpans and every span under it,
// whatever its instrumentation scope.
type Resource struct {
	Attrs []KeyValue
	Spans []Span
}

// Span is the part of an OTLP span that the mapping reads. Ids are kept as
// received, so that the mapping can reject spans whose ids are malformed.
type Span struct {
	TraceID      []byte
	SpanID       []byte
	ParentSpanID []byte
	Name         string
	StartNanos   uint64
	EndNanos     uint64
	// StatusCode is the OTLP status code: 0 unset, 1 ok, 2 error.
	StatusCode int32
	Attrs      []KeyValue
}

// KeyValue is one attribute.
type KeyValue struct {
	Key   string
	Value Value
}

// Kind is the type of an attribute value.
type Kind uint8

// The kinds of attribute values. Arrays and key-value lists carry no
// contents here: no attribute the mapping reads has them.
const (
	KindEmpty Kind = iota
	KindString
	KindBool
	KindInt
	KindDouble
	KindBytes
	KindArray
	KindKVList
)

// Value is an attribute value.
type Value struct {
	Kind   Kind
	Str    string
	Int    int64
	Double float64
	Bool   bool
}

// SpanCount returns the number of spans in t.
func (t *Traces) SpanCount() int {
	n := 0
	for i := range t.Resources {
		n += len(t.Resources[i].Spans)
	}
	return n
}

// Reset empties t and keeps its memory for reuse.
func (t *Traces) Reset() {
	for i := range t.Resources {
		r := &t.Resources[i]
		for j := range r.Spans {
			r.Spans[j] = Span{Attrs: r.Spans[j].Attrs[:0]}
		}
		*r = Resource{Attrs: r.Attrs[:0], Spans: r.Spans[:0]}
	}
	t.Resources = t.Resources[:0]
}

// valueFromProto converts a generated AnyValue.
func valueFromProto(v *commonpb.AnyValue) Value {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return Value{Kind: KindString, Str: x.StringValue}
	case *commonpb.AnyValue_BoolValue:
		return Value{Kind: KindBool, Bool: x.BoolValue}
	case *commonpb.AnyValue_IntValue:
		return Value{Kind: KindInt, Int: x.IntValue}
	case *commonpb.AnyValue_DoubleValue:
		return Value{Kind: KindDouble, Double: x.DoubleValue}
	case *commonpb.AnyValue_BytesValue:
		return Value{Kind: KindBytes, Str: string(x.BytesValue)}
	case *commonpb.AnyValue_ArrayValue:
		return Value{Kind: KindArray}
	case *commonpb.AnyValue_KvlistValue:
		return Value{Kind: KindKVList}
	default:
		return Value{}
	}
}

// AsInt64 returns v as an integer when it is one: an int, a double with no
// fraction, or a string of decimal digits, since SDKs of typeless
// languages send counts in all three forms.
func (v Value) AsInt64() (int64, bool) {
	switch v.Kind {
	case KindInt:
		return v.Int, true
	case KindDouble:
		f := v.Double
		if f != math.Trunc(f) || math.IsInf(f, 0) || math.Abs(f) >= 1<<63 {
			return 0, false
		}
		return int64(f), true
	case KindString:
		return parseDecimal(v.Str)
	default:
		return 0, false
	}
}

func parseDecimal(s string) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
