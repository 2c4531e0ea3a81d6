package tracker

import (
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// hydrationState is what the tracker keeps of an app's Source Hydrator
// (status.sourceHydrator, written by the v3 controller's hydrator).
type hydrationState struct {
	// seen: the current hydrate operation was looked at once; the first
	// look only takes a baseline (an operation already finished is not
	// counted, as for syncs).
	seen bool
	// last identifies the finished operation last seen (counted or the
	// baseline): its start and finish (Unix seconds) and its phase.
	last hydrationKey
	// running: the operation last seen was Hydrating. Argo CD keeps whole
	// seconds, so a retry can fail within the second its predecessor
	// did and look the same; having seen it run tells it apart.
	running      bool
	laggingSince time.Time
	lastDuration time.Duration
	hasDuration  bool
	counts       [model.NumHydrationResults]uint64
}

// hydrationKey identifies a finished hydrate operation: by its start, which
// Argo CD's hydrator sets when it marks the app Hydrating and keeps while it
// runs (markAppsHydrating), and its result. Not by its end: the hydrator may
// hydrate one operation twice (its queue item fires twice, argo-cd#27926)
// and write it Hydrated twice with two finishedAt a second apart; seen in
// the e2e, that counted one hydration twice.
type hydrationKey struct {
	started int64
	phase   v1alpha1.HydrateOperationPhase
}

// observeHydration follows the app's current hydrate operation: its phase,
// how long the hydrated branch has lagged the dry source, the last
// successful hydration's duration, and each finished operation, counted once
// by result. The hydrator retries a failed operation as a new one (a new
// startedAt), so the lag runs from the first of an unbroken run of
// operations that have not succeeded.
func (t *Tracker) observeHydration(st *appState, facts factLog) {
	app := st.app
	if app.Spec.SourceHydrator == nil && app.Status.SourceHydrator.CurrentOperation == nil {
		st.hydration = nil
		return
	}
	h := st.hydration
	if h == nil {
		h = &hydrationState{}
		st.hydration = h
	}
	first := !h.seen
	h.seen = true
	op := app.Status.SourceHydrator.CurrentOperation
	if op == nil {
		return
	}
	phase := op.Phase
	if phase == v1alpha1.HydrateOperationPhaseHydrated {
		h.laggingSince = time.Time{}
	} else if h.laggingSince.IsZero() || op.StartedAt.Time.Before(h.laggingSince) {
		h.laggingSince = op.StartedAt.Time
	}
	finished := phase == v1alpha1.HydrateOperationPhaseHydrated || phase == v1alpha1.HydrateOperationPhaseFailed
	if !finished || op.FinishedAt == nil {
		h.running = phase == v1alpha1.HydrateOperationPhaseHydrating
		return
	}
	took := max(op.FinishedAt.Sub(op.StartedAt.Time), 0)
	if phase == v1alpha1.HydrateOperationPhaseHydrated {
		h.lastDuration, h.hasDuration = took, true
	}
	key := hydrationKey{op.StartedAt.Unix(), phase}
	if key == h.last && !h.running {
		return
	}
	h.last, h.running = key, false
	if first {
		return
	}
	for i, r := range model.HydrationResults() {
		if r == string(phase) {
			h.counts[i]++
		}
	}
	facts.add(model.FactHydrationFinished, op.FinishedAt.Time, "", "result", string(phase),
		"dry_sha", op.DrySHA, "hydrated_sha", op.HydratedSHA, "duration_seconds", took.Seconds(), "message", op.Message)
}

// hydrationView is the published form of h for app; nil without a source
// hydrator.
func hydrationView(app *v1alpha1.Application, h *hydrationState) *model.Hydration {
	if h == nil {
		return nil
	}
	s := &app.Status.SourceHydrator
	v := &model.Hydration{LaggingSince: h.laggingSince, LastDuration: h.lastDuration, HasLastDuration: h.hasDuration, Counts: h.counts}
	if op := s.CurrentOperation; op != nil {
		v.Phase = string(op.Phase)
	}
	if last := s.LastSuccessfulOperation; last != nil {
		v.DrySHA, v.HydratedSHA = last.DrySHA, last.HydratedSHA
	}
	return v
}
