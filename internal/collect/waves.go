package collect

import (
	"sort"
	"strconv"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
)

// Argo CD records no times per sync wave: crowsnest times the waves itself.
// A wave (a sync phase and a wave number) starts when the first resource of
// it shows up in the operation's syncResult, and ends when the next wave
// starts or the operation is seen finished. A resource's wave comes from the
// app's status.resources (Argo CD omits wave 0 there); hooks are not listed
// there and count as wave 0 of their phase.

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

// operationWaves follows the waves of an app's current operation.
type operationWaves struct {
	start int64 // the operation's startedAt, Unix seconds
	retry int64 // the attempt: a retry clears syncResult and starts over
	// live is false when crowsnest first saw the operation with results
	// already in it: it started before crowsnest watched, or Argo CD
	// carried the previous operation's results into it
	// (argoproj/argo-cd#29332). Such waves have no trustworthy start.
	live     bool
	done     bool
	waves    []*waveTiming
	byKey    map[waveKey]*waveTiming
	resolved map[resultKey]bool
}

// observeWaves advances the timing of the app's current operation with the
// snapshot seen at now; it returns the operation's waves, in order, once
// when the operation is seen finished and its waves were timed live.
func (st *appState) observeWaves(now time.Time) []waveTiming {
	op := st.app.Status.OperationState
	if op == nil {
		return nil
	}
	ow := st.waves
	if ow == nil || ow.start != op.StartedAt.Unix() || ow.retry != op.RetryCount {
		ow = &operationWaves{
			start:    op.StartedAt.Unix(),
			retry:    op.RetryCount,
			live:     op.Phase == synccommon.OperationRunning && (op.SyncResult == nil || len(op.SyncResult.Resources) == 0),
			byKey:    map[waveKey]*waveTiming{},
			resolved: map[resultKey]bool{},
		}
		st.waves = ow
	}
	if ow.done {
		return nil
	}
	if op.SyncResult != nil {
		var waveOf map[resultKey]int64
		for _, r := range op.SyncResult.Resources {
			rk := resultKey{string(r.SyncPhase), r.Group, r.Kind, r.Namespace, r.Name}
			if ow.resolved[rk] {
				continue
			}
			ow.resolved[rk] = true
			if waveOf == nil {
				waveOf = resourceWaves(st.app)
			}
			k := waveKey{phase: string(r.SyncPhase), wave: waveOf[resultKey{"", r.Group, r.Kind, r.Namespace, r.Name}]}
			w := ow.byKey[k]
			if w == nil {
				w = &waveTiming{waveKey: k, start: now}
				ow.byKey[k] = w
				ow.waves = append(ow.waves, w)
			}
			w.resources++
		}
	}
	if !op.Phase.Completed() {
		return nil
	}
	ow.done = true
	if !ow.live || len(ow.waves) == 0 {
		return nil
	}
	sort.SliceStable(ow.waves, func(i, j int) bool {
		a, b := ow.waves[i], ow.waves[j]
		if !a.start.Equal(b.start) {
			return a.start.Before(b.start)
		}
		return a.waveKey.less(b.waveKey)
	})
	out := make([]waveTiming, len(ow.waves))
	for i, w := range ow.waves {
		w.end = now
		if i+1 < len(ow.waves) {
			w.end = ow.waves[i+1].start
		}
		out[i] = *w
	}
	return out
}

// phaseOrder is the order in which Argo CD runs sync phases.
var phaseOrder = map[string]int{"PreSync": 0, "Sync": 1, "PostSync": 2, "SyncFail": 3}

func (k waveKey) less(o waveKey) bool {
	if k.phase != o.phase {
		return phaseOrder[k.phase] < phaseOrder[o.phase]
	}
	return k.wave < o.wave
}

// waveLabel is the wave number as a label value.
func (k waveKey) waveLabel() string { return strconv.FormatInt(k.wave, 10) }

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
