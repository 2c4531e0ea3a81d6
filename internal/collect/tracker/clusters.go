package tracker

import (
	"strings"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// Clusters are the clusters whose workloads crowsnest watches, as Argo CD's
// destinations name them. A tracking id names no cluster: a workload joins
// only apps deployed to the cluster it was read from.
type Clusters struct {
	Local LocalCluster
	// Remote are other clusters watched with credentials of their own
	// (hub and spoke); a workload read from one has Cluster set to its
	// Server.
	Remote []RemoteCluster
	// Named are clusters crowsnest does not watch, by the name Argo CD
	// gives them (from its API): they name an app's destination cluster
	// (model.AppView.Dest) when its destination gives a server only.
	Named []RemoteCluster
	// AnyLocal makes every destination the local cluster: a replay's
	// workloads are those the recorder joined to their apps in the one
	// cluster it watched.
	AnyLocal bool
}

// LocalCluster is the cluster crowsnest runs in (its workloads have an
// empty Cluster). Argo CD calls the cluster it runs in
// v1alpha1.KubernetesInternalAPIServerAddr and, unless a cluster Secret
// renames it, v1alpha1.InClusterName.
type LocalCluster struct {
	Name    string   // Argo CD's name for the cluster; empty: v1alpha1.InClusterName
	Servers []string // its API server URLs besides KubernetesInternalAPIServerAddr, e.g. the one crowsnest reaches
}

// RemoteCluster is another destination cluster, by the name and server URL
// of its Argo CD cluster Secret.
type RemoteCluster struct {
	Name, Server string
}

// SetClusters sets the clusters whose workloads crowsnest watches: apps
// deployed to one join its workloads; apps deployed elsewhere join none,
// however their objects are named. Call it before the first event.
func (t *Tracker) SetClusters(c Clusters) {
	x := newClusterIndex(c)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clusters = x
}

// clusterIndex resolves an app's destination to the cluster its workloads
// are read from: "" for the local cluster, else the remote's normalized
// server URL.
type clusterIndex struct {
	anyLocal bool
	byServer map[string]string // normalized server URL -> cluster
	byName   map[string]string // Argo CD's cluster name -> cluster
	names    map[string]string // cluster -> its name, as model.AppView.Dest carries it
	known    map[string]string // normalized server URL of an unwatched cluster -> Argo CD's name
}

func newClusterIndex(c Clusters) clusterIndex {
	name := c.Local.Name
	if name == "" {
		name = v1alpha1.InClusterName
	}
	x := clusterIndex{anyLocal: c.AnyLocal, byServer: map[string]string{normalServer(v1alpha1.KubernetesInternalAPIServerAddr): ""}, byName: map[string]string{},
		names: map[string]string{"": name}, known: map[string]string{}}
	for _, r := range c.Named {
		if r.Name != "" {
			x.known[normalServer(r.Server)] = r.Name
		}
	}
	for _, r := range c.Remote {
		server := normalServer(r.Server)
		x.byServer[server] = server
		x.names[server] = server
		if r.Name != "" {
			x.byName[r.Name] = server
			x.names[server] = r.Name
		}
	}
	// The local cluster's names win: its workloads are always watched.
	for _, s := range c.Local.Servers {
		x.byServer[normalServer(s)] = ""
	}
	x.byName[name] = ""
	return x
}

// of returns the cluster app deploys to, and whether its workloads are
// watched. A destination names its cluster by server URL or, without one,
// by name (Argo CD's ApplicationDestination).
func (x clusterIndex) of(app *v1alpha1.Application) (cluster string, watched bool) {
	if x.anyLocal {
		return "", true
	}
	d := app.Spec.Destination
	if d.Server != "" {
		cluster, watched = x.byServer[normalServer(d.Server)]
		return cluster, watched
	}
	cluster, watched = x.byName[d.Name] // no key is "": the local name is defaulted, nameless remotes skipped
	return cluster, watched
}

// dest returns the name of the cluster app deploys to, as its series,
// alerts, facts and traces carry it (model.AppView.Dest): the
// destination's name; for a destination by server URL, the name crowsnest
// knows for that server (the local cluster's, a watched spoke's, Argo
// CD's from Clusters.Named) or else the URL itself, normalized; in a replay (AnyLocal), the local name. A label of names rather than URLs lets
// Alertmanager route a cluster's alerts and CrowsnestClusterDown inhibit
// them. Empty only when the destination names neither.
func (x clusterIndex) dest(app *v1alpha1.Application) string {
	d := app.Spec.Destination
	if d.Server == "" {
		return d.Name
	}
	server := normalServer(d.Server)
	if c, ok := x.byServer[server]; ok || x.anyLocal {
		return x.names[c] // c is "" when not found: the local cluster
	}
	if name, ok := x.known[server]; ok {
		return name
	}
	return server
}

// normalServer is a server URL as compared: without a trailing slash, in
// lower case (Argo CD compares them as written; a host is case-blind).
func normalServer(s string) string { return strings.ToLower(strings.TrimRight(s, "/")) }

// joinCluster files the app key (st; old before this event, nil when new)
// under the cluster it deploys to now, so that cluster's workloads join
// it; an app may change destination, or be re-created with another. It
// returns the clusters whose apps of this name need their views again once
// the event is applied: which of them an unqualified workload reference
// joins may have changed.
func (t *Tracker) joinCluster(key string, old, st *appState, app *v1alpha1.Application) (refresh []string) {
	cluster, joined := t.clusters.of(app)
	first := old != st
	was := old != nil && old.joined
	if was && (first || !joined || old.cluster != cluster) {
		t.workloads.removeApp(old.cluster, app.Name, key)
		refresh = append(refresh, old.cluster)
	}
	if joined && (first || !was || old.cluster != cluster) {
		t.workloads.addApp(cluster, app.Name, key)
		refresh = append(refresh, cluster)
	}
	st.cluster, st.joined, st.dest = cluster, joined, t.clusters.dest(app)
	return refresh
}

// workloadsOf returns the workloads of the app st, none for an app in a
// cluster crowsnest does not watch.
func (t *Tracker) workloadsOf(st *appState) []model.Workload {
	if !st.joined {
		return nil
	}
	return t.workloads.of(st.cluster, st.app.Namespace, st.app.Name)
}
