package tracker

import (
	"sort"

	"github.com/crowsnest/crowsnest/internal/model"
)

// HandleWorkload applies one workload event: the workload joins its
// Application's view, and turning degraded or recovering is a fact.
func (t *Tracker) HandleWorkload(e model.WorkloadEvent) {
	wl := e.Workload
	// Compared with destinations as clusterIndex compares them.
	wl.Cluster = normalServer(wl.Cluster)
	var out outbox
	t.mu.Lock()
	defer t.unlockAndPublish(&out)
	t.start(e.Time)
	key := wl.Key()
	old, had := t.workloads.byKey[key]
	if had {
		t.workloads.remove(key)
	}
	if e.Type != model.Deleted && wl.App != "" {
		t.workloads.add(&workloadState{Workload: wl})
		st := t.workloads.byKey[key]
		if had {
			st.degraded, st.reported = old.degraded, old.reported
		}
		t.noteDegraded(st, e, &out)
	}
	// Re-render the apps the workload left and joined.
	refs := []workloadRef{refOf(&wl)}
	if had {
		refs = append(refs, refOf(&old.Workload))
	}
	for _, ref := range refs {
		if appKey, ok := t.workloads.resolve(ref); ok {
			if st, ok := t.apps[appKey]; ok && !containsView(out.views, appKey) {
				out.views = append(out.views, t.view(appKey, st))
			}
		}
	}
}

// noteDegraded turns a change of the workload's degraded state into a
// fact. The state is remembered only once its fact is out: a workload seen
// degraded before crowsnest knows its app reports when it does.
func (t *Tracker) noteDegraded(w *workloadState, e model.WorkloadEvent, out *outbox) {
	now := w.Degraded()
	if w.reported && now == w.degraded || !w.reported && (!now || t.existed(w.Created)) {
		// (Degraded at crowsnest's first look at a workload that existed
		// before it started is no news: a restart logs no flood.)
		w.degraded, w.reported = now, true
		return
	}
	appKey, ok := t.workloads.resolve(refOf(&w.Workload))
	st := t.apps[appKey]
	if !ok || st == nil {
		// Not an app crowsnest knows (yet); Helm's instance label names
		// a release, which looks like Argo CD's label tracking.
		return
	}
	name := model.FactWorkloadRecovered
	if now {
		name = model.FactWorkloadDegraded
	}
	out.facts = append(out.facts, &model.Fact{Name: name, Time: e.Time, App: appKey, Project: st.app.Spec.Project, Env: st.env, Dest: st.dest, Attrs: w.Describe()})
	w.degraded, w.reported = now, true
}

// workloadRef is how a workload names its Application, in the cluster it
// was read from: namespace may be empty when its tracking id or label does
// not say.
type workloadRef struct{ cluster, namespace, name string }

func refOf(w *model.Workload) workloadRef { return workloadRef{w.Cluster, w.AppNamespace, w.App} }

// appName is an app's name in the cluster it deploys to.
type appName struct{ cluster, name string }

// workloadState is a workload and what was last reported of it.
type workloadState struct {
	model.Workload
	degraded, reported bool
}

// workloadIndex joins workloads to the apps of their cluster by namespace
// and name, and by name alone for references without a namespace.
type workloadIndex struct {
	byKey map[string]*workloadState           // Workload.Key
	byRef map[workloadRef]map[string]struct{} // ref -> workload keys
	named map[appName]map[string]struct{}     // app name in its cluster -> app keys
}

func newWorkloadIndex() workloadIndex {
	return workloadIndex{byKey: map[string]*workloadState{}, byRef: map[workloadRef]map[string]struct{}{}, named: map[appName]map[string]struct{}{}}
}

func (x *workloadIndex) add(w *workloadState) {
	k := w.Key()
	x.byKey[k] = w
	r := refOf(&w.Workload)
	if x.byRef[r] == nil {
		x.byRef[r] = map[string]struct{}{}
	}
	x.byRef[r][k] = struct{}{}
}

func (x *workloadIndex) remove(key string) {
	w, ok := x.byKey[key]
	if !ok {
		return
	}
	delete(x.byKey, key)
	r := refOf(&w.Workload)
	delete(x.byRef[r], key)
	if len(x.byRef[r]) == 0 {
		delete(x.byRef, r)
	}
}

// addApp and removeApp keep the apps of each name in each watched
// cluster: only they join that cluster's workloads.
func (x *workloadIndex) addApp(cluster, name, appKey string) {
	n := appName{cluster, name}
	if x.named[n] == nil {
		x.named[n] = map[string]struct{}{}
	}
	x.named[n][appKey] = struct{}{}
}

func (x *workloadIndex) removeApp(cluster, name, appKey string) {
	n := appName{cluster, name}
	delete(x.named[n], appKey)
	if len(x.named[n]) == 0 {
		delete(x.named, n)
	}
}

// appsNamed returns the keys of the apps called name in cluster, sorted.
func (x *workloadIndex) appsNamed(cluster, name string) []string {
	n := appName{cluster, name}
	keys := make([]string, 0, len(x.named[n]))
	for k := range x.named[n] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// resolve returns the key of the app ref names, among the apps deployed
// to the cluster the workload was read from. A reference without a
// namespace (Argo CD's tracking id leaves out the namespace of apps in its
// own) goes to the app of that name; when several namespaces have one, to
// the first by key, so every replica picks the same.
func (x *workloadIndex) resolve(ref workloadRef) (string, bool) {
	if ref.name == "" {
		return "", false
	}
	n := appName{ref.cluster, ref.name}
	if ref.namespace != "" {
		k := model.Key(ref.namespace, ref.name)
		_, ok := x.named[n][k]
		return k, ok
	}
	apps := x.named[n]
	if len(apps) <= 1 { // the usual case, without sorting
		for k := range apps {
			return k, true
		}
		return "", false
	}
	return x.appsNamed(ref.cluster, ref.name)[0], true
}

// of returns the workloads of the app namespace/name deployed to cluster,
// sorted by key.
func (x *workloadIndex) of(cluster, namespace, name string) []model.Workload {
	appKey := model.Key(namespace, name)
	var keys []string
	unqualified := workloadRef{cluster, "", name}
	if first, _ := x.resolve(unqualified); first == appKey {
		for k := range x.byRef[unqualified] {
			keys = append(keys, k)
		}
	}
	for k := range x.byRef[workloadRef{cluster, namespace, name}] {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	out := make([]model.Workload, len(keys))
	for i, k := range keys {
		out[i] = x.byKey[k].Workload
	}
	return out
}

// live finds a workload watched in cluster by kind, namespace and name:
// the live object of a hook or of a resource to prune, for its wave.
func (x *workloadIndex) live(cluster, kind, namespace, name string) (*model.Workload, bool) {
	w, ok := x.byKey[(&model.Workload{Cluster: cluster, Kind: kind, Namespace: namespace, Name: name}).Key()]
	if !ok {
		return nil, false
	}
	return &w.Workload, true
}
