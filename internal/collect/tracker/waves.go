package tracker

import (
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Argo CD records no times per sync wave: crowsnest times the waves itself.
// A wave (a sync phase and a wave number) is first seen when the first
// resource of it shows up in the operation's syncResult. Argo CD applies a
// wave, then sleeps the wave delay (ARGOCD_SYNC_WAVE_DELAY, 2 s) unless it
// is the operation's last wave or failed to apply, and only then writes the
// results (gitops-engine syncContext.Sync, argo-cd delayBetweenSyncWaves).
// So a wave began the delay before it was first seen, except for the last
// wave and failed ones; and never before the previous wave was seen. A wave
// ends when the next one begins, the last one when the operation is seen
// finished.
//
// A resource's wave comes from the app's status.resources (Argo CD omits
// wave 0 there). Hooks are not listed there, and pruned resources are
// listed without their wave: theirs is in the live object's annotations
// (sync-wave, else helm.sh/hook-weight), which crowsnest reads from the
// workloads it watches; gitops-engine prunes in the reverse order of the
// waves, or after the Sync phase's last wave with PruneLast. Where
// crowsnest did not see the object, the wave is unknown (model.UnknownWave).
//
// Retries: when an attempt fails and Argo CD will retry, it writes the
// operation Running with retryCount one higher and finishedAt set to the
// failure; when the backoff is over it clears finishedAt and runs the
// operation again from its first wave, first with the failed attempt's
// results, then with a fresh result list (argo-cd processRequestedAppOperation).
// crowsnest times each attempt's waves as that attempt's, and the backoff
// between them as such.
//
// A deny sync window met by a running operation holds it with the message
// "Sync operation blocked by sync window"; that time is not sync time.

// waveKey identifies a wave of an operation.
type waveKey struct {
	attempt int64  // the attempt of a retried operation (its retryCount)
	phase   string // PreSync, Sync, PostSync, SyncFail
	wave    int64  // model.UnknownWave when crowsnest cannot tell
}

// waveTiming is one wave of an operation as crowsnest observed it.
type waveTiming struct {
	waveKey
	seen       time.Time // when its first result was seen
	start, end time.Time
	blocked    time.Duration
	resources  int
}

// resultKey identifies a resource result within an operation.
type resultKey struct {
	phase, group, kind, namespace, name string
}

// resultKeyOf is the key of the resource result r.
func resultKeyOf(r *v1alpha1.ResourceResult) resultKey {
	return resultKey{string(r.SyncPhase), r.Group, r.Kind, r.Namespace, r.Name}
}

// resultPrint is what tells one attempt's result of a resource from
// another's.
type resultPrint struct {
	status, hookPhase, message string
}

func printOf(r *v1alpha1.ResourceResult) resultPrint {
	return resultPrint{string(r.Status), string(r.HookPhase), r.Message}
}

// seenResult is what crowsnest knows of one resource result of the
// current operation.
type seenResult struct {
	wave     waveKey
	seen     time.Time
	print    resultPrint
	hookType string
	timed    bool // false for results already there when the operation was first seen
}

// blockedWindowMessage is how Argo CD says a sync window holds a running
// operation (argo-cd controller/sync.go).
const blockedWindowMessage = "Sync operation blocked by sync window"

// liveObjects finds what crowsnest knows of a live object by kind,
// namespace and name.
type liveObjects func(kind, namespace, name string) (*model.Workload, bool)

// operationWaves follows the waves of an app's current operation.
type operationWaves struct {
	key opKey // the operation
	// live is false when crowsnest first saw the operation with results
	// already in it, or finished: it started before crowsnest watched, it
	// finished between two observations, or Argo CD carried the previous
	// operation's results into it (argoproj/argo-cd#29332). Such waves
	// have no trustworthy start; waves first seen later are still timed,
	// for a trace marked partial, but not observed as metrics.
	live     bool
	observed bool // a snapshot of the operation was seen
	done     bool
	// plannedChildren: the child Applications the operation is to sync
	// were noted (Tracker.planChildLinks), once per attempt.
	plannedChildren bool
	// attempt is the current attempt (Argo CD's retryCount when it
	// began) and floor when it began: no wave of it began before.
	attempt int64
	floor   time.Time
	// backoff: the current attempt failed and Argo CD waits to retry.
	backoff bool
	// attempts are the attempts that ended, in order; untimed those
	// whose end crowsnest missed, whose waves are not observed as
	// metrics.
	attempts []model.Attempt
	untimed  []int64
	// lastSeen is when the last snapshot of the operation was seen.
	lastSeen time.Time
	// stale holds the results of the attempt before the current one
	// while Argo CD still shows them (it clears them only after the
	// retry's first step).
	stale map[resultKey]resultPrint
	// waves holds the timed waves of every attempt; once done, in order
	// and ended.
	waves   []*waveTiming
	byKey   map[waveKey]*waveTiming
	results map[resultKey]seenResult // the current attempt's
	// earlier are the resource results of the attempts before the
	// current one, by wave.
	earlier map[waveKey][]model.Resource
	// waveOf are the waves of the app's resources from status.resources,
	// and pruneWave those of the resources the operation prunes, both
	// read from the first resource list the operation saw (pruned
	// resources leave status.resources as the operation runs); later
	// lists add to waveOf.
	waveOf        map[resultKey]int64
	pruneWave     map[resultKey]int64
	resourcesRead bool
	// syncLast is the last Sync wave of the resources the app lists
	// (once syncKnown).
	syncLast  int64
	syncKnown bool
	// blocked are the spans a sync window held the operation;
	// blockedSince is set while it does.
	blocked      []model.Interval
	blockedSince time.Time
}

// waveUpdate is what one snapshot taught about the current operation.
type waveUpdate struct {
	entered  []waveKey // waves first seen in this snapshot, in order
	children []childTouch
	// gaps are the times between the first results of two consecutive
	// waves of an attempt, where Argo CD slept its wave delay in between.
	gaps []time.Duration
	// finished is set in the snapshot that shows the operation finished.
	finished bool
}

// childTouch is an Application that a wave of an app-of-apps operation
// created or changed.
type childTouch struct {
	key  string // namespace/name
	wave waveKey
	at   time.Time
}

// observeWaves advances the timing of the app's current operation with the
// snapshot seen at now. delay is Argo CD's wave delay; live finds the live
// objects of hooks and pruned resources.
func (st *appState) observeWaves(now time.Time, delay time.Duration, live liveObjects) waveUpdate {
	var u waveUpdate
	op := st.app.Status.OperationState
	if op == nil {
		return u
	}
	ow := st.waves
	// Argo CD writes a failed attempt it will retry as Running with
	// finishedAt set (and retryCount already one up) until the backoff
	// ends; it clears finishedAt only to run the next attempt.
	retrying := op.Phase == synccommon.OperationRunning && op.FinishedAt != nil
	if ow == nil || ow.key != st.cur.key {
		attempt := op.RetryCount
		if retrying && attempt > 0 {
			attempt-- // first seen in a backoff: the attempt before it failed
		}
		ow = &operationWaves{
			key:     st.cur.key,
			floor:   op.StartedAt.Time,
			attempt: attempt,
			backoff: retrying,
			live: op.Phase == synccommon.OperationRunning && op.RetryCount == 0 &&
				(op.SyncResult == nil || len(op.SyncResult.Resources) == 0),
			byKey:   map[waveKey]*waveTiming{},
			results: map[resultKey]seenResult{},
		}
		st.waves = ow
	}
	if st.app.Status.ResourceCount() > 0 && !ow.resourcesRead {
		// The first list of the app's resources the operation saw:
		// Argo CD may start an operation before it compared the app.
		ow.waveOf, ow.pruneWave = resourceWaves(st.app, live)
		ow.resourcesRead = true
		ow.mergeWaves(st.app) // and syncLast
	}
	if ow.done {
		return u
	}
	// Results in the first snapshot of an operation not watched live
	// belong to no wave crowsnest saw begin.
	first := !ow.observed
	ow.observed = true
	lastSeen := ow.lastSeen
	ow.lastSeen = now
	if op.RetryCount > ow.attempt && op.Phase == synccommon.OperationRunning && op.FinishedAt == nil {
		if !ow.backoff {
			// crowsnest missed the last attempt's failure and backoff.
			// The snapshot may still show its last results (Argo CD's
			// first write of a retry keeps them): they are its. It
			// ended by the last snapshot that showed it; its waves,
			// their end unknown, are not observed as metrics.
			ow.observeResults(st.app, now, first, live, &u)
			ow.untimed = append(ow.untimed, ow.attempt)
			end := lastSeen
			if end.Before(ow.floor) {
				end = ow.floor
			}
			u.gaps = append(u.gaps, ow.endAttempt(end, end, delay)...)
		}
		ow.beginAttempt(op.RetryCount, now)
	}
	if !ow.backoff {
		ow.observeResults(st.app, now, first, live, &u)
		if ow.stale != nil && len(ow.results) == 0 && (retrying || op.Phase.Completed()) {
			// The attempt ended with the very results of the last one:
			// it ran them again.
			ow.stale = nil
			ow.observeResults(st.app, now, first, live, &u)
		}
	}
	ow.observeBlocked(op, now, delay, len(u.entered) > 0)
	if retrying && !ow.backoff {
		// The attempt failed; Argo CD waits its backoff to retry.
		u.gaps = append(u.gaps, ow.endAttempt(op.FinishedAt.Time, now, delay)...)
		ow.backoff = true
	}
	if !op.Phase.Completed() {
		return u
	}
	ow.done = true
	u.finished = true
	if !ow.blockedSince.IsZero() {
		ow.blocked = append(ow.blocked, model.Interval{Start: ow.blockedSince, End: now})
		ow.blockedSince = time.Time{}
	}
	// The last wave ends when the operation is seen finished, but no
	// later than Argo CD's finishedAt allows (it keeps whole seconds): an
	// operation that finished between two observations long apart does
	// not stretch its last wave.
	end := now
	if op.FinishedAt != nil {
		end = op.FinishedAt.Time
	}
	if ow.backoff {
		// Completed from the backoff: only a termination does that.
		sortWaves(ow.waves)
		return u
	}
	u.gaps = append(u.gaps, ow.finishAttempt(end, now, op.Phase == synccommon.OperationSucceeded, delay)...)
	sortWaves(ow.waves)
	for _, w := range ow.waves {
		w.blocked = overlap(ow.blocked, w.start, w.end)
	}
	return u
}

// observeBlocked follows the spans a sync window holds the operation.
// A hold ends when a snapshot no longer says so; when that snapshot shows
// a new wave, the wave began (and the hold ended) the delay before.
func (ow *operationWaves) observeBlocked(op *v1alpha1.OperationState, now time.Time, delay time.Duration, entered bool) {
	held := op.Phase == synccommon.OperationRunning && strings.HasPrefix(op.Message, blockedWindowMessage)
	switch {
	case held && ow.blockedSince.IsZero():
		ow.blockedSince = now
	case !held && !ow.blockedSince.IsZero():
		end := now
		if entered {
			end = now.Add(-delay)
			if end.Before(ow.blockedSince) {
				end = ow.blockedSince
			}
		}
		ow.blocked = append(ow.blocked, model.Interval{Start: ow.blockedSince, End: end})
		ow.blockedSince = time.Time{}
	}
}

// beginAttempt starts attempt n of the operation at now. The last
// attempt's results stay stale until Argo CD replaces them.
func (ow *operationWaves) beginAttempt(n int64, now time.Time) {
	ow.stale = make(map[resultKey]resultPrint, len(ow.results))
	for k, r := range ow.results {
		ow.stale[k] = r.print
		if !r.timed {
			continue
		}
		if ow.earlier == nil {
			ow.earlier = map[waveKey][]model.Resource{}
		}
		hookPhase := r.print.hookPhase
		if r.hookType == "" {
			hookPhase = ""
		}
		ow.earlier[r.wave] = append(ow.earlier[r.wave], model.Resource{
			Group: k.group, Kind: k.kind, Namespace: k.namespace, Name: k.name,
			Status: r.print.status, HookPhase: hookPhase, HookType: r.hookType, Message: r.print.message, Seen: r.seen,
		})
	}
	for _, rs := range ow.earlier {
		// In the order they were seen, not the map's.
		slices.SortStableFunc(rs, func(a, b model.Resource) int {
			if c := a.Seen.Compare(b.Seen); c != 0 {
				return c
			}
			return strings.Compare(a.Kind+"/"+a.Namespace+"/"+a.Name, b.Kind+"/"+b.Namespace+"/"+b.Name)
		})
	}
	ow.results = map[resultKey]seenResult{}
	ow.attempt, ow.floor, ow.backoff = n, now, false
	if len(ow.attempts) > maxKeptAttempts {
		// Endless retries (a negative limit): keep the first attempt
		// and the last ones, so memory and the trace stay bounded.
		drop := ow.attempts[1].N
		ow.attempts = slices.Delete(ow.attempts, 1, 2)
		ow.waves = slices.DeleteFunc(ow.waves, func(w *waveTiming) bool { return w.attempt == drop })
		for k := range ow.byKey {
			if k.attempt == drop {
				delete(ow.byKey, k)
			}
		}
		for k := range ow.earlier {
			if k.attempt == drop {
				delete(ow.earlier, k)
			}
		}
	}
}

// release drops what the finished operation kept per resource and per
// wave, once handed off: only its identity and done stay, to know it again.
func (ow *operationWaves) release() {
	ow.results, ow.earlier, ow.stale = nil, nil, nil
	ow.waves, ow.byKey, ow.waveOf, ow.pruneWave = nil, nil, nil, nil
}

// maxKeptAttempts bounds the attempts of one operation crowsnest keeps.
const maxKeptAttempts = 10

// endAttempt ends the current attempt, which failed, at end (Argo CD's
// time of the failure, no later than now).
func (ow *operationWaves) endAttempt(end, now time.Time, delay time.Duration) []time.Duration {
	return ow.finishAttempt(end, now, false, delay)
}

// finishAttempt dates the current attempt's waves: each starts the delay
// before it was first seen where Argo CD slept before writing its results,
// and ends where the next begins; the last ends at end, no later than now
// and no later than one second past it (Argo CD keeps whole seconds). It
// returns the gaps between waves that tell Argo CD's delay.
func (ow *operationWaves) finishAttempt(end, now time.Time, succeeded bool, delay time.Duration) []time.Duration {
	if limit := end.Add(time.Second); now.After(limit) {
		now = limit
	}
	end = now
	var waves []*waveTiming
	for _, w := range ow.waves {
		if w.attempt == ow.attempt {
			waves = append(waves, w)
		}
	}
	ow.attempts = append(ow.attempts, model.Attempt{N: ow.attempt, Start: ow.floor, End: end})
	sortWaves(waves)
	failed := map[waveKey]bool{}
	for _, r := range ow.results {
		if r.print.status == string(synccommon.ResultCodeSyncFailed) {
			failed[r.wave] = true
		}
	}
	var gaps []time.Duration
	// Move each start back by the delay Argo CD slept before writing the
	// wave's results, but not before the previous wave was seen (or the
	// attempt started). Work from the last wave back: seen times first.
	for i := len(waves) - 1; i >= 0; i-- {
		w := waves[i]
		// Argo CD sleeps after a wave that applied unless it is the
		// operation's final one (gitops-engine's finalWave): the last
		// wave of an attempt that failed after it applied (a hook that
		// failed, a retry) slept when more were to come — its Sync waves
		// for a PreSync wave, a later Sync wave for a Sync wave.
		last := i == len(waves)-1 && (succeeded || !ow.moreAfter(w.waveKey))
		if last || failed[w.waveKey] || !ow.live && i == 0 {
			continue
		}
		floor := ow.floor
		if i > 0 {
			floor = waves[i-1].seen
			// Argo CD slept between two writes: waves first seen in
			// one snapshot (results it found rather than ran, as a
			// retry finding the last attempt's hooks) tell nothing.
			if ow.live && w.seen.After(floor) {
				gaps = append(gaps, w.seen.Sub(floor))
			}
		}
		if start := w.seen.Add(-delay); start.After(floor) {
			w.start = start
		} else if floor.Before(w.seen) {
			w.start = floor
		}
	}
	for i, w := range waves {
		if w.start.After(end) {
			// First seen in the snapshot that showed the end, later
			// than Argo CD's finishedAt allows: the watch lagged.
			w.start = end
		}
		w.end = end
		if i+1 < len(waves) && waves[i+1].start.Before(end) {
			w.end = waves[i+1].start
		}
		if w.end.Before(w.start) {
			w.end = w.start
		}
	}
	return gaps
}

// observeResults times the waves of the results first seen in this
// snapshot.
func (ow *operationWaves) observeResults(app *v1alpha1.Application, now time.Time, first bool, live liveObjects, u *waveUpdate) {
	op := app.Status.OperationState
	if op.SyncResult == nil {
		return
	}
	results := op.SyncResult.Resources
	if ow.stale != nil {
		if sameResults(results, ow.stale) {
			return // still the last attempt's
		}
		ow.stale = nil
	}
	merged := false
	for _, r := range results {
		if r == nil {
			continue // never written by Argo CD, but a recording may hold it
		}
		rk := resultKeyOf(r)
		if sr, ok := ow.results[rk]; ok {
			// Argo CD updates a result as its task runs (a hook's
			// phase and message): keep the latest.
			sr.print, sr.hookType = printOf(r), string(r.HookType)
			ow.results[rk] = sr
			continue
		}
		if !merged {
			ow.mergeWaves(app)
			merged = true
		}
		k := waveKey{attempt: ow.attempt, phase: string(r.SyncPhase), wave: ow.waveOfResult(r, live)}
		timed := ow.live || !first
		ow.results[rk] = seenResult{wave: k, seen: now, print: printOf(r), hookType: string(r.HookType), timed: timed}
		if !timed {
			continue
		}
		w := ow.byKey[k]
		if w == nil {
			w = &waveTiming{waveKey: k, seen: now, start: now}
			ow.byKey[k] = w
			ow.waves = append(ow.waves, w)
			u.entered = append(u.entered, k)
		}
		w.resources++
		if r.Group == argoGroup && r.Kind == "Application" && !unchanged(r) {
			u.children = append(u.children, childTouch{key: r.Namespace + "/" + r.Name, wave: k, at: now})
		}
	}
}

// moreAfter reports whether the operation had waves to run after k, as
// far as crowsnest can tell: the Sync phase after PreSync, a later Sync
// wave of a resource the app lists. PostSync hooks are in no list: after
// a Sync or PostSync wave, crowsnest assumes none.
func (ow *operationWaves) moreAfter(k waveKey) bool {
	switch k.phase {
	case "PreSync":
		return true
	case "Sync":
		return ow.syncKnown && k.wave != model.UnknownWave && k.wave < ow.syncLast
	}
	return false
}

// mergeWaves adds the waves of the app's current resource list to those
// read before: a resource Argo CD lists later (it compared the app after
// the operation began) gets its wave, one it no longer lists keeps its.
func (ow *operationWaves) mergeWaves(app *v1alpha1.Application) {
	var selected []v1alpha1.SyncOperationResource
	if op := app.Status.OperationState; op != nil && op.Operation.Sync != nil {
		selected = op.Operation.Sync.Resources
	}
	for r := range app.Status.AllResources() {
		if r.RequiresPruning {
			continue
		}
		k := resultKey{"", r.Group, r.Kind, r.Namespace, r.Name}
		// A selective sync's final wave is that of the resources it
		// syncs (gitops-engine plans only those).
		inSync := len(selected) == 0 || slices.ContainsFunc(selected, func(s v1alpha1.SyncOperationResource) bool {
			return s.Group == r.Group && s.Kind == r.Kind && s.Name == r.Name && (s.Namespace == "" || s.Namespace == r.Namespace)
		})
		if !r.Hook && inSync && (!ow.syncKnown || r.SyncWave > ow.syncLast) {
			ow.syncLast, ow.syncKnown = r.SyncWave, true
		}
		if r.SyncWave != 0 {
			if ow.waveOf == nil {
				ow.waveOf = map[resultKey]int64{}
			}
			ow.waveOf[k] = r.SyncWave
		} else {
			delete(ow.waveOf, k)
		}
	}
}

// sameResults reports whether results are exactly the stale ones.
func sameResults(results []*v1alpha1.ResourceResult, stale map[resultKey]resultPrint) bool {
	n := 0
	for _, r := range results {
		if r == nil {
			continue
		}
		if p, ok := stale[resultKeyOf(r)]; !ok || p != printOf(r) {
			return false
		}
		n++
	}
	return n == len(stale)
}

// waveOfResult is the wave of the resource result r: a hook's from its
// live object, a pruned resource's as gitops-engine orders pruning, any
// other's from status.resources.
func (ow *operationWaves) waveOfResult(r *v1alpha1.ResourceResult, live liveObjects) int64 {
	objKey := resultKey{"", r.Group, r.Kind, r.Namespace, r.Name}
	if r.HookType != "" {
		if live != nil {
			if w, ok := live(r.Kind, r.Namespace, r.Name); ok {
				return w.SyncWave
			}
		}
		return model.UnknownWave
	}
	if w, ok := ow.pruneWave[objKey]; ok {
		return w
	}
	if r.Status == synccommon.ResultCodePruned || r.Status == synccommon.ResultCodePruneSkipped {
		return model.UnknownWave
	}
	return ow.waveOf[objKey]
}

// waveGaps keeps the last gaps seen between the first results of two
// consecutive waves where Argo CD slept its wave delay in between: each is
// at least that delay, so the shortest of many tells it. A configured
// delay longer than the shortest gap dates waves back too far; one much
// shorter than every gap may be too short.
type waveGaps struct {
	last     []time.Duration // ring of the last maxWaveGaps
	next     int
	min      time.Duration
	mismatch bool
}

// maxWaveGaps is how many gaps the check looks at; minWaveGaps how many
// it needs to judge.
const (
	maxWaveGaps = 64
	minWaveGaps = 3
	// waveGapSlack is the observation latency tolerated either way:
	// crowsnest sees each wave's results through a watch.
	waveGapSlack = 500 * time.Millisecond
	// waveGapLongSlack is how much longer than the delay the shortest of
	// a full ring of gaps may be: waves wait for health, hooks run.
	waveGapLongSlack = 3 * time.Second
)

// observe adds gaps and logs when the verdict on delay changes.
func (g *waveGaps) observe(gaps []time.Duration, delay time.Duration, logger *slog.Logger) {
	if len(gaps) == 0 {
		return
	}
	for _, d := range gaps {
		if len(g.last) < maxWaveGaps {
			g.last = append(g.last, d)
		} else {
			g.last[g.next] = d
			g.next = (g.next + 1) % maxWaveGaps
		}
	}
	g.min = slices.Min(g.last)
	mismatch := len(g.last) >= minWaveGaps && g.min < delay-waveGapSlack ||
		len(g.last) == maxWaveGaps && g.min > delay+waveGapLongSlack
	if mismatch != g.mismatch {
		g.mismatch = mismatch
		if mismatch {
			logger.Warn("the gaps observed between sync waves disagree with --argocd.sync-wave-delay; set it to Argo CD's ARGOCD_SYNC_WAVE_DELAY, or wave starts are dated wrong",
				"sync_wave_delay", delay, "shortest_gap", g.min.Round(time.Millisecond), "gaps", len(g.last))
		} else {
			logger.Info("the gaps observed between sync waves agree with --argocd.sync-wave-delay again", "sync_wave_delay", delay, "shortest_gap", g.min.Round(time.Millisecond))
		}
	}
}

// sortWaves orders waves as they ran.
func sortWaves(waves []*waveTiming) {
	sort.SliceStable(waves, func(i, j int) bool {
		a, b := waves[i], waves[j]
		if a.attempt != b.attempt {
			return a.attempt < b.attempt
		}
		if !a.seen.Equal(b.seen) {
			return a.seen.Before(b.seen)
		}
		return a.waveKey.less(b.waveKey)
	})
}

// overlap is how much of [start, end) the intervals cover.
func overlap(intervals []model.Interval, start, end time.Time) time.Duration {
	var d time.Duration
	for _, in := range intervals {
		s, e := in.Start, in.End
		if s.Before(start) {
			s = start
		}
		if e.After(end) {
			e = end
		}
		if e.After(s) {
			d += e.Sub(s)
		}
	}
	return d
}

// timedWaves returns the waves of the finished operation for metrics: only
// when it was watched from its start. Each attempt of a retried operation
// has its own.
func (ow *operationWaves) timedWaves() []model.WaveTiming {
	if ow == nil || !ow.done || !ow.live || len(ow.waves) == 0 {
		return nil
	}
	out := make([]model.WaveTiming, 0, len(ow.waves))
	for _, w := range ow.waves {
		if slices.Contains(ow.untimed, w.attempt) {
			continue
		}
		out = append(out, model.WaveTiming{Attempt: w.attempt, Phase: w.phase, Wave: w.wave, Start: w.start, End: w.end, Blocked: w.blocked, Resources: w.resources})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// lastAttempt returns the waves of the operation's last attempt.
func lastAttempt(waves []model.WaveTiming) []model.WaveTiming {
	i := len(waves)
	for i > 0 && waves[i-1].Attempt == waves[len(waves)-1].Attempt {
		i--
	}
	return waves[i:]
}

// unchanged reports whether Argo CD left the resource as it was (its
// message for an apply that changed nothing).
func unchanged(r *v1alpha1.ResourceResult) bool {
	return strings.HasSuffix(r.Message, " unchanged")
}

// phaseOrder is the order in which Argo CD runs sync phases.
func phaseOrder(phase string) int {
	switch phase {
	case "PreSync":
		return 0
	case "Sync":
		return 1
	case "PostSync":
		return 2
	case "SyncFail":
		return 3
	}
	return 0
}

func (k waveKey) less(o waveKey) bool {
	if k.attempt != o.attempt {
		return k.attempt < o.attempt
	}
	if k.phase != o.phase {
		return phaseOrder(k.phase) < phaseOrder(o.phase)
	}
	return k.wave < o.wave
}

// resourceWaves maps the app's resources (phase left empty) to their sync
// wave as Argo CD reports it in status.resources, and the resources the
// next sync prunes to the wave gitops-engine prunes them in
// (syncContext.getSyncTasks): the prune waves, read from the live objects,
// in reverse order; with PruneLast (the operation's or the app's sync
// option, or the object's annotation), after the Sync phase's last wave.
// A prune wave crowsnest cannot read is unknown, and so are those it would
// change the order of.
func resourceWaves(app *v1alpha1.Application, live liveObjects) (waves, prune map[resultKey]int64) {
	waves = make(map[resultKey]int64, app.Status.ResourceCount())
	var pruned []resultKey
	syncLast := int64(0)
	for r := range app.Status.AllResources() {
		k := resultKey{"", r.Group, r.Kind, r.Namespace, r.Name}
		if r.RequiresPruning {
			if !r.Hook {
				// Argo CD lists the last sync's live hooks as to
				// prune too; they are not pruned by a sync.
				pruned = append(pruned, k)
			}
			continue
		}
		if r.SyncWave != 0 {
			waves[k] = r.SyncWave
		}
		if !r.Hook && r.SyncWave > syncLast {
			syncLast = r.SyncWave
		}
	}
	if len(pruned) == 0 {
		return waves, nil
	}
	prune = make(map[resultKey]int64, len(pruned))
	pruneLast := map[resultKey]bool{}
	known := true
	var uniq []int64
	for _, k := range pruned {
		w, ok := (*model.Workload)(nil), false
		if live != nil {
			w, ok = live(k.kind, k.namespace, k.name)
		}
		if !ok {
			prune[k] = model.UnknownWave
			known = false
			continue
		}
		prune[k] = w.SyncWave
		pruneLast[k] = w.PruneLast
		if !slices.Contains(uniq, w.SyncWave) {
			uniq = append(uniq, w.SyncWave)
		}
	}
	slices.Sort(uniq)
	if len(uniq) > 0 && uniq[len(uniq)-1] > syncLast {
		syncLast = uniq[len(uniq)-1]
	}
	all := syncOption(app, "PruneLast=true")
	for k, w := range prune {
		switch {
		case all || pruneLast[k]:
			if known {
				prune[k] = syncLast + 1
			} else {
				prune[k] = model.UnknownWave
			}
		case !known:
			prune[k] = model.UnknownWave
		case w != model.UnknownWave:
			i := slices.Index(uniq, w)
			prune[k] = uniq[len(uniq)-1-i]
		}
	}
	return waves, prune
}

// syncOption reports whether the app's running (else requested) operation,
// else its sync policy,
// has the sync option opt.
func syncOption(app *v1alpha1.Application, opt string) bool {
	var opts v1alpha1.SyncOptions
	switch {
	case app.Status.OperationState != nil && app.Status.OperationState.Operation.Sync != nil && app.Status.OperationState.Operation.Sync.SyncOptions != nil:
		opts = app.Status.OperationState.Operation.Sync.SyncOptions
	case app.Operation != nil && app.Operation.Sync != nil && app.Operation.Sync.SyncOptions != nil:
		opts = app.Operation.Sync.SyncOptions
	case app.Spec.SyncPolicy != nil:
		opts = app.Spec.SyncPolicy.SyncOptions
	}
	return opts.HasOption(opt)
}

// phaseEntered reports whether k is the first wave of its phase timed in
// its attempt.
func (ow *operationWaves) phaseEntered(k waveKey) bool {
	for _, w := range ow.waves {
		if w.attempt == k.attempt && w.phase == k.phase {
			return w.waveKey == k
		}
	}
	return false
}
