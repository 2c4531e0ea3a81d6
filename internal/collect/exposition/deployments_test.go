package exposition

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// The aggregated deployment counters: every result and reason of a
// project and env at 0 from its first app (increase() then counts the
// first deployment), each notice counted once under its own project and
// env, nothing lost when an app is deleted, other notices ignored.
func TestDeploymentCounters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := NewDeploymentCounters(reg)
	c.SetApp(&model.AppView{Env: "prod", App: &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "argocd"}, Spec: v1alpha1.ApplicationSpec{Project: "shop"}}})
	want := func(body string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(body), "crowsnest_deployments_total", "crowsnest_change_failures_total"); err != nil {
			t.Error(err)
		}
	}
	const help = `# HELP crowsnest_change_failures_total Deployments counted as failed changes, by project, env and reason, as crowsnest_app_change_failures_total counts them per app, deleted apps' included.
# TYPE crowsnest_change_failures_total counter
`
	const helpDeployments = `# HELP crowsnest_deployments_total Deployments that crowsnest saw finish, by project, env and result, as crowsnest_app_deployments_total counts them per app, deleted apps' included. DORA's deployment frequency and change failure rate read it.
# TYPE crowsnest_deployments_total counter
`
	want(help + `crowsnest_change_failures_total{env="prod",project="shop",reason="degraded"} 0
crowsnest_change_failures_total{env="prod",project="shop",reason="rolled_back"} 0
crowsnest_change_failures_total{env="prod",project="shop",reason="sync_failed"} 0
` + helpDeployments + `crowsnest_deployments_total{env="prod",project="shop",result="failed"} 0
crowsnest_deployments_total{env="prod",project="shop",result="rolled_back"} 0
crowsnest_deployments_total{env="prod",project="shop",result="succeeded"} 0
`)
	shop := &model.Deployment{Name: "api", Project: "shop", Env: "prod", Result: model.DeploymentFailed}
	dev := &model.Deployment{Name: "api", Project: "shop", Env: "dev", Result: model.DeploymentSucceeded}
	for _, n := range []*model.DeploymentNotice{
		{Kind: model.NoticeDeployed, Deployment: shop},
		{Kind: model.NoticeChangeFailed, Deployment: shop, Reason: model.FailureSyncFailed},
		{Kind: model.NoticeDeployed, Deployment: dev},
		{Kind: model.NoticeDeployed, Deployment: dev},
		{Kind: model.NoticeHealthy, Deployment: dev},
		{Kind: model.NoticeRecovered, Deployment: dev},
		nil,
		{Kind: model.NoticeDeployed},
	} {
		c.Deployment(n)
	}
	c.DeleteApp("argocd/api")
	want(help + `crowsnest_change_failures_total{env="dev",project="shop",reason="degraded"} 0
crowsnest_change_failures_total{env="dev",project="shop",reason="rolled_back"} 0
crowsnest_change_failures_total{env="dev",project="shop",reason="sync_failed"} 0
crowsnest_change_failures_total{env="prod",project="shop",reason="degraded"} 0
crowsnest_change_failures_total{env="prod",project="shop",reason="rolled_back"} 0
crowsnest_change_failures_total{env="prod",project="shop",reason="sync_failed"} 1
` + helpDeployments + `crowsnest_deployments_total{env="dev",project="shop",result="failed"} 0
crowsnest_deployments_total{env="dev",project="shop",result="rolled_back"} 0
crowsnest_deployments_total{env="dev",project="shop",result="succeeded"} 2
crowsnest_deployments_total{env="prod",project="shop",result="failed"} 1
crowsnest_deployments_total{env="prod",project="shop",result="rolled_back"} 0
crowsnest_deployments_total{env="prod",project="shop",result="succeeded"} 0
`)
}
