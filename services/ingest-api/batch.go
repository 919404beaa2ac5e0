package ingestapi

import (
	"fmt"
	"strconv"
	"time"

	"github.com/costplane/costplane/libs/usage"
)

// Why an item was rejected: the reason label of the rejected metric, a
// small fixed set.
const (
	reasonInvalid        = "invalid"
	reasonTenantMismatch = "tenant_mismatch"
	reasonDuplicateID    = "duplicate_id"
	// reasonBatchRejected is a valid item of a batch that other items
	// made fail.
	reasonBatchRejected = "batch_rejected"
	reasonTooMany       = "too_many_items"
	reasonTooLarge      = "request_too_large"
	reasonUnavailable   = "kafka_unavailable"
	reasonPublishFailed = "publish_failed"
)

// rules are the checks that depend on the request rather than the item.
type rules struct {
	tenant    string
	now       time.Time
	maxFuture time.Duration
}

// rules returns the checks of a request by tenant, made now.
func (s *Service) rules(tenant string) rules {
	return rules{tenant: tenant, now: s.now(), maxFuture: s.cfg.MaxFuture}
}

// batch collects the problems of one request's items, so that one answer
// reports all of them.
type batch struct {
	// field is the request field holding the items: "events", "outcomes".
	field string
	size  int
	errs  usage.FieldErrors
	// bad counts the items with at least one problem, by reason.
	bad map[string]int
	// ids maps each id seen to the index of the first item that had it.
	ids map[string]int
}

func newBatch(field string, size int) *batch {
	return &batch{field: field, size: size, bad: map[string]int{}, ids: make(map[string]int, size)}
}

// index names item i: "events[3]".
func (b *batch) index(i int) string {
	return b.field + "[" + strconv.Itoa(i) + "]"
}

// item records the problems of item i under reason; no problems, no entry.
func (b *batch) item(i int, reason string, errs usage.FieldErrors) {
	if len(errs) == 0 {
		return
	}
	b.errs = append(b.errs, errs.Prefixed(b.index(i))...)
	b.bad[reason]++
}

// duplicate returns the problem of item i whose id, in idField, an earlier
// item already has. Empty ids are left to the item's own checks.
func (b *batch) duplicate(i int, idField, id, hint string) (usage.FieldError, bool) {
	if id == "" {
		return usage.FieldError{}, false
	}
	first, seen := b.ids[id]
	if !seen {
		b.ids[id] = i
		return usage.FieldError{}, false
	}
	reason := fmt.Sprintf("repeats %s.%s %q: each item of a batch needs its own id%s",
		b.index(first), idField, id, hint)
	return usage.FieldError{Field: idField, Reason: reason}, true
}

// worse returns the reason that says more about an item: a tenant
// mismatch, then a duplicate id, then any other problem.
func worse(a, b string) string {
	if rank(b) > rank(a) {
		return b
	}
	return a
}

func rank(reason string) int {
	switch reason {
	case reasonTenantMismatch:
		return 3
	case reasonDuplicateID:
		return 2
	default:
		return 1
	}
}

// failed reports whether any item had a problem.
func (b *batch) failed() bool {
	return len(b.errs) > 0
}

// badItems is the number of items with problems.
func (b *batch) badItems() int {
	n := 0
	for _, c := range b.bad {
		n += c
	}
	return n
}
