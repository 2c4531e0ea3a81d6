package tracker

import (
	"sort"
	"strings"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"

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
// finished. A resource's wave comes from the app's status.resources (Argo
// CD omits wave 0 there); hooks are not listed there and count as wave 0 of
// their phase.

// waveKey identifies a wave of an operation.
type waveKey struct {
	phase string // PreSync, Sync, PostSync, SyncFail
	wave  int64
}

// waveTiming is one wave of an operation as crowsnest observed it.
type waveTiming struct {
	waveKey
	start, end time.Time
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

// seenResult is what crowsnest knows of one resource result of the
// current operation.
type seenResult struct {
	wave  waveKey
	seen  time.Time
	timed bool // false for results already there when the operation was first seen
}

// operationWaves follows the waves of an app's current operation.
type operationWaves struct {
	key opKey // the operation
	// floor is when the attempt began: startedAt, or when a retry that
	// started over was seen. No wave began before it.
	floor time.Time
	retry int64 // the attempt: a retry that clears syncResult starts over
	// live is false when crowsnest first saw the operation with results
	// already in it, or finished: it started before crowsnest watched, it
	// finished between two observations, or Argo CD carried the previous
	// operation's results into it (argoproj/argo-cd#29332). Such waves
	// have no trustworthy start; waves first seen later are still timed,
	// for a trace marked partial, but not observed as metrics.
	live     bool
	observed bool // a snapshot of the operation was seen
	done     bool
	// waves holds the timed waves; once done, in order and ended.
	waves   []*waveTiming
	byKey   map[waveKey]*waveTiming
	results map[resultKey]seenResult
	// retries are the times new attempts were first seen.
	retries []time.Time
}

// waveUpdate is what one snapshot taught about the current operation.
type waveUpdate struct {
	entered  []waveKey // waves first seen in this snapshot, in order
	children []childTouch
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
// snapshot seen at now.
// delay is Argo CD's wave delay.
func (st *appState) observeWaves(now time.Time, delay time.Duration) waveUpdate {
	var u waveUpdate
	op := st.app.Status.OperationState
	if op == nil {
		return u
	}
	key := st.cur.key
	ow := st.waves
	if ow != nil && ow.key == key && ow.retry != op.RetryCount && !ow.done &&
		op.SyncResult != nil && len(op.SyncResult.Resources) > 0 {
		// A retry that kept the last attempt's results (Argo CD
		// v2.14 does): the attempt goes on in the waves already timed.
		ow.retry = op.RetryCount
		ow.retries = append(ow.retries, now)
	}
	if ow == nil || ow.key != key || ow.retry != op.RetryCount {
		next := &operationWaves{
			key:     key,
			floor:   op.StartedAt.Time,
			retry:   op.RetryCount,
			live:    op.Phase == synccommon.OperationRunning && (op.SyncResult == nil || len(op.SyncResult.Resources) == 0),
			byKey:   map[waveKey]*waveTiming{},
			results: map[resultKey]seenResult{},
		}
		if ow != nil && ow.key == next.key {
			next.retries = append(ow.retries, now)
			next.floor = now
		}
		ow = next
		st.waves = ow
	}
	if ow.done {
		return u
	}
	// Results in the first snapshot of an operation not watched live
	// belong to no wave crowsnest saw begin.
	first := !ow.observed
	ow.observed = true
	if op.SyncResult != nil {
		var waveOf map[resultKey]int64
		for _, r := range op.SyncResult.Resources {
			if r == nil {
				continue // never written by Argo CD, but a recording may hold it
			}
			rk := resultKeyOf(r)
			if _, ok := ow.results[rk]; ok {
				continue
			}
			if waveOf == nil {
				waveOf = resourceWaves(st.app)
			}
			k := waveKey{phase: string(r.SyncPhase), wave: waveOf[resultKey{"", r.Group, r.Kind, r.Namespace, r.Name}]}
			timed := ow.live || !first
			ow.results[rk] = seenResult{wave: k, seen: now, timed: timed}
			if !timed {
				continue
			}
			w := ow.byKey[k]
			if w == nil {
				w = &waveTiming{waveKey: k, start: now}
				ow.byKey[k] = w
				ow.waves = append(ow.waves, w)
				u.entered = append(u.entered, k)
			}
			w.resources++
			if r.Group == "argoproj.io" && r.Kind == "Application" && !unchanged(r) {
				u.children = append(u.children, childTouch{key: r.Namespace + "/" + r.Name, wave: k, at: now})
			}
		}
	}
	if !op.Phase.Completed() {
		return u
	}
	ow.done = true
	u.finished = true
	sort.SliceStable(ow.waves, func(i, j int) bool {
		a, b := ow.waves[i], ow.waves[j]
		if !a.start.Equal(b.start) {
			return a.start.Before(b.start)
		}
		return a.waveKey.less(b.waveKey)
	})
	// The last wave ends when the operation is seen finished, but no
	// later than Argo CD's finishedAt allows (it keeps whole seconds): an
	// operation that finished between two observations long apart does
	// not stretch its last wave.
	end := now
	if op.FinishedAt != nil {
		if limit := op.FinishedAt.Add(time.Second); end.After(limit) {
			end = limit
		}
	}
	failed := map[waveKey]bool{}
	if op.SyncResult != nil {
		for _, r := range op.SyncResult.Resources {
			if r != nil && r.Status == synccommon.ResultCodeSyncFailed {
				failed[ow.results[resultKeyOf(r)].wave] = true
			}
		}
	}
	// Move each start back by the delay Argo CD slept before writing the
	// wave's results, but not before the previous wave was seen (or the
	// operation started). Work from the last wave back: seen times first.
	for i := len(ow.waves) - 1; i >= 0; i-- {
		w := ow.waves[i]
		// Argo CD sleeps after the operation's last wave only when
		// more were pending: an operation that failed in PreSync still
		// had its Sync waves to run.
		last := i == len(ow.waves)-1 && (op.Phase == synccommon.OperationSucceeded || w.phase != "PreSync")
		if last || failed[w.waveKey] || !ow.live && i == 0 {
			continue
		}
		floor := ow.floor
		if i > 0 {
			floor = ow.waves[i-1].start
		}
		if start := w.start.Add(-delay); start.After(floor) {
			w.start = start
		} else if floor.Before(w.start) {
			w.start = floor
		}
	}
	for i, w := range ow.waves {
		w.end = end
		if i+1 < len(ow.waves) {
			w.end = ow.waves[i+1].start
		}
		if w.end.Before(w.start) {
			w.end = w.start
		}
	}
	return u
}

// timedWaves returns the waves of the finished operation for metrics: only
// when it was watched from its start.
func (ow *operationWaves) timedWaves() []model.WaveTiming {
	if ow == nil || !ow.done || !ow.live || len(ow.waves) == 0 {
		return nil
	}
	out := make([]model.WaveTiming, len(ow.waves))
	for i, w := range ow.waves {
		out[i] = model.WaveTiming{Phase: w.phase, Wave: w.wave, Start: w.start, End: w.end, Resources: w.resources}
	}
	return out
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
	if k.phase != o.phase {
		return phaseOrder(k.phase) < phaseOrder(o.phase)
	}
	return k.wave < o.wave
}

// resourceWaves maps the app's resources (phase left empty) to their sync
// wave as Argo CD reports it in status.resources.
func resourceWaves(app *v1alpha1.Application) map[resultKey]int64 {
	m := make(map[resultKey]int64, len(app.Status.Resources))
	for _, r := range app.Status.Resources {
		if r.SyncWave != 0 {
			m[resultKey{"", r.Group, r.Kind, r.Namespace, r.Name}] = r.SyncWave
		}
	}
	return m
}

// phaseEntered reports whether k is the first wave of its phase timed in
// the operation.
func (ow *operationWaves) phaseEntered(k waveKey) bool {
	for _, w := range ow.waves {
		if w.phase == k.phase {
			return w.waveKey == k
		}
	}
	return false
}
