package tracker

import (
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// ApplicationSet progressive syncs (RollingSync), as Argo CD v3.6.1's
// applicationset/progressivesync writes them: the ApplicationSet controller
// turns off the generated apps' own auto-sync (automated.enabled: false)
// and keeps, per app, a place in status.applicationStatus: its step and
// its status, Waiting (a new revision or spec; its step not reached) →
// Pending (its step reached; the controller sets the app's operation) →
// Progressing (a sync ran after it went Pending) → Healthy (Synced and
// Healthy). A step is reached when every app of the steps before it is
// Healthy; the rollout is in the lowest step with an app not Healthy.
//
// The tracker keeps, per app, its place (the app's view's Rollout: its
// policies and sync windows judge it auto-synced, its drift alert waits
// while the rollout holds it) and, per ApplicationSet, the round of each
// step: when its apps began to wait and when the step started, to time
// the wait (Waiting → first Pending) and the step (first Pending → last
// Healthy) once every app of the step is Healthy.

// rollouts is what the tracker knows of ApplicationSets' RollingSyncs.
type rollouts struct {
	sets map[string]*rolloutSet    // by ApplicationSet namespace/name
	apps map[string]*model.Rollout // by app key; never modified once set
	// owns tells whether this process exposes an ApplicationSet's series
	// (its shard's); nil: all.
	owns func(types.UID) bool
}

// RolloutSubscriber receives the state of every ApplicationSet with a
// RollingSync this process exposes, on each change, its deletion, and
// each step's round once timed.
type RolloutSubscriber interface {
	SetRollout(r *model.ApplicationSetRollout)
	DeleteRollout(namespace, name string)
	RolloutStepTimed(s model.RolloutStepTiming)
}

// rolloutSet is one ApplicationSet with a RollingSync.
type rolloutSet struct {
	uid             types.UID
	namespace, name string
	steps           int
	// apps are the status's entries (the object's; never modified).
	apps []v1alpha1.ApplicationSetApplicationStatus
	// rounds are the steps being rolled out, by step.
	rounds map[string]*stepRound
}

// stepRound is one rollout of a step: since when its apps waited, and
// when the first of them went Pending (zero: not yet, or before
// crowsnest's first look, when the round is not timed).
type stepRound struct {
	waiting, started time.Time
	untimed          bool
}

func newRollouts() rollouts {
	return rollouts{sets: map[string]*rolloutSet{}, apps: map[string]*model.Rollout{}}
}

// exposed reports whether this process exposes set's series.
func (r *rollouts) exposed(set *rolloutSet) bool {
	return r.owns == nil || r.owns(set.uid)
}

// of returns where a RollingSync has the app namespace/name; nil if none.
func (r *rollouts) of(namespace, name string) *model.Rollout {
	return r.apps[model.Key(namespace, name)]
}

// SetApplicationSetOwner sets which ApplicationSets this process exposes
// the rollout series of (by UID): with sharding, the shard the UID hashes
// to, so that each ApplicationSet's series come from one shard. Every
// shard still judges its own apps by their rollout. Call it before the
// first event.
func (t *Tracker) SetApplicationSetOwner(owns func(types.UID) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rollouts.owns = owns
}

// HandleApplicationSet applies one ApplicationSet event: where its
// RollingSync has each app, and the timing of its steps.
func (t *Tracker) HandleApplicationSet(e model.ApplicationSetEvent) {
	s := e.ApplicationSet
	if s == nil {
		return
	}
	var out outbox
	t.mu.Lock()
	defer t.unlockAndPublish(&out)
	now := time.Now()
	t.start(now)
	key := model.Key(s.Namespace, s.Name)
	r := &t.rollouts
	old := r.sets[key]
	if old != nil && old.uid != s.UID {
		t.dropRollout(old, &out)
		old = nil
	}
	var set *rolloutSet
	if e.Type != model.Deleted && s.RollingSync() {
		set = &rolloutSet{uid: s.UID, namespace: s.Namespace, name: s.Name, steps: len(s.Spec.Strategy.RollingSync.Steps), apps: s.Status.ApplicationStatus, rounds: map[string]*stepRound{}}
		if old != nil {
			set.rounds = old.rounds
		}
		r.sets[key] = set
		t.observeRounds(set, old == nil && t.existed(s.CreationTimestamp.Time), &out)
		if r.exposed(set) {
			out.rollouts = append(out.rollouts, set.state())
		}
	} else if old != nil {
		t.dropRollout(old, &out)
		delete(r.sets, key)
	}
	t.placeApps(old, set, &out)
}

// dropRollout publishes that set's series go.
func (t *Tracker) dropRollout(set *rolloutSet, out *outbox) {
	if t.rollouts.exposed(set) {
		out.rolloutsDeleted = append(out.rolloutsDeleted, [2]string{set.namespace, set.name})
	}
}

// state is set's current step and apps per step and status.
func (set *rolloutSet) state() *model.ApplicationSetRollout {
	out := &model.ApplicationSetRollout{Namespace: set.namespace, Name: set.name, Steps: set.steps, Apps: map[string][4]int{}}
	for step := 1; step <= set.steps; step++ {
		out.Apps[strconv.Itoa(step)] = [4]int{}
	}
	for _, a := range set.apps {
		n := out.Apps[a.Step]
		for i, s := range model.RolloutStatuses() {
			if a.Status == s {
				n[i]++
			}
		}
		out.Apps[a.Step] = n
	}
	for step := 1; step <= set.steps; step++ {
		if n := out.Apps[strconv.Itoa(step)]; n[0]+n[1]+n[2] > 0 {
			out.Current = step
			break
		}
	}
	return out
}

// placeApps updates the apps' places from old's to set's (either may be
// nil), publishing the view of each app whose place changed, with a
// rollout_status_changed fact.
func (t *Tracker) placeApps(old, set *rolloutSet, out *outbox) {
	r := &t.rollouts
	changed := map[string]*model.Rollout{}
	if old != nil {
		for _, a := range old.apps {
			changed[model.Key(old.namespace, a.Application)] = nil
		}
	}
	if set != nil {
		for _, a := range set.apps {
			p := &model.Rollout{ApplicationSet: set.name, Step: a.Step, Status: a.Status}
			if a.LastTransitionTime != nil {
				p.Since = a.LastTransitionTime.Time
			}
			changed[model.Key(set.namespace, a.Application)] = p
		}
	}
	for key, p := range changed {
		prev := r.apps[key]
		if prev != nil && p != nil && *prev == *p || prev == nil && p == nil {
			continue
		}
		if p == nil {
			delete(r.apps, key)
		} else {
			r.apps[key] = p
		}
		st := t.apps[key]
		if st == nil {
			continue
		}
		t.observeWindow(st)
		if p != nil && (prev == nil || prev.Status != p.Status || prev.Step != p.Step) && !p.Since.Before(t.started) {
			facts := factLog{out: out, app: key, project: st.app.Spec.Project, env: st.env, dest: st.dest}
			facts.add(model.FactRolloutStatusChanged, p.Since, "", "applicationset", p.ApplicationSet, "step", p.Step, "status", p.Status)
		}
		out.views = append(out.views, t.view(key, st))
	}
}

// observeRounds opens, times and closes the rounds of set's steps. At
// crowsnest's first look at an ApplicationSet (firstLook), a step already
// past Waiting began before crowsnest could see it: its round is not timed.
func (t *Tracker) observeRounds(set *rolloutSet, firstLook bool, out *outbox) {
	// Per step: how many apps in all, Waiting, Pending or Progressing
	// (started) and Healthy; the first Waiting, the first started and the
	// last Healthy transition.
	type stepApps struct {
		waiting, started, healthy, all     int
		firstWaiting, firstStarted, lastOK time.Time
	}
	// earliest keeps in *t the earliest of the n times seen so far.
	earliest := func(t *time.Time, n int, at time.Time) {
		if n == 1 || at.Before(*t) {
			*t = at
		}
	}
	byStep := map[string]*stepApps{}
	for _, a := range set.apps {
		c := byStep[a.Step]
		if c == nil {
			c = &stepApps{}
			byStep[a.Step] = c
		}
		c.all++
		var at time.Time
		if a.LastTransitionTime != nil {
			at = a.LastTransitionTime.Time
		}
		switch a.Status {
		case "Waiting":
			c.waiting++
			earliest(&c.firstWaiting, c.waiting, at)
		case "Pending", "Progressing":
			c.started++
			earliest(&c.firstStarted, c.started, at)
		case "Healthy":
			c.healthy++
			if at.After(c.lastOK) {
				c.lastOK = at
			}
		}
	}
	for step, c := range byStep {
		rd := set.rounds[step]
		if rd == nil && (c.waiting > 0 || c.started > 0) {
			rd = &stepRound{untimed: firstLook && c.started > 0}
			set.rounds[step] = rd
		}
		if rd == nil {
			continue
		}
		if c.waiting > 0 && (rd.waiting.IsZero() || c.firstWaiting.Before(rd.waiting)) && rd.started.IsZero() {
			rd.waiting = c.firstWaiting
		}
		if c.started > 0 && rd.started.IsZero() {
			rd.started = c.firstStarted
		}
		if c.healthy < c.all {
			continue
		}
		delete(set.rounds, step)
		if rd.untimed || rd.started.IsZero() || !t.rollouts.exposed(set) {
			continue // no sync was needed, or its start is unknown
		}
		timing := model.RolloutStepTiming{Namespace: set.namespace, ApplicationSet: set.name, Step: step,
			Duration: max(c.lastOK.Sub(rd.started), 0), Waited: !rd.waiting.IsZero()}
		if timing.Waited {
			timing.Wait = max(rd.started.Sub(rd.waiting), 0)
		}
		out.rolloutSteps = append(out.rolloutSteps, timing)
	}
	for step := range set.rounds {
		if byStep[step] == nil {
			delete(set.rounds, step) // the step lost its apps
		}
	}
}
