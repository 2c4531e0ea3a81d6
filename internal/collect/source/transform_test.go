package source

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	argov1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	discoveryfake "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/crowsnest/crowsnest/internal/argocd/client/fake"
	"github.com/crowsnest/crowsnest/internal/argocd/health"
	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/collect/tracker"
	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/demo"
	"github.com/crowsnest/crowsnest/internal/logtest"
	"github.com/crowsnest/crowsnest/internal/model"
)

// managedFields is what a server-side apply and a controller's update leave.
func managedFields() []metav1.ManagedFieldsEntry {
	return []metav1.ManagedFieldsEntry{
		{Manager: "argocd-applicationset-controller", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "argoproj.io/v1alpha1",
			FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:destination":{},"f:project":{},"f:source":{}}}`)},
		{Manager: "argocd-application-controller", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "argoproj.io/v1alpha1",
			FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:status":{"f:history":{},"f:operationState":{},"f:resources":{}}}`)},
	}
}

// bigApp is an Application as Argo CD leaves it: managed fields, the
// last-applied annotation, Helm settings, resources with health, history
// with sources, a finished operation with its results, conditions. It is
// built with Argo CD's own types and decoded from their JSON into
// crowsnest's lean ones, as the client decodes the API server's answers.
func bigApp() *v1alpha1.Application {
	lean := newApp()
	a := &argov1.Application{TypeMeta: lean.TypeMeta, ObjectMeta: *lean.ObjectMeta.DeepCopy()}
	a.ManagedFields = managedFields()
	a.Labels = map[string]string{"env": "prod"}
	a.Annotations = map[string]string{
		lastAppliedAnnotation: `{"apiVersion":"argoproj.io/v1alpha1","kind":"Application","spec":{}}`,
		"notifications.argoproj.io/subscribe.on-sync-failed.slack": "shop",
	}
	src := argov1.ApplicationSource{RepoURL: lean.Spec.Source.RepoURL, Path: lean.Spec.Source.Path, TargetRevision: lean.Spec.Source.TargetRevision,
		Helm: &argov1.ApplicationSourceHelm{ValueFiles: []string{"values-prod.yaml"}, Values: strings.Repeat("replicas: 3\n", 100)}}
	dest := argov1.ApplicationDestination{Server: lean.Spec.Destination.Server, Namespace: lean.Spec.Destination.Namespace}
	a.Spec = argov1.ApplicationSpec{Source: &src, Destination: dest, Project: lean.Spec.Project,
		SyncPolicy:        &argov1.SyncPolicy{Automated: &argov1.SyncPolicyAutomated{Prune: new(true)}},
		IgnoreDifferences: []argov1.ResourceIgnoreDifferences{{Group: "apps", Kind: "Deployment", JSONPointers: []string{"/spec/replicas"}}}}
	started, finished := metav1.NewTime(t0), metav1.NewTime(t0.Add(time.Minute))
	a.Status = argov1.ApplicationStatus{
		Resources: []argov1.ResourceStatus{{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "web", Name: "web",
			Status: "OutOfSync", SyncWave: 2, Health: &argov1.HealthStatus{Status: "Degraded", Message: "Deployment exceeded its progress deadline"}}},
		Sync:    argov1.SyncStatus{Status: "OutOfSync", Revision: "abc", ComparedTo: argov1.ComparedTo{Source: src, Destination: dest}},
		Health:  argov1.AppHealthStatus{Status: "Degraded", Message: "one resource is degraded"},
		History: argov1.RevisionHistories{{ID: 1, Revision: "abc", DeployedAt: finished, DeployStartedAt: &started, Source: src, InitiatedBy: argov1.OperationInitiator{Automated: true}}},
		OperationState: &argov1.OperationState{
			Operation: argov1.Operation{Sync: &argov1.SyncOperation{Revision: "abc", Source: &src, Manifests: []string{"kind: ConfigMap"}}, InitiatedBy: argov1.OperationInitiator{Username: "ana"}},
			Phase:     "Succeeded", Message: "successfully synced",
			SyncResult: &argov1.SyncOperationResult{Revision: "abc", Source: src, Resources: argov1.ResourceResults{{
				Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "web", Name: "web", Status: "Synced",
				Message: "deployment.apps/web configured", HookPhase: "Running", SyncPhase: "Sync", Images: []string{"web:v1"}}}},
			StartedAt: started, FinishedAt: &finished,
		},
		Conditions: []argov1.ApplicationCondition{{Type: argov1.ApplicationConditionComparisonError, Message: strings.Repeat("rpc error ", 200), LastTransitionTime: &finished}},
		Summary:    argov1.ApplicationSummary{Images: []string{"registry.example.com/web:v1"}, ExternalURLs: []string{"https://web.example.com"}},
	}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err)
	}
	out := &v1alpha1.Application{}
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}

// checkTrimmedApp fails unless app lost what crowsnest does not read and
// kept what it does. bigApp's operation finished before any source
// started: a baseline, whose resource results the source drops.
func checkTrimmedApp(t *testing.T, app *v1alpha1.Application) {
	t.Helper()
	checkTrimmed(t, app, 0)
}

// checkTrimmed is checkTrimmedApp for an app whose operation has results
// resource results left.
func checkTrimmed(t *testing.T, app *v1alpha1.Application, results int) {
	t.Helper()
	if app.ManagedFields != nil {
		t.Error("managed fields kept")
	}
	if _, ok := app.Annotations[lastAppliedAnnotation]; ok {
		t.Error("last-applied annotation kept")
	}
	if app.Annotations["notifications.argoproj.io/subscribe.on-sync-failed.slack"] != "shop" || app.Labels["env"] != "prod" {
		t.Errorf("other annotations or labels lost: %v %v", app.Annotations, app.Labels)
	}
	// What the lean type does not declare is not decoded at all; the
	// sources compared with and synced only as digests.
	b, err := json.Marshal(app)
	if err != nil {
		t.Fatal(err)
	}
	for _, dropped := range []string{`"helm"`, `"ignoreDifferences"`, `"comparedTo":{"source":{`, `"externalURLs"`, "progress deadline", "rpc error", `"lastTransitionTime"`, `"images":["web:v1"]`} {
		if bytes.Contains(b, []byte(dropped)) {
			t.Errorf("the decoded app holds %s: %s", dropped, b)
		}
	}
	s := app.Spec
	if s.Source.RepoURL == "" || s.Source.Path != "apps/web" || s.Source.TargetRevision != "main" || s.SyncPolicy == nil || !s.SyncPolicy.Automated.GetPrune() || s.Project != "shop" || s.Destination.Namespace != "web" {
		t.Errorf("spec lost what crowsnest reads: %+v", s)
	}
	st := app.Status
	if st.Sync.ComparedTo.Source.IsZero() {
		t.Error("the source compared with has no digest")
	}
	if st.Resources != nil || st.ResourceCount() != 1 {
		t.Errorf("status.resources not packed: %d decoded, %d in all", len(st.Resources), st.ResourceCount())
	}
	for r := range st.AllResources() {
		if r.Status != v1alpha1.SyncStatusCodeOutOfSync || r.SyncWave != 2 || r.Name != "web" || r.Kind != "Deployment" || r.Group != "apps" || r.Namespace != "web" {
			t.Errorf("status.resources[0] = %+v, want its sync status and wave", r)
		}
	}
	if h := st.History[0]; h.Revision != "abc" || h.DeployStartedAt == nil || h.DeployedAt.IsZero() || !h.InitiatedBy.Automated || h.ID != 1 {
		t.Errorf("status.history[0] = %+v, want its revision, times and initiator", h)
	}
	if st.Sync.Status != v1alpha1.SyncStatusCodeOutOfSync || st.Sync.Revision != "abc" {
		t.Errorf("status.sync = %+v", st.Sync)
	}
	if st.Health.Message == "" || st.Health.Status != health.HealthStatusDegraded {
		t.Errorf("status.health = %+v, want it whole", st.Health)
	}
	if c := st.Conditions[0]; c.Type != v1alpha1.ApplicationConditionComparisonError {
		t.Errorf("status.conditions[0] = %+v, want its type", c)
	}
	if len(st.Summary.Images) != 1 {
		t.Errorf("status.summary = %+v, want the images", st.Summary)
	}
	op := st.OperationState
	if op.Operation.Sync.Source != nil || op.Operation.Sync.Manifests != nil {
		t.Errorf("operation state not trimmed: %+v", op)
	}
	if op.Phase != synccommon.OperationSucceeded || op.Operation.Sync.Revision != "abc" || op.Operation.InitiatedBy.Username != "ana" || op.Message == "" || op.SyncResult.Revision != "abc" ||
		op.FinishedAt == nil || !op.StartedAt.Equal(&metav1.Time{Time: t0}) {
		t.Errorf("operation state lost what crowsnest reads: %+v", op)
	}
	if len(op.SyncResult.Resources) != results {
		t.Fatalf("%d resource results, want %d", len(op.SyncResult.Resources), results)
	}
	if results > 0 {
		if r := op.SyncResult.Resources[0]; r.Message == "" || r.SyncPhase != synccommon.SyncPhaseSync || r.Status != synccommon.ResultCodeSynced {
			t.Errorf("resource result lost what crowsnest reads: %+v", r)
		}
	}
}

// The informer caches trimmed Applications, and hands them on trimmed.
func TestKubeSourceCachesTrimmedApplications(t *testing.T) {
	client := fake.NewSimpleClientset(bigApp())
	src := NewKubeSource(client, nil, NewSourceMetrics(prometheus.NewRegistry()), promslog.NewNopLogger())
	store := newAppsSink()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, store)
	waitFor(t, "the app", func() bool { return store.Len() == 1 })
	app, _ := store.get("argocd/web")
	checkTrimmedApp(t, app)

	src.mu.Lock()
	cached := src.informers[0].GetStore().List()
	src.mu.Unlock()
	if len(cached) != 1 || cached[0].(*v1alpha1.Application).ManagedFields != nil {
		t.Errorf("the informer caches %d apps, the first with managed fields: %v", len(cached), len(cached) == 1)
	}
}

// An operation that finished after the source started keeps its results
// (the tracker times and traces it); one that finished before is a
// baseline and loses them, and the tracker derives the same from both.
func TestBaselineOperationsLoseTheirResults(t *testing.T) {
	trim := newAppTrimmer()
	trim.since = t0.Add(2 * time.Minute) // bigApp's operation finished at t0+1m
	base, _ := trim.application(bigApp())
	checkTrimmed(t, base.(*v1alpha1.Application), 0)

	trim = newAppTrimmer()
	trim.since = t0.Add(30 * time.Second)
	live, _ := trim.application(bigApp())
	checkTrimmed(t, live.(*v1alpha1.Application), 1)

	// The tracker, watching since after the operation, renders the same
	// series with the results as without.
	render := func(app *v1alpha1.Application) string {
		st := exposition.NewStore(false)
		conf, err := config.Parse(demo.Config())
		if err != nil {
			t.Fatal(err)
		}
		tr := tracker.New(conf, tracker.Subscribers{Views: []tracker.ViewSubscriber{st}}, promslog.NewNopLogger())
		tr.Handle(model.Event{Type: model.Added, Time: t0.Add(5 * time.Minute), App: app})
		var b bytes.Buffer
		if _, err := st.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if with, without := render(live.(*v1alpha1.Application)), render(base.(*v1alpha1.Application)); with != without {
		t.Errorf("series differ without the baseline's results:\nwith:    %s\nwithout: %s", with, without)
	}
}

func TestTrimApplicationIsIdempotent(t *testing.T) {
	once, _ := trimApplication(bigApp())
	twice, _ := trimApplication(once.(*v1alpha1.Application).DeepCopy())
	if !reflect.DeepEqual(once, twice) {
		t.Errorf("trimming twice changed the app:\n%+v\n%+v", once, twice)
	}
	if out, err := trimApplication("not an app"); out != "not an app" || err != nil {
		t.Errorf("trimApplication(other) = %v, %v; want it unchanged", out, err)
	}
}

// projectSink keeps the AppProjects it was handed.
type projectSink struct {
	mu       sync.Mutex
	projects []*v1alpha1.AppProject
}

func (s *projectSink) HandleProject(e model.ProjectEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projects = append(s.projects, e.Project)
}

func (s *projectSink) last() *v1alpha1.AppProject {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.projects) == 0 {
		return nil
	}
	return s.projects[len(s.projects)-1]
}

func TestProjectsCacheTrimmedAppProjects(t *testing.T) {
	p := &v1alpha1.AppProject{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "argocd", ManagedFields: managedFields(),
			Annotations: map[string]string{lastAppliedAnnotation: "{}", "team": "shop"}},
		Spec: v1alpha1.AppProjectSpec{SyncWindows: v1alpha1.SyncWindows{{Kind: "deny", Schedule: "0 22 * * *", Duration: "8h", Applications: []string{"*"}}}},
	}
	sink := &projectSink{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- NewProjects(fake.NewSimpleClientset(p), promslog.NewNopLogger()).Run(ctx, sink) }()
	waitFor(t, "the project", func() bool { return sink.last() != nil })
	got := sink.last()
	if got.ManagedFields != nil || got.Annotations[lastAppliedAnnotation] != "" {
		t.Errorf("project not trimmed: managed fields %v, annotations %v", got.ManagedFields, got.Annotations)
	}
	if len(got.Spec.SyncWindows) != 1 || got.Annotations["team"] != "shop" {
		t.Errorf("project lost its sync windows or annotations: %+v", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// workloadObjects are one realistic object of each workload kind, as the
// API server serves them.
func workloadObjects() []*unstructured.Unstructured {
	conds := func(types ...string) []any {
		var out []any
		for _, t := range types {
			out = append(out, map[string]any{"type": t, "status": "True", "reason": "Because", "message": "it is so",
				"lastTransitionTime": "2026-11-26T09:00:00Z", "lastUpdateTime": "2026-11-26T09:00:00Z"})
		}
		return out
	}
	template := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": "web:v1", "env": []any{map[string]any{"name": "A", "value": strings.Repeat("x", 2000)}}}}}}
	mk := func(apiVersion, kind, name string, spec, status map[string]any) *unstructured.Unstructured {
		group, _, _ := strings.Cut(apiVersion, "/")
		m := meta(name, 3, map[string]any{
			"argocd.argoproj.io/tracking-id": "dev-backend:" + group + "/" + kind + ":shop-dev/" + name,
			"argocd.argoproj.io/sync-wave":   "2", "helm.sh/hook": "pre-install", "helm.sh/hook-weight": "-1",
			lastAppliedAnnotation: `{"kind":"` + kind + `"}`,
		}, map[string]any{"app.kubernetes.io/instance": "dev-backend"})
		m["uid"], m["resourceVersion"] = "uid-"+name, "42"
		m["ownerReferences"] = []any{map[string]any{"kind": "Thing", "name": "owner"}}
		m["managedFields"] = []any{map[string]any{"manager": "argocd-controller", "operation": "Update", "fieldsV1": map[string]any{"f:spec": map[string]any{}}}}
		u := obj(kind, m, spec, status)
		u.SetAPIVersion(apiVersion)
		return u
	}
	return []*unstructured.Unstructured{
		mk("apps/v1", "Deployment", "web", map[string]any{"replicas": int64(3), "template": template},
			map[string]any{"observedGeneration": int64(2), "replicas": int64(4), "readyReplicas": int64(2), "updatedReplicas": int64(1), "availableReplicas": int64(2),
				"conditions": conds("Available", "Progressing")}),
		mk("apps/v1", "StatefulSet", "db", map[string]any{"replicas": int64(2), "template": template},
			map[string]any{"observedGeneration": int64(3), "readyReplicas": int64(2), "updatedReplicas": int64(2), "availableReplicas": int64(2),
				"currentRevision": "db-1", "updateRevision": "db-2"}),
		mk("apps/v1", "DaemonSet", "agent", map[string]any{"template": template},
			map[string]any{"observedGeneration": int64(3), "desiredNumberScheduled": int64(5), "numberReady": int64(4), "updatedNumberScheduled": int64(3), "numberAvailable": int64(4)}),
		mk("batch/v1", "Job", "migrate", map[string]any{"template": template, "backoffLimit": int64(2)},
			map[string]any{"failed": int64(3), "conditions": conds("Failed")}),
		mk("argoproj.io/v1alpha1", "Rollout", "api", map[string]any{"replicas": int64(4), "template": template},
			map[string]any{"observedGeneration": "3", "phase": "Paused", "readyReplicas": int64(4), "updatedReplicas": int64(1), "availableReplicas": int64(4),
				"canary": map[string]any{"currentStepAnalysisRunStatus": map[string]any{"name": "run-1"}}, "conditions": conds("Paused")}),
		mk("cert-manager.io/v1", "Certificate", "tls", map[string]any{"secretName": "tls", "dnsNames": []any{"web.example.com"}},
			map[string]any{"notAfter": "2027-01-02T03:04:05Z", "revision": int64(4), "conditions": conds("Ready")}),
	}
}

// checkTrimmedWorkload fails unless trimmed lost what ParseWorkload does
// not read, and reads the same as full.
func checkTrimmedWorkload(t *testing.T, full, trimmed *unstructured.Unstructured) {
	t.Helper()
	kind := full.GetKind()
	want, got := ParseWorkload(full, DefaultTracking()), ParseWorkload(trimmed, DefaultTracking())
	if !reflect.DeepEqual(want, got) {
		t.Errorf("%s: ParseWorkload of the trimmed object = %+v, want %+v", kind, got, want)
	}
	if want.App == "" {
		t.Errorf("%s: the fixture's tracking id joins no app", kind)
	}
	if trimmed.GetManagedFields() != nil {
		t.Errorf("%s: managed fields kept", kind)
	}
	a := trimmed.GetAnnotations()
	if _, ok := a[lastAppliedAnnotation]; ok || len(a) != len(full.GetAnnotations())-1 {
		t.Errorf("%s: annotations %v, want all but last-applied", kind, a)
	}
	if trimmed.GetUID() == "" || trimmed.GetResourceVersion() == "" || trimmed.GetGeneration() == 0 || len(trimmed.GetOwnerReferences()) != 1 || len(trimmed.GetLabels()) != 1 {
		t.Errorf("%s: metadata lost: %v", kind, trimmed.Object["metadata"])
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(trimmed.Object, "spec", "template"); ok {
		t.Errorf("%s: pod template kept", kind)
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(trimmed.Object, "status", "canary"); ok {
		t.Errorf("%s: nested status kept", kind)
	}
	conds, _, _ := unstructured.NestedSlice(trimmed.Object, "status", "conditions")
	for _, c := range conds {
		if m := c.(map[string]any); len(m) != 4 || m["lastTransitionTime"] != nil {
			t.Errorf("%s: condition %v, want its type, status, reason and message", kind, m)
		}
	}
}

func TestTrimWorkloadKeepsWhatParseWorkloadReads(t *testing.T) {
	for _, u := range workloadObjects() {
		trimmed, err := trimWorkload(u.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		checkTrimmedWorkload(t, u, trimmed.(*unstructured.Unstructured))
		again, _ := trimWorkload(trimmed.(*unstructured.Unstructured).DeepCopy())
		if !reflect.DeepEqual(trimmed, again) {
			t.Errorf("%s: trimming twice changed the object", u.GetKind())
		}
	}
}

// The workload informers cache trimmed objects.
func TestWorkloadInformersCacheTrimmedObjects(t *testing.T) {
	objects := workloadObjects()
	listKinds := map[schema.GroupVersionResource]string{}
	served := map[string]*metav1.APIResourceList{} // by group version
	var runtimeObjects []runtime.Object
	var names []string
	for name, gvr := range workloadKinds() {
		names = append(names, name)
		for _, u := range objects {
			if u.GroupVersionKind().GroupVersion() == gvr.GroupVersion() && strings.ToLower(u.GetKind())+"s" == gvr.Resource {
				listKinds[gvr] = u.GetKind() + "List"
				runtimeObjects = append(runtimeObjects, u.DeepCopy())
			}
		}
		gv := gvr.GroupVersion().String()
		if served[gv] == nil {
			served[gv] = &metav1.APIResourceList{GroupVersion: gv}
		}
		served[gv].APIResources = append(served[gv].APIResources, metav1.APIResource{Name: gvr.Resource})
	}
	var resources []*metav1.APIResourceList
	for _, l := range served {
		resources = append(resources, l)
	}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, runtimeObjects...)
	disc := &discoveryfake.FakeDiscovery{Fake: &k8stesting.Fake{Resources: resources}}
	w := NewWorkloads(client, disc, names, DefaultTracking(), promslog.NewNopLogger())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	informers, failed, err := w.informers(workloadSinkFunc(func(model.WorkloadEvent) {}), names)
	if err != nil || len(failed) != 0 {
		t.Fatal(err, failed)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, inf := range informers {
		wg.Go(func() { inf.Run(ctx.Done()) })
	}
	for _, inf := range informers {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			t.Fatal("an informer did not sync")
		}
	}
	byKind := map[string]*unstructured.Unstructured{}
	for _, u := range objects {
		byKind[u.GetKind()] = u
	}
	var seen []string
	for _, inf := range informers {
		for _, o := range inf.GetStore().List() {
			u := o.(*unstructured.Unstructured)
			checkTrimmedWorkload(t, byKind[u.GetKind()], u)
			seen = append(seen, u.GetKind())
		}
	}
	if len(seen) != len(objects) {
		t.Errorf("the informers cache %v, want one of each of the %d kinds", seen, len(objects))
	}
}

// workloadSinkFunc adapts a function to a WorkloadSink.
type workloadSinkFunc func(model.WorkloadEvent)

func (f workloadSinkFunc) HandleWorkload(e model.WorkloadEvent) { f(e) }

// recording is one recording of a real Argo CD, by name.
type recording struct {
	name string
	data []byte
}

// recordings are the demo's recording and the end-to-end tests' recordings
// of a real Argo CD.
func recordings(t *testing.T) []recording {
	t.Helper()
	out := []recording{{"demo", demo.Recording()}}
	files, err := filepath.Glob("../../../test/e2e/testdata/*/*.jsonl") // one directory per Argo CD line
	if err != nil || len(files) == 0 {
		t.Fatalf("find the e2e recordings: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recording{filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f), b})
	}
	return out
}

// derived collects what a tracker derives: facts and finished operations.
type derived struct {
	facts []*model.Fact
	ops   []*model.Operation
}

func (d *derived) Fact(f *model.Fact)           { d.facts = append(d.facts, f) }
func (d *derived) Finished(op *model.Operation) { d.ops = append(d.ops, op) }
func (d *derived) SetApp(*model.AppView)        {}
func (d *derived) DeleteApp(string)             {}

// Trimming drops only what crowsnest does not read: recordings of a real
// Argo CD, replayed with and without it, give the same series, facts and
// operations.
func TestTrimmedApplicationsTrackTheSame(t *testing.T) {
	conf, err := config.Parse(demo.Config())
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recordings(t) {
		t.Run(rec.name, func(t *testing.T) {
			type pipeline struct {
				track *tracker.Tracker
				store *exposition.Store
				out   *derived
			}
			newPipeline := func() pipeline {
				p := pipeline{store: exposition.NewStore(true), out: &derived{}}
				p.track = tracker.New(conf, tracker.Subscribers{
					Views:      []tracker.ViewSubscriber{p.store},
					Operations: []tracker.OperationSubscriber{p.store, p.out},
					Facts:      []tracker.FactSubscriber{p.out},
				}, promslog.NewNopLogger())
				return p
			}
			full, trimmed := newPipeline(), newPipeline()
			sc := bufio.NewScanner(bytes.NewReader(rec.data))
			sc.Buffer(nil, maxRecordLine)
			apps := 0
			for sc.Scan() {
				var l recordLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					t.Fatal(err)
				}
				switch {
				case l.App != nil:
					apps++
					cp, _ := trimApplication(l.App.DeepCopy())
					full.track.Handle(model.Event{Type: l.Type, Time: l.Time, App: l.App})
					trimmed.track.Handle(model.Event{Type: l.Type, Time: l.Time, App: cp.(*v1alpha1.Application)})
				case l.Project != nil:
					cp, _ := trimObjectMeta(l.Project.DeepCopy())
					full.track.HandleProject(model.ProjectEvent{Type: l.Type, Project: l.Project})
					trimmed.track.HandleProject(model.ProjectEvent{Type: l.Type, Project: cp.(*v1alpha1.AppProject)})
				}
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			var want, got bytes.Buffer
			if _, err := full.store.WriteTo(&want); err != nil {
				t.Fatal(err)
			}
			if _, err := trimmed.store.WriteTo(&got); err != nil {
				t.Fatal(err)
			}
			if apps == 0 || want.Len() == 0 || len(full.out.facts) == 0 {
				t.Fatalf("replayed %d app events: %d bytes of series, %d facts; want some of each", apps, want.Len(), len(full.out.facts))
			}
			// The store writes apps in no fixed order.
			if sortedLines(want.String()) != sortedLines(got.String()) {
				t.Errorf("series differ:\n%s", lineDiff(want.String(), got.String()))
			}
			if !reflect.DeepEqual(full.out.facts, trimmed.out.facts) {
				t.Errorf("facts differ: %d facts, trimmed %d", len(full.out.facts), len(trimmed.out.facts))
			}
			if !reflect.DeepEqual(full.out.ops, trimmed.out.ops) {
				t.Errorf("operations differ: %d operations, trimmed %d", len(full.out.ops), len(trimmed.out.ops))
			}
			t.Logf("%d app events: %d bytes of series, %d facts, %d operations alike", apps, want.Len(), len(full.out.facts), len(full.out.ops))
		})
	}
}

func sortedLines(s string) string {
	lines := strings.Split(s, "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// lineDiff lists the lines of want missing from got and the reverse.
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for l := range w {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for l := range g {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// listCall is one list request of a paginating fake API server.
type listCall struct {
	resourceVersion string
	limit           int64
	served          int
}

// paginatingLister answers list requests of apps as kube-apiserver 1.37
// does: with a limit in pages of pageSize (resourceVersion 0 too),
// continued by the index of the next item; without one all at once, or,
// if wholeFails (its watch cache off, etcd too slow for the whole list),
// with a timeout.
func paginatingLister(apps []*v1alpha1.Application, pageSize int, wholeFails bool, calls *[]listCall, mu *sync.Mutex) k8stesting.ReactionFunc {
	return func(action k8stesting.Action) (bool, runtime.Object, error) {
		opts := action.(k8stesting.ListActionImpl).ListOptions
		if opts.Limit == 0 && wholeFails {
			mu.Lock()
			*calls = append(*calls, listCall{opts.ResourceVersion, opts.Limit, -1})
			mu.Unlock()
			return true, nil, apierrors.NewTimeoutError("request did not complete within the allotted timeout", 0)
		}
		list := &v1alpha1.ApplicationList{ListMeta: metav1.ListMeta{ResourceVersion: "7"}}
		from, to := 0, len(apps)
		if opts.Limit > 0 {
			if opts.Continue != "" {
				from, _ = strconv.Atoi(opts.Continue)
			}
			to = min(from+pageSize, len(apps))
			if to < len(apps) {
				list.Continue = strconv.Itoa(to)
			}
		}
		for _, a := range apps[from:to] {
			list.Items = append(list.Items, *a.DeepCopy())
		}
		mu.Lock()
		*calls = append(*calls, listCall{opts.ResourceVersion, opts.Limit, len(list.Items)})
		mu.Unlock()
		return true, list, nil
	}
}

// The first list of a reflector (resourceVersion 0) is one request without
// a limit, which the API server answers whole from its watch cache; the
// client reads it as a stream (client.ListEach), trimming each app as it
// is decoded. Pages (a relist at another version) are followed.
func TestKubeSourceListsOnceFromTheWatchCache(t *testing.T) {
	testKubeSourceFirstList(t, false)
}

// When the list without a limit fails (an API server whose watch cache is
// off for Applications times out reading them all from etcd), the source
// lists in the reflector's pages from then on, and every app arrives.
func TestKubeSourceFallsBackToPages(t *testing.T) {
	testKubeSourceFirstList(t, true)
}

func testKubeSourceFirstList(t *testing.T, wholeFails bool) {
	var apps []*v1alpha1.Application
	for i := range 5 {
		apps = append(apps, bigApp())
		apps[i].Name, apps[i].UID = fmt.Sprintf("web-%d", i), types.UID(fmt.Sprintf("uid-%d", i))
	}
	client := fake.NewSimpleClientset()
	var calls []listCall
	var mu sync.Mutex
	client.PrependReactor("list", "applications", paginatingLister(apps, 2, wholeFails, &calls, &mu))
	var logs logtest.Buffer
	src := NewKubeSource(client, nil, NewSourceMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(&logs, nil)))
	store := newAppsSink()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, store)
	waitFor(t, "the apps", func() bool { return store.Len() == len(apps) })
	// The finished list is logged once, with its apps and how it was asked.
	listed := fmt.Sprintf(`msg="listed Applications" component=kubernetes-source namespace="" apps=%d whole=%v took=`, len(apps), !wholeFails)
	if n := logs.Count(listed); n != 1 {
		t.Errorf("%d log lines with %q, want 1; logs:\n%s", n, listed, logs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case !wholeFails && (len(calls) != 1 || calls[0] != listCall{"0", 0, len(apps)}):
		t.Errorf("list calls %+v, want one for resourceVersion 0 without a limit", calls)
	case wholeFails && (len(calls) != 4 || calls[0] != listCall{"0", 0, -1} || calls[1] != listCall{"0", 500, 2} || calls[3].served != 1):
		t.Errorf("list calls %+v, want one for resourceVersion 0 without a limit, failing, then 3 pages of the reflector's 500 (2 here)", calls)
	}
	a, _ := store.get("argocd/web-4")
	checkTrimmedApp(t, a)

	// A list at another version keeps the reflector's paging, and every
	// page is read.
	calls = nil
	mu.Unlock()
	l, _, err := listStreamed(ctx, client.ArgoprojV1alpha1().Applications(""), metav1.ListOptions{Limit: 2}, newAppTrimmer().application)
	mu.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.Items); n != len(apps) || len(calls) != 3 || l.Continue != "" {
		t.Errorf("paged list: %d apps in %d calls %+v, want %d in 3 pages", n, len(calls), calls, len(apps))
	}
}

// listTrimmed finds the current resource version, trims each page before
// it reads the next, and returns one list at that version.
func TestListTrimmedTrimsPageByPage(t *testing.T) {
	var log []string
	pages := [][]string{{"a", "b"}, {"c", "d"}, {"e"}}
	list := func(opts metav1.ListOptions) (runtime.Object, error) {
		if opts.Limit == 1 && opts.ResourceVersion == "" && opts.Continue == "" {
			log = append(log, "head")
			return &v1alpha1.ApplicationList{ListMeta: metav1.ListMeta{ResourceVersion: "10", Continue: "1"}, Items: []v1alpha1.Application{{}}}, nil
		}
		i := 0
		if opts.Continue != "" {
			i, _ = strconv.Atoi(opts.Continue)
			if opts.ResourceVersion != "" || opts.ResourceVersionMatch != "" {
				t.Errorf("continued list with a resource version: %+v", opts)
			}
		} else if opts.ResourceVersion != "10" || opts.ResourceVersionMatch != metav1.ResourceVersionMatchExact || opts.Limit != listPageSize {
			t.Errorf("list options %+v, want pages of %d at the head's resource version", opts, listPageSize)
		}
		log = append(log, "list "+strconv.Itoa(i))
		l := &v1alpha1.ApplicationList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.Itoa(10 + i)}}
		if i+1 < len(pages) {
			l.Continue = strconv.Itoa(i + 1)
		}
		for _, name := range pages[i] {
			l.Items = append(l.Items, v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Name: name, ManagedFields: managedFields()}})
		}
		return l, nil
	}
	trim := func(obj any) (any, error) {
		log = append(log, "trim "+obj.(*v1alpha1.Application).Name)
		return trimApplication(obj)
	}
	got, err := listTrimmed(metav1.ListOptions{ResourceVersion: "0", Limit: 500}, list, trim)
	if err != nil {
		t.Fatal(err)
	}
	want := "head, list 0, trim a, trim b, list 1, trim c, trim d, list 2, trim e"
	if strings.Join(log, ", ") != want {
		t.Errorf("calls: %s\nwant   %s", strings.Join(log, ", "), want)
	}
	l := got.(*v1alpha1.ApplicationList)
	var names []string
	for _, a := range l.Items {
		names = append(names, a.Name)
		if a.ManagedFields != nil {
			t.Errorf("%s kept its managed fields", a.Name)
		}
	}
	if strings.Join(names, "") != "abcde" || l.ResourceVersion != "10" || l.Continue != "" {
		t.Errorf("list: items %v, resourceVersion %q, continue %q; want abcde at 10, no continue", names, l.ResourceVersion, l.Continue)
	}
}

// TestTrimObjectMeta: the AppProject and ApplicationSet informers drop the
// managed fields and the last-applied annotation, and keep the rest.
func TestTrimObjectMeta(t *testing.T) {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "x", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			Annotations: map[string]string{lastAppliedAnnotation: "{}", "keep": "me"}}
	}
	for _, obj := range []metav1.ObjectMetaAccessor{
		&v1alpha1.AppProject{ObjectMeta: meta()},
		&v1alpha1.ApplicationSet{ObjectMeta: meta()},
	} {
		out, err := trimObjectMeta(obj)
		if err != nil {
			t.Fatal(err)
		}
		m := out.(metav1.ObjectMetaAccessor).GetObjectMeta()
		if m.GetManagedFields() != nil || m.GetAnnotations()[lastAppliedAnnotation] != "" || m.GetAnnotations()["keep"] != "me" || m.GetName() != "x" {
			t.Errorf("%T trimmed to %+v", obj, m)
		}
	}
}
