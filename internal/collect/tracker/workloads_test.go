package tracker

import (
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/model"
)

func deployment(name, appNS, app string, desired, ready int64) model.WorkloadEvent {
	return model.WorkloadEvent{Type: model.Modified, Time: t0, Workload: model.Workload{
		Kind: "Deployment", Namespace: "shop-dev", Name: name, App: app, AppNamespace: appNS,
		Replicas: map[string]int64{"desired": desired, "ready": ready, "updated": desired, "available": ready},
	}}
}

func namedApp(ns, name string) *v1alpha1.Application {
	return newApp(func(a *v1alpha1.Application) {
		a.Namespace, a.Name, a.UID = ns, name, types.UID("uid-"+ns+"-"+name)
		a.Labels = map[string]string{"env": "dev"}
	})
}

// Workloads join their app in the store, by tracking id with or without
// the app's namespace; a workload of an unknown app shows nowhere.
func TestWorkloadsJoinTheirApps(t *testing.T) {
	tr, s := newTestTracker()
	tr.HandleWorkload(deployment("early", "", "dev-backend", 2, 2)) // before its app
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: namedApp("argocd", "dev-backend")})
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: namedApp("team-a", "agent")})
	tr.HandleWorkload(deployment("backend", "", "dev-backend", 3, 1))
	tr.HandleWorkload(deployment("agent", "team-a", "agent", 1, 1))
	tr.HandleWorkload(deployment("orphan", "", "gone", 1, 1))
	for _, c := range []struct {
		app, workload string
		want          float64
	}{{"dev-backend", "shop-dev/early", 2}, {"dev-backend", "shop-dev/backend", 1}, {"agent", "shop-dev/agent", 1}} {
		if v, ok := value(t, s, "crowsnest_app_workload_replicas", "name", c.app, "workload", c.workload, "state", "ready", "env", "dev"); !ok || v != c.want {
			t.Errorf("%s of %s: ready %v (present %v), want %v", c.workload, c.app, v, ok, c.want)
		}
	}
	if _, ok := value(t, s, "crowsnest_app_workload_replicas", "workload", "shop-dev/orphan", "state", "ready"); ok {
		t.Error("a workload of an unknown app has series")
	}
	// The workload loses its tracking: its series go.
	tr.HandleWorkload(deployment("backend", "", "", 3, 1))
	if _, ok := value(t, s, "crowsnest_app_workload_replicas", "workload", "shop-dev/backend", "state", "ready"); ok {
		t.Error("a workload without tracking keeps its series")
	}
	tr.HandleWorkload(model.WorkloadEvent{Type: model.Deleted, Time: t0, Workload: model.Workload{Kind: "Deployment", Namespace: "shop-dev", Name: "early"}})
	if _, ok := value(t, s, "crowsnest_app_workload_replicas", "workload", "shop-dev/early", "state", "ready"); ok {
		t.Error("a deleted workload keeps its series")
	}
}

// Two apps of one name in different namespaces: deleting one hands its
// unqualified workloads to the other at once, not at its next event.
func TestDeletingOneOfTwoSameNamedAppsKeepsTheOthersWorkloads(t *testing.T) {
	tr, s := newTestTracker()
	a, b := namedApp("argocd", "web"), namedApp("team-b", "web")
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: a})
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: b})
	tr.HandleWorkload(deployment("web", "", "web", 2, 2))
	if _, ok := value(t, s, "crowsnest_app_workload_replicas", "namespace", "argocd", "workload", "shop-dev/web", "state", "ready"); !ok {
		t.Fatal("the unqualified workload did not join argocd/web, the first by key")
	}
	tr.Handle(model.Event{Type: model.Deleted, Time: at(time.Second), App: a})
	if _, ok := value(t, s, "crowsnest_app_workload_replicas", "namespace", "team-b", "workload", "shop-dev/web", "state", "ready"); !ok {
		t.Error("after argocd/web was deleted, team-b/web did not get the workload")
	}
	if s.Len() != 1 {
		t.Errorf("store holds %d apps, want 1", s.Len())
	}
}

// A workload seen degraded before crowsnest knows its app reports once the
// app is known, once.
func TestWorkloadDegradedFacts(t *testing.T) {
	facts := &factRecorder{}
	tr := New(envByLabel{}, Subscribers{Views: []ViewSubscriber{exposition.NewStore(false)}, Facts: []FactSubscriber{facts}}, promslog.NewNopLogger())
	count := func(name string) (n int) {
		for _, f := range facts.all() {
			if f.Name == name {
				n++
				if f.App != "argocd/dev-backend" {
					t.Errorf("%s of %s, want argocd/dev-backend", name, f.App)
				}
			}
		}
		return n
	}
	tr.HandleWorkload(deployment("backend", "", "dev-backend", 2, 1))
	if got := facts.all(); len(got) != 0 {
		t.Fatalf("facts for an app crowsnest does not know: %v", got)
	}
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: namedApp("argocd", "dev-backend")})
	tr.HandleWorkload(deployment("backend", "", "dev-backend", 2, 1))
	tr.HandleWorkload(deployment("backend", "", "dev-backend", 2, 1))
	if n := count(model.FactWorkloadDegraded); n != 1 {
		t.Fatalf("%d workload_degraded facts, want 1 for argocd/dev-backend", n)
	}
	tr.HandleWorkload(deployment("backend", "", "dev-backend", 2, 2))
	if n := count(model.FactWorkloadRecovered); n != 1 {
		t.Errorf("%d workload_recovered facts, want 1", n)
	}
}
