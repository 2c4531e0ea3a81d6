package source

// The workload source watches the workloads Argo CD deploys — Deployments,
// StatefulSets, DaemonSets, Jobs and, when their CRDs exist, Argo Rollouts
// and cert-manager Certificates — and names the Application each belongs
// to as Argo CD's controller does (Tracking.Owner). An app can be
// Synced and Healthy in Argo CD's eyes (v3 no longer stores per-resource
// health) and still not serve; the tracker joins workloads to their apps.

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/crowsnest/crowsnest/internal/model"
)

// workloadKinds are the kinds crowsnest can watch, by the names
// --workloads.kinds takes.
func workloadKinds() map[string]schema.GroupVersionResource {
	return map[string]schema.GroupVersionResource{
		"deployments":  {Group: "apps", Version: "v1", Resource: "deployments"},
		"statefulsets": {Group: "apps", Version: "v1", Resource: "statefulsets"},
		"daemonsets":   {Group: "apps", Version: "v1", Resource: "daemonsets"},
		"jobs":         {Group: "batch", Version: "v1", Resource: "jobs"},
		"rollouts":     {Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"},
		"certificates": {Group: "cert-manager.io", Version: "v1", Resource: "certificates"},
	}
}

// DefaultWorkloadKinds is every workload kind crowsnest knows.
const DefaultWorkloadKinds = "deployments,statefulsets,daemonsets,jobs,rollouts,certificates"

// ParseWorkloadKinds checks a comma-separated list of kinds.
func ParseWorkloadKinds(list string) ([]string, error) {
	kinds := workloadKinds()
	var out []string
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(strings.ToLower(k))
		if k == "" {
			continue
		}
		if _, ok := kinds[k]; !ok {
			return nil, fmt.Errorf("--workloads.kinds: unknown kind %q, want some of %s", k, DefaultWorkloadKinds)
		}
		out = append(out, k)
	}
	return out, nil
}

// Workloads watches workloads and delivers them to a WorkloadSink.
type Workloads struct {
	client    dynamic.Interface
	discovery discovery.DiscoveryInterface
	kinds     []string
	tracking  Tracking
	cluster   string // model.Workload.Cluster of every workload; empty: the local cluster
	logger    *slog.Logger
}

// SetCluster names the cluster the workloads are read from, by the server
// URL of its Argo CD cluster Secret: they join only apps deployed there.
// Call it before Run; not called, the cluster is the local one.
func (w *Workloads) SetCluster(server string) { w.cluster = server }

// NewWorkloads returns a source of the workloads of the given kinds, each
// joined to the app that owns it by tracking.
func NewWorkloads(client dynamic.Interface, disc discovery.DiscoveryInterface, kindList []string, tracking Tracking, logger *slog.Logger) *Workloads {
	return &Workloads{client: client, discovery: disc, kinds: kindList, tracking: tracking, logger: logger}
}

// Run starts the informers of the kinds the API server serves (a CRD
// installed later needs a restart), delivers their events to sink, and
// blocks until ctx is done and the informers have stopped. A kind whose
// discovery fails (the API server unreachable: a spoke cluster down) is
// asked again, 1 s after the first failure and up to every
// maxDiscoveryDelay, and watched once it answers; the other kinds and
// sinks do not wait for it.
func (w *Workloads) Run(ctx context.Context, sink WorkloadSink) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	pending := w.kinds
	for delay := time.Second; ; delay = min(2*delay, maxDiscoveryDelay) {
		informers, failed, err := w.informers(sink, pending)
		if err != nil {
			return err
		}
		for _, inf := range informers {
			wg.Go(func() { inf.Run(ctx.Done()) })
		}
		if len(failed) == 0 {
			break
		}
		if len(failed) < len(pending) || delay == time.Second {
			w.logger.Warn("cannot ask the API server which workload kinds it serves; asking again", "kinds", strings.Join(failed, ","), "every", maxDiscoveryDelay.String())
		}
		pending = failed
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
	// With no kind served (none installed) there is no informer to wait
	// for: returning early would end the daemon.
	<-ctx.Done()
	return nil
}

// maxDiscoveryDelay is the longest wait between two discovery requests of
// kinds whose discovery failed.
const maxDiscoveryDelay = time.Minute

// informers returns an informer, not started yet, per kind of kinds the
// API server serves, each delivering to sink, and the kinds whose
// discovery failed. They list in trimmed pages (listTrimmed) and cache
// trimmed objects (trimWorkload).
func (w *Workloads) informers(sink WorkloadSink, kindList []string) (out []cache.SharedIndexInformer, failed []string, err error) {
	kinds := workloadKinds()
	for _, k := range kindList {
		gvr := kinds[k]
		served, err := w.served(gvr)
		if err != nil {
			failed = append(failed, k)
			w.logger.Debug("workload discovery failed", "kind", k, "err", err)
			continue
		}
		if !served {
			w.logger.Info("not watching workloads: the API server does not serve them", "kind", k, "group_version", gvr.GroupVersion().String())
			continue
		}
		res := w.client.Resource(gvr)
		lw := &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				return listTrimmed(opts, func(o metav1.ListOptions) (runtime.Object, error) { return res.List(ctx, o) }, trimWorkload)
			},
			WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
				return res.Watch(ctx, opts)
			},
		}
		inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, noWatchList{}), &unstructured.Unstructured{}, 0, cache.Indexers{})
		if err := inf.SetTransform(trimWorkload); err != nil {
			return nil, nil, fmt.Errorf("set %s transform: %w", k, err)
		}
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.deliver(sink, model.Added, obj) },
			UpdateFunc: func(_, obj any) { w.deliver(sink, model.Modified, obj) },
			DeleteFunc: func(obj any) { w.deliver(sink, model.Deleted, obj) },
		})
		out = append(out, inf)
	}
	return out, failed, nil
}

// deliver hands one informer notification to sink: the workload, its app
// as tracking names it, and its cluster.
func (w *Workloads) deliver(sink WorkloadSink, t model.EventType, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	wl := ParseWorkload(u, w.tracking)
	wl.Cluster = w.cluster
	sink.HandleWorkload(model.WorkloadEvent{Type: t, Time: time.Now(), Workload: wl})
}

// served reports whether the API server serves gvr; an error when it
// could not say.
func (w *Workloads) served(gvr schema.GroupVersionResource) (bool, error) {
	list, err := w.discovery.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", gvr.GroupVersion(), err)
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true, nil
		}
	}
	return false, nil
}

// ParseWorkload reads what crowsnest keeps from a workload object; tr
// names the app that owns it.
func ParseWorkload(u *unstructured.Unstructured, tr Tracking) model.Workload {
	wl := model.Workload{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), Created: u.GetCreationTimestamp().Time}
	wl.AppNamespace, wl.App = tr.Owner(u)
	wl.SyncWave, wl.PruneLast = syncWave(u.GetAnnotations())
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

// syncWave reads an object's sync wave as gitops-engine does
// (syncwaves.Wave): its argocd.argoproj.io/sync-wave annotation if that is
// a number, else its helm.sh/hook-weight if that is, else 0; and whether
// its sync options ask to be pruned last.
func syncWave(annotations map[string]string) (wave int64, pruneLast bool) {
	for _, opt := range strings.Split(annotations["argocd.argoproj.io/sync-options"], ",") {
		if strings.TrimSpace(opt) == "PruneLast=true" {
			pruneLast = true
		}
	}
	for _, a := range []string{"argocd.argoproj.io/sync-wave", "helm.sh/hook-weight"} {
		if v, ok := annotations[a]; ok {
			if n, err := strconv.Atoi(v); err == nil {
				return int64(n), pruneLast
			}
		}
	}
	return 0, pruneLast
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
