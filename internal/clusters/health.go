package clusters

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/discovery"
)

// Health probes the API server of each watched cluster and exposes
// crowsnest_cluster_up: an unreachable spoke shows as such, while its
// informers retry on their own and every other cluster goes on.
type Health struct {
	up       *prometheus.GaugeVec
	interval time.Duration // ProbeInterval
}

// NewHealth registers crowsnest_cluster_up with reg.
func NewHealth(reg prometheus.Registerer) *Health {
	h := &Health{up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "crowsnest_cluster_up",
		Help: "Whether the API server of a destination cluster crowsnest watches workloads in (--clusters.dir) answered its last probe (1) or not (0); 0 for a cluster whose authentication crowsnest does not support. dest_server and dest_cluster are its Argo CD cluster Secret's server and name (the server when it has none): the dest_cluster of the apps deployed to it.",
	}, []string{"dest_server", "dest_cluster"}), interval: ProbeInterval}
	reg.MustRegister(h.up)
	return h
}

// ProbeInterval is how often Run asks a cluster's API server for its
// version; ProbeTimeout bounds one request.
const (
	ProbeInterval = 30 * time.Second
	ProbeTimeout  = 10 * time.Second
)

// Unsupported shows c as down for good: crowsnest cannot authenticate to
// it.
func (h *Health) Unsupported(c *Cluster) {
	h.up.WithLabelValues(c.Server, c.Name).Set(0)
}

// Run probes c every ProbeInterval until ctx ends, logging when it goes
// down and when it comes back.
func (h *Health) Run(ctx context.Context, c *Cluster, logger *slog.Logger) error {
	rc := c.RESTConfig()
	rc.Timeout = ProbeTimeout
	client, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return err
	}
	gauge := h.up.WithLabelValues(c.Server, c.Name)
	up := true // so that a first failure is logged
	tick := time.NewTicker(h.interval)
	defer tick.Stop()
	for {
		_, err := client.ServerVersion()
		switch {
		case err != nil && up:
			logger.Warn("cluster unreachable: its workloads are not current until it answers", "cluster", c.Name, "server", c.Server, "err", err)
		case err == nil && !up:
			logger.Info("cluster reachable", "cluster", c.Name, "server", c.Server)
		}
		up = err == nil
		gauge.Set(map[bool]float64{true: 1, false: 0}[up])
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
