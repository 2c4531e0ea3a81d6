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

// Only apps deployed to a watched cluster join its workloads: Argo CD's
// tracking id names no cluster, so an object whose id names an app deployed
// elsewhere is not that app's. The local cluster is matched by the server
// URL Argo CD gives its own cluster, the configured name, or the URL
// crowsnest reaches the API server at; a remote one by its cluster
// Secret's name or server. An app moving between clusters gains or loses
// the workloads at once.
func TestOnlyAppsInTheWatchedClusterJoinItsWorkloads(t *testing.T) {
	at := func(server, name string) *v1alpha1.Application {
		a := namedApp("argocd", "web")
		a.Spec.Destination = v1alpha1.ApplicationDestination{Server: server, Name: name, Namespace: "shop-dev"}
		return a
	}
	spoke := Clusters{Remote: []RemoteCluster{{Name: "prod-eu", Server: "https://prod-eu.example.com:6443"}}}
	for _, tc := range []struct {
		desc     string
		clusters Clusters
		app      *v1alpha1.Application
		from     string // the workload's cluster
		join     bool
		dest     string // the dest_cluster label of its series, alerts and facts
	}{
		{"Argo CD's own cluster by server", Clusters{}, at("https://kubernetes.default.svc", ""), "", true, "in-cluster"},
		{"Argo CD's own cluster by server, trailing slash", Clusters{}, at("https://kubernetes.default.svc/", ""), "", true, "in-cluster"},
		{"in-cluster by name", Clusters{}, at("", "in-cluster"), "", true, "in-cluster"},
		{"a renamed local cluster", Clusters{Local: LocalCluster{Name: "hub"}}, at("", "hub"), "", true, "hub"},
		{"in-cluster, renamed away", Clusters{Local: LocalCluster{Name: "hub"}}, at("", "in-cluster"), "", false, "in-cluster"},
		{"the API server crowsnest reaches", Clusters{Local: LocalCluster{Servers: []string{"https://10.0.0.1:6443"}}}, at("https://10.0.0.1:6443", ""), "", true, "in-cluster"},
		{"another cluster by server", Clusters{}, at("https://prod-eu.example.com", ""), "", false, "https://prod-eu.example.com"},
		{"another cluster by name", Clusters{}, at("", "prod-eu"), "", false, "prod-eu"},
		{"another cluster Argo CD names", Clusters{Named: []RemoteCluster{{Name: "prod-eu", Server: "https://PROD-EU.example.com/"}}}, at("https://prod-eu.example.com", ""), "", false, "prod-eu"},
		{"a replay: every destination", Clusters{AnyLocal: true}, at("https://prod-eu.example.com", ""), "", true, "in-cluster"},
		{"a watched spoke by server: its workload", spoke, at("https://prod-eu.example.com:6443/", ""), "https://prod-eu.example.com:6443", true, "prod-eu"},
		{"a watched spoke by name: its workload", spoke, at("", "prod-eu"), "https://PROD-EU.example.com:6443", true, "prod-eu"},
		{"a watched spoke: the hub's workload of that name", spoke, at("", "prod-eu"), "", false, "prod-eu"},
		{"the hub's app: a spoke's workload of that name", spoke, at("https://kubernetes.default.svc", ""), "https://prod-eu.example.com:6443", false, "in-cluster"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			facts := &factRecorder{}
			s := exposition.NewStore(false)
			tr := New(envByLabel{}, Subscribers{Views: []ViewSubscriber{s}, Facts: []FactSubscriber{facts}}, promslog.NewNopLogger())
			tr.SetClusters(tc.clusters)
			tr.Handle(model.Event{Type: model.Added, Time: t0, App: tc.app})
			for _, ready := range []int64{2, 1} { // then degraded
				e := deployment("web", "", "web", 2, ready)
				e.Workload.Cluster = tc.from
				tr.HandleWorkload(e)
			}
			_, joined := value(t, s, "crowsnest_app_workload_replicas", "name", "web", "workload", "shop-dev/web", "state", "ready")
			if joined != tc.join {
				t.Errorf("workload series on the app: %v, want %v", joined, tc.join)
			}
			if n := len(facts.all()); n != map[bool]int{true: 1, false: 0}[tc.join] {
				t.Errorf("%d workload facts %v, want one only when it joins", n, facts.all())
			}
			if _, ok := value(t, s, "crowsnest_app_info", "name", "web", "dest_cluster", tc.dest); !ok {
				t.Errorf("no crowsnest_app_info with dest_cluster=%q", tc.dest)
			}
			for _, f := range facts.all() {
				if f.Dest != tc.dest {
					t.Errorf("fact %s names the cluster %q, want %q", f.Name, f.Dest, tc.dest)
				}
			}
		})
	}

	// The app moves to another cluster and back; the same name's workload
	// in each cluster.
	s := exposition.NewStore(false)
	tr := New(envByLabel{}, Subscribers{Views: []ViewSubscriber{s}}, promslog.NewNopLogger())
	tr.SetClusters(spoke)
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: at("https://kubernetes.default.svc", "")})
	tr.HandleWorkload(deployment("web", "", "web", 2, 2))
	remote := deployment("web", "", "web", 3, 3)
	remote.Workload.Cluster = "https://prod-eu.example.com:6443"
	tr.HandleWorkload(remote)
	for i, c := range []struct {
		app     *v1alpha1.Application
		desired float64 // 0: no workload
	}{{at("", "elsewhere"), 0}, {at("", "prod-eu"), 3}, {at("", "in-cluster"), 2}} {
		tr.Handle(model.Event{Type: model.Modified, Time: t0.Add(time.Duration(i+1) * time.Second), App: c.app})
		v, ok := value(t, s, "crowsnest_app_workload_replicas", "name", "web", "workload", "shop-dev/web", "state", "desired")
		if c.desired == 0 && ok || c.desired != 0 && v != c.desired {
			t.Errorf("after moving to %+v: desired %v (present %v), want %v", c.app.Spec.Destination, v, ok, c.desired)
		}
	}
}
