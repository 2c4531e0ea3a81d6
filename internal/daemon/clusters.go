package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/api"
	"github.com/crowsnest/crowsnest/internal/clusters"
	"github.com/crowsnest/crowsnest/internal/collect/tracker"
)

// remoteClusters returns the destination clusters of --clusters.dir,
// loaded once; none without it.
func (d *daemon) remoteClusters() ([]clusters.Cluster, error) {
	if d.o.ClustersDir == "" || d.remote != nil {
		return d.remote, nil
	}
	cs, err := clusters.Load(d.o.ClustersDir)
	if err != nil {
		return nil, fmt.Errorf("--clusters.dir: %w", err)
	}
	d.remote = cs
	return cs, nil
}

// trackerClusters names the clusters whose workloads the tracker joins:
// the local one (by --workloads.cluster, kubernetes.default.svc and the
// API server URL crowsnest uses) and those of --clusters.dir.
func (d *daemon) trackerClusters() (tracker.Clusters, error) {
	c := tracker.Clusters{Local: tracker.LocalCluster{Name: d.o.WorkloadsCluster}, AnyLocal: d.o.Source == SourceReplay}
	if d.o.Source == SourceArgoCDAPI {
		c.Named = d.argoCDClusterNames()
	}
	if !d.o.kubernetes() {
		return c, nil
	}
	// The workloads come from this API server: an app whose destination
	// is its URL (Argo CD outside the cluster) is local.
	rc, err := d.kube.config()
	if err != nil {
		return c, err
	}
	c.Local.Servers = []string{rc.Host}
	remote, err := d.remoteClusters()
	if err != nil {
		return c, err
	}
	for _, r := range remote {
		if r.Unsupported == "" {
			c.Remote = append(c.Remote, tracker.RemoteCluster{Name: r.Name, Server: r.Server})
		}
	}
	return c, nil
}

// spokes adds, for each cluster of --clusters.dir crowsnest can
// authenticate to, the watch of its workloads and the probe of its API
// server; each runs on its own, so one down never holds up another.
func (d *daemon) spokes(kinds []string, track *tracker.Tracker) error {
	remote, err := d.remoteClusters()
	if err != nil || len(remote) == 0 {
		return err
	}
	health := clusters.NewHealth(d.reg)
	for i := range remote {
		c := &remote[i]
		log := d.log.With("component", "cluster", "cluster", c.Name)
		if c.Unsupported != "" {
			log.Warn("not watching the cluster's workloads", "server", c.Server, "reason", c.Unsupported)
			health.Unsupported(c)
			continue
		}
		log.Info("watching the cluster's workloads", "server", c.Server, "auth", c.Auth)
		rc := c.RESTConfig()
		rc.UserAgent = userAgent()
		w, err := workloadsOf(rc, kinds, d.o.ArgoCD.Tracking, log)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		w.SetCluster(c.Server)
		d.actors = append(d.actors,
			actor{"workloads " + c.Name, stageInputs, func(ctx context.Context) error { return w.Run(ctx, track) }},
			actor{"probe " + c.Name, stageInputs, func(ctx context.Context) error { return health.Run(ctx, c, log) }})
	}
	return nil
}

// argoCDClusterNames asks Argo CD's API for the names of the clusters it
// deploys to, so an app whose destination gives a server carries Argo
// CD's name for it in dest_cluster, as with the Kubernetes source for the
// clusters it knows. Asked once, at start: a failure (Argo CD down, a token
// without clusters/get) is logged and the server URLs are used; a cluster
// added later is named after a restart.
func (d *daemon) argoCDClusterNames() []tracker.RemoteCluster {
	client, err := api.New(d.o.ArgoCD.sourceConfig().APIConfig())
	if err != nil {
		d.log.Warn("not naming destination clusters: Argo CD API client", "err", err)
		return nil
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), clusterNamesTimeout)
	defer cancel()
	cs, err := client.Clusters(ctx)
	if err != nil {
		d.log.Warn("not naming destination clusters: dest_cluster is the server URL of apps deployed by server", "err", err)
		return nil
	}
	out := make([]tracker.RemoteCluster, 0, len(cs))
	for _, c := range cs {
		out = append(out, tracker.RemoteCluster{Name: c.Name, Server: c.Server})
	}
	d.log.Info("destination clusters named from Argo CD", "clusters", len(out))
	return out
}

// clusterNamesTimeout bounds the start-up question for Argo CD's cluster
// names.
const clusterNamesTimeout = 10 * time.Second
