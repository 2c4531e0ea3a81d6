package source

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/common/promslog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/crowsnest/crowsnest/internal/model"
)

// apiVersions are the workload kinds' API versions, as served.
var apiVersions = map[string]string{
	"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "Job": "batch/v1",
	"Rollout": "argoproj.io/v1alpha1", "Certificate": "cert-manager.io/v1",
}

func obj(kind string, meta map[string]any, spec, status map[string]any) *unstructured.Unstructured {
	m := map[string]any{"apiVersion": apiVersions[kind], "kind": kind, "metadata": meta}
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

// trackedBy is the tracking id annotation Argo CD writes on the object
// group/kind shop-dev/name of app.
func trackedBy(app, groupKind, name string) map[string]any {
	return map[string]any{"argocd.argoproj.io/tracking-id": app + ":" + groupKind + ":shop-dev/" + name}
}

func TestParseWorkload(t *testing.T) {
	for _, tc := range []struct {
		desc              string
		u                 *unstructured.Unstructured
		app, appNS        string
		ready, desired    int64
		rolling, degraded bool
		job               string
	}{
		{"deployment short of ready replicas", obj("Deployment", meta("backend", 2, trackedBy("dev-backend", "apps/Deployment", "backend"), nil), map[string]any{"replicas": int64(3)},
			map[string]any{"observedGeneration": int64(2), "replicas": int64(3), "readyReplicas": int64(1), "updatedReplicas": int64(3), "availableReplicas": int64(1)}),
			"dev-backend", "", 1, 3, false, true, ""},
		{"deployment rolling out", obj("Deployment", meta("backend", 3, trackedBy("dev-backend", "apps/Deployment", "backend"), nil), map[string]any{"replicas": int64(2)},
			map[string]any{"observedGeneration": int64(2), "replicas": int64(2), "readyReplicas": int64(2), "updatedReplicas": int64(2), "availableReplicas": int64(2)}),
			"dev-backend", "", 2, 2, true, false, ""},
		{"statefulset, revisions differ", obj("StatefulSet", meta("cache", 1, trackedBy("dev-backend", "apps/StatefulSet", "cache"), nil), map[string]any{"replicas": int64(1)},
			map[string]any{"observedGeneration": int64(1), "readyReplicas": int64(1), "updatedReplicas": int64(1), "availableReplicas": int64(1), "currentRevision": "a", "updateRevision": "b"}),
			"dev-backend", "", 1, 1, true, false, ""},
		{"app in another namespace", obj("DaemonSet", meta("agent", 1, map[string]any{"argocd.argoproj.io/tracking-id": "team-a_agent:apps/DaemonSet:shop-dev/agent"}, nil), nil,
			map[string]any{"observedGeneration": int64(1), "desiredNumberScheduled": int64(4), "numberReady": int64(4), "updatedNumberScheduled": int64(4), "numberAvailable": int64(4)}),
			"agent", "team-a", 4, 4, false, false, ""},
		{"argo rollout mid-canary", obj("Rollout", meta("api", 1, trackedBy("dev-backend", "argoproj.io/Rollout", "api"), nil), map[string]any{"replicas": int64(4)},
			map[string]any{"observedGeneration": int64(1), "phase": "Paused", "readyReplicas": int64(4), "updatedReplicas": int64(1), "availableReplicas": int64(4)}),
			"dev-backend", "", 4, 4, true, false, ""},
		{"failed job", obj("Job", meta("backend-migrate", 1, trackedBy("dev-backend", "batch/Job", "backend-migrate"), nil), nil,
			map[string]any{"conditions": []any{map[string]any{"type": "Failed", "status": "True"}}}),
			"dev-backend", "", 0, 0, false, true, "Failed"},
		{"running job", obj("Job", meta("backend-migrate", 1, trackedBy("dev-backend", "batch/Job", "backend-migrate"), nil), nil, nil), "dev-backend", "", 0, 0, false, false, "Running"},
		{"not Argo CD's", obj("Deployment", meta("other", 1, nil, nil), nil, nil), "", "", 0, 1, true, true, ""},
	} {
		w := ParseWorkload(tc.u, DefaultTracking())
		if w.App != tc.app || w.AppNamespace != tc.appNS || w.Replicas["ready"] != tc.ready || w.Replicas["desired"] != tc.desired && tc.u.GetKind() != "Job" ||
			w.RolloutInProgress != tc.rolling || w.Degraded() != tc.degraded || w.JobStatus != tc.job {
			t.Errorf("%s: got %+v (degraded %v)", tc.desc, w, w.Degraded())
		}
	}
}

func TestParseWorkloadKinds(t *testing.T) {
	if got, err := ParseWorkloadKinds("Deployments, jobs"); err != nil || len(got) != 2 {
		t.Errorf("ParseKinds = %v, %v", got, err)
	}
	if _, err := ParseWorkloadKinds("deployments,pods"); err == nil || !strings.Contains(err.Error(), "pods") {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestParseWorkloadCertificate(t *testing.T) {
	u := obj("Certificate", meta("backend-tls", 1, map[string]any{"argocd.argoproj.io/tracking-id": "dev-backend:cert-manager.io/Certificate:shop-dev/backend-tls"}, nil), nil,
		map[string]any{"notAfter": "2027-01-02T03:04:05Z", "conditions": []any{map[string]any{"type": "Ready", "status": "False"}}})
	w := ParseWorkload(u, DefaultTracking())
	if w.CertReady == nil || *w.CertReady || w.CertExpiry.Unix() != 1798859045 || !w.Degraded() {
		t.Errorf("certificate: ready %v expiry %v degraded %v", w.CertReady, w.CertExpiry, w.Degraded())
	}
}

// With no workload kind served (none installed, or the API server down
// when crowsnest started), Run still blocks until ctx is done: its return
// would end the daemon.
func TestWorkloadsRunBlocksWithNoKindServed(t *testing.T) {
	disc := &fakediscovery.FakeDiscovery{Fake: &k8stesting.Fake{}}
	w := NewWorkloads(dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), disc, []string{"deployments", "jobs"}, DefaultTracking(), promslog.NewNopLogger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, nil) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before ctx was done", err)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after ctx was done")
	}
}

// A spoke down when crowsnest starts: discovery fails, Run asks again and
// watches the kind once the API server answers, stamping each workload
// with its cluster. Not served (NotFound) is not asked again.
func TestWorkloadsRetryDiscoveryUntilTheClusterAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gvr := workloadKinds()["deployments"]
		fake := &k8stesting.Fake{Resources: []*metav1.APIResourceList{{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{{Name: "deployments", Kind: "Deployment"}}}}}
		var asked, jobsAsked atomic.Int32
		fake.PrependReactor("get", "resource", func(k8stesting.Action) (bool, runtime.Object, error) {
			if asked.Add(1) <= 3 {
				return true, nil, errors.New("dial tcp 10.0.0.1:6443: connect: connection refused")
			}
			return false, nil, nil
		})
		d := obj("Deployment", meta("web", 1, trackedBy("web", "apps/Deployment", "web"), nil), map[string]any{"replicas": int64(1)}, nil)
		client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gvr: "DeploymentList"}, d)
		disc := &countingDiscovery{FakeDiscovery: &fakediscovery.FakeDiscovery{Fake: fake}, jobs: &jobsAsked}
		w := NewWorkloads(client, disc, []string{"deployments", "jobs"}, DefaultTracking(), promslog.NewNopLogger())
		w.SetCluster("https://prod-eu.example.com:6443")
		got := make(chan model.Workload, 1)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- w.Run(ctx, workloadSinkFunc(func(e model.WorkloadEvent) { got <- e.Workload }))
		}()
		select {
		case wl := <-got:
			if wl.Cluster != "https://prod-eu.example.com:6443" || wl.App != "web" {
				t.Errorf("workload %+v, want web's, of prod-eu", wl)
			}
		case <-time.After(10 * time.Minute):
			t.Fatal("no workload after the cluster answered")
		}
		if n := asked.Load(); n < 4 {
			t.Errorf("discovery asked %d times, want again after each of 3 failures", n)
		}
		// batch/v1 answered NotFound in the second round: not served, not
		// asked again.
		time.Sleep(10 * time.Minute)
		if n := jobsAsked.Load(); n != 2 {
			t.Errorf("batch/v1 asked %d times, want 2: failed, then not served", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// countingDiscovery counts the requests for batch/v1, which the fake does
// not serve.
type countingDiscovery struct {
	*fakediscovery.FakeDiscovery
	jobs *atomic.Int32
}

func (c *countingDiscovery) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	if gv == "batch/v1" {
		c.jobs.Add(1)
	}
	return c.FakeDiscovery.ServerResourcesForGroupVersion(gv)
}
