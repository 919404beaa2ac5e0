// Package sqlparam numbers the parameters of SQL built from a query's
// parts, so that every value reaches PostgreSQL as a $n parameter and
// never as text spliced into the statement.
package sqlparam

import "strconv"

// List collects parameter values in order.
type List struct {
	args []any
}

// New returns a list whose first parameters are args.
func New(args ...any) *List {
	return &List{args: args}
}

// Add appends v and returns its placeholder, such as "$3".
func (l *List) Add(v any) string {
	l.args = append(l.args, v)
	return "$" + strconv.Itoa(len(l.args))
}

// Args returns the values in placeholder order.
func (l *List) Args() []any {
	return l.args
}
