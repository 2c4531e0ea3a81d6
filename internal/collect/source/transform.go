package source

// What the informers cache. Each informer's transform (SetTransform, set
// before it starts) drops, from every object it lists or watches, the parts
// crowsnest never reads, before the object is cached and handed on: the
// object the informer caches is the one the tracker keeps and the views
// point to, so what is dropped here is dropped everywhere. Measured with
// `make scale` (see the README's Sizing section).
//
// Every object loses metadata.managedFields and the last-applied annotation
// of kubectl's client-side apply: both are large (the annotation repeats
// the whole object as applied) and crowsnest reads neither.
//
// A field a new feature reads must be kept here. TestTrimmedApplicationsTrackTheSame
// replays real Argo CD recordings with and without the trimming and
// compares everything crowsnest derives.

import (
	"fmt"
	"slices"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

// lastAppliedAnnotation is where kubectl's client-side apply (and Argo
// CD's, which uses it) keeps the object as last applied.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// trimMeta drops the managed fields and the last-applied annotation.
func trimMeta(m *metav1.ObjectMeta) {
	m.ManagedFields = nil
	delete(m.Annotations, lastAppliedAnnotation)
}

// appTrimmer is the Application informers' transform (application). It
// also shares one copy of each string that repeats across the apps'
// resource lists: groups, versions, kinds, namespaces, statuses and
// phases. Those are few, and a list of 30 resources repeats them
// hundreds of times per app (measured: 3 KiB of 25 per trimmed app).
type appTrimmer struct {
	mu      sync.Mutex
	strings map[string]string
	shard   Shard // other shards' apps are reduced to their metadata (shard.go)
	// since, when set, is when crowsnest started watching: an operation
	// that finished before it is one the tracker takes as a baseline (it
	// counts, times and traces only operations that finish after its
	// first event, which comes later), so its resource results are never
	// read and are dropped here (see baseline).
	since time.Time
	// released holds, per app UID, the operation (started, finished) the
	// tracker will not read the results of again (Released).
	released sync.Map
}

// releasedOp is an operation whose resource results are not needed.
type releasedOp struct{ started, finished int64 }

func newAppTrimmer() *appTrimmer { return &appTrimmer{strings: map[string]string{}} }

// application trims an Application (trimApplication) and shares its
// repeated strings.
func (t *appTrimmer) application(obj any) (any, error) {
	if obj, foreign := t.shard.reduce(obj); foreign {
		return obj, nil
	}
	obj, _ = trimApplication(obj)
	app, ok := obj.(*v1alpha1.Application)
	if !ok {
		return obj, nil
	}
	t.baseline(app)
	t.dropReleased(app)
	compact(app)
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range app.Status.Resources {
		r := &app.Status.Resources[i]
		t.share(&r.Group, &r.Version, &r.Kind, &r.Namespace, (*string)(&r.Status))
	}
	if op := app.Status.OperationState; op != nil && op.SyncResult != nil {
		for _, r := range op.SyncResult.Resources {
			if r != nil {
				t.share(&r.Group, &r.Version, &r.Kind, &r.Namespace, (*string)(&r.Status),
					(*string)(&r.HookType), (*string)(&r.HookPhase), (*string)(&r.SyncPhase))
			}
		}
	}
	app.Status.PackResources()
	app.Status.Resources = clip(app.Status.Resources) // when too varied to pack
	return app, nil
}

// baseline drops the resource results of an operation that finished before
// t.since: at start-up that is every app's last operation, and its results
// are most of an app (50 results: 11 KiB of 35, measured with
// BenchmarkMemoryPerDecodedApp). The tracker reads none of a baseline
// operation's results: it neither counts nor times nor traces it, and its
// waves were not watched. Whole seconds, as the tracker compares.
func (t *appTrimmer) baseline(app *v1alpha1.Application) {
	op := app.Status.OperationState
	if t.since.IsZero() || op == nil || op.SyncResult == nil || !op.Phase.Completed() || op.FinishedAt == nil {
		return
	}
	if op.FinishedAt.Unix() < t.since.Unix() {
		op.SyncResult.Resources = nil
	}
}

// dropReleased drops the resource results of an operation the tracker has
// released: handed off, it reads them no more, and they would stay cached
// until the next operation replaced them (11 KiB an app of 50 resources).
// Argo CD updates an app's status every few minutes (reconciledAt), so a
// finished operation's results leave memory minutes after it finished.
// Operations are told apart by start and end (whole seconds).
func (t *appTrimmer) dropReleased(app *v1alpha1.Application) {
	op := app.Status.OperationState
	if op == nil || op.SyncResult == nil || len(op.SyncResult.Resources) == 0 || !op.Phase.Completed() || op.FinishedAt == nil {
		return
	}
	v, ok := t.released.Load(app.UID)
	if ok && v.(releasedOp) == (releasedOp{op.StartedAt.Unix(), op.FinishedAt.Unix()}) {
		op.SyncResult.Resources = nil
	}
}

// compact gives the app's lists their length as capacity (status.resources
// is packed instead, or clipped when it cannot be): the decoder grows them
// by doubling, which leaves up to half of each unused (a list of 50
// resources has room for 64), for as long as the app is cached.
func compact(app *v1alpha1.Application) {
	st := &app.Status
	st.History = clip(st.History)
	st.Conditions = clip(st.Conditions)
	if op := st.OperationState; op != nil && op.SyncResult != nil {
		op.SyncResult.Resources = clip(op.SyncResult.Resources)
	}
}

// clip returns s, copied to a slice of its own length when it has room to
// spare.
func clip[S ~[]E, E any](s S) S {
	if cap(s) == len(s) {
		return s
	}
	return slices.Clone(s)
}

// share points each string at the table's copy of it.
func (t *appTrimmer) share(strs ...*string) {
	for _, s := range strs {
		if *s == "" {
			continue
		}
		if c, ok := t.strings[*s]; ok {
			*s = c
		} else {
			t.strings[*s] = *s
		}
	}
}

// trimApplication drops what crowsnest does not read of an Application
// and its lean type (internal/argocd/v1alpha1) still holds: the metadata's
// managed fields and last-applied annotation, and of the requested and the
// current operation the sync's source(s) and manifests (its dry run flag,
// revision(s), sync options and selected resources are read). Everything
// else crowsnest does not read — Helm values and other tool settings,
// status.resources[].health, the conditions' messages — is not even
// decoded: the lean type has no field for it; the sources of the history,
// of status.sync.comparedTo and of the sync result are decoded as 8-byte
// digests (v1alpha1.SourceDigest).
func trimApplication(obj any) (any, error) {
	app, ok := obj.(*v1alpha1.Application)
	if !ok {
		return obj, nil
	}
	trimMeta(&app.ObjectMeta)
	if app.Operation != nil {
		trimSyncOperation(app.Operation.Sync)
	}
	if op := app.Status.OperationState; op != nil {
		trimSyncOperation(op.Operation.Sync)
	}
	return app, nil
}

// trimSyncOperation keeps a sync's dry run flag, revision(s) and selected
// resources (a selective sync's: it is no deployment, and its last wave is
// that of what it selected; the Argo CD API source keeps them too, so both
// sources time it alike).
func trimSyncOperation(s *v1alpha1.SyncOperation) {
	if s != nil {
		s.Source, s.Sources, s.Manifests = nil, nil, nil
	}
}

// trimObjectMeta is the AppProject and ApplicationSet informers'
// transform: it drops the metadata's managed fields and last-applied
// annotation (their lean types keep the rest small: a project's sync
// windows, an ApplicationSet's strategy and rollout status).
func trimObjectMeta(obj any) (any, error) {
	if o, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if m, ok := o.GetObjectMeta().(*metav1.ObjectMeta); ok {
			trimMeta(m)
		}
	}
	return obj, nil
}

// trimWorkload is the workload informers' transform. It keeps apiVersion,
// kind, the metadata (every label and annotation but last-applied: the
// tracking id and instance label name the app, the sync-wave and hook
// annotations place it), spec.replicas, the status's plain values
// (replica counts, observedGeneration, revisions, phase, notAfter) and its
// conditions' type, status, reason and message. The pod template, the rest
// of the spec and nested status (a Rollout's canary state) are dropped:
// they are most of a workload, and ParseWorkload reads none of them.
func trimWorkload(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	out := make(map[string]any, 5)
	for _, k := range []string{"apiVersion", "kind"} {
		if v, ok := u.Object[k]; ok {
			out[k] = v
		}
	}
	if m, ok := u.Object["metadata"].(map[string]any); ok {
		meta := make(map[string]any, len(m))
		for k, v := range m {
			if k != "managedFields" {
				meta[k] = v
			}
		}
		if a, ok := m["annotations"].(map[string]any); ok {
			if _, ok := a[lastAppliedAnnotation]; ok {
				kept := make(map[string]any, len(a)-1)
				for k, v := range a {
					if k != lastAppliedAnnotation {
						kept[k] = v
					}
				}
				meta["annotations"] = kept
			}
		}
		out["metadata"] = meta
	}
	if r, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas"); ok {
		out["spec"] = map[string]any{"replicas": r}
	}
	if s, ok := u.Object["status"].(map[string]any); ok {
		status := make(map[string]any, len(s))
		for k, v := range s {
			switch v := v.(type) {
			case map[string]any:
			case []any:
				if k == "conditions" {
					status[k] = trimConditions(v)
				}
			default:
				status[k] = v
			}
		}
		out["status"] = status
	}
	return &unstructured.Unstructured{Object: out}, nil
}

// trimConditions keeps a workload condition's type, status, reason and
// message.
func trimConditions(conds []any) []any {
	out := make([]any, 0, len(conds))
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		kept := make(map[string]any, 4)
		for _, k := range []string{"type", "status", "reason", "message"} {
			if v, ok := m[k]; ok {
				kept[k] = v
			}
		}
		out = append(out, kept)
	}
	return out
}

// listPageSize is how many objects one list call of an informer asks for.
const listPageSize = 500

// listTrimmed is an informer's list: in pages of listPageSize, each page's
// items trimmed by trim before the next page is read, returned as one
// list. The pages are read at the resource version a one-item list finds
// current (resourceVersionMatch Exact), so the result is as new as any
// list the reflector asks for.
//
// Why: a reflector's first list asks for resourceVersion 0, which the API
// server answers from its watch cache in one response whatever the page
// size, and the informer's transform runs only once that whole list is
// decoded: the untrimmed objects and the response all at once (with
// 10,000 Applications and 20,000 Deployments crowsnest peaked at 4.3 GiB
// before lists were paged and trimmed, 0.9 GiB after; see the README's
// Sizing section). Pages of a list without a
// resource version are consistent reads, which an API server on an etcd
// without progress notifications serves from etcd (kube-apiserver 1.37 on
// etcd 3.4, 3,000 apps: 20 s, against 5.5 s for resourceVersion 0); pages
// at an exact resource version took 5.3 s.
func listTrimmed(opts metav1.ListOptions, list func(metav1.ListOptions) (runtime.Object, error), trim cache.TransformFunc) (runtime.Object, error) {
	selectors := metav1.ListOptions{LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector}
	head := selectors
	head.Limit = 1
	h, err := list(head)
	if err != nil {
		return nil, err
	}
	hm, err := apimeta.ListAccessor(h)
	if err != nil {
		return nil, fmt.Errorf("read list: %w", err)
	}
	opts = selectors
	opts.Limit, opts.ResourceVersion, opts.ResourceVersionMatch = listPageSize, hm.GetResourceVersion(), metav1.ResourceVersionMatchExact
	var first runtime.Object
	var items []runtime.Object
	for {
		page, err := list(opts)
		if err != nil {
			return nil, err
		}
		objs, err := apimeta.ExtractList(page)
		if err != nil {
			return nil, fmt.Errorf("read list: %w", err)
		}
		for _, o := range objs {
			trimmed, err := trim(o)
			if err != nil {
				return nil, err
			}
			items = append(items, trimmed.(runtime.Object))
		}
		lm, err := apimeta.ListAccessor(page)
		if err != nil {
			return nil, fmt.Errorf("read list: %w", err)
		}
		if first == nil {
			first = page
		}
		if lm.GetContinue() == "" {
			break
		}
		// A continued list takes its resource version from the token.
		opts.Continue, opts.ResourceVersion, opts.ResourceVersionMatch = lm.GetContinue(), "", ""
	}
	if err := apimeta.SetList(first, items); err != nil {
		return nil, fmt.Errorf("assemble list: %w", err)
	}
	lm, _ := apimeta.ListAccessor(first)
	lm.SetContinue("")
	lm.SetRemainingItemCount(nil)
	return first, nil
}
