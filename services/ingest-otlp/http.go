package ingestotlp

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/services/ingest-otlp/internal/otlp"
)

// encoding is the body format of an OTLP/HTTP request, and of its answer.
type encoding int

const (
	encProto encoding = iota
	encJSON
)

const (
	contentTypeProto = "application/x-protobuf"
	contentTypeJSON  = "application/json"
)

var (
	errTooLarge            = errors.New("request body too large")
	errUnsupportedEncoding = errors.New("unsupported content-encoding")
)

var gzipReaders sync.Pool

// serveTraces handles POST /v1/traces once the key was verified.
func (s *Service) serveTraces(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	enc, ok := encodingOf(r.Header.Get("Content-Type"))
	if !ok {
		s.fail(w, enc, http.StatusUnsupportedMediaType, outcomeUnsupported, codes.InvalidArgument,
			"content-type must be application/x-protobuf or application/json")
		return
	}

	wk := s.getWork()
	defer s.putWork(wk)
	if !s.decode(w, r, enc, wk) {
		return
	}

	p, _ := auth.FromContext(r.Context())
	resp, err := s.export(r.Context(), p.TenantID, wk)
	s.metrics.duration.WithLabelValues(transportHTTP).Observe(time.Since(start).Seconds())
	if err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter.Seconds())))
		s.fail(w, enc, http.StatusServiceUnavailable, outcomeUnavailable, codes.Unavailable,
			"cannot store spans right now; retry later")
		return
	}

	s.metrics.requests.WithLabelValues(transportHTTP, outcomeOf(resp)).Inc()
	s.write(w, enc, http.StatusOK, resp)
}

// decode reads and decodes the body into wk, answering the request itself
// when it cannot.
func (s *Service) decode(w http.ResponseWriter, r *http.Request, enc encoding, wk *work) bool {
	var err error
	wk.body, err = readBody(r, s.cfg.MaxBodyBytes, wk.body)
	switch {
	case errors.Is(err, errTooLarge):
		s.fail(w, enc, http.StatusRequestEntityTooLarge, outcomeTooLarge, codes.InvalidArgument,
			fmt.Sprintf("request body exceeds %d bytes (after decompression); "+
				"send smaller batches", s.cfg.MaxBodyBytes))
		return false
	case errors.Is(err, errUnsupportedEncoding):
		s.fail(w, enc, http.StatusUnsupportedMediaType, outcomeUnsupported, codes.InvalidArgument,
			"content-encoding must be gzip or identity")
		return false
	case err != nil:
		s.fail(w, enc, http.StatusBadRequest, outcomeBadRequest, codes.InvalidArgument,
			"cannot read request body: "+err.Error())
		return false
	}

	if enc == encJSON {
		err = otlp.DecodeJSON(wk.body, &wk.traces)
	} else {
		err = otlp.DecodeProto(wk.body, &wk.traces)
	}
	if err != nil {
		s.fail(w, enc, http.StatusBadRequest, outcomeBadRequest, codes.InvalidArgument,
			"malformed export request: "+err.Error())
		return false
	}
	return true
}

// encodingOf returns the encoding a content type names. Unknown types are
// answered in protobuf, the OTLP default.
func encodingOf(contentType string) (encoding, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return encProto, false
	}
	switch mt {
	case contentTypeProto, "application/protobuf":
		return encProto, true
	case contentTypeJSON:
		return encJSON, true
	}
	return encProto, false
}

// readBody reads the request body, gunzipping it when it says so, into
// buf. Both the body as sent and as decompressed are bounded by limit.
func readBody(r *http.Request, limit int, buf []byte) ([]byte, error) {
	hint := r.ContentLength
	if hint > int64(limit) {
		return buf, errTooLarge
	}
	in := io.Reader(r.Body)
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		zr, err := gunzip(io.LimitReader(r.Body, int64(limit)+1))
		if err != nil {
			return buf, fmt.Errorf("reading gzip header: %w", err)
		}
		defer gzipReaders.Put(zr)
		in = zr
		// Compressed OTLP shrinks about fourfold.
		hint *= 4
	default:
		return buf, errUnsupportedEncoding
	}
	return readLimited(in, limit, buf, hint)
}

func gunzip(r io.Reader) (*gzip.Reader, error) {
	if zr, ok := gzipReaders.Get().(*gzip.Reader); ok {
		if err := zr.Reset(r); err != nil {
			gzipReaders.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(r)
}

// readLimited reads all of r into buf, failing with errTooLarge past
// limit bytes.
func readLimited(r io.Reader, limit int, buf []byte, sizeHint int64) ([]byte, error) {
	b := bytes.NewBuffer(buf[:0])
	if sizeHint > 0 && sizeHint <= int64(limit) {
		// One allocation, when the buffer kept from earlier requests is
		// too small, instead of doubling up to the size.
		b.Grow(int(sizeHint) + bytes.MinRead)
	}
	n, err := b.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return b.Bytes(), err
	}
	if n > int64(limit) {
		return b.Bytes(), errTooLarge
	}
	return b.Bytes(), nil
}

// fail answers with a google.rpc.Status in the request's encoding, as
// OTLP/HTTP asks.
func (s *Service) fail(w http.ResponseWriter, enc encoding, httpCode int, outcome string,
	code codes.Code, msg string,
) {
	s.metrics.requests.WithLabelValues(transportHTTP, outcome).Inc()
	s.write(w, enc, httpCode, &spb.Status{Code: int32(code), Message: msg})
}

func (s *Service) write(w http.ResponseWriter, enc encoding, code int, m proto.Message) {
	var (
		body []byte
		err  error
	)
	if enc == encJSON {
		w.Header().Set("Content-Type", contentTypeJSON)
		body, err = protojson.Marshal(m)
	} else {
		w.Header().Set("Content-Type", contentTypeProto)
		body, err = proto.Marshal(m)
	}
	if err != nil {
		// Only a bug makes these messages unencodable.
		s.log.Error("cannot encode otlp response", slog.Any("error", err))
		code, body = http.StatusInternalServerError, nil
	}
	w.WriteHeader(code)
	_, _ = w.Write(body) // A client that hung up needs no answer.
}
