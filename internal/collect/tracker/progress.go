package tracker

import (
	"slices"
	"time"

	"github.com/crowsnest/crowsnest/internal/model"
)

// etaRuns is how many of an app's last successful operations watched whole
// its sync's progress is predicted from.
const etaRuns = 5

// waveRun is one past operation's waves: how long each took and how long
// Argo CD took from the end of the last wave to finishedAt.
type waveRun struct {
	waves map[progressKey]time.Duration
	tail  time.Duration
}

// progressKey is a wave regardless of the attempt it ran in.
type progressKey struct {
	phase string
	wave  int64
}

func (k progressKey) less(o progressKey) bool {
	if k.phase != o.phase {
		return phaseOrder(k.phase) < phaseOrder(o.phase)
	}
	return k.wave < o.wave
}

// waveHistory keeps an app's last etaRuns successful operations' waves.
type waveHistory struct {
	runs []waveRun
}

// record adds the waves of a successful operation watched from its start,
// which finished at finished.
func (h *waveHistory) record(waves []model.WaveTiming, finished time.Time) {
	if len(waves) == 0 {
		return
	}
	r := waveRun{waves: make(map[progressKey]time.Duration, len(waves))}
	for i := range waves {
		w := &waves[i]
		r.waves[progressKey{w.Phase, w.Wave}] += w.Duration()
	}
	r.tail = max(finished.Sub(waves[len(waves)-1].End), 0)
	if len(h.runs) == etaRuns {
		h.runs = slices.Delete(h.runs, 0, 1)
	}
	h.runs = append(h.runs, r)
}

// median is the median duration of wave k over the runs that had it, and
// whether any had.
func (h *waveHistory) median(k progressKey) (time.Duration, bool) {
	var ds []time.Duration
	for _, r := range h.runs {
		if d, ok := r.waves[k]; ok {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return 0, false
	}
	return medianOf(ds), true
}

func medianOf(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

// keys are the waves the runs had, in the order Argo CD runs them.
func (h *waveHistory) keys() []progressKey {
	var ks []progressKey
	for _, r := range h.runs {
		for k := range r.waves {
			if !slices.Contains(ks, k) {
				ks = append(ks, k)
			}
		}
	}
	slices.SortFunc(ks, func(a, b progressKey) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	return ks
}

// progress is where the app's running operation is, and when it is
// expected to finish, as of now; nil when no operation runs (or a dry
// run does).
func (st *appState) progress(now time.Time) *model.SyncProgress {
	op := st.app.Status.OperationState
	ow := st.waves
	if op == nil || op.Phase.Completed() || dryRun(&op.Operation.Sync) || ow == nil || ow.key != st.cur.key || ow.done {
		return nil
	}
	p := &model.SyncProgress{Wave: model.UnknownWave}
	var cur *waveTiming
	for _, w := range ow.waves {
		if w.attempt == ow.attempt && (cur == nil || cur.waveKey.less(w.waveKey)) {
			cur = w
		}
	}
	if cur != nil {
		p.Phase, p.Wave = cur.phase, cur.wave
	}
	if len(st.history.runs) == 0 {
		return p
	}
	// From the start of the current wave (of the operation, before the
	// first), each wave still to run takes its median; the current one at
	// least until now.
	at := op.StartedAt.Time
	if cur != nil {
		at = cur.start
	}
	for _, k := range st.history.keys() {
		ck := progressKey{p.Phase, p.Wave}
		switch {
		case cur != nil && k == ck:
			d, _ := st.history.median(k)
			at = at.Add(d)
			if at.Before(now) {
				at = now
			}
		case cur == nil || ck.less(k):
			d, _ := st.history.median(k)
			at = at.Add(d)
			p.RemainingWaves++
		}
	}
	if at.Before(now) {
		at = now
	}
	var tails []time.Duration
	for _, r := range st.history.runs {
		tails = append(tails, r.tail)
	}
	p.ExpectedFinish = at.Add(medianOf(tails))
	if st.predicted.key != st.cur.key || st.predicted.at.IsZero() {
		st.predicted = prediction{key: st.cur.key, at: p.ExpectedFinish}
	}
	return p
}

// prediction is the first expected finish crowsnest computed for an
// operation: the trace shows it beside the real one.
type prediction struct {
	key opKey
	at  time.Time
}
