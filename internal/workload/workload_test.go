package workload

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/crowsnest/crowsnest/internal/events"
)

func obj(kind string, meta map[string]any, spec, status map[string]any) *unstructured.Unstructured {
	m := map[string]any{"kind": kind, "metadata": meta}
	if spec != nil {
		m["spec"] = spec
	}
	if status != nil {
		m["status"] = status
	}
	return &unstructured.Unstructured{Object: m}
}

func meta(name string, gen int64, annotations, labels map[string]any) map[string]any {
	m := map[string]any{"name": name, "namespace": "shop-dev", "generation": gen}
	if annotations != nil {
		m["annotations"] = annotations
	}
	if labels != nil {
		m["labels"] = labels
	}
	return m
}

func TestParse(t *testing.T) {
	tracked := map[string]any{"argocd.argoproj.io/tracking-id": "dev-backend:apps/Deployment:shop-dev/backend"}
	for _, tc := range []struct {
		desc              string
		u                 *unstructured.Unstructured
		app, appNS        string
		ready, desired    int64
		rolling, degraded bool
		job               string
	}{
		{"deployment short of ready replicas", obj("Deployment", meta("backend", 2, tracked, nil), map[string]any{"replicas": int64(3)},
			map[string]any{"observedGeneration": int64(2), "replicas": int64(3), "readyReplicas": int64(1), "updatedReplicas": int64(3), "availableReplicas": int64(1)}),
			"dev-backend", "", 1, 3, false, true, ""},
		{"deployment rolling out", obj("Deployment", meta("backend", 3, tracked, nil), map[string]any{"replicas": int64(2)},
			map[string]any{"observedGeneration": int64(2), "replicas": int64(2), "readyReplicas": int64(2), "updatedReplicas": int64(2), "availableReplicas": int64(2)}),
			"dev-backend", "", 2, 2, true, false, ""},
		{"statefulset by instance label, revisions differ", obj("StatefulSet", meta("cache", 1, nil, map[string]any{"app.kubernetes.io/instance": "dev-backend"}), map[string]any{"replicas": int64(1)},
			map[string]any{"observedGeneration": int64(1), "readyReplicas": int64(1), "updatedReplicas": int64(1), "availableReplicas": int64(1), "currentRevision": "a", "updateRevision": "b"}),
			"dev-backend", "", 1, 1, true, false, ""},
		{"app in another namespace", obj("DaemonSet", meta("agent", 1, map[string]any{"argocd.argoproj.io/tracking-id": "team-a_agent:apps/DaemonSet:shop-dev/agent"}, nil), nil,
			map[string]any{"observedGeneration": int64(1), "desiredNumberScheduled": int64(4), "numberReady": int64(4), "updatedNumberScheduled": int64(4), "numberAvailable": int64(4)}),
			"agent", "team-a", 4, 4, false, false, ""},
		{"argo rollout mid-canary", obj("Rollout", meta("api", 1, tracked, nil), map[string]any{"replicas": int64(4)},
			map[string]any{"observedGeneration": int64(1), "phase": "Paused", "readyReplicas": int64(4), "updatedReplicas": int64(1), "availableReplicas": int64(4)}),
			"dev-backend", "", 4, 4, true, false, ""},
		{"failed job", obj("Job", meta("backend-migrate", 1, tracked, nil), nil,
			map[string]any{"conditions": []any{map[string]any{"type": "Failed", "status": "True"}}}),
			"dev-backend", "", 0, 0, false, true, "Failed"},
		{"running job", obj("Job", meta("backend-migrate", 1, tracked, nil), nil, nil), "dev-backend", "", 0, 0, false, false, "Running"},
		{"not Argo CD's", obj("Deployment", meta("other", 1, nil, nil), nil, nil), "", "", 0, 1, true, true, ""},
	} {
		w := Parse(tc.u)
		if w.App != tc.app || w.AppNamespace != tc.appNS || w.Replicas["ready"] != tc.ready || w.Replicas["desired"] != tc.desired && tc.u.GetKind() != "Job" ||
			w.RolloutInProgress != tc.rolling || w.Degraded() != tc.degraded || w.JobStatus != tc.job {
			t.Errorf("%s: got %+v (degraded %v)", tc.desc, w, w.Degraded())
		}
	}
}

func TestCollectJoinsWorkloadsToApps(t *testing.T) {
	lookup := func(ns, name string) (App, bool) {
		if name == "dev-backend" && ns == "" {
			return App{Namespace: "argocd", Name: "dev-backend", Project: "default", Env: "dev"}, true
		}
		return App{}, false
	}
	w := NewWatcher(nil, nil, nil, lookup, promslog.NewNopLogger())
	w.update(obj("Deployment", meta("backend", 1, map[string]any{"argocd.argoproj.io/tracking-id": "dev-backend:apps/Deployment:shop-dev/backend"}, nil), map[string]any{"replicas": int64(2)},
		map[string]any{"observedGeneration": int64(1), "replicas": int64(2), "readyReplicas": int64(1), "updatedReplicas": int64(2), "availableReplicas": int64(1)}))
	w.update(obj("Job", meta("backend-migrate", 1, map[string]any{"argocd.argoproj.io/tracking-id": "dev-backend:batch/Job:shop-dev/backend-migrate"}, nil), nil,
		map[string]any{"conditions": []any{map[string]any{"type": "Failed", "status": "True"}}}))
	w.update(obj("Deployment", meta("orphan", 1, map[string]any{"argocd.argoproj.io/tracking-id": "gone:apps/Deployment:shop-dev/orphan"}, nil), nil, nil))
	want := `
# HELP crowsnest_app_workload_job_status State set of the Application's Jobs (hooks included): Running, Complete, Failed.
# TYPE crowsnest_app_workload_job_status gauge
crowsnest_app_workload_job_status{env="dev",name="dev-backend",namespace="argocd",project="default",status="Complete",workload="shop-dev/backend-migrate"} 0
crowsnest_app_workload_job_status{env="dev",name="dev-backend",namespace="argocd",project="default",status="Failed",workload="shop-dev/backend-migrate"} 1
crowsnest_app_workload_job_status{env="dev",name="dev-backend",namespace="argocd",project="default",status="Running",workload="shop-dev/backend-migrate"} 0
# HELP crowsnest_app_workload_replicas Replicas of a workload of the Application, by state: desired, ready, updated, available.
# TYPE crowsnest_app_workload_replicas gauge
crowsnest_app_workload_replicas{env="dev",kind="Deployment",name="dev-backend",namespace="argocd",project="default",state="available",workload="shop-dev/backend"} 1
crowsnest_app_workload_replicas{env="dev",kind="Deployment",name="dev-backend",namespace="argocd",project="default",state="desired",workload="shop-dev/backend"} 2
crowsnest_app_workload_replicas{env="dev",kind="Deployment",name="dev-backend",namespace="argocd",project="default",state="ready",workload="shop-dev/backend"} 1
crowsnest_app_workload_replicas{env="dev",kind="Deployment",name="dev-backend",namespace="argocd",project="default",state="updated",workload="shop-dev/backend"} 2
# HELP crowsnest_app_workload_rollout_in_progress 1 while a new version of the workload is rolling out.
# TYPE crowsnest_app_workload_rollout_in_progress gauge
crowsnest_app_workload_rollout_in_progress{env="dev",kind="Deployment",name="dev-backend",namespace="argocd",project="default",workload="shop-dev/backend"} 0
`
	if err := testutil.CollectAndCompare(w, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestParseKinds(t *testing.T) {
	if got, err := ParseKinds("Deployments, jobs"); err != nil || len(got) != 2 {
		t.Errorf("ParseKinds = %v, %v", got, err)
	}
	if _, err := ParseKinds("deployments,pods"); err == nil || !strings.Contains(err.Error(), "pods") {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestParseCertificate(t *testing.T) {
	u := obj("Certificate", meta("backend-tls", 1, map[string]any{"argocd.argoproj.io/tracking-id": "dev-backend:cert-manager.io/Certificate:shop-dev/backend-tls"}, nil), nil,
		map[string]any{"notAfter": "2027-01-02T03:04:05Z", "conditions": []any{map[string]any{"type": "Ready", "status": "False"}}})
	w := Parse(u)
	if w.CertReady == nil || *w.CertReady || w.CertExpiry.Unix() != 1798859045 || !w.Degraded() {
		t.Errorf("certificate: ready %v expiry %v degraded %v", w.CertReady, w.CertExpiry, w.Degraded())
	}
}

// A workload seen degraded before crowsnest knows its app reports when
// the app is known; a workload that loses its tracking loses its series.
func TestDegradedBeforeAppKnownAndLostTracking(t *testing.T) {
	known := false
	lookup := func(ns, name string) (App, bool) {
		return App{Namespace: "argocd", Name: name, Env: "dev"}, known && name == "dev-backend"
	}
	var got []string
	w := NewWatcher(nil, nil, nil, lookup, promslog.NewNopLogger())
	w.SetEvents(func(e events.Event) { got = append(got, e.Event+" "+e.App) })
	tracked := map[string]any{"argocd.argoproj.io/tracking-id": "dev-backend:apps/Deployment:shop-dev/backend"}
	short := func(m map[string]any) *unstructured.Unstructured {
		return obj("Deployment", meta("backend", 1, m, nil), map[string]any{"replicas": int64(2)},
			map[string]any{"observedGeneration": int64(1), "replicas": int64(2), "readyReplicas": int64(1), "updatedReplicas": int64(2), "availableReplicas": int64(1)})
	}
	w.update(short(tracked))
	if len(got) != 0 {
		t.Fatalf("facts %v for an app crowsnest does not know", got)
	}
	known = true
	w.update(short(tracked))
	if len(got) != 1 || got[0] != "workload_degraded argocd/dev-backend" {
		t.Fatalf("facts %v, want the degradation once the app is known", got)
	}
	w.update(short(nil))
	if n := testutil.CollectAndCount(w); n != 0 {
		t.Errorf("%d series for a workload without tracking", n)
	}
}
