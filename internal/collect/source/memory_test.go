package source

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	argov1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/crowsnest/crowsnest/internal/argocd/client"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/collect/tracker"
	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/model"
)

// realisticAppJSON is Application i as the API server serves it in the
// scale benchmark (test/e2e/scale_fleet_test.go): 50 resources in
// status.resources and in its finished sync's results, 10 history entries
// with their sources, a Helm source, managed fields and the last-applied
// annotation; every tenth drifted.
func realisticAppJSON(i, resources int) []byte {
	started := metav1.NewTime(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))
	finished := metav1.NewTime(started.Add(40 * time.Second))
	src := argov1.ApplicationSource{RepoURL: "https://git.example.com/platform/deploy.git", Path: fmt.Sprintf("apps/app-%05d", i), TargetRevision: "main",
		Helm: &argov1.ApplicationSourceHelm{ValueFiles: []string{"values.yaml", "values-prod.yaml"}}}
	a := &argov1.Application{
		TypeMeta: metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%05d", i), Namespace: "argocd", UID: types.UID(fmt.Sprintf("6f1c3b2a-0000-4000-8000-%012d", i)),
			ResourceVersion: fmt.Sprint(1000 + i), Generation: 3, CreationTimestamp: started,
			Labels:      map[string]string{"env": []string{"dev", "stage", "prod"}[i%3], "team": fmt.Sprintf("team-%02d", i%40)},
			Annotations: map[string]string{lastAppliedAnnotation: strings.Repeat(`{"apiVersion":"argoproj.io/v1alpha1"}`, 30)},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "argocd-application-controller", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "argoproj.io/v1alpha1", Time: &finished,
					FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:status":{".":{},"f:health":{},"f:history":{},"f:operationState":{},"f:reconciledAt":{},"f:resources":{},"f:sourceType":{},"f:summary":{},"f:sync":{}}}`)},
				{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "argoproj.io/v1alpha1", Time: &started,
					FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:destination":{"f:namespace":{},"f:server":{}},"f:project":{},"f:source":{"f:helm":{},"f:path":{},"f:repoURL":{},"f:targetRevision":{}},"f:syncPolicy":{}}}`)},
			}},
		Spec: argov1.ApplicationSpec{Source: &src, Project: fmt.Sprintf("team-%02d", i%40),
			Destination: argov1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: fmt.Sprintf("ns-%05d", i)},
			SyncPolicy:  &argov1.SyncPolicy{Automated: &argov1.SyncPolicyAutomated{Prune: new(true), SelfHeal: new(true)}, SyncOptions: argov1.SyncOptions{"CreateNamespace=true"}}},
	}
	st := &a.Status
	st.Sync = argov1.SyncStatus{Status: "Synced", Revision: fmt.Sprintf("%040x", i), ComparedTo: argov1.ComparedTo{Source: src, Destination: a.Spec.Destination}}
	st.Health = argov1.AppHealthStatus{Status: "Healthy"}
	// The kinds and waves of test/e2e/scale_fleet_test.go: 20 kinds, the
	// wave of the k-th resource k%4.
	kinds := []struct{ group, kind string }{{"apps", "Deployment"}, {"", "Service"}, {"", "ConfigMap"}, {"", "Secret"}, {"", "ServiceAccount"},
		{"rbac.authorization.k8s.io", "Role"}, {"rbac.authorization.k8s.io", "RoleBinding"}, {"autoscaling", "HorizontalPodAutoscaler"},
		{"policy", "PodDisruptionBudget"}, {"networking.k8s.io", "Ingress"}, {"networking.k8s.io", "NetworkPolicy"},
		{"monitoring.coreos.com", "ServiceMonitor"}, {"monitoring.coreos.com", "PrometheusRule"}, {"batch", "CronJob"},
		{"external-secrets.io", "ExternalSecret"}, {"cert-manager.io", "Certificate"}, {"", "PersistentVolumeClaim"},
		{"keda.sh", "ScaledObject"}, {"apps", "StatefulSet"}, {"", "Endpoints"}}
	results := argov1.ResourceResults{}
	for r := 0; r < resources; r++ {
		k := kinds[r%len(kinds)]
		status := argov1.SyncStatusCode("Synced")
		if i%10 == 0 && r%17 == 0 {
			status, st.Sync.Status = "OutOfSync", "OutOfSync"
		}
		name := fmt.Sprintf("app-%05d-%s-%02d", i, strings.ToLower(k.kind), r)
		st.Resources = append(st.Resources, argov1.ResourceStatus{Group: k.group, Version: "v1", Kind: k.kind, Namespace: a.Spec.Destination.Namespace, Name: name,
			Status: status, SyncWave: int64(r % 4), Health: &argov1.HealthStatus{Status: "Healthy"}})
		results = append(results, &argov1.ResourceResult{Group: k.group, Version: "v1", Kind: k.kind, Namespace: a.Spec.Destination.Namespace, Name: name,
			Status: "Synced", Message: strings.ToLower(k.kind) + "/" + name + " configured", HookPhase: "Running", SyncPhase: "Sync"})
	}
	for h := 0; h < 10; h++ {
		at := metav1.NewTime(started.Add(time.Duration(h-10) * time.Hour))
		st.History = append(st.History, argov1.RevisionHistory{ID: int64(h), Revision: fmt.Sprintf("%040x", i*100+h), DeployedAt: at, DeployStartedAt: &at, Source: src,
			InitiatedBy: argov1.OperationInitiator{Automated: true}})
	}
	st.OperationState = &argov1.OperationState{
		Operation: argov1.Operation{Sync: &argov1.SyncOperation{Revision: st.Sync.Revision, Prune: true, SyncOptions: argov1.SyncOptions{"CreateNamespace=true"}},
			InitiatedBy: argov1.OperationInitiator{Automated: true}, Retry: argov1.RetryStrategy{Limit: 5}},
		Phase: "Succeeded", Message: "successfully synced (all tasks run)", StartedAt: started, FinishedAt: &finished,
		SyncResult: &argov1.SyncOperationResult{Revision: st.Sync.Revision, Source: src, Resources: results},
	}
	st.ReconciledAt = &finished
	st.SourceType = "Helm"
	st.Summary = argov1.ApplicationSummary{Images: []string{"registry.example.com/shop/web:1.4.2", "registry.example.com/shop/worker:1.4.2"}}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err)
	}
	return b
}

// writeHeapProfile writes the heap profile to file, to see where the
// memory of BenchmarkMemoryPerDecodedApp goes (CROWSNEST_HEAP_PROFILE).
func writeHeapProfile(b *testing.B, file string) {
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMemoryPerDecodedApp reports the heap crowsnest keeps per app,
// everything included, for apps as the scale benchmark writes them:
// decoded from their JSON as the client does, trimmed as the informer
// does, handled by the tracker with the metric store subscribed.
func BenchmarkMemoryPerDecodedApp(b *testing.B) {
	const apps, resources = 2000, 50
	docs := make([][]byte, apps)
	size := 0
	for i := range docs {
		docs[i] = realisticAppJSON(i, resources)
		size += len(docs[i])
	}
	codecs := serializer.NewCodecFactory(client.Scheme())
	decoder := codecs.UniversalDeserializer()
	conf := benchConfig(b)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		trim := newAppTrimmer()
		trim.since = time.Now() // as the Kubernetes source: the apps' operations finished before
		tr, _ := newBenchTracker(conf)
		kept := make([]any, 0, apps) // the informer's cache
		for _, doc := range docs {
			obj, _, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			app, _ := trim.application(obj)
			kept = append(kept, app)
			tr.Handle(model.Event{Type: model.Added, Time: time.Now(), App: app.(*v1alpha1.Application)})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if f := os.Getenv("CROWSNEST_HEAP_PROFILE"); f != "" {
			writeHeapProfile(b, f)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/apps, "heap-B/app")
		b.ReportMetric(float64(size)/apps, "json-B/app")
		runtime.KeepAlive(kept)
		runtime.KeepAlive(tr)
	}
}

// benchConfig is the configuration the benchmarks classify apps with: one
// prod environment, by label.
func benchConfig(b *testing.B) *config.Config {
	b.Helper()
	conf, err := config.Parse([]byte("environments:\n  - env: prod\n    match:\n      labels:\n        env: prod\n"))
	if err != nil {
		b.Fatal(err)
	}
	return conf
}

// newBenchTracker returns a tracker and the metric store it feeds, wired
// as crowsnest wires them: views and operations to the store, operations
// to the duration histograms too.
func newBenchTracker(conf *config.Config) (*tracker.Tracker, *exposition.Store) {
	store := exposition.NewStore(false)
	tr := tracker.New(conf, tracker.Subscribers{
		Views:      []tracker.ViewSubscriber{store},
		Operations: []tracker.OperationSubscriber{exposition.NewDurations(prometheus.NewRegistry()), store},
	}, promslog.NewNopLogger())
	return tr, store
}
