package ingestapi

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/usage"
)

// minTime is the earliest time an event or outcome may carry. Earlier
// times are unset clocks or seconds read as milliseconds, not history.
var minTime = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// checker collects the problems of one item.
type checker struct {
	errs usage.FieldErrors
}

func (c *checker) add(field, reason string) {
	c.errs = append(c.errs, usage.FieldError{Field: field, Reason: reason})
}

// tenant checks that an item's tenant_id is empty or the caller's.
func (c *checker) tenant(got string, r rules) bool {
	if got == "" || got == r.tenant {
		return true
	}
	c.add("tenant_id", fmt.Sprintf("must be empty or %q, the tenant of the API key", r.tenant))
	return false
}

// text checks an identifier or name: bounded, UTF-8, no control characters.
func (c *checker) text(field, s string, maxLen int, required bool) {
	switch {
	case s == "" && required:
		c.add(field, "is required")
	case len(s) > maxLen:
		c.add(field, fmt.Sprintf("must be at most %d bytes", maxLen))
	case !utf8.ValidString(s):
		c.add(field, "must be valid UTF-8")
	case hasControl(s):
		c.add(field, "must not contain control characters")
	}
}

func hasControl(s string) bool {
	for i := range len(s) {
		if b := s[i]; b < 0x20 || b == 0x7f {
			return true
		}
	}
	return false
}

// requiredTime checks that ts is set, then bounds it as within does.
func (c *checker) requiredTime(field string, ts *timestamppb.Timestamp, r rules) {
	if ts == nil {
		c.add(field, "is required")
		return
	}
	if ts.CheckValid() != nil {
		c.add(field, "is not a valid timestamp")
		return
	}
	c.within(field, ts, r)
}

// within checks that a valid ts is neither before minTime nor further
// ahead of the server's clock than the configured skew.
func (c *checker) within(field string, ts *timestamppb.Timestamp, r rules) {
	t := ts.AsTime()
	switch {
	case t.Before(minTime):
		c.add(field, "must not be before 2000-01-01T00:00:00Z")
	case t.After(r.now.Add(r.maxFuture)):
		c.add(field, fmt.Sprintf("must not be more than %s ahead of the server's clock (%s)",
			r.maxFuture, r.now.UTC().Format(time.RFC3339)))
	}
}

// money checks an optional amount that cannot be negative.
func (c *checker) money(field string, m *eventv1.Money) {
	if m == nil {
		return
	}
	if !isCurrencyCode(m.GetCurrencyCode()) {
		c.add(field+".currency_code", "must be three upper-case letters (ISO 4217)")
	}
	if m.GetNanos() < 0 {
		c.add(field+".nanos", "must not be negative")
	}
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// labels applies the bounds usage events have to an outcome's labels.
func (c *checker) labels(labels map[string]string) {
	if len(labels) > usage.MaxLabels {
		c.add("labels", fmt.Sprintf("must have at most %d entries", usage.MaxLabels))
		return
	}
	for k, v := range labels {
		field := "labels[" + strconv.Quote(k) + "]"
		if k == "" {
			c.add(field, "key must not be empty")
		}
		c.text(field+".key", k, usage.MaxLabelKeyLen, false)
		c.text(field, v, usage.MaxLabelValueLen, false)
	}
}
