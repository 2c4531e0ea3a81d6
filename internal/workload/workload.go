// Package workload watches the workloads Argo CD deploys — Deployments,
// StatefulSets, DaemonSets, Jobs and, when their CRDs exist, Argo Rollouts
// and cert-manager Certificates — and joins them to their Application by
// Argo CD's tracking annotation or instance label. An app can be Synced and
// Healthy in Argo CD's eyes (v3 no longer stores per-resource health) and
// still not serve; these are the series that show it.
package workload

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/events"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// Kinds crowsnest can watch, by the names --workloads.kinds takes.
var kinds = map[string]schema.GroupVersionResource{
	"deployments":  {Group: "apps", Version: "v1", Resource: "deployments"},
	"statefulsets": {Group: "apps", Version: "v1", Resource: "statefulsets"},
	"daemonsets":   {Group: "apps", Version: "v1", Resource: "daemonsets"},
	"jobs":         {Group: "batch", Version: "v1", Resource: "jobs"},
	"rollouts":     {Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"},
	"certificates": {Group: "cert-manager.io", Version: "v1", Resource: "certificates"},
}

// DefaultKinds is every kind crowsnest knows.
const DefaultKinds = "deployments,statefulsets,daemonsets,jobs,rollouts,certificates"

// ParseKinds checks a comma-separated list of kinds.
func ParseKinds(list string) ([]string, error) {
	var out []string
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(strings.ToLower(k))
		if k == "" {
			continue
		}
		if _, ok := kinds[k]; !ok {
			return nil, fmt.Errorf("--workloads.kinds: unknown kind %q, want some of %s", k, DefaultKinds)
		}
		out = append(out, k)
	}
	return out, nil
}

// Workload is what crowsnest keeps of one workload.
type Workload struct {
	// App is the Argo CD Application that deployed it, from its tracking
	// annotation (AppNamespace set when the id names it) or instance label.
	App, AppNamespace     string
	Kind, Namespace, Name string
	// Replicas by state (desired, ready, updated, available), for kinds
	// that have them.
	Replicas map[string]int64
	// RolloutInProgress: a new version is still rolling out.
	RolloutInProgress bool
	// JobStatus is Running, Complete or Failed for Jobs.
	JobStatus string
	// CertReady and CertExpiry for Certificates.
	CertReady  *bool
	CertExpiry time.Time
}

// Degraded reports whether the workload is not serving as it should:
// fewer replicas ready or available than desired, a failed Job, a
// Certificate not Ready.
func (w *Workload) Degraded() bool {
	if d, ok := w.Replicas["desired"]; ok && (w.Replicas["ready"] < d || w.Replicas["available"] < d) {
		return true
	}
	return w.JobStatus == "Failed" || w.CertReady != nil && !*w.CertReady
}

// App identifies an Application for the series of its workloads.
type App struct{ Namespace, Name, Project, Env string }

// Lookup finds the Application a workload belongs to; appNamespace is
// empty when the tracking id does not name it.
type Lookup func(appNamespace, appName string) (App, bool)

// Watcher watches workloads and exposes them as Prometheus series.
type Watcher struct {
	client    dynamic.Interface
	discovery discovery.DiscoveryInterface
	kinds     []string
	lookup    Lookup
	logger    *slog.Logger
	events    func(events.Event) // nil: transitions are only logged

	mu        sync.Mutex
	workloads map[string]*Workload // by kind/namespace/name
	degraded  map[string]bool
}

// NewWatcher returns a watcher of the given kinds.
func NewWatcher(client dynamic.Interface, disc discovery.DiscoveryInterface, kindList []string, lookup Lookup, logger *slog.Logger) *Watcher {
	return &Watcher{client: client, discovery: disc, kinds: kindList, lookup: lookup, logger: logger,
		workloads: map[string]*Workload{}, degraded: map[string]bool{}}
}

// SetEvents makes the watcher send its workload_degraded and
// workload_recovered facts to send too (for Loki); send must not block.
// Call it before Run.
func (w *Watcher) SetEvents(send func(events.Event)) { w.events = send }

// Run starts the informers of the kinds the API server serves (a CRD
// installed later needs a restart) and blocks until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	factory := dynamicinformer.NewDynamicSharedInformerFactory(w.client, 0)
	for _, k := range w.kinds {
		gvr := kinds[k]
		if !w.served(gvr) {
			w.logger.Info("not watching workloads: the API server does not serve them", "kind", k, "group_version", gvr.GroupVersion().String())
			continue
		}
		inf := factory.ForResource(gvr).Informer()
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.update(obj) },
			UpdateFunc: func(_, obj any) { w.update(obj) },
			DeleteFunc: func(obj any) { w.remove(obj) },
		})
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}

func (w *Watcher) served(gvr schema.GroupVersionResource) bool {
	list, err := w.discovery.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if err != nil {
		return false
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true
		}
	}
	return false
}

func (w *Watcher) update(obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	wl := Parse(u)
	key := wl.Kind + "/" + wl.Namespace + "/" + wl.Name
	if wl.App == "" {
		// Not (or no longer) deployed by Argo CD.
		w.mu.Lock()
		delete(w.workloads, key)
		delete(w.degraded, key)
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
	w.workloads[key] = &wl
	was, seen := w.degraded[key]
	w.mu.Unlock()
	now := wl.Degraded()
	if seen && now == was || !seen && !now {
		w.mu.Lock()
		w.degraded[key] = now
		w.mu.Unlock()
		return
	}
	// Remember the state only once its fact is out: a workload seen
	// degraded before crowsnest knows its app reports when it does.
	if w.logTransition(&wl, now) {
		w.mu.Lock()
		w.degraded[key] = now
		w.mu.Unlock()
	}
}

func (w *Watcher) remove(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	key := u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
	w.mu.Lock()
	delete(w.workloads, key)
	delete(w.degraded, key)
	w.mu.Unlock()
}

// describe gives the workload's identity and state as log attributes.
func (w *Workload) describe() []any {
	args := []any{"kind", w.Kind, "workload", w.Namespace + "/" + w.Name}
	if d, ok := w.Replicas["desired"]; ok {
		args = append(args, "desired", d, "ready", w.Replicas["ready"], "available", w.Replicas["available"])
	}
	if w.JobStatus != "" {
		args = append(args, "job_status", w.JobStatus)
	}
	return args
}

// logTransition writes the workload_degraded or workload_recovered fact;
// it reports false, writing nothing, for a workload of an Application
// crowsnest does not know (yet). (Helm's app.kubernetes.io/instance label
// names a release, which looks like Argo CD's label tracking.)
func (w *Watcher) logTransition(wl *Workload, degraded bool) bool {
	app, ok := w.lookup(wl.AppNamespace, wl.App)
	if !ok {
		return false
	}
	msg, event := "workload recovered", "workload_recovered"
	if degraded {
		msg, event = "workload degraded", "workload_degraded"
	}
	details := wl.describe()
	w.logger.Info(msg, append([]any{"event", event, "app", app.Namespace + "/" + app.Name, "project", app.Project, "env", app.Env}, details...)...)
	if w.events != nil {
		fields := map[string]any{}
		for i := 0; i+1 < len(details); i += 2 {
			fields[details[i].(string)] = details[i+1]
		}
		w.events(events.Event{Time: time.Now(), Event: event, App: app.Namespace + "/" + app.Name, Project: app.Project, Env: app.Env, Fields: fields})
	}
	return true
}

// Parse reads what crowsnest keeps from a workload object.
func Parse(u *unstructured.Unstructured) Workload {
	wl := Workload{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
	wl.AppNamespace, wl.App = tracking(u)
	i64 := func(def int64, path ...string) int64 {
		v, ok, _ := unstructured.NestedInt64(u.Object, path...)
		if !ok {
			return def
		}
		return v
	}
	str := func(path ...string) string {
		v, _, _ := unstructured.NestedString(u.Object, path...)
		return v
	}
	behind := i64(0, "status", "observedGeneration") < u.GetGeneration()
	switch wl.Kind {
	case "Deployment", "Rollout":
		desired := i64(1, "spec", "replicas")
		wl.Replicas = map[string]int64{"desired": desired, "ready": i64(0, "status", "readyReplicas"), "updated": i64(0, "status", "updatedReplicas"), "available": i64(0, "status", "availableReplicas")}
		wl.RolloutInProgress = behind || wl.Replicas["updated"] < desired || i64(0, "status", "replicas") > wl.Replicas["updated"]
		if wl.Kind == "Rollout" {
			phase := str("status", "phase")
			wl.RolloutInProgress = phase == "Progressing" || phase == "Paused"
		}
	case "StatefulSet":
		desired := i64(1, "spec", "replicas")
		wl.Replicas = map[string]int64{"desired": desired, "ready": i64(0, "status", "readyReplicas"), "updated": i64(0, "status", "updatedReplicas"), "available": i64(0, "status", "availableReplicas")}
		wl.RolloutInProgress = behind || wl.Replicas["updated"] < desired || str("status", "currentRevision") != str("status", "updateRevision")
	case "DaemonSet":
		desired := i64(0, "status", "desiredNumberScheduled")
		wl.Replicas = map[string]int64{"desired": desired, "ready": i64(0, "status", "numberReady"), "updated": i64(0, "status", "updatedNumberScheduled"), "available": i64(0, "status", "numberAvailable")}
		wl.RolloutInProgress = behind || wl.Replicas["updated"] < desired
	case "Job":
		wl.JobStatus = "Running"
		if condition(u, "Complete") == "True" {
			wl.JobStatus = "Complete"
		}
		if condition(u, "Failed") == "True" {
			wl.JobStatus = "Failed"
		}
	case "Certificate":
		ready := condition(u, "Ready") == "True"
		wl.CertReady = &ready
		if t, err := time.Parse(time.RFC3339, str("status", "notAfter")); err == nil {
			wl.CertExpiry = t
		}
	}
	return wl
}

// condition is the status of the object's condition of type t.
func condition(u *unstructured.Unstructured, t string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == t {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

// tracking returns the Application an object belongs to: Argo CD's
// tracking id annotation "<app>:<group>/<kind>:<namespace>/<name>", where
// <app> is "<app namespace>_<app name>" for apps outside Argo CD's own
// namespace; else the app.kubernetes.io/instance label (Argo CD's default
// label tracking).
func tracking(u *unstructured.Unstructured) (appNamespace, app string) {
	if id := u.GetAnnotations()["argocd.argoproj.io/tracking-id"]; id != "" {
		app, _, _ = strings.Cut(id, ":")
		if ns, name, ok := strings.Cut(app, "_"); ok {
			return ns, name
		}
		return "", app
	}
	return "", u.GetLabels()["app.kubernetes.io/instance"]
}

var (
	replicasDesc = prometheus.NewDesc("crowsnest_app_workload_replicas",
		"Replicas of a workload of the Application, by state: desired, ready, updated, available.",
		[]string{"namespace", "name", "project", "env", "kind", "workload", "state"}, nil)
	rolloutDesc = prometheus.NewDesc("crowsnest_app_workload_rollout_in_progress",
		"1 while a new version of the workload is rolling out.",
		[]string{"namespace", "name", "project", "env", "kind", "workload"}, nil)
	jobDesc = prometheus.NewDesc("crowsnest_app_workload_job_status",
		"State set of the Application's Jobs (hooks included): Running, Complete, Failed.",
		[]string{"namespace", "name", "project", "env", "workload", "status"}, nil)
	certReadyDesc = prometheus.NewDesc("crowsnest_app_workload_certificate_ready",
		"1 if the cert-manager Certificate is Ready.",
		[]string{"namespace", "name", "project", "env", "workload"}, nil)
	certExpiryDesc = prometheus.NewDesc("crowsnest_app_workload_certificate_expiry_timestamp_seconds",
		"When the cert-manager Certificate expires (status.notAfter).",
		[]string{"namespace", "name", "project", "env", "workload"}, nil)
)

// Describe implements prometheus.Collector.
func (w *Watcher) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{replicasDesc, rolloutDesc, jobDesc, certReadyDesc, certExpiryDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the series of every workload
// whose Application crowsnest knows.
func (w *Watcher) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	keys := make([]string, 0, len(w.workloads))
	for k := range w.workloads {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]Workload, len(keys))
	for i, k := range keys {
		list[i] = *w.workloads[k]
	}
	w.mu.Unlock()
	for _, wl := range list {
		app, ok := w.lookup(wl.AppNamespace, wl.App)
		if !ok {
			continue
		}
		id := []string{app.Namespace, app.Name, app.Project, app.Env}
		ref := wl.Namespace + "/" + wl.Name
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(append([]string{}, id...), labels...)...)
		}
		if wl.Replicas != nil {
			for _, state := range []string{"desired", "ready", "updated", "available"} {
				gauge(replicasDesc, float64(wl.Replicas[state]), wl.Kind, ref, state)
			}
			gauge(rolloutDesc, b2f(wl.RolloutInProgress), wl.Kind, ref)
		}
		if wl.JobStatus != "" {
			for _, s := range []string{"Running", "Complete", "Failed"} {
				gauge(jobDesc, b2f(wl.JobStatus == s), ref, s)
			}
		}
		if wl.CertReady != nil {
			gauge(certReadyDesc, b2f(*wl.CertReady), ref)
			if !wl.CertExpiry.IsZero() {
				gauge(certExpiryDesc, float64(wl.CertExpiry.Unix()), ref)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
