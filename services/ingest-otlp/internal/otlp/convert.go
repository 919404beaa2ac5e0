package otlp

import (
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// FromProto converts a generated export request, as the gRPC server and
// the JSON decoder produce, into t. Strings are shared with req.
func FromProto(req *collectortracepb.ExportTraceServiceRequest, t *Traces) {
	for _, rs := range req.GetResourceSpans() {
		r := t.nextResource()
		r.Attrs = appendAttrs(r.Attrs, rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s := r.nextSpan()
				s.TraceID = sp.GetTraceId()
				s.SpanID = sp.GetSpanId()
				s.ParentSpanID = sp.GetParentSpanId()
				s.Name = sp.GetName()
				s.StartNanos = sp.GetStartTimeUnixNano()
				s.EndNanos = sp.GetEndTimeUnixNano()
				s.StatusCode = int32(sp.GetStatus().GetCode())
				s.Attrs = appendAttrs(s.Attrs, sp.GetAttributes())
			}
		}
	}
}

func appendAttrs(dst []KeyValue, kvs []*commonpb.KeyValue) []KeyValue {
	for _, kv := range kvs {
		dst = append(dst, KeyValue{Key: kv.GetKey(), Value: valueFromProto(kv.GetValue())})
	}
	return dst
}

// nextResource appends an empty resource, reusing the memory of one that a
// previous Reset left behind.
func (t *Traces) nextResource() *Resource {
	n := len(t.Resources)
	if n < cap(t.Resources) {
		t.Resources = t.Resources[:n+1]
	} else {
		t.Resources = append(t.Resources, Resource{})
	}
	return &t.Resources[n]
}

// nextSpan appends an empty span to r, reusing memory like nextResource.
func (r *Resource) nextSpan() *Span {
	n := len(r.Spans)
	if n < cap(r.Spans) {
		r.Spans = r.Spans[:n+1]
	} else {
		r.Spans = append(r.Spans, Span{})
	}
	return &r.Spans[n]
}
