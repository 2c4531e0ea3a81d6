// Package tracker is the one place that decides what happened to an
// Application: it keeps per-app state across the snapshots its sources
// deliver and turns them into facts (an operation started, entered a phase
// or a wave, finished; drift began or ended; health changed; a workload
// degraded), counted operations and a view of each app.
//
// It imports no output: after releasing its lock it publishes to narrow
// subscriber interfaces (views, finished operations, facts), in the order
// it decided them. Subscribers must not block.
package tracker

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Classifier names the environment of an Application. It may also be a
// PolicyChecker and a PromotionGrouper.
type Classifier interface {
	Env(app *v1alpha1.Application) string
}

// PolicyChecker is a Classifier that also knows the policies of each
// environment.
type PolicyChecker interface {
	CheckPolicies(app *v1alpha1.Application, env string, auto model.AutoSyncPolicy) []model.PolicyResult
}

// PromotionGrouper is a Classifier that also groups apps for promotion.
type PromotionGrouper interface {
	PromotionOf(app *v1alpha1.Application) *model.Promotion
}

// ViewSubscriber receives the view of every app on each change, and the
// key of every app deleted.
type ViewSubscriber interface {
	SetApp(v *model.AppView)
	DeleteApp(key string)
}

// OperationSubscriber receives every finished operation the tracker
// counts, once.
type OperationSubscriber interface {
	Finished(op *model.Operation)
}

// FactSubscriber receives every fact the tracker establishes.
type FactSubscriber interface {
	Fact(f *model.Fact)
}

// Subscribers are the tracker's outputs. Each must be safe for use from
// the goroutines that call Handle, HandleWorkload and SetClassifier, and
// must not block.
type Subscribers struct {
	Views      []ViewSubscriber
	Operations []OperationSubscriber
	Facts      []FactSubscriber
	// Deployments receive what the tracker decides about deployments.
	Deployments []DeploymentSubscriber
	// Rollouts receive the ApplicationSets' RollingSyncs (rollouts.go).
	Rollouts []RolloutSubscriber
	// WaveDelay receive the wave delay check whenever it changes.
	WaveDelay []WaveDelaySubscriber
}

// WaveDelaySubscriber receives how the gaps observed between sync waves
// compare with the configured wave delay.
type WaveDelaySubscriber interface {
	WaveDelay(model.WaveDelayCheck)
}

// DefaultWaveDelay is Argo CD's default delay after a sync wave.
const DefaultWaveDelay = 2 * time.Second

// Tracker keeps per-app state across successive snapshots of each
// Application and decides the facts. It implements the sources' sinks.
type Tracker struct {
	subs Subscribers
	// waveDelay is Argo CD's delay after each wave
	// (ARGOCD_SYNC_WAVE_DELAY), to tell when a wave began.
	waveDelay time.Duration
	// clusters names the clusters whose workloads are watched
	// (SetClusters).
	clusters clusterIndex
	// onRelease, if set, is told when the resource results of an app's
	// operation will not be read again (SetOnRelease).
	onRelease func(uid types.UID, started, finished time.Time)
	// failureWindow: an app turning Degraded this long after a
	// deployment makes it a failed change.
	failureWindow time.Duration
	logger        *slog.Logger

	// publishMu orders publications: taken before mu is released, so
	// what one call decided reaches subscribers before what the next
	// decided, while mu is free for the next call.
	publishMu sync.Mutex

	mu         sync.Mutex
	classifier Classifier
	since      time.Time // operations that finished before it are not counted: the first event's time, or the restored watermark
	// lastEvent is the time of the last Application event handled (the
	// checkpoint's watermark); recent the operations counted lately, for
	// the checkpoint; restored what a checkpoint held of apps not seen yet
	// (checkpoint.go).
	lastEvent time.Time
	recent    []recentOp
	restored  map[string]*restoredApp
	// started is the time of the first event of any kind: an object that
	// existed before it is seen first in a first look, whose state is no
	// news (no drift_began, sync_started or workload_degraded fact).
	started time.Time
	apps    map[string]*appState
	// children maps an Application (namespace/name) to the wave span of
	// the app-of-apps operation that last created or changed it, until
	// an operation of the child links to it.
	children  map[string]childLink
	workloads workloadIndex
	// gaps keeps the last gaps observed between waves, to check the
	// configured wave delay against Argo CD's.
	gaps waveGaps
	// projects are the AppProjects by name, for their sync windows;
	// badWindows names those whose windows did not parse (logged once).
	projects   map[string]*v1alpha1.AppProject
	badWindows map[string]bool
	// rollouts are the ApplicationSets' RollingSyncs (rollouts.go).
	rollouts rollouts
}

// childLink is the parent wave span that touched a child Application.
type childLink struct {
	link model.Link
	at   time.Time
}

// appState is what the Tracker remembers about one Application.
type appState struct {
	uid    types.UID
	app    *v1alpha1.Application
	seenAt time.Time // when the last event of the app was seen
	// firstLook: the event being handled is crowsnest's first look at an
	// app that existed before it started: what it shows began unseen.
	firstLook bool
	// restoredOps are the operations the checkpoint says were counted
	// before the restart, by start and finish second (checkpoint.go).
	restoredOps []restoredOp
	// driftUnseen: the drift began before crowsnest's first look, so its
	// clock runs from that look.
	driftUnseen bool
	env         string // the app's env, as of the last event or reload
	// joined: the app deploys to a cluster whose workloads crowsnest
	// watches, cluster (clusterIndex.of), so they join it.
	joined  bool
	cluster string
	// dest is the name of the cluster the app deploys to
	// (clusterIndex.dest), as of the last event.
	dest       string
	driftSince time.Time
	syncs      [model.NumResults]uint64
	// seen holds the operations already counted, or finished before
	// crowsnest started. It keeps only what the app's history or
	// operation state can still show.
	seen map[opKey]struct{}
	// running is an operation seen still running; it is counted when it
	// finishes whatever its finish time says.
	running *opKey
	// cur identifies the operation state last seen (valid once hasCur);
	// cur.key is its operation.
	cur    curOp
	hasCur bool
	health string // last health status, to log its changes
	// waves times the current operation's waves; lastWaves are those of
	// the last operation timed to its end.
	waves     *operationWaves
	lastWaves []model.WaveTiming

	// phase is the exposed phase; lastRealPhase that of the last
	// operation that was not a dry run (a dry run leaves it shown).
	phase, lastRealPhase string
	// pendingSince is when the requested operation was first seen
	// waiting for a controller.
	pendingSince time.Time
	// terminating is the start time of an operation seen Terminating:
	// when it ends Failed, it was terminated; timedOut that the
	// controller terminated it for its sync timeout (a failure), which
	// its final message may not say.
	terminating    int64
	timedOut       bool
	lastFinished   *model.FinishedOperation
	lastSuccessful time.Time
	dryRuns        uint64
	// selfHeals counts the self-heal operations seen to finish.
	selfHeals uint64
	// drift tells the app's drift apart while it is OutOfSync (drift.go).
	drift *driftState
	// held: a sync window denies the app's next sync now (observeWindow).
	held bool
	// hydration follows the app's Source Hydrator; nil without one.
	hydration *hydrationState
	// deploy follows the app's deployments; history keeps its last
	// successful syncs' waves, predicted the first expected finish of
	// the running operation.
	deploy    deployState
	history   waveHistory
	predicted prediction
}

// New returns a tracker that classifies apps with classifier and publishes
// to subs.
func New(classifier Classifier, subs Subscribers, logger *slog.Logger) *Tracker {
	t := &Tracker{
		subs: subs, classifier: classifier, logger: logger, waveDelay: DefaultWaveDelay, failureWindow: DefaultFailureWindow,
		apps: map[string]*appState{}, children: map[string]childLink{}, workloads: newWorkloadIndex(),
		projects: map[string]*v1alpha1.AppProject{}, badWindows: map[string]bool{}, rollouts: newRollouts(),
	}
	t.clusters = newClusterIndex(Clusters{})
	return t
}

// SetWaveDelay sets the delay Argo CD's controller waits after each sync
// wave but the last (its ARGOCD_SYNC_WAVE_DELAY). Call it before the first
// event.
func (t *Tracker) SetWaveDelay(d time.Duration) {
	var out outbox
	t.mu.Lock()
	defer t.unlockAndPublish(&out)
	t.waveDelay = d
	out.waveDelay = t.waveDelayCheck()
}

// waveDelayCheck is the wave delay check now.
func (t *Tracker) waveDelayCheck() *model.WaveDelayCheck {
	return &model.WaveDelayCheck{Configured: t.waveDelay, ShortestGap: t.gaps.min, Gaps: len(t.gaps.last), Mismatch: t.gaps.mismatch}
}

// SetOnRelease sets f, which the tracker calls when it will never read the
// resource results of an app's operation again — it handed the operation
// off, or took it as a baseline — with the app's UID and the operation's
// start and end; with zero times when the app is gone. The Kubernetes
// source then drops those results from the cached app at its next update,
// so a finished operation's per-resource detail does not stay in memory
// until the next operation. f is called after the tracker's lock is
// released, in order with the publications (its publication lock held):
// it must be quick and must not call the tracker. Call it before the first
// event.
func (t *Tracker) SetOnRelease(f func(uid types.UID, started, finished time.Time)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onRelease = f
}

// released tells onRelease, once the lock is released, that op's results
// are not needed any more.
func (t *Tracker) released(st *appState, op finishedOp, out *outbox) {
	if op.state != nil {
		out.released = append(out.released, release{st.uid, op.started, op.finished})
	}
}

// release is a call of onRelease to make.
type release struct {
	uid               types.UID
	started, finished time.Time
}

// outbox collects what one call decided, to publish after the lock.
type outbox struct {
	views   []*model.AppView
	deleted []string
	ops     []*model.Operation
	facts   []*model.Fact
	notices []*model.DeploymentNotice
	// The RollingSync states, deletions and step timings to publish.
	rollouts        []*model.ApplicationSetRollout
	rolloutsDeleted [][2]string
	rolloutSteps    []model.RolloutStepTiming
	// waveDelay is the wave delay check, when it changed.
	waveDelay *model.WaveDelayCheck
	// released are the calls of onRelease to make (not under the lock:
	// onRelease is the Kubernetes source's).
	released []release
}

// unlockAndPublish releases mu and hands out's contents to the
// subscribers, in order with every other call's.
func (t *Tracker) unlockAndPublish(out *outbox) {
	t.publishMu.Lock()
	onRelease := t.onRelease
	t.mu.Unlock()
	defer t.publishMu.Unlock()
	if onRelease != nil {
		for _, r := range out.released {
			onRelease(r.uid, r.started, r.finished)
		}
	}
	for _, f := range out.facts {
		for _, s := range t.subs.Facts {
			s.Fact(f)
		}
	}
	for _, op := range out.ops {
		for _, s := range t.subs.Operations {
			s.Finished(op)
		}
	}
	for _, n := range out.notices {
		for _, s := range t.subs.Deployments {
			s.Deployment(n)
		}
	}
	for _, k := range out.deleted {
		for _, s := range t.subs.Views {
			s.DeleteApp(k)
		}
	}
	if out.waveDelay != nil {
		for _, s := range t.subs.WaveDelay {
			s.WaveDelay(*out.waveDelay)
		}
	}
	for _, s := range t.subs.Rollouts {
		for _, k := range out.rolloutsDeleted {
			s.DeleteRollout(k[0], k[1])
		}
		for _, r := range out.rollouts {
			s.SetRollout(r)
		}
		for _, st := range out.rolloutSteps {
			s.RolloutStepTimed(st)
		}
	}
	for _, v := range out.views {
		for _, s := range t.subs.Views {
			s.SetApp(v)
		}
	}
}

// Handle applies one Application event.
func (t *Tracker) Handle(e model.Event) {
	if e.App == nil {
		return
	}
	key := model.Key(e.App.Namespace, e.App.Name)
	var out outbox
	t.mu.Lock()
	defer t.unlockAndPublish(&out)
	if t.since.IsZero() {
		t.since = e.Time
	}
	t.start(e.Time)
	if e.Time.After(t.lastEvent) {
		t.lastEvent = e.Time
	}
	if e.Type == model.Deleted {
		delete(t.children, key)
		if st, ok := t.apps[key]; ok {
			out.released = append(out.released, release{uid: st.uid})
			delete(t.apps, key)
			out.deleted = append(out.deleted, key)
			if st.joined {
				t.workloads.removeApp(st.cluster, e.App.Name, key)
				// Another app of the same name may now join this
				// one's workloads.
				t.viewsOfName(st.cluster, e.App.Name, &out)
			}
		}
		return
	}
	old := t.apps[key]
	first := old == nil || old.uid != e.App.UID
	st := old
	if first {
		// New, or deleted and re-created while we were not watching: the
		// old state belongs to another object.
		st = &appState{uid: e.App.UID, seen: map[opKey]struct{}{}}
		t.apps[key] = st
	}
	// Runs before the publication, after the app's own view.
	defer func(clusters []string) {
		for _, c := range clusters {
			t.viewsOfName(c, e.App.Name, &out)
		}
	}(t.joinCluster(key, old, st, e.App))
	st.app = e.App
	st.seenAt = e.Time
	st.firstLook = first && t.existed(e.App.CreationTimestamp.Time)
	st.env = t.classifier.Env(e.App)
	if first {
		t.restore(key, st, e.App)
	}
	facts := factLog{out: &out, app: key, project: e.App.Spec.Project, env: st.env, dest: st.dest}
	t.observeDrift(st, e, facts)
	t.observeHealth(st, e, facts)
	if op := e.App.Status.OperationState; op != nil {
		st.identify(op)
	}
	t.observeWaves(st, e.Time, facts)
	t.observePhase(st, e.Time, facts)
	t.observeDriftKind(st, e.Time)
	t.observeWindow(st)
	t.observeHydration(st, facts)
	t.observeTarget(st, e.Time, first)
	t.countOperations(st, facts, &out)
	t.observeDeployment(st, e.Time, facts, &out)
	out.views = append(out.views, t.view(key, st))
}

// start notes the time of the first event of any kind.
func (t *Tracker) start(now time.Time) {
	if t.started.IsZero() {
		t.started = now
	}
}

// existed reports whether an object created at created existed before
// crowsnest started (in an earlier second: Kubernetes keeps whole
// seconds, and an object of the start's second may be news).
func (t *Tracker) existed(created time.Time) bool {
	return !created.IsZero() && created.Unix() < t.started.Unix()
}

// viewsOfName adds the views of every other app named name in cluster:
// which of them an unqualified workload reference joins may have changed.
func (t *Tracker) viewsOfName(cluster, name string, out *outbox) {
	for _, key := range t.workloads.appsNamed(cluster, name) {
		if st, ok := t.apps[key]; ok && !containsView(out.views, key) {
			out.views = append(out.views, t.view(key, st))
		}
	}
}

func containsView(views []*model.AppView, key string) bool {
	for _, v := range views {
		if v.Key() == key {
			return true
		}
	}
	return false
}

// observeWaves times the current operation's waves, notes the phases and
// waves it enters, remembers the child Applications an app-of-apps wave
// touched, and keeps the waves of an operation seen to finish.
func (t *Tracker) observeWaves(st *appState, now time.Time, facts factLog) {
	// A hook's wave is only on its live object: known for apps in the
	// watched cluster alone.
	var live liveObjects
	if st.joined {
		live = func(kind, namespace, name string) (*model.Workload, bool) {
			return t.workloads.live(st.cluster, kind, namespace, name)
		}
	}
	u := st.observeWaves(now, t.waveDelay, live)
	if len(u.gaps) > 0 {
		t.gaps.observe(u.gaps, t.waveDelay, t.logger)
		facts.out.waveDelay = t.waveDelayCheck()
	}
	t.planChildLinks(st, now)
	if len(u.entered) > 0 {
		op := st.app.Status.OperationState
		traceID := model.OperationSeqID(string(st.app.UID), op.StartedAt.Time, st.cur.key.seq)
		for _, k := range u.entered {
			if st.waves.phaseEntered(k) {
				facts.add(model.FactPhaseEntered, now, traceID, "phase", k.phase)
			}
			if k.attempt > 0 {
				facts.add(model.FactWaveEntered, now, traceID, "phase", k.phase, "wave", model.WaveLabel(k.wave), "attempt", k.attempt)
			} else {
				facts.add(model.FactWaveEntered, now, traceID, "phase", k.phase, "wave", model.WaveLabel(k.wave))
			}
		}
		for _, c := range u.children {
			t.children[c.key] = childLink{at: c.at, link: model.Link{TraceID: traceID, SpanID: model.SpanID(traceID, model.AttemptWavePath(c.wave.attempt, c.wave.phase, c.wave.wave))}}
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
	if u.finished && !dryRun(&st.app.Status.OperationState.Operation.Sync) {
		// A dry run's waves are no sync's: the gauges keep the last
		// real operation's.
		if waves := st.waves.timedWaves(); waves != nil {
			// The gauges show the last attempt's: a wave has one value.
			st.lastWaves = lastAttempt(waves)
			if op := st.app.Status.OperationState; op.Phase == synccommon.OperationSucceeded && op.FinishedAt != nil {
				st.history.record(st.lastWaves, op.FinishedAt.Time)
			}
		}
	}
}

// planChildLinks notes, when an app-of-apps operation is first seen
// running, the child Applications it is to sync (those OutOfSync in its
// status.resources, in their sync waves) as links to its wave spans. Argo CD
// shows a wave's results only after the wave delay, while a child created
// in that wave may sync and finish within it: its trace would miss the
// link. A wave seen touching the child later replaces the planned link
// with its own.
func (t *Tracker) planChildLinks(st *appState, now time.Time) {
	ow, op := st.waves, st.app.Status.OperationState
	if ow == nil || ow.done || ow.plannedChildren || op == nil || op.Phase.Completed() || dryRun(&op.Operation.Sync) ||
		st.app.Status.ResourceCount() == 0 { // v3 may show the operation before its comparison
		return
	}
	ow.plannedChildren = true
	var traceID string
	for r := range st.app.Status.AllResources() {
		if r.Group != argoGroup || r.Kind != "Application" || r.Status != v1alpha1.SyncStatusCodeOutOfSync {
			continue
		}
		if traceID == "" {
			traceID = model.OperationSeqID(string(st.app.UID), op.StartedAt.Time, st.cur.key.seq)
		}
		key := r.Namespace + "/" + r.Name
		if c, ok := t.children[key]; ok && !c.at.Before(op.StartedAt.Time) {
			continue // touched by this operation already
		}
		t.children[key] = childLink{at: now, link: model.Link{TraceID: traceID, SpanID: model.SpanID(traceID, model.AttemptWavePath(ow.attempt, string(synccommon.SyncPhaseSync), r.SyncWave))}}
	}
}

// factLog collects the facts of one app for publication.
type factLog struct {
	out                     *outbox
	app, project, env, dest string
}

// add records the fact name at time at, of the trace traceID (may be
// empty), with further key/value pairs.
func (f factLog) add(name string, at time.Time, traceID string, attrs ...any) {
	f.out.facts = append(f.out.facts, &model.Fact{Name: name, Time: at, App: f.app, Project: f.project, Env: f.env, Dest: f.dest, TraceID: traceID, Attrs: attrs})
}

// SetClassifier replaces the environment rules (on config reload) and
// publishes every app's view again, under its new env.
func (t *Tracker) SetClassifier(c Classifier) {
	var out outbox
	t.mu.Lock()
	defer t.unlockAndPublish(&out)
	t.classifier = c
	for key, st := range t.apps {
		st.env = c.Env(st.app)
		out.views = append(out.views, t.view(key, st))
	}
}

// view assembles the app's view for the subscribers.
func (t *Tracker) view(key string, st *appState) *model.AppView {
	v := &model.AppView{Deployments: st.deploy.counts, ChangeFailures: st.deploy.failures, Progress: st.progress(st.seenAt), App: st.app, Env: st.env, Dest: st.dest, DriftSince: st.driftSince, Syncs: st.syncs, LastWaves: st.lastWaves,
		Workloads: t.workloadsOf(st), Phase: st.phase, PendingSince: st.pendingSince,
		LastFinished: st.lastFinished, DryRuns: st.dryRuns, LastSuccessful: st.lastSuccessful,
		HeldByWindow: st.held, Hydration: hydrationView(st.app, st.hydration), Rollout: t.rollouts.of(st.app.Namespace, st.app.Name)}
	if d := st.drift; d != nil {
		v.LiveDriftSince, v.AwaitingSyncSince = d.liveSince, d.awaitingSince
	}
	v.SelfHeals = st.selfHeals
	if op := st.app.Status.OperationState; op != nil && st.phase == "Running" {
		v.Retries = op.RetryCount
	}
	if d := st.deploy.last; d != nil {
		v.LastDeployment = d.FinishedAt
	}
	if pc, ok := t.classifier.(PolicyChecker); ok {
		v.Policies = pc.CheckPolicies(st.app, st.env, v.AutoSync())
	}
	if pg, ok := t.classifier.(PromotionGrouper); ok {
		v.Promotion = pg.PromotionOf(st.app)
	}
	return v
}

// opKey identifies an operation of an app: its start (Unix seconds, as
// Argo CD keeps it) and, among operations that started in the same second,
// its rank. The same on every replica that watched it, and after a restart
// for the operation a restart can still see.
type opKey struct {
	start int64
	seq   int
}

// curOp is the operation state last seen, to tell whether the next one is
// the same operation.
type curOp struct {
	key       opKey
	completed bool
	finished  int64 // finishedAt, Unix seconds; 0 if none
	retry     int64
}

// identify decides which operation op is, and remembers it. An operation
// with the start second of the last one is a new one when the last one had
// completed and this one runs (a CLI loop or a zero-backoff self-heal that
// syncs twice in a second), or has completed with another finish time and
// no further retry (it started and ended between two observations).
// Argo CD's retries keep their operation: they run with a higher
// retryCount and never show as completed in between.
func (st *appState) identify(op *v1alpha1.OperationState) opKey {
	fin := int64(0)
	if op.FinishedAt != nil {
		fin = op.FinishedAt.Unix()
	}
	key := opKey{start: op.StartedAt.Unix()}
	if c := st.cur; st.hasCur && c.key.start == key.start {
		key = c.key
		if c.completed && (!op.Phase.Completed() || fin != c.finished && op.RetryCount <= c.retry) {
			key.seq++
		}
	}
	st.cur, st.hasCur = curOp{key: key, completed: op.Phase.Completed(), finished: fin, retry: op.RetryCount}, true
	return key
}

// What Argo CD (v3.6.1) writes when an operation is terminated. gitops-engine
// ends it Failed with operationTerminated (syncContext.Terminate), after
// Terminating: set by terminate-op (the API keeps the running message) or,
// for an operation that ran past the controller's --sync-timeout, by the
// controller with terminatingTimeout. The controller appends ", " +
// terminatedByTimeout to the final message only when it ends the operation
// in the same pass that found the timeout (not after a controller restart in
// between), and " (retried N times)." after retries. A timed-out operation
// is never retried.
const (
	operationTerminated = "Operation terminated"
	terminatingTimeout  = "operation is terminating due to timeout"
	terminatedByTimeout = "triggered by controller sync timeout"
)

// observePhase decides the phase the app's operation is exposed in: Pending
// while an operation asked for (.operation, which the CLI, the UI and
// auto-sync set) waits for a controller; Terminated for one a person ended
// (terminate-op), Failed for one the controller's sync timeout ended; a dry
// run's leaves the last real operation's. It also keeps the last finished
// real operation.
func (t *Tracker) observePhase(st *appState, now time.Time, facts factLog) {
	app := st.app
	op := app.Status.OperationState
	for i := range app.Status.History {
		// Argo CD records only successful syncs there, never dry runs.
		if t := app.Status.History[i].DeployedAt.Time; t.After(st.lastSuccessful) {
			st.lastSuccessful = t
		}
	}
	if app.Operation != nil && (op == nil || op.Phase.Completed()) {
		// Argo CD clears .operation in the same write that completes
		// the operation: a completed state beside it is the previous one.
		if st.pendingSince.IsZero() {
			st.pendingSince = now
			facts.add(model.FactSyncRequested, now, "", "initiator", initiator(app.Operation.InitiatedBy), "dry_run", dryRun(&app.Operation.Sync))
		}
		st.phase = model.PhasePending
		if dryRun(&app.Operation.Sync) {
			// A dry run waiting is no sync waiting: nothing shows or pages.
			st.phase = st.lastRealPhase
		}
		return
	}
	st.pendingSince = time.Time{}
	if op == nil {
		st.phase = st.lastRealPhase
		return
	}
	if dryRun(&op.Operation.Sync) {
		st.phase = st.lastRealPhase
		return
	}
	if op.Phase == synccommon.OperationTerminating {
		if start := op.StartedAt.Unix(); st.terminating != start {
			st.terminating, st.timedOut = start, false
		}
		if op.Message == terminatingTimeout {
			// Kept until the end: the final message may not say why.
			st.timedOut = true
		}
	}
	st.phase = st.result(op)
	st.lastRealPhase = st.phase
	if op.Phase.Completed() && op.FinishedAt != nil {
		st.lastFinished = &model.FinishedOperation{Result: st.phase, Started: op.StartedAt.Time, Finished: op.FinishedAt.Time}
		if ow := st.waves; ow != nil && ow.done && ow.key == st.cur.key {
			for _, b := range ow.blocked {
				st.lastFinished.Blocked += b.End.Sub(b.Start)
			}
		}
		if op.Phase == synccommon.OperationSucceeded && op.FinishedAt.After(st.lastSuccessful) {
			st.lastSuccessful = op.FinishedAt.Time
		}
	}
}

// result is the operation's phase as crowsnest exposes it: Argo CD's, but
// Terminated for an operation a person terminated. One the controller
// terminated for its sync timeout stays Failed: it pages and counts as a
// failure. Both are told by the Terminating state if it was seen, else by
// the final message alone.
func (st *appState) result(op *v1alpha1.OperationState) string {
	if op.Phase != synccommon.OperationFailed {
		return string(op.Phase)
	}
	sawTerminating := st.terminating == op.StartedAt.Unix()
	switch {
	case strings.Contains(op.Message, terminatedByTimeout), sawTerminating && st.timedOut:
		return model.ResultFailed
	case sawTerminating, strings.HasPrefix(op.Message, operationTerminated):
		// After retries Argo CD appends " (retried N times).".
		return model.PhaseTerminated
	}
	return string(op.Phase)
}

// dryRun reports whether a sync operation is a dry run.
func dryRun(sync **v1alpha1.SyncOperation) bool {
	return *sync != nil && (*sync).DryRun
}

// observeDrift starts the drift clock when the app turns OutOfSync and stops
// it when it is Synced again. Unknown (a failed comparison) keeps the clock:
// it says nothing about whether the drift ended.
func (t *Tracker) observeDrift(st *appState, e model.Event, facts factLog) {
	switch e.App.Status.Sync.Status {
	case v1alpha1.SyncStatusCodeOutOfSync:
		if st.driftSince.IsZero() {
			st.driftSince = e.Time
			st.driftUnseen = st.firstLook
			if !st.firstLook {
				facts.add(model.FactDriftBegan, e.Time, "", "revision", model.JoinRevisions(e.App.Status.Sync.Revision, e.App.Status.Sync.Revisions))
			}
		}
	case v1alpha1.SyncStatusCodeSynced:
		if !st.driftSince.IsZero() {
			if st.driftUnseen {
				// Its drift_seconds run from crowsnest's first look.
				facts.add(model.FactDriftEnded, e.Time, "", "drift_seconds", e.Time.Sub(st.driftSince).Seconds(), "first_look", true)
			} else {
				facts.add(model.FactDriftEnded, e.Time, "", "drift_seconds", e.Time.Sub(st.driftSince).Seconds())
			}
		}
		st.driftSince, st.driftUnseen = time.Time{}, false
	}
}

// observeHealth notes changes of the app's health.
func (t *Tracker) observeHealth(st *appState, e model.Event, facts factLog) {
	h := string(e.App.Status.Health.Status)
	if st.health != "" && h != st.health {
		facts.add(model.FactHealthChanged, e.Time, "", "from", st.health, "to", h, "message", e.App.Status.Health.Message)
	}
	st.health = h
}

// countOperations counts every operation visible in the snapshot that has
// finished and was not counted before: the current operation state, and the
// successful syncs in the history (which catch a sync that started and
// finished while the watch was down). Operations are told apart by their
// start time, which Argo CD copies from the operation state into history.
// The operation state comes first: it has the details a trace needs.
func (t *Tracker) countOperations(st *appState, facts factLog, out *outbox) {
	status := &st.app.Status
	oldest := int64(-1)
	visible := func(start int64) {
		if oldest < 0 || start < oldest {
			oldest = start
		}
	}
	if op := status.OperationState; op != nil {
		key := st.cur.key
		visible(key.start)
		switch {
		case op.Phase.Completed():
			finished := op.StartedAt.Time
			if op.FinishedAt != nil {
				finished = op.FinishedAt.Time
			}
			t.count(st, facts, out, finishedOp{
				key: key, started: op.StartedAt.Time, finished: finished, result: st.result(op), dryRun: dryRun(&op.Operation.Sync),
				revision: syncRevision(op), revisions: syncRevisions(op), initiator: initiator(op.Operation.InitiatedBy), message: op.Message, state: op,
			})
		default:
			if _, counted := st.seen[key]; !counted && !st.firstLook && (st.running == nil || *st.running != key) {
				facts.add(model.FactSyncStarted, op.StartedAt.Time, model.OperationSeqID(string(st.app.UID), op.StartedAt.Time, key.seq),
					"revision", model.JoinRevisions(syncRevision(op), syncRevisions(op)), "initiator", initiator(op.Operation.InitiatedBy))
			}
			st.running = &key
		}
	}
	// History entries of one start second are told apart by their order
	// (Argo CD appends them, with rising ids): the second successful
	// sync that started in a second is that second's rank 1, as the
	// operation state's second operation is.
	rank := map[int64]int{}
	for i := range status.History {
		h := &status.History[i]
		if h.DeployStartedAt == nil {
			continue
		}
		start := h.DeployStartedAt.Unix()
		visible(start)
		key := opKey{start: start, seq: rank[start]}
		rank[start]++
		if op := status.OperationState; op != nil && !op.Phase.Completed() && op.StartedAt.Unix() == start {
			// Argo CD writes the history entry a moment before it
			// marks the operation finished: count it then, with the
			// details only the operation state has.
			continue
		}
		t.count(st, facts, out, finishedOp{
			key: key, started: h.DeployStartedAt.Time, finished: h.DeployedAt.Time, result: model.ResultSucceeded,
			revision: h.Revision, revisions: h.Revisions, initiator: initiator(h.InitiatedBy),
		})
	}
	for k := range st.seen {
		if k.start < oldest {
			delete(st.seen, k)
		}
	}
}

// finishedOp is a finished operation as the snapshot shows it.
type finishedOp struct {
	key                 opKey
	started, finished   time.Time
	result              string // one of model.Results
	dryRun              bool
	revision, initiator string
	revisions           []string // a multi-source app's, per source
	message             string
	state               *v1alpha1.OperationState // nil when only the history shows it
}

// count counts the operation, once, and hands it on for its duration and
// its trace.
func (t *Tracker) count(st *appState, facts factLog, out *outbox, op finishedOp) {
	key := op.key
	if _, ok := st.seen[key]; ok {
		return
	}
	st.seen[key] = struct{}{}
	running := st.running != nil && *st.running == key
	// Argo CD keeps whole seconds: compare in seconds so an operation that
	// finished in the second crowsnest started still counts.
	if !running && (op.finished.Unix() < t.since.Unix() || st.countedBefore(op)) {
		// Finished before crowsnest was watching (or counted before its
		// restart): a baseline, not an event. Nothing is handed off, and nothing of it is needed any
		// more: what the waves kept per resource goes (at start-up that
		// is every app's last operation, 19 KiB an app of 50 resources).
		if ow := st.waves; ow != nil && ow.done && ow.key == key {
			ow.release()
		}
		t.released(st, op, out)
		return
	}
	if running {
		st.running = nil
	}
	t.noteCounted(model.Key(st.app.Namespace, st.app.Name), st, op)
	if ow := st.waves; ow != nil && ow.done && ow.key == key {
		// Handed off below: what was kept per resource and per wave is
		// in the operation then. The waves' timings stay in lastWaves.
		defer ow.release()
	}
	defer t.released(st, op, out)
	if op.dryRun {
		// Not a deployment: no count, no duration, no trace, no page.
		st.dryRuns++
		facts.add(model.FactDryRunFinished, op.finished, "", "result", op.result,
			"duration_seconds", op.finished.Sub(op.started).Seconds())
		return
	}
	i := model.ResultIndex(op.result)
	if i < 0 {
		t.logger.Warn("operation finished in an unknown phase", "app", facts.app, "phase", op.result)
		return
	}
	st.syncs[i]++
	if selfHeal(op.state) {
		st.selfHeals++
	}
	o := t.operation(st, op)
	t.deployment(st, op, o, facts, out)
	if p := st.predicted; p.key == key && !p.at.IsZero() {
		o.PredictedFinish = p.at
	}
	facts.add(model.FactSyncFinished, op.finished, o.TraceID(), "result", op.result,
		"revision", o.RevisionText(), "duration_seconds", op.finished.Sub(op.started).Seconds())
	out.ops = append(out.ops, o)
}

// operation assembles what the trace and the duration histograms of a
// finished operation are made of.
func (t *Tracker) operation(st *appState, op finishedOp) *model.Operation {
	app := st.app
	o := &model.Operation{
		UID: string(app.UID), Namespace: app.Namespace, Name: app.Name, Project: app.Spec.Project, Env: st.env, Dest: st.dest,
		Revision: op.revision, Revisions: op.revisions, Initiator: op.initiator, Result: op.result, Message: op.message,
		StartedAt: op.started, FinishedAt: op.finished, Seq: op.key.seq, Partial: true,
	}
	if h := app.Status.SourceHydrator.LastSuccessfulOperation; h != nil && h.HydratedSHA != "" && h.HydratedSHA == op.revision {
		o.DrySHA = h.DrySHA
	}
	key := model.Key(app.Namespace, app.Name)
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
	if ow == nil || ow.key != op.key || !ow.done {
		for _, r := range results {
			if r != nil {
				o.Resources = append(o.Resources, resource(r, op.finished))
			}
		}
		return o
	}
	o.Partial = !ow.live
	if len(ow.attempts) > 1 {
		o.Attempts = ow.attempts
	}
	o.Blocked = ow.blocked
	for _, b := range ow.blocked {
		o.BlockedFor += b.End.Sub(b.Start)
	}
	o.TimedWaves = ow.timedWaves()
	byWave := map[waveKey][]model.Resource{}
	for _, r := range results {
		if r == nil {
			continue
		}
		s, ok := ow.results[resultKeyOf(r)]
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
	for k, rs := range ow.earlier {
		byWave[k] = rs
	}
	for _, w := range ow.waves {
		o.Waves = append(o.Waves, model.Wave{Attempt: w.attempt, Phase: w.phase, Wave: w.wave, Start: w.start, End: w.end, Blocked: w.blocked, Resources: byWave[w.waveKey]})
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
func resource(r *v1alpha1.ResourceResult, seen time.Time) model.Resource {
	hookPhase := string(r.HookPhase)
	if r.HookType == "" {
		// Argo CD fills hookPhase for every task; it means something
		// only for hooks.
		hookPhase = ""
	}
	return model.Resource{
		Group: r.Group, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name,
		Status: string(r.Status), HookPhase: hookPhase, HookType: string(r.HookType), Message: r.Message,
		Seen: seen,
	}
}

// syncRevisions are the revisions a multi-source app's operation syncs its
// sources to (Argo CD fills only these, not the single revision).
func syncRevisions(op *v1alpha1.OperationState) []string {
	if op.SyncResult != nil && len(op.SyncResult.Revisions) > 0 {
		return op.SyncResult.Revisions
	}
	if op.Operation.Sync != nil {
		return op.Operation.Sync.Revisions
	}
	return nil
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
