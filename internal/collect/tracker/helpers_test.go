package tracker

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/collect/collecttest"
	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/model"
)

// t0 is when the tests' tracker starts: operations finished before it are
// a baseline, not counted.
var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// envByLabel classifies by the "env" label, defaulting to "unknown".
type envByLabel struct{}

func (envByLabel) Env(app *v1alpha1.Application) string {
	if e := app.Labels["env"]; e != "" {
		return e
	}
	return "unknown"
}

// CheckPolicies checks the default policies (the deployment model's).
func (envByLabel) CheckPolicies(app *v1alpha1.Application, env string, auto model.AutoSyncPolicy) []model.PolicyResult {
	return (&config.Config{}).CheckPolicies(app, env, auto)
}

// newTestTracker returns a tracker wired to the exposition's store.
// pipeline test: tracker and exposition together, on purpose (the tests
// that still read the store's text; those that need not use viewsSeen).
func newTestTracker() (*Tracker, *exposition.Store) {
	tr, s, _ := newTrackerWithRegistry(false)
	return tr, s
}

// newTrackerWithRegistry (pipeline test: tracker and exposition together,
// on purpose) wires a tracker to the outputs /metrics is made
// of, as cmd/exporter does, and returns the registry of the aggregated
// histograms; perApp adds the per-app ones.
func newTrackerWithRegistry(perApp bool) (*Tracker, *exposition.Store, *prometheus.Registry) {
	s := exposition.NewStore(perApp)
	reg := prometheus.NewRegistry()
	d := exposition.NewDurations(reg)
	return New(envByLabel{}, Subscribers{Views: []ViewSubscriber{s}, Operations: []OperationSubscriber{d, s}}, promslog.NewNopLogger()), s, reg
}

// addOperationSubscriber adds sub to the tracker's operation subscribers.
func (t *Tracker) addOperationSubscriber(sub OperationSubscriber) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.subs.Operations = append(t.subs.Operations, sub)
}

func mtime(t time.Time) *metav1.Time {
	m := metav1.NewTime(t)
	return &m
}

// newApp returns a minimal Application "web" in namespace argocd.
func newApp(mutate ...func(*v1alpha1.Application)) *v1alpha1.Application {
	return collecttest.WebApp(mutate...)
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// storeHistogram returns the sample count and sum of the store's histogram
// series of metric with the given labels (a subset match), added up.
func storeHistogram(t *testing.T, s *exposition.Store, metric string, labels ...string) (uint64, float64) {
	t.Helper()
	var n uint64
	var sum float64
	for _, m := range parseStore(t, s)[metric].GetMetric() {
		if labelsMatch(m, labels) {
			n += m.GetHistogram().GetSampleCount()
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return n, sum
}

// viewsSeen collects what the tracker hands its view subscribers: the
// views of apps, and the keys of the apps deleted.
type viewsSeen struct {
	collected[*model.AppView]
	deleted collected[string]
}

func (v *viewsSeen) SetApp(x *model.AppView) { v.add(x) }
func (v *viewsSeen) DeleteApp(key string)    { v.deleted.add(key) }

// last returns the last view handed on of app argocd/name, or nil.
func (v *viewsSeen) last(name string) *model.AppView {
	all := v.all()
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Key() == model.Key("argocd", name) {
			return all[i]
		}
	}
	return nil
}

// newViewTracker returns a tracker whose only subscriber collects views.
func newViewTracker() (*Tracker, *viewsSeen) {
	views := &viewsSeen{}
	return New(envByLabel{}, Subscribers{Views: []ViewSubscriber{views}}, promslog.NewNopLogger()), views
}
