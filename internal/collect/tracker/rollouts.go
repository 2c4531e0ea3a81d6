package tracker

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// rolloutBuckets are the step wait and duration histograms' buckets: a step
// takes seconds to hours, a wait (steps before it, approvals) up to days.
var rolloutBuckets = []float64{5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400, 259200}

// rollouts is what the tracker knows of ApplicationSets' RollingSyncs.
type rollouts struct {
	sets map[string]*rolloutSet    // by ApplicationSet namespace/name
	apps map[string]*model.Rollout // by app key; never modified once set
	// owns tells whether this process exposes an ApplicationSet's series
	// (its shard's); nil: all.
	owns           func(types.UID) bool
	wait, duration *prometheus.HistogramVec
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
	return rollouts{
		sets: map[string]*rolloutSet{}, apps: map[string]*model.Rollout{},
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crowsnest_applicationset_rollout_step_wait_seconds",
			Help:    "How long the apps of a RollingSync step waited for it: from the first of them going Waiting (a new revision or spec) to the step's first sync asked for (Pending), per ApplicationSet and step. Observed when every app of the step is Healthy; not for a step whose apps needed no sync.",
			Buckets: rolloutBuckets,
		}, []string{"namespace", "applicationset", "step"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crowsnest_applicationset_rollout_step_duration_seconds",
			Help:    "How long a RollingSync step took: from its first app going Pending to its last app Healthy, per ApplicationSet and step.",
			Buckets: rolloutBuckets,
		}, []string{"namespace", "applicationset", "step"}),
	}
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
		r.drop(old)
		old = nil
	}
	var set *rolloutSet
	if e.Type != model.Deleted && s.RollingSync() {
		set = &rolloutSet{uid: s.UID, namespace: s.Namespace, name: s.Name, steps: len(s.Spec.Strategy.RollingSync.Steps), apps: s.Status.ApplicationStatus, rounds: map[string]*stepRound{}}
		if old != nil {
			set.rounds = old.rounds
		}
		r.sets[key] = set
		t.observeRounds(set, old == nil && t.existed(s.CreationTimestamp.Time))
	} else if old != nil {
		r.drop(old)
		delete(r.sets, key)
	}
	t.placeApps(old, set, &out)
}

// drop forgets set's step histograms.
func (r *rollouts) drop(set *rolloutSet) {
	labels := prometheus.Labels{"namespace": set.namespace, "applicationset": set.name}
	r.wait.DeletePartialMatch(labels)
	r.duration.DeletePartialMatch(labels)
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
			facts := factLog{out: out, app: key, project: st.app.Spec.Project, env: st.env}
			facts.add(model.FactRolloutStatusChanged, p.Since, "", "applicationset", p.ApplicationSet, "step", p.Step, "status", p.Status)
		}
		out.views = append(out.views, t.view(key, st))
	}
}

// observeRounds opens, times and closes the rounds of set's steps. At
// crowsnest's first look at an ApplicationSet (firstLook), a step already
// past Waiting began before crowsnest could see it: its round is not timed.
func (t *Tracker) observeRounds(set *rolloutSet, firstLook bool) {
	type stepApps struct{ waiting, started, healthy, all int }
	byStep := map[string]*stepApps{}
	earliest := map[string]time.Time{} // per step: first Waiting
	pending := map[string]time.Time{}  // per step: first Pending or Progressing
	last := map[string]time.Time{}     // per step: last Healthy
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
			if e, ok := earliest[a.Step]; !ok || at.Before(e) {
				earliest[a.Step] = at
			}
		case "Pending", "Progressing":
			c.started++
			if p, ok := pending[a.Step]; !ok || at.Before(p) {
				pending[a.Step] = at
			}
		case "Healthy":
			c.healthy++
			if at.After(last[a.Step]) {
				last[a.Step] = at
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
		if w, ok := earliest[step]; ok && (rd.waiting.IsZero() || w.Before(rd.waiting)) && rd.started.IsZero() {
			rd.waiting = w
		}
		if p, ok := pending[step]; ok && rd.started.IsZero() {
			rd.started = p
		}
		if c.healthy < c.all {
			continue
		}
		delete(set.rounds, step)
		if rd.untimed || rd.started.IsZero() || t.rollouts.owns != nil && !t.rollouts.owns(set.uid) {
			continue // no sync was needed, or its start is unknown
		}
		labels := []string{set.namespace, set.name, step}
		if !rd.waiting.IsZero() {
			t.rollouts.wait.WithLabelValues(labels...).Observe(max(rd.started.Sub(rd.waiting), 0).Seconds())
		}
		t.rollouts.duration.WithLabelValues(labels...).Observe(max(last[step].Sub(rd.started), 0).Seconds())
	}
	for step := range set.rounds {
		if byStep[step] == nil {
			delete(set.rounds, step) // the step lost its apps
		}
	}
}

// rolloutCollector exposes each RollingSync's current step, its apps per
// step and status, and its steps' timing.
type rolloutCollector struct {
	t                   *Tracker
	current, steps, per *prometheus.Desc
}

// RolloutCollector returns the collector of the ApplicationSets'
// RollingSync series, for the daemon's registry.
func (t *Tracker) RolloutCollector() prometheus.Collector {
	labels := []string{"namespace", "applicationset"}
	return &rolloutCollector{
		t: t,
		current: prometheus.NewDesc("crowsnest_applicationset_rollout_step",
			"The step an ApplicationSet's RollingSync is in: the lowest step with an app not Healthy (Argo CD's RolloutProgressing condition), 0 when the rollout is complete.", labels, nil),
		steps: prometheus.NewDesc("crowsnest_applicationset_rollout_steps",
			"How many steps an ApplicationSet's RollingSync has.", labels, nil),
		per: prometheus.NewDesc("crowsnest_applicationset_rollout_apps",
			"Apps of an ApplicationSet's RollingSync per step and status (Waiting: step not reached; Pending: sync asked for; Progressing: synced, not Healthy yet; Healthy). Step 0 holds apps no step selects, which the rollout never syncs.", append(labels, "step", "status"), nil),
	}
}

// Describe implements prometheus.Collector.
func (c *rolloutCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.current
	ch <- c.steps
	ch <- c.per
	c.t.rollouts.wait.Describe(ch)
	c.t.rollouts.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	r := &c.t.rollouts
	for _, set := range r.sets {
		if r.owns != nil && !r.owns(set.uid) {
			continue
		}
		counts := map[string]*[4]int{}
		for step := 1; step <= set.steps; step++ {
			counts[strconv.Itoa(step)] = &[4]int{}
		}
		for _, a := range set.apps {
			n := counts[a.Step]
			if n == nil {
				n = &[4]int{}
				counts[a.Step] = n
			}
			for i, s := range model.RolloutStatuses() {
				if a.Status == s {
					n[i]++
				}
			}
		}
		current := 0
		for step := 1; step <= set.steps; step++ {
			n := counts[strconv.Itoa(step)]
			if n[0]+n[1]+n[2] > 0 {
				current = step
				break
			}
		}
		ch <- prometheus.MustNewConstMetric(c.current, prometheus.GaugeValue, float64(current), set.namespace, set.name)
		ch <- prometheus.MustNewConstMetric(c.steps, prometheus.GaugeValue, float64(set.steps), set.namespace, set.name)
		for step, n := range counts {
			for i, s := range model.RolloutStatuses() {
				ch <- prometheus.MustNewConstMetric(c.per, prometheus.GaugeValue, float64(n[i]), set.namespace, set.name, step, s)
			}
		}
	}
	r.wait.Collect(ch)
	r.duration.Collect(ch)
}
