package collect

import (
	"log/slog"
	"sync"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/trace"
)

// Classifier names the environment of an Application.
type Classifier interface {
	Env(app *v1alpha1.Application) string
}

// Tracker keeps per-app state across successive snapshots of each
// Application and turns it into the Store's series. It is the one place
// that decides when an operation has finished (and so is counted) and when
// drift began.
type Tracker struct {
	store  *Store
	syncs  *SyncMetrics
	logger *slog.Logger

	mu         sync.Mutex
	classifier Classifier
	since      time.Time // time of the first event: operations that finished before it are not counted
	apps       map[string]*appState
}

// appState is what the Tracker remembers about one Application.
type appState struct {
	uid        types.UID
	app        *v1alpha1.Application
	driftSince time.Time
	syncs      [numResults]uint64
	// seen holds the start times (Unix seconds; Argo CD stores seconds) of
	// operations already counted, or finished before crowsnest started. It
	// keeps only what the app's history or operation state can still show.
	seen map[int64]struct{}
	// running is the start time of an operation seen still running; it is
	// counted when it finishes whatever its finish time says.
	running int64
	health  string // last health status, to log its changes
	// waves times the current operation's waves; lastWaves are those of
	// the last operation timed to its end.
	waves     *operationWaves
	lastWaves []waveTiming
}

// NewTracker returns a tracker that renders into store and records finished
// operations in syncs.
func NewTracker(store *Store, syncs *SyncMetrics, classifier Classifier, logger *slog.Logger) *Tracker {
	return &Tracker{store: store, syncs: syncs, classifier: classifier, logger: logger, apps: map[string]*appState{}}
}

// Handle applies one event. It implements Sink.
func (t *Tracker) Handle(e Event) {
	if e.App == nil {
		return
	}
	key := e.App.Namespace + "/" + e.App.Name
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.since.IsZero() {
		t.since = e.Time
	}
	if e.Type == Deleted {
		delete(t.apps, key)
		t.store.delete(key)
		t.syncs.forget(e.App)
		return
	}
	st := t.apps[key]
	if st == nil || st.uid != e.App.UID {
		// New, or deleted and re-created while we were not watching: the
		// old state belongs to another object.
		st = &appState{uid: e.App.UID, seen: map[int64]struct{}{}}
		t.apps[key] = st
	}
	st.app = e.App
	env := t.classifier.Env(e.App)
	facts := factLog{logger: t.logger, app: key, project: e.App.Spec.Project, env: env}
	t.observeDrift(st, e, facts)
	t.observeHealth(st, e, facts)
	t.countOperations(st, env, facts)
	if waves := st.observeWaves(e.Time); waves != nil {
		st.lastWaves = waves
		t.syncs.observeWaves(st.app, env, waves)
	}
	t.render(key, st, env)
}

// factLog writes one structured line per fact the tracker establishes
// (sync started and finished, drift began and ended, health changed), with
// the app's identity and, for syncs, the trace id: Loki-style events from
// the logs alone.
type factLog struct {
	logger            *slog.Logger
	app, project, env string
}

func (f factLog) info(msg, event string, args ...any) {
	f.logger.Info(msg, append([]any{"event", event, "app", f.app, "project", f.project, "env", f.env}, args...)...)
}

// SetClassifier replaces the environment rules (on config reload) and
// re-renders every app with them.
func (t *Tracker) SetClassifier(c Classifier) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.classifier = c
	for key, st := range t.apps {
		t.render(key, st, c.Env(st.app))
	}
}

func (t *Tracker) render(key string, st *appState, env string) {
	v := appView{app: st.app, env: env, driftSince: st.driftSince, syncs: st.syncs, lastWaves: st.lastWaves}
	t.store.set(key, t.store.render(&v))
}

// observeDrift starts the drift clock when the app turns OutOfSync and stops
// it when it is Synced again. Unknown (a failed comparison) keeps the clock:
// it says nothing about whether the drift ended.
func (t *Tracker) observeDrift(st *appState, e Event, facts factLog) {
	switch e.App.Status.Sync.Status {
	case v1alpha1.SyncStatusCodeOutOfSync:
		if st.driftSince.IsZero() {
			st.driftSince = e.Time
			facts.info("drift began", "drift_began", "at", e.Time, "revision", e.App.Status.Sync.Revision)
		}
	case v1alpha1.SyncStatusCodeSynced:
		if !st.driftSince.IsZero() {
			facts.info("drift ended", "drift_ended", "at", e.Time, "drift_seconds", e.Time.Sub(st.driftSince).Seconds())
		}
		st.driftSince = time.Time{}
	}
}

// observeHealth logs changes of the app's health.
func (t *Tracker) observeHealth(st *appState, e Event, facts factLog) {
	h := string(e.App.Status.Health.Status)
	if st.health != "" && h != st.health {
		facts.info("health changed", "health_changed", "at", e.Time, "from", st.health, "to", h, "message", e.App.Status.Health.Message)
	}
	st.health = h
}

// countOperations counts every operation visible in the snapshot that has
// finished and was not counted before: the current operation state, and the
// successful syncs in the history (which catch a sync that started and
// finished while the watch was down). Operations are told apart by their
// start time, which Argo CD copies from the operation state into history.
func (t *Tracker) countOperations(st *appState, env string, facts factLog) {
	status := &st.app.Status
	oldest := int64(-1)
	visible := func(start int64) {
		if oldest < 0 || start < oldest {
			oldest = start
		}
	}
	for i := range status.History {
		h := &status.History[i]
		if h.DeployStartedAt == nil {
			continue
		}
		visible(h.DeployStartedAt.Unix())
		t.count(st, env, facts, h.DeployStartedAt.Time, h.DeployedAt.Time, synccommon.OperationSucceeded)
	}
	if op := status.OperationState; op != nil {
		start := op.StartedAt.Unix()
		visible(start)
		switch {
		case op.Phase.Completed():
			finished := op.StartedAt.Time
			if op.FinishedAt != nil {
				finished = op.FinishedAt.Time
			}
			t.count(st, env, facts, op.StartedAt.Time, finished, op.Phase)
		default:
			if _, counted := st.seen[start]; !counted && st.running != start {
				facts.info("sync started", "sync_started", "at", op.StartedAt.Time,
					"trace_id", trace.OperationID(string(st.app.UID), op.StartedAt.Time),
					"revision", syncRevision(op), "initiator", initiator(op))
			}
			st.running = start
		}
	}
	for start := range st.seen {
		if start < oldest {
			delete(st.seen, start)
		}
	}
}

// count counts the operation that started at started, once, and records
// its duration.
func (t *Tracker) count(st *appState, env string, facts factLog, started, finished time.Time, phase synccommon.OperationPhase) {
	start := started.Unix()
	if _, ok := st.seen[start]; ok {
		return
	}
	st.seen[start] = struct{}{}
	// Argo CD keeps whole seconds: compare in seconds so an operation that
	// finished in the second crowsnest started still counts.
	if start != st.running && finished.Unix() < t.since.Unix() {
		return // finished before crowsnest was watching: a baseline, not an event
	}
	if start == st.running {
		st.running = 0
	}
	i := resultIndex(phase)
	if i < 0 {
		t.logger.Warn("operation finished in an unknown phase", "app", facts.app, "phase", phase)
		return
	}
	st.syncs[i]++
	t.syncs.observe(st.app, env, string(phase), started, finished.Sub(started))
	facts.info("sync finished", "sync_finished", "at", finished, "result", string(phase),
		"duration_seconds", finished.Sub(started).Seconds(),
		"trace_id", trace.OperationID(string(st.app.UID), started))
}

// syncRevision is the revision an operation syncs to, as far as it says.
func syncRevision(op *v1alpha1.OperationState) string {
	if op.SyncResult != nil && op.SyncResult.Revision != "" {
		return op.SyncResult.Revision
	}
	if op.Operation.Sync != nil {
		return op.Operation.Sync.Revision
	}
	return ""
}

// initiator names who started an operation: a user, or "automated".
func initiator(op *v1alpha1.OperationState) string {
	if op.Operation.InitiatedBy.Automated {
		return "automated"
	}
	return op.Operation.InitiatedBy.Username
}
