package ingest

import (
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/dims"
)

type runKey struct{ tenant, run string }

type stepKey struct{ tenant, run, step string }

type sessionKey struct{ tenant, session string }

// rollupKey names an hourly rollup row; the hour is in Unix seconds so
// that equal instants from different sources are one key.
type rollupKey struct {
	tenant string
	hour   int64
	dims   dims.ID
}

// who is a resolved attribution: the agent and the session.
type who struct {
	agentID, agentName, agentVersion string
	session                          string
}

func whoOf(a *eventv1.Agent, session string) who {
	return who{
		agentID: a.GetId(), agentName: a.GetName(), agentVersion: a.GetVersion(),
		session: session,
	}
}

func (w who) agentKey() string { return dims.AgentKey(w.agentID, w.agentName) }

func (w who) sameAgent(o who) bool {
	return w.agentID == o.agentID && w.agentName == o.agentName &&
		w.agentVersion == o.agentVersion
}

// step is a step the batch writes: new, added to, or re-attributed.
type step struct {
	key    stepKey
	stored bool
	first  *line // first new line of the step, nil when only moved
	// own is the attribution the step's event carried; res the resolved
	// one, and storedRes what the store holds.
	own, res, storedRes who
	parent              string
	kind                eventv1.StepKind
	traceID, eventID    string
	start, end          time.Time
	// moved steps carry their stored totals and dimension set, loaded
	// once the join has found them.
	moved      bool
	movedTotal agg
	storedDims dims.ID
	// storedRuns is 1 on the step that counts its run in the rollups.
	storedRuns int64
	// touched marks a stored step the batch changes without a line or a
	// move: the one that hands over or takes its run's count.
	touched   bool
	movedBase dims.Set
	bucket    time.Time
	dims      dims.ID
	delta     agg
}

// run is a run the batch touches.
type run struct {
	key       runKey
	stored    bool
	storedRes who
	res       who
	traced    bool
	first     *line
	start     time.Time
	end       time.Time
	newSteps  int64
	errors    int64
	delta     agg
	dims      dims.ID
}

// session is a session the batch adds to or takes from.
type session struct {
	key    sessionKey
	stored bool
	first  *line
	agent  string
	// app, customer, environment and currency come from the first
	// contribution: a line, or a moved step's dimension set.
	app, customer, env, currency string
	dims                         dims.ID
	start                        time.Time
	end                          time.Time
	runs                         int64
	delta                        agg
	touched                      bool
}
