package pricing

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/apierr"
)

// timeOr returns ts as a time, or def when ts is unset.
func timeOr(ts *timestamppb.Timestamp, def time.Time) time.Time {
	if ts == nil {
		return def.UTC()
	}
	return ts.AsTime()
}

// validTime returns an optional timestamp field as a time, zero when
// unset, and records a violation when it is out of range.
func validTime(v *apierr.Violations, field string, ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	if err := ts.CheckValid(); err != nil {
		v.Add(field, "is not a valid timestamp")
		return time.Time{}
	}
	return ts.AsTime()
}

// requiredTime is validTime for a field that must be set.
func requiredTime(v *apierr.Violations, field string, ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		v.Add(field, "is required")
		return time.Time{}
	}
	return validTime(v, field, ts)
}

// timestampOrNil returns nil for the zero time, which stands for unset.
func timestampOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
