package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// idFields maps the JSON names of the id fields of spans and links, in
// either spelling protojson accepts, to their length in bytes.
var idFields = map[string]int{
	"traceId": 16, "trace_id": 16,
	"spanId": 8, "span_id": 8,
	"parentSpanId": 8, "parent_span_id": 8,
}

// DecodeJSON decodes an ExportTraceServiceRequest in the OTLP/JSON
// encoding into t. OTLP/JSON is protobuf's JSON mapping except that trace
// and span ids are hex strings, not base64; ids that are not hex of the
// right length are passed on as base64, which some exporters send.
func DecodeJSON(b []byte, t *Traces) error {
	var root any
	dec := json.NewDecoder(bytes.NewReader(b))
	// Numbers stay as written, so that 64-bit integers keep every digit.
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return fmt.Errorf("decoding json export request: %w: %w", ErrMalformed, err)
	}
	if dec.More() {
		return fmt.Errorf("decoding json export request: %w: data after the object", ErrMalformed)
	}

	hexToBase64(root, "")
	norm, err := json.Marshal(root)
	if err != nil {
		return fmt.Errorf("re-encoding json export request: %w", err)
	}
	req := &collectortracepb.ExportTraceServiceRequest{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(norm, req); err != nil {
		return fmt.Errorf("decoding json export request: %w: %w", ErrMalformed, err)
	}

	FromProto(req, t)
	return nil
}

// hexToBase64 rewrites, anywhere in v, the hex id fields of spans and
// links into the base64 that protojson reads. parent is the key v was
// found under; ids are only looked for inside "spans" and "links" lists.
func hexToBase64(v any, parent string) {
	switch x := v.(type) {
	case map[string]any:
		inIDScope := parent == "spans" || parent == "links"
		for k, child := range x {
			if size, ok := idFields[k]; ok && inIDScope {
				x[k] = hexID(child, size)
				continue
			}
			hexToBase64(child, k)
		}
	case []any:
		for _, child := range x {
			hexToBase64(child, parent)
		}
	}
}

func hexID(v any, size int) any {
	s, ok := v.(string)
	if !ok || len(s) != 2*size {
		return v
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return v
	}
	return base64.StdEncoding.EncodeToString(raw)
}
