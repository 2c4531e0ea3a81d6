package exposition

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
)

// rolloutBuckets are the step wait and duration histograms' buckets: a step
// takes seconds to hours, a wait (steps before it, approvals) up to days.
var rolloutBuckets = []float64{5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400, 259200}

// Rollouts exposes the ApplicationSets' RollingSyncs the tracker publishes:
// each one's current step, its apps per step and status, and its steps'
// timings. It keeps the last state of each under its own lock, so a scrape
// never waits for the tracker.
type Rollouts struct {
	mu   sync.Mutex
	sets map[string]*model.ApplicationSetRollout

	current, steps, apps *prometheus.Desc
	wait, duration       *prometheus.HistogramVec
}

// NewRollouts returns an empty Rollouts; register it on the daemon's
// registry.
func NewRollouts() *Rollouts {
	labels := []string{"namespace", "applicationset"}
	return &Rollouts{
		sets: map[string]*model.ApplicationSetRollout{},
		current: prometheus.NewDesc("crowsnest_applicationset_rollout_step",
			"The step an ApplicationSet's RollingSync is in: the lowest step with an app not Healthy (Argo CD's RolloutProgressing condition), 0 when the rollout is complete.", labels, nil),
		steps: prometheus.NewDesc("crowsnest_applicationset_rollout_steps",
			"How many steps an ApplicationSet's RollingSync has.", labels, nil),
		apps: prometheus.NewDesc("crowsnest_applicationset_rollout_apps",
			"Apps of an ApplicationSet's RollingSync per step and status (Waiting: step not reached; Pending: sync asked for; Progressing: synced, not Healthy yet; Healthy). Step 0 holds apps no step selects, which the rollout never syncs.", append(labels, "step", "status"), nil),
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

// SetRollout keeps r, the ApplicationSet's latest state; r is never
// modified after.
func (x *Rollouts) SetRollout(r *model.ApplicationSetRollout) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.sets[r.Key()] = r
}

// DeleteRollout forgets the ApplicationSet namespace/name and its steps'
// timings.
func (x *Rollouts) DeleteRollout(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.sets, model.Key(namespace, name))
	labels := prometheus.Labels{"namespace": namespace, "applicationset": name}
	x.wait.DeletePartialMatch(labels)
	x.duration.DeletePartialMatch(labels)
}

// RolloutStepTimed observes a step's round.
func (x *Rollouts) RolloutStepTimed(s model.RolloutStepTiming) {
	labels := []string{s.Namespace, s.ApplicationSet, s.Step}
	if s.Waited {
		x.wait.WithLabelValues(labels...).Observe(s.Wait.Seconds())
	}
	x.duration.WithLabelValues(labels...).Observe(s.Duration.Seconds())
}

// Describe implements prometheus.Collector.
func (x *Rollouts) Describe(ch chan<- *prometheus.Desc) {
	ch <- x.current
	ch <- x.steps
	ch <- x.apps
	x.wait.Describe(ch)
	x.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (x *Rollouts) Collect(ch chan<- prometheus.Metric) {
	x.mu.Lock()
	sets := make([]*model.ApplicationSetRollout, 0, len(x.sets))
	for _, r := range x.sets {
		sets = append(sets, r)
	}
	x.mu.Unlock()
	for _, r := range sets {
		ch <- prometheus.MustNewConstMetric(x.current, prometheus.GaugeValue, float64(r.Current), r.Namespace, r.Name)
		ch <- prometheus.MustNewConstMetric(x.steps, prometheus.GaugeValue, float64(r.Steps), r.Namespace, r.Name)
		for step, n := range r.Apps {
			for i, s := range model.RolloutStatuses() {
				ch <- prometheus.MustNewConstMetric(x.apps, prometheus.GaugeValue, float64(n[i]), r.Namespace, r.Name, step, s)
			}
		}
	}
	x.wait.Collect(ch)
	x.duration.Collect(ch)
}
