//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/crowsnest/crowsnest/dashboards"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// rollingSyncSet is the ApplicationSet of TestRollingSync: a list generator
// of a dev and a stage app, rolled out by RollingSync in two steps, dev
// then stage, as the deployment model's promotion goes.
const rollingSyncSet = "shop-rollout"

// StartApplicationSetController starts Argo CD's ApplicationSet controller
// (the same binary) against k, with progressive syncs on, and returns the
// URL of its metrics. Its refresh grace period is 2 s (default 30 s): how
// long it waits after a new revision before it refreshes the apps itself.
func (e *Env) StartApplicationSetController(k *KubeAPIServer, a *ArgoCD) string {
	e.t.Helper()
	metricsPort := e.Port()
	p := e.NewProcess("argocd-applicationset-controller", bin.argoCD("argocd-applicationset-controller"),
		"--kubeconfig", k.Kubeconfig, "--namespace", argoCDNamespace,
		"--argocd-repo-server", a.RepoServerAddr,
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--probe-addr", fmt.Sprintf("127.0.0.1:%d", e.Port()),
		"--webhook-addr", fmt.Sprintf("127.0.0.1:%d", e.Port()),
		"--enable-progressive-syncs", "--refresh-grace-period-seconds", "2",
		"--logformat", "text", "--loglevel", "info")
	// Its manager's client reads controller-runtime's config: KUBECONFIG.
	p.Env = []string{"KUBECONFIG=" + k.Kubeconfig}
	p.Start()
	waitListening(e.t, p, metricsPort)
	return fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
}

// rolloutManifests are the two apps' manifests at version v: a ConfigMap
// each, and for dev a PreSync hook Job the stand-in controllers run for
// jobRunTime, so that step 1 lasts a few seconds while stage waits.
func rolloutManifests(v string) map[string]string {
	cm := func(env string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-config\ndata:\n  version: " + v + "\n  env: " + env + "\n"
	}
	return map[string]string{
		"rollout/dev/config.yaml":   cm("dev"),
		"rollout/stage/config.yaml": cm("stage"),
		"rollout/dev/migrate.yaml": "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate-" + v + "\n  annotations:\n" +
			"    argocd.argoproj.io/hook: PreSync\n    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation\n" +
			"spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: migrate\n        image: busybox\n",
	}
}

// TestRollingSync runs the real ApplicationSet controller of v3.6.1 with a
// two-step RollingSync over a dev and a stage app (auto-sync in the
// template, which that controller turns off on the apps and replaces by
// its own syncs): crowsnest must judge both apps auto-synced (autosync
// label, the default dev and stage policies kept), show stage waiting for
// its step while dev's step runs, show the rollout's step, apps per step
// and status equal to the controller's own argocd_appset_progressive_sync_app_status,
// and time each step once per round that synced it — as many rounds as
// Argo CD completed operations of that step's app (its Events).
func TestRollingSync(t *testing.T) {
	start := time.Now()
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	StartStandInControllers(t, kas.Kubernetes())
	argo := env.StartArgoCD(kas)
	appsetMetrics := env.StartApplicationSetController(kas, argo)
	gitDir := env.Dir("git")
	repoURL, _ := newManifestRepo(t, gitDir, rolloutManifests("v1"))

	cfgPath := filepath.Join(env.Dir("crowsnest"), "crowsnest.yml")
	if err := os.WriteFile(cfgPath, []byte("environments:\n"+
		"  - env: dev\n    match: {labels: {env: dev}}\n"+
		"  - env: stage\n    match: {labels: {env: stage}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cn := env.NewCrowsnest(kas.Kubeconfig, "--config.file="+cfgPath)
	cn.Start()
	prom := env.StartPrometheus([]string{strings.TrimPrefix(cn.URL, "http://")}, nil)
	waitScraped(t, cn, prom)

	kas.Kubectl(`apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: `+rollingSyncSet+`
  namespace: `+argoCDNamespace+`
spec:
  goTemplate: true
  generators:
  - list:
      elements:
      - env: dev
      - env: stage
  strategy:
    type: RollingSync
    rollingSync:
      steps:
      - matchExpressions: [{key: env, operator: In, values: [dev]}]
      - matchExpressions: [{key: env, operator: In, values: [stage]}]
  template:
    metadata:
      name: 'rollout-{{.env}}'
      labels: {env: '{{.env}}'}
    spec:
      project: default
      source: {repoURL: '`+repoURL+`', path: 'rollout/{{.env}}', targetRevision: main}
      destination: {server: '`+argo.ClusterURL+`', namespace: 'rollout-{{.env}}'}
      syncPolicy:
        automated: {prune: true, selfHeal: true}
        syncOptions: [CreateNamespace=true]
`, "apply", "-f", "-")
	t.Logf("environment up in %v", time.Since(start).Round(time.Millisecond))

	ctx := t.Context()
	sets := kas.ArgoCD().ArgoprojV1alpha1().ApplicationSets(argoCDNamespace)
	rounds := watchRollout(t, sets)
	// settled waits until the ApplicationSet controller has both apps
	// Healthy at revision (its own status is the oracle), while polling
	// crowsnest for what it shows meanwhile.
	type sighting struct{ stageWaitingInStep1 bool }
	settled := func(revision string) sighting {
		t.Helper()
		var seen sighting
		eventually(t, 3*signalTimeout, func() error {
			if m, err := cn.Scrape(); err == nil &&
				m.Expect(1, "crowsnest_applicationset_rollout_step", "applicationset", rollingSyncSet) == nil &&
				m.Expect(1, "crowsnest_applicationset_rollout_apps", "applicationset", rollingSyncSet, "step", "2", "status", "Waiting") == nil &&
				m.Expect(1, "crowsnest_app_rollout_status", "name", "rollout-stage", "step", "2", "status", "Waiting") == nil {
				seen.stageWaitingInStep1 = true
			}
			s, err := sets.Get(ctx, rollingSyncSet, metav1.GetOptions{})
			if err != nil {
				return err
			}
			var healthy int
			for _, a := range s.Status.ApplicationStatus {
				if a.Status == v1alpha1.ProgressiveSyncHealthy && len(a.TargetRevisions) == 1 && a.TargetRevisions[0] == revision {
					healthy++
				}
			}
			if healthy != 2 {
				return fmt.Errorf("the ApplicationSet controller has %d of 2 apps Healthy at %s: %+v", healthy, revision, s.Status.ApplicationStatus)
			}
			return nil
		})
		return seen
	}
	head := gitIn(t, gitDir, "rev-parse", "HEAD")
	first := settled(head)
	t.Logf("first rollout done %v after start; crowsnest showed stage waiting in step 1: %v", time.Since(start).Round(time.Millisecond), first.stageWaitingInStep1)

	// Both apps are auto-synced by the rollout: the label, and the default
	// dev and stage policies (auto_sync, self_heal, prune) kept, although
	// the controller wrote automated.enabled: false on them.
	for _, name := range []string{"rollout-dev", "rollout-stage"} {
		a, err := kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p := a.Spec.SyncPolicy; p == nil || p.Automated == nil || p.Automated.Enabled == nil || *p.Automated.Enabled {
			t.Fatalf("the ApplicationSet controller did not turn %s's auto-sync off: %+v", name, p)
		}
		eventually(t, signalTimeout, func() error {
			m, err := cn.Scrape()
			if err != nil {
				return err
			}
			if got := m.Find("crowsnest_app_info", "name", name); len(got) != 1 || got[0].Metric["autosync"] != "true" {
				return fmt.Errorf("crowsnest_app_info of %s: %v, want autosync=\"true\"", name, got)
			}
			for _, policy := range []string{"auto_sync", "self_heal", "prune"} {
				if err := m.Expect(0, "crowsnest_app_policy_violation", "name", name, "policy", policy); err != nil {
					return err
				}
			}
			return m.Expect(1, "crowsnest_app_rollout_status", "name", name, "applicationset", rollingSyncSet, "status", "Healthy")
		})
	}

	// A commit to both apps: the controller moves both to Waiting, rolls
	// dev out (its hook holds step 1 for a few seconds), then stage.
	for rel, content := range rolloutManifests("v2") {
		if err := os.WriteFile(filepath.Join(gitDir, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, gitDir, "add", "-A")
	gitIn(t, gitDir, "commit", "-q", "-m", "v2")
	second := settled(gitIn(t, gitDir, "rev-parse", "HEAD"))
	if !first.stageWaitingInStep1 && !second.stageWaitingInStep1 {
		t.Error("crowsnest never showed the rollout in step 1 with stage Waiting for step 2 while dev's step ran")
	}

	// Settled: crowsnest's apps per step and status equal the controller's
	// own gauge, the rollout is complete (step 0), and each step was timed
	// once per round the controller rolled it out (its app Pending, then
	// Healthy, as its status, watched, shows): at least once per commit,
	// and as often as the controller did (it may roll an app that turned
	// OutOfSync out again). Not once per operation: the controller asks
	// again for a sync on each reconcile while the app is Pending, so one
	// round may sync an app several times (Argo CD's Events count them).
	eventually(t, signalTimeout, func() error {
		m, err := cn.Scrape()
		if err != nil {
			return err
		}
		argoM, err := scrapeURL(appsetMetrics)
		if err != nil {
			return err
		}
		for _, s := range argoM.Find("argocd_appset_progressive_sync_app_status", "name", rollingSyncSet) {
			if err := m.Expect(float64(s.Value), "crowsnest_applicationset_rollout_apps", "applicationset", rollingSyncSet,
				"step", string(s.Metric["step"]), "status", string(s.Metric["progressiveStatus"])); err != nil {
				return fmt.Errorf("against Argo CD's %v: %w", s.Metric, err)
			}
		}
		if err := m.Expect(0, "crowsnest_applicationset_rollout_step", "applicationset", rollingSyncSet); err != nil {
			return err
		}
		if err := m.Expect(2, "crowsnest_applicationset_rollout_steps", "applicationset", rollingSyncSet); err != nil {
			return err
		}
		for step, app := range map[string]string{"1": "rollout-dev", "2": "rollout-stage"} {
			n := rounds.of(app)
			if n < 2 {
				return fmt.Errorf("the ApplicationSet controller rolled %s out %d times, want at least once per commit (2)", app, n)
			}
			succeeded, failed, err := completedOperations(ctx, kas, app)
			if err != nil {
				return err
			}
			t.Logf("%s: %d rounds, %d operations Argo CD completed", app, n, succeeded+failed)
			for _, h := range []string{"crowsnest_applicationset_rollout_step_duration_seconds_count", "crowsnest_applicationset_rollout_step_wait_seconds_count"} {
				if err := m.Expect(float64(n), h, "applicationset", rollingSyncSet, "step", step); err != nil {
					return err
				}
			}
		}
		return nil
	})
	m, err := cn.Scrape()
	if err != nil {
		t.Fatal(err)
	}
	// Step 1 holds dev's hook Job: each of its rounds lasted at least the
	// Job's run time, the two rounds of the two commits at least (a round
	// more only adds to the sums).
	sum, err := m.Value("crowsnest_applicationset_rollout_step_duration_seconds_sum", "applicationset", rollingSyncSet, "step", "1")
	if err != nil {
		t.Fatal(err)
	}
	wait2, err := m.Value("crowsnest_applicationset_rollout_step_wait_seconds_sum", "applicationset", rollingSyncSet, "step", "2")
	if err != nil {
		t.Fatal(err)
	}
	// Kubernetes keeps whole seconds: a round may read a second short.
	if min := 2 * (jobRunTime.Seconds() - 1); sum < min || wait2 < min {
		t.Errorf("step 1 took %.0f s over two rounds and stage waited %.0f s for step 2, want each at least %.0f s (dev's hook Job runs %v)", sum, wait2, min, jobRunTime)
	}
	t.Logf("step 1 took %.0f s over %d rounds, stage waited %.0f s for it", sum, rounds.of("rollout-dev"), wait2)

	// The DORA dashboard's rollout panels have data (Prometheus scraped
	// the settled state): stage's rounds, as the controller rolled it out.
	eventually(t, signalTimeout, func() error {
		return prom.ExpectValue(`crowsnest_applicationset_rollout_step_duration_seconds_count{applicationset="`+rollingSyncSet+`",step="2"}`, float64(rounds.of("rollout-stage")))
	})
	checkDashboardQueries(t, prom, nil, map[string]string{"env": ".*", "project": ".*"}, rolloutPanel, "crowsnest-dora")
	t.Logf("TestRollingSync took %v", time.Since(start).Round(time.Second))
}

// rolloutPanel picks the dashboards' ApplicationSet rollout panels.
func rolloutPanel(q dashboards.Query) bool { return strings.HasPrefix(q.Panel, "Rollout") }

// rolloutRounds counts, per app, the rounds the ApplicationSet controller
// rolled it out in: its moves to Healthy after a move to Pending, as a
// watch of the ApplicationSet saw its status. Not its moves to Pending:
// an app created without a revision yet goes Pending, back to Waiting once
// Argo CD compared it ("pending changes"), and Pending again, in one round.
type rolloutRounds struct {
	mu      sync.Mutex
	pending map[string]bool // moved to Pending since its last Healthy
	rounds  map[string]int
	last    map[string]string // status and transition time last seen
}

func (r *rolloutRounds) of(app string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rounds[app]
}

// watchRollout watches the ApplicationSet rollingSyncSet until the test
// ends.
func watchRollout(t *testing.T, sets appsetInterface) *rolloutRounds {
	t.Helper()
	r := &rolloutRounds{pending: map[string]bool{}, rounds: map[string]int{}, last: map[string]string{}}
	w, err := sets.Watch(t.Context(), metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", rollingSyncSet).String()})
	if err != nil {
		t.Fatalf("watch ApplicationSet %s: %v", rollingSyncSet, err)
	}
	t.Cleanup(w.Stop)
	go func() {
		for e := range w.ResultChan() {
			s, ok := e.Object.(*v1alpha1.ApplicationSet)
			if !ok {
				continue
			}
			r.mu.Lock()
			for _, a := range s.Status.ApplicationStatus {
				state := fmt.Sprint(a.Status, a.LastTransitionTime)
				if r.last[a.Application] == state {
					continue
				}
				r.last[a.Application] = state
				switch a.Status {
				case v1alpha1.ProgressiveSyncPending:
					r.pending[a.Application] = true
				case v1alpha1.ProgressiveSyncHealthy:
					if r.pending[a.Application] {
						r.rounds[a.Application]++
					}
					r.pending[a.Application] = false
				}
			}
			r.mu.Unlock()
		}
	}()
	return r
}

// appsetInterface watches ApplicationSets.
type appsetInterface interface {
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// scrapeURL fetches and parses the metrics at url.
func scrapeURL(url string) (*Metrics, error) {
	resp, err := http.Get(url) //nolint:noctx // a local test server
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return ParseMetrics(resp.Body)
}
