package ingest

import "github.com/costplane/costplane/services/attribution/internal/dims"

// agg is what a line, a step or a rollup row adds up: counters, money in
// nanos, and quantity and money per quantity kind. Kind 0 holds the money
// no cost line explains, so kind sums equal the totals.
type agg struct {
	events, requests, runs, sessions, unpriced int64
	list, eff                                  int64
	kindQty, kindList, kindEff                 [dims.NumKinds]int64
}

func (a *agg) add(b *agg) {
	a.events += b.events
	a.requests += b.requests
	a.runs += b.runs
	a.sessions += b.sessions
	a.unpriced += b.unpriced
	a.list += b.list
	a.eff += b.eff
	for k := range dims.NumKinds {
		a.kindQty[k] += b.kindQty[k]
		a.kindList[k] += b.kindList[k]
		a.kindEff[k] += b.kindEff[k]
	}
}

func (a *agg) negated() agg {
	var n agg
	n.add(a)
	n.events, n.requests, n.runs, n.sessions = -n.events, -n.requests, -n.runs, -n.sessions
	n.unpriced, n.list, n.eff = -n.unpriced, -n.list, -n.eff
	for k := range dims.NumKinds {
		n.kindQty[k], n.kindList[k], n.kindEff[k] = -n.kindQty[k], -n.kindList[k], -n.kindEff[k]
	}
	return n
}

// tokens is the sum of the token kinds' quantities.
func (a *agg) tokens() int64 {
	return sum(a.kindQty[1 : dims.NumTokenKinds+1])
}

func (a *agg) isZero() bool {
	return *a == agg{}
}
