package tracker

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/model"
)

// rolloutApp returns app name in env as an ApplicationSet's RollingSync
// leaves it: the template's automated block kept, turned off.
func rolloutApp(name, env string) *v1alpha1.Application {
	off, on := false, true
	return newApp(func(a *v1alpha1.Application) {
		a.Name, a.UID = name, types.UID("uid-"+name)
		a.Labels = map[string]string{"env": env}
		a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{Enabled: &off, SelfHeal: &on, Prune: &on}}
	})
}

// appSet returns the two-step ApplicationSet "shop" with the given app
// statuses (name, step, status, seconds after t0 of the last transition).
func appSet(created time.Time, apps ...[4]any) *v1alpha1.ApplicationSet {
	s := &v1alpha1.ApplicationSet{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "argocd", UID: "uid-shop", CreationTimestamp: metav1.NewTime(created)},
		Spec: v1alpha1.ApplicationSetSpec{Strategy: &v1alpha1.ApplicationSetStrategy{
			Type: "RollingSync", RollingSync: &v1alpha1.ApplicationSetRolloutStrategy{Steps: make([]v1alpha1.ApplicationSetRolloutStep, 2)},
		}},
	}
	for _, a := range apps {
		s.Status.ApplicationStatus = append(s.Status.ApplicationStatus, v1alpha1.ApplicationSetApplicationStatus{
			Application: a[0].(string), Step: a[1].(string), Status: a[2].(string), LastTransitionTime: mtime(at(time.Duration(a[3].(int)) * time.Second)),
		})
	}
	return s
}

// viewOf returns the view of app argocd/name now.
func (t *Tracker) viewOf(tb testing.TB, name string) *model.AppView {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	key := model.Key("argocd", name)
	st := t.apps[key]
	if st == nil {
		tb.Fatalf("no app %s", key)
	}
	return t.view(key, st)
}

// collected is what a test subscriber collected, safe for concurrent use.
type collected[T any] struct {
	mu    sync.Mutex
	items []T
}

func (c *collected[T]) add(x T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items = append(c.items, x)
}

func (c *collected[T]) all() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.items...)
}

// factRecorder collects facts.
type factRecorder struct{ collected[*model.Fact] }

func (r *factRecorder) Fact(f *model.Fact) { r.add(f) }

// subscribeRollouts subscribes the exposition of RollingSyncs to tr, as
// the daemon does, and returns it.
func subscribeRollouts(tr *Tracker) *exposition.Rollouts {
	x := exposition.NewRollouts()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.subs.Rollouts = append(tr.subs.Rollouts, x)
	return x
}

// gathered returns the value of the one sample of a family c collects
// with the given labels (histograms: their sample count), and whether
// there is one.
func gathered(t *testing.T, c prometheus.Collector, name string, labels ...string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, labels) {
				if h := m.GetHistogram(); h != nil {
					return float64(h.GetSampleCount()), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// TestRollingSync follows a two-step RollingSync as Argo CD v3.6.1's
// ApplicationSet controller writes it (TestRollingSync in test/e2e runs the
// real one): its apps are judged auto-synced while it manages them, held
// while Waiting or Pending, and each step is timed once per round that
// synced it, from the status's transition times.
func TestRollingSync(t *testing.T) {
	tr, s := newTestTracker()
	facts := &factRecorder{}
	tr.subs.Facts = append(tr.subs.Facts, facts)
	col := subscribeRollouts(tr)
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: rolloutApp("web", "dev")})
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: rolloutApp("api", "stage")})
	expect := func(desc string, want float64, metric string, labels ...string) {
		t.Helper()
		got, ok := value(t, s, metric, labels...)
		if !ok {
			got, ok = gathered(t, col, metric, labels...)
		}
		if !ok || got != want {
			t.Errorf("%s: %s%v = %v (present %v), want %v", desc, metric, labels, got, ok, want)
		}
	}
	expect("before any ApplicationSet", 1, "crowsnest_app_policy_violation", "name", "web", "policy", "auto_sync")

	// The creation round: both Waiting, then step 1 runs.
	tr.HandleApplicationSet(model.ApplicationSetEvent{Type: model.Added, ApplicationSet: appSet(t0, [4]any{"web", "1", "Waiting", 1}, [4]any{"api", "2", "Waiting", 1})})
	for _, name := range []string{"web", "api"} {
		for _, policy := range []string{"auto_sync", "self_heal", "prune"} {
			expect("managed by the rollout", 0, "crowsnest_app_policy_violation", "name", name, "policy", policy)
		}
	}
	if v := tr.viewOf(t, "web"); !v.Status().AutoSync || !v.Status().HeldByRollout {
		t.Errorf("web Waiting: %+v, want auto-synced and held by the rollout", v.Status())
	}
	expect("Waiting", 1, "crowsnest_app_rollout_status", "name", "web", "applicationset", "shop", "step", "1", "status", "Waiting")
	expect("Waiting", 1, "crowsnest_applicationset_rollout_step", "applicationset", "shop")
	expect("Waiting", 2, "crowsnest_applicationset_rollout_steps", "applicationset", "shop")
	expect("Waiting", 1, "crowsnest_applicationset_rollout_apps", "applicationset", "shop", "step", "2", "status", "Waiting")
	for _, st := range [][4]any{{"web", "1", "Pending", 3}, {"web", "1", "Progressing", 5}, {"web", "1", "Healthy", 9}} {
		tr.HandleApplicationSet(model.ApplicationSetEvent{Type: model.Modified, ApplicationSet: appSet(t0, st, [4]any{"api", "2", "Waiting", 1})})
	}
	if v := tr.viewOf(t, "web"); v.Status().HeldByRollout {
		t.Error("web Healthy: still held by the rollout")
	}
	expect("step 1 done", 2, "crowsnest_applicationset_rollout_step", "applicationset", "shop")
	expect("step 1 done", 1, "crowsnest_applicationset_rollout_step_duration_seconds", "applicationset", "shop", "step", "1")
	if _, ok := gathered(t, col, "crowsnest_applicationset_rollout_step_duration_seconds", "applicationset", "shop", "step", "2"); ok {
		t.Error("step 2 timed before it ran")
	}
	// Step 2: its Pending seen, Progressing missed between two events.
	for _, st := range [][4]any{{"api", "2", "Pending", 10}, {"api", "2", "Healthy", 12}} {
		tr.HandleApplicationSet(model.ApplicationSetEvent{Type: model.Modified, ApplicationSet: appSet(t0, [4]any{"web", "1", "Healthy", 9}, st)})
	}
	expect("complete", 0, "crowsnest_applicationset_rollout_step", "applicationset", "shop")
	sums := map[string]float64{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				sums[mf.GetName()+"/"+m.GetLabel()[2].GetValue()] = h.GetSampleSum()
			}
		}
	}
	for k, want := range map[string]float64{
		"crowsnest_applicationset_rollout_step_wait_seconds/1": 2, "crowsnest_applicationset_rollout_step_duration_seconds/1": 6,
		"crowsnest_applicationset_rollout_step_wait_seconds/2": 9, "crowsnest_applicationset_rollout_step_duration_seconds/2": 2,
	} {
		if sums[k] != want {
			t.Errorf("%s = %v s, want %v (all: %v)", k, sums[k], want, sums)
		}
	}

	// A round in which no app needed a sync (Waiting → Healthy) times
	// nothing.
	tr.HandleApplicationSet(model.ApplicationSetEvent{Type: model.Modified, ApplicationSet: appSet(t0, [4]any{"web", "1", "Waiting", 20}, [4]any{"api", "2", "Waiting", 20})})
	tr.HandleApplicationSet(model.ApplicationSetEvent{Type: model.Modified, ApplicationSet: appSet(t0, [4]any{"web", "1", "Healthy", 21}, [4]any{"api", "2", "Healthy", 21})})
	expect("no sync needed", 1, "crowsnest_applicationset_rollout_step_duration_seconds", "applicationset", "shop", "step", "1")
	expect("no sync needed", 1, "crowsnest_applicationset_rollout_step_wait_seconds", "applicationset", "shop", "step", "2")

	var changed []string
	for _, f := range facts.all() {
		if f.Name == model.FactRolloutStatusChanged && f.App == "argocd/web" {
			changed = append(changed, f.Attrs[5].(string))
		}
	}
	if want := "[Waiting Pending Progressing Healthy Waiting Healthy]"; fmt.Sprint(changed) != want {
		t.Errorf("rollout_status_changed facts of web: %v, want %s", changed, want)
	}

	// The ApplicationSet goes: its apps are judged by their own spec again
	// (auto-sync off), its series go.
	tr.HandleApplicationSet(model.ApplicationSetEvent{Type: model.Deleted, ApplicationSet: appSet(t0)})
	expect("ApplicationSet deleted", 1, "crowsnest_app_policy_violation", "name", "web", "policy", "auto_sync")
	if _, ok := value(t, s, "crowsnest_app_rollout_status", "name", "web"); ok {
		t.Error("crowsnest_app_rollout_status of web after its ApplicationSet was deleted")
	}
	if _, ok := gathered(t, col, "crowsnest_applicationset_rollout_step_duration_seconds", "applicationset", "shop"); ok {
		t.Error("step histograms of a deleted ApplicationSet")
	}
}

// At crowsnest's first look at an ApplicationSet, a step already past
// Waiting is not timed (its start is not known); one still Waiting is,
// from its transition time. Another shard's ApplicationSet exposes no
// series but still judges this shard's apps.
func TestRollingSyncFirstLookAndShards(t *testing.T) {
	tr, _ := newTestTracker()
	col := subscribeRollouts(tr)
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: rolloutApp("web", "dev")})
	old := t0.Add(-time.Hour)
	tr.HandleApplicationSet(model.ApplicationSetEvent{Type: model.Added, ApplicationSet: appSet(old, [4]any{"web", "1", "Progressing", -5}, [4]any{"api", "2", "Waiting", -60})})
	tr.HandleApplicationSet(model.ApplicationSetEvent{Type: model.Modified, ApplicationSet: appSet(old, [4]any{"web", "1", "Healthy", 3}, [4]any{"api", "2", "Pending", 4})})
	tr.HandleApplicationSet(model.ApplicationSetEvent{Type: model.Modified, ApplicationSet: appSet(old, [4]any{"web", "1", "Healthy", 3}, [4]any{"api", "2", "Healthy", 8})})
	if n, _ := gathered(t, col, "crowsnest_applicationset_rollout_step_duration_seconds", "step", "1"); n != 0 {
		t.Errorf("step 1, in progress at the first look, timed %v times", n)
	}
	if n, _ := gathered(t, col, "crowsnest_applicationset_rollout_step_wait_seconds", "step", "2"); n != 1 {
		t.Errorf("step 2, Waiting at the first look, timed %v times, want 1", n)
	}

	tr2, s2 := newTestTracker()
	tr2.SetApplicationSetOwner(func(types.UID) bool { return false })
	col2 := subscribeRollouts(tr2)
	tr2.Handle(model.Event{Type: model.Added, Time: t0, App: rolloutApp("web", "dev")})
	tr2.HandleApplicationSet(model.ApplicationSetEvent{Type: model.Added, ApplicationSet: appSet(t0, [4]any{"web", "1", "Pending", 1})})
	tr2.HandleApplicationSet(model.ApplicationSetEvent{Type: model.Modified, ApplicationSet: appSet(t0, [4]any{"web", "1", "Healthy", 3})})
	if _, ok := gathered(t, col2, "crowsnest_applicationset_rollout_step", "applicationset", "shop"); ok {
		t.Error("another shard's ApplicationSet has series here")
	}
	if _, ok := gathered(t, col2, "crowsnest_applicationset_rollout_step_duration_seconds", "applicationset", "shop"); ok {
		t.Error("another shard's ApplicationSet was timed here")
	}
	if v, ok := value(t, s2, "crowsnest_app_policy_violation", "name", "web", "policy", "auto_sync"); !ok || v != 0 {
		t.Errorf("this shard's app of another shard's ApplicationSet: auto_sync violation %v (present %v), want 0", v, ok)
	}
}
