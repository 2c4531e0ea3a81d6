package collect

import (
	"log/slog"
	"sync"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/events"
	"github.com/crowsnest/crowsnest/internal/trace"
)

// Classifier names the environment of an Application.
type Classifier interface {
	Env(app *v1alpha1.Application) string
}

// FactSink receives every fact the tracker establishes, as an event (for
// Loki). Send must not block.
type FactSink interface {
	Send(e events.Event)
}

// OperationSink receives every finished operation the tracker counts, to
// turn into a trace. Finished must not block.
type OperationSink interface {
	Finished(op trace.Operation)
}

// Tracker keeps per-app state across successive snapshots of each
// Application and turns it into the Store's series. It is the one place
// that decides when an operation has finished (and so is counted) and when
// drift began.
type Tracker struct {
	store *Store
	syncs *SyncMetrics
	ops   OperationSink // nil: no traces
	facts FactSink      // nil: facts are only logged
	// waveDelay is Argo CD's delay after each wave
	// (ARGOCD_SYNC_WAVE_DELAY), to tell when a wave began.
	waveDelay time.Duration
	logger    *slog.Logger

	mu         sync.Mutex
	classifier Classifier
	since      time.Time // time of the first event: operations that finished before it are not counted
	apps       map[string]*appState
	byName     map[string]*appState // an app of each name, for Lookup
	// children maps an Application (namespace/name) to the wave span of
	// the app-of-apps operation that last created or changed it, until
	// an operation of the child links to it.
	children map[string]childLink
}

// childLink is the parent wave span that touched a child Application.
type childLink struct {
	link trace.Link
	at   time.Time
}

// appState is what the Tracker remembers about one Application.
type appState struct {
	uid        types.UID
	app        *v1alpha1.Application
	env        string // the app's env, as of the last event or reload
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
	return &Tracker{store: store, syncs: syncs, classifier: classifier, logger: logger, apps: map[string]*appState{}, byName: map[string]*appState{}, children: map[string]childLink{}, waveDelay: DefaultWaveDelay}
}

// DefaultWaveDelay is Argo CD's default delay after a sync wave.
const DefaultWaveDelay = 2 * time.Second

// SetWaveDelay sets the delay Argo CD's controller waits after each sync
// wave but the last (its ARGOCD_SYNC_WAVE_DELAY). Call it before the first
// event.
func (t *Tracker) SetWaveDelay(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.waveDelay = d
}

// SetFactSink makes the tracker send every fact it logs to sink too. Call
// it before the first event.
func (t *Tracker) SetFactSink(sink FactSink) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.facts = sink
}

// SetOperationSink makes the tracker hand every finished operation it
// counts to ops (for traces). Call it before the first event.
func (t *Tracker) SetOperationSink(ops OperationSink) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ops = ops
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
		if st := t.apps[key]; st != nil && t.byName[e.App.Name] == st {
			delete(t.byName, e.App.Name)
		}
		delete(t.apps, key)
		delete(t.children, key)
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
		t.byName[e.App.Name] = st
	}
	st.app = e.App
	env := t.classifier.Env(e.App)
	st.env = env
	facts := factLog{logger: t.logger, sink: t.facts, app: key, project: e.App.Spec.Project, env: env}
	t.observeDrift(st, e, facts)
	t.observeHealth(st, e, facts)
	t.observeWaves(st, e.Time, facts)
	t.countOperations(st, env, facts)
	t.render(key, st, env)
}

// observeWaves times the current operation's waves, logs the phases and
// waves it enters, remembers the child Applications an app-of-apps wave
// touched, and records the waves of an operation seen to finish.
func (t *Tracker) observeWaves(st *appState, now time.Time, facts factLog) {
	u := st.observeWaves(now, t.waveDelay)
	if len(u.entered) > 0 {
		op := st.app.Status.OperationState
		traceID := trace.OperationID(string(st.app.UID), op.StartedAt.Time)
		for _, k := range u.entered {
			if st.waves.phaseEntered(k) {
				facts.info("phase entered", "phase_entered", "at", now, "phase", k.phase, "trace_id", traceID)
			}
			facts.info("wave entered", "wave_entered", "at", now, "phase", k.phase, "wave", k.wave, "trace_id", traceID)
		}
		for _, c := range u.children {
			t.children[c.key] = childLink{at: c.at, link: trace.Link{TraceID: traceID, SpanID: trace.SpanID(traceID, trace.WavePath(c.wave.phase, c.wave.wave))}}
		}
		if len(u.children) > 0 && len(t.children) > len(t.apps) {
			// Children that never synced (or are not watched): forget
			// links too old to be used.
			for k, c := range t.children {
				if now.Sub(c.at) > childLinkMaxAge {
					delete(t.children, k)
				}
			}
		}
	}
	if u.finished {
		if waves := st.waves.timedWaves(); waves != nil {
			st.lastWaves = waves
			t.syncs.observeWaves(st.app, facts.env, waves)
		}
	}
}

// factLog writes one structured line per fact the tracker establishes
// (sync started and finished, phase and wave entered, drift began and
// ended, health changed), with
// the app's identity and, for syncs, the trace id: Loki-style events from
// the logs alone.
type factLog struct {
	logger            *slog.Logger
	sink              FactSink // nil: log only
	app, project, env string
}

// info logs the fact; args are key/value pairs, "at" the fact's time and
// "trace_id" its trace. The sink gets the same fact as an event.
func (f factLog) info(msg, event string, args ...any) {
	f.logger.Info(msg, append([]any{"event", event, "app", f.app, "project", f.project, "env", f.env}, args...)...)
	if f.sink == nil {
		return
	}
	e := events.Event{Event: event, App: f.app, Project: f.project, Env: f.env, Fields: map[string]any{}}
	for i := 0; i+1 < len(args); i += 2 {
		k, _ := args[i].(string)
		switch v := args[i+1]; k {
		case "at":
			e.Time, _ = v.(time.Time)
		case "trace_id":
			e.TraceID, _ = v.(string)
		default:
			e.Fields[k] = v
		}
	}
	f.sink.Send(e)
}

// SetClassifier replaces the environment rules (on config reload) and
// re-renders every app with them.
func (t *Tracker) SetClassifier(c Classifier) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.classifier = c
	for key, st := range t.apps {
		st.env = c.Env(st.app)
		t.render(key, st, st.env)
	}
}

// PolicyChecker is a Classifier that also knows the policies of each
// environment.
type PolicyChecker interface {
	CheckPolicies(app *v1alpha1.Application, env string) []config.PolicyResult
}

func (t *Tracker) render(key string, st *appState, env string) {
	v := appView{app: st.app, env: env, driftSince: st.driftSince, syncs: st.syncs, lastWaves: st.lastWaves}
	if pc, ok := t.classifier.(PolicyChecker); ok {
		v.policies = pc.CheckPolicies(st.app, env)
	}
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
// The operation state comes first: it has the details a trace needs.
func (t *Tracker) countOperations(st *appState, env string, facts factLog) {
	status := &st.app.Status
	oldest := int64(-1)
	visible := func(start int64) {
		if oldest < 0 || start < oldest {
			oldest = start
		}
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
			t.count(st, env, facts, finishedOp{
				started: op.StartedAt.Time, finished: finished, phase: op.Phase,
				revision: syncRevision(op), initiator: initiator(op.Operation.InitiatedBy), message: op.Message, state: op,
			})
		default:
			if _, counted := st.seen[start]; !counted && st.running != start {
				facts.info("sync started", "sync_started", "at", op.StartedAt.Time,
					"trace_id", trace.OperationID(string(st.app.UID), op.StartedAt.Time),
					"revision", syncRevision(op), "initiator", initiator(op.Operation.InitiatedBy))
			}
			st.running = start
		}
	}
	for i := range status.History {
		h := &status.History[i]
		if h.DeployStartedAt == nil {
			continue
		}
		visible(h.DeployStartedAt.Unix())
		if op := status.OperationState; op != nil && !op.Phase.Completed() && op.StartedAt.Unix() == h.DeployStartedAt.Unix() {
			// Argo CD writes the history entry a moment before it
			// marks the operation finished: count it then, with the
			// details only the operation state has.
			continue
		}
		t.count(st, env, facts, finishedOp{
			started: h.DeployStartedAt.Time, finished: h.DeployedAt.Time, phase: synccommon.OperationSucceeded,
			revision: h.Revision, initiator: initiator(h.InitiatedBy),
		})
	}
	for start := range st.seen {
		if start < oldest {
			delete(st.seen, start)
		}
	}
}

// finishedOp is a finished operation as the snapshot shows it.
type finishedOp struct {
	started, finished   time.Time
	phase               synccommon.OperationPhase
	revision, initiator string
	message             string
	state               *v1alpha1.OperationState // nil when only the history shows it
}

// count counts the operation, once, records its duration and hands it on
// for its trace.
func (t *Tracker) count(st *appState, env string, facts factLog, op finishedOp) {
	start := op.started.Unix()
	if _, ok := st.seen[start]; ok {
		return
	}
	st.seen[start] = struct{}{}
	// Argo CD keeps whole seconds: compare in seconds so an operation that
	// finished in the second crowsnest started still counts.
	if start != st.running && op.finished.Unix() < t.since.Unix() {
		return // finished before crowsnest was watching: a baseline, not an event
	}
	if start == st.running {
		st.running = 0
	}
	i := resultIndex(op.phase)
	if i < 0 {
		t.logger.Warn("operation finished in an unknown phase", "app", facts.app, "phase", op.phase)
		return
	}
	st.syncs[i]++
	d := op.finished.Sub(op.started)
	t.syncs.observe(st.app, env, string(op.phase), op.started, d)
	traceID := trace.OperationID(string(st.app.UID), op.started)
	facts.info("sync finished", "sync_finished", "at", op.finished, "result", string(op.phase),
		"duration_seconds", d.Seconds(), "trace_id", traceID)
	if t.ops != nil {
		t.ops.Finished(t.operation(st, env, op))
	}
}

// operation assembles what the trace of a finished operation is made of.
func (t *Tracker) operation(st *appState, env string, op finishedOp) trace.Operation {
	app := st.app
	o := trace.Operation{
		UID: string(app.UID), Namespace: app.Namespace, Name: app.Name, Project: app.Spec.Project, Env: env,
		Revision: op.revision, Initiator: op.initiator, Result: string(op.phase), Message: op.message,
		StartedAt: op.started, FinishedAt: op.finished, Partial: true,
	}
	key := app.Namespace + "/" + app.Name
	if c, ok := t.children[key]; ok {
		if age := op.started.Sub(c.at); age >= -childLinkSlack*time.Second && age <= childLinkMaxAge {
			l := c.link
			o.Parent = &l
		}
		delete(t.children, key)
	}
	if op.state == nil {
		return o
	}
	o.RetryCount = op.state.RetryCount
	var results []*v1alpha1.ResourceResult
	if op.state.SyncResult != nil {
		results = op.state.SyncResult.Resources
	}
	ow := st.waves
	if ow == nil || ow.start != op.started.Unix() || !ow.done {
		for _, r := range results {
			o.Resources = append(o.Resources, resource(r, op.finished))
		}
		return o
	}
	o.Partial = !ow.live
	o.Retries = ow.retries
	byWave := map[waveKey][]trace.Resource{}
	for _, r := range results {
		s, ok := ow.results[resultKey{string(r.SyncPhase), r.Group, r.Kind, r.Namespace, r.Name}]
		if !ok || !s.timed {
			seen := op.finished
			if ok {
				seen = s.seen
			}
			o.Resources = append(o.Resources, resource(r, seen))
			continue
		}
		byWave[s.wave] = append(byWave[s.wave], resource(r, s.seen))
	}
	for _, w := range ow.waves {
		o.Waves = append(o.Waves, trace.Wave{Phase: w.phase, Wave: w.wave, Start: w.start, End: w.end, Resources: byWave[w.waveKey]})
	}
	return o
}

// childLinkSlack is how many seconds an operation of a child Application
// may start before crowsnest saw its parent's wave touch it and still be
// linked to that wave: Argo CD may react to the change before crowsnest
// sees the parent's result.
const childLinkSlack = 10

// childLinkMaxAge bounds how long after its parent's wave touched it a
// child's operation is still linked to that wave: a child that does not
// sync by itself (prod, by hand) may sync much later for other reasons.
const childLinkMaxAge = 10 * time.Minute

// resource is a resource result as a trace shows it.
func resource(r *v1alpha1.ResourceResult, seen time.Time) trace.Resource {
	hookPhase := string(r.HookPhase)
	if r.HookType == "" {
		// Argo CD fills hookPhase for every task; it means something
		// only for hooks.
		hookPhase = ""
	}
	return trace.Resource{
		Group: r.Group, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name,
		Status: string(r.Status), HookPhase: hookPhase, HookType: string(r.HookType), Message: r.Message,
		Seen: seen,
	}
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
func initiator(by v1alpha1.OperationInitiator) string {
	if by.Automated {
		return "automated"
	}
	return by.Username
}

// Lookup returns the summary of the Application namespace/name; with an
// empty namespace, of an Application of that name in any namespace (Argo CD
// tracking ids name the app's namespace only outside Argo CD's own).
func (t *Tracker) Lookup(namespace, name string) (AppSummary, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if namespace != "" {
		st, ok := t.apps[namespace+"/"+name]
		if !ok {
			return AppSummary{}, false
		}
		return t.summary(st), true
	}
	if st, ok := t.byName[name]; ok {
		return t.summary(st), true
	}
	return AppSummary{}, false
}

// AppSummary is an Application's state as alerts judge it.
type AppSummary struct {
	Namespace, Name, Project, Env string
	SyncStatus, Health            string
	Phase                         string // the last operation's phase; "" if none
	AutoSync                      bool
}

// Apps returns a summary of every app, for direct paging.
func (t *Tracker) Apps() []AppSummary {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]AppSummary, 0, len(t.apps))
	for _, st := range t.apps {
		out = append(out, t.summary(st))
	}
	return out
}

func (t *Tracker) summary(st *appState) AppSummary {
	a := st.app
	s := AppSummary{
		Namespace: a.Namespace, Name: a.Name, Project: a.Spec.Project, Env: st.env,
		SyncStatus: string(a.Status.Sync.Status), Health: string(a.Status.Health.Status),
		AutoSync: a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.Automated != nil,
	}
	if op := a.Status.OperationState; op != nil {
		s.Phase = string(op.Phase)
	}
	return s
}
