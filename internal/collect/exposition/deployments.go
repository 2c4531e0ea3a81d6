package exposition

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
)

// DeploymentCounters are the deployments and failed changes of every app,
// counted by project and env: what DORA's recording rules read
// (internal/rules/dora.go). The per-app counters carry the same counts, but
// a rule summing them over a week reads every sample of every app's series
// (at 10,000 apps, 50,000 series and two replicas: minutes an evaluation,
// docs/scale.md); these are a few series per project and env, and they keep
// counting what deleted apps deployed, where a per-app counter ends with its
// app. They are kept in the daemon's own registry, like the histograms, and
// carry the shard label there when sharded. It is a deployment subscriber
// and a view subscriber.
type DeploymentCounters struct {
	deployments *prometheus.CounterVec
	failures    *prometheus.CounterVec

	mu sync.Mutex
	// seen are the project and env pairs whose series exist (at 0 before
	// their first count, so that increase() counts the first).
	seen map[[2]string]bool
}

// NewDeploymentCounters creates the counters and registers them with reg.
func NewDeploymentCounters(reg prometheus.Registerer) *DeploymentCounters {
	c := &DeploymentCounters{
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_deployments_total",
			Help: "Deployments that crowsnest saw finish, by project, env and result, as crowsnest_app_deployments_total counts them per app, deleted apps' included. DORA's deployment frequency and change failure rate read it.",
		}, []string{"project", "env", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_change_failures_total",
			Help: "Deployments counted as failed changes, by project, env and reason, as crowsnest_app_change_failures_total counts them per app, deleted apps' included.",
		}, []string{"project", "env", "reason"}),
		seen: map[[2]string]bool{},
	}
	reg.MustRegister(c.deployments, c.failures)
	return c
}

// SetApp creates the series of the app's project and env at 0, the first
// time they are seen: a series that appeared at 1 would lose its first
// count to increase().
func (c *DeploymentCounters) SetApp(v *model.AppView) {
	c.ensure(v.App.Spec.Project, v.Env)
}

// DeleteApp keeps the counts: the deployments happened.
func (c *DeploymentCounters) DeleteApp(string) {}

func (c *DeploymentCounters) ensure(project, env string) (string, string) {
	project, env = model.LabelValue(project), model.LabelValue(env)
	k := [2]string{project, env}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.seen[k] {
		c.seen[k] = true
		for _, r := range model.DeploymentResults() {
			c.deployments.WithLabelValues(project, env, r)
		}
		for _, r := range model.FailureReasons() {
			c.failures.WithLabelValues(project, env, r)
		}
	}
	return project, env
}

// Deployment counts a finished deployment or a failed change.
func (c *DeploymentCounters) Deployment(n *model.DeploymentNotice) {
	if n == nil || n.Deployment == nil {
		return
	}
	d := n.Deployment
	switch n.Kind {
	case model.NoticeDeployed:
		project, env := c.ensure(d.Project, d.Env)
		c.deployments.WithLabelValues(project, env, model.LabelValue(d.Result)).Inc()
	case model.NoticeChangeFailed:
		project, env := c.ensure(d.Project, d.Env)
		c.failures.WithLabelValues(project, env, model.LabelValue(n.Reason)).Inc()
	}
}
