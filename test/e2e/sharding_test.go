//go:build e2e

package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	promodel "github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/collect/source"
	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/otlptest"
)

// shardedApps is how many Applications TestSharding splits between two
// shards: enough that each gets several whatever their UIDs.
const shardedApps = 24

// TestSharding runs two shards (--shard=0 and 1 of --total-shards=2, each
// with leader election, so each leads its own Lease) and one unsharded
// replica against a real kube-apiserver holding shardedApps Applications,
// each with a Deployment tracked to it, and drives a sync operation of
// every app the way Argo CD's controller writes it (Running, then
// Succeeded or Failed). Then:
//   - the shards' per-app series are disjoint and their union is the
//     unsharded replica's (values too, but for the times each process
//     observed itself: *_timestamp_seconds and *_duration_seconds);
//   - each operation's trace is sent once, by its app's shard (each shard
//     and the unsharded replica export to their own OTLP receiver);
//   - killing one shard (SIGKILL) leaves the other's series untouched, and
//     it keeps serving and watching.
//
// Operations are written by the test, as TestLeaderElectionHandsOver does,
// not by the real Argo CD controller: what sharding decides happens before
// the tracker, on the Application's UID, whoever writes the status, and
// syncing 24 apps through a real controller and repo-server would cost
// minutes of the 2 shared cores without checking more of it.
func TestSharding(t *testing.T) {
	ctx := t.Context()
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	kas.CreateNamespace(argoCDNamespace)
	kas.CreateNamespace("shop")

	receivers := make([]*otlptest.Receiver, 3) // shard 0, shard 1, unsharded
	urls := make([]string, 3)
	for i := range receivers {
		receivers[i] = &otlptest.Receiver{}
		url, stop, err := receivers[i].ServeGRPC()
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		urls[i] = url
	}
	start := func(receiver int, flags ...string) *Crowsnest {
		c := env.NewCrowsnest(kas.Kubeconfig, append(flags, "--traces.otlp.endpoint="+urls[receiver], "--traces.otlp.protocol=grpc")...)
		c.Process.Env = append(c.Process.Env, "OTEL_BSP_SCHEDULE_DELAY=200")
		c.Start()
		return c
	}
	elect := []string{"--leader-elect", "--leader-elect.namespace=" + argoCDNamespace}
	shards := []*Crowsnest{
		start(0, append([]string{"--shard=0", "--total-shards=2"}, elect...)...),
		start(1, append([]string{"--shard=1", "--total-shards=2"}, elect...)...),
	}
	whole := start(2)
	all := append(slices.Clone(shards), whole)
	for _, c := range all {
		eventually(t, scenarioTimeout, func() error { return c.ExpectStatus("/readyz", http.StatusOK) })
	}
	// Each shard leads the Lease of its own shard.
	for i, c := range shards {
		eventually(t, scenarioTimeout, func() error {
			if err := c.ExpectSample(1, "crowsnest_leader"); err != nil {
				return err
			}
			return c.ExpectSample(1, "crowsnest_shard_info", "shard", fmt.Sprint(i), "total_shards", "2")
		})
		lease := fmt.Sprintf("crowsnest-%d-of-2", i)
		if _, err := kas.Kubernetes().CoordinationV1().Leases(argoCDNamespace).Get(ctx, lease, metav1.GetOptions{}); err != nil {
			t.Errorf("Lease %s: %v", lease, err)
		}
	}

	// The apps, each with a Deployment tracked to it, then one operation
	// each: all Running, then each Succeeded or (every third) Failed.
	apps := kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	deployments := kas.Kubernetes().AppsV1().Deployments("shop")
	shardOf := map[string]int{} // app name → shard
	createApp := func(name string) (*v1alpha1.Application, error) {
		return apps.Create(ctx, &v1alpha1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: argoCDNamespace},
			Spec: v1alpha1.ApplicationSpec{Project: "default", Source: &v1alpha1.ApplicationSource{RepoURL: "https://example.com/r.git", Path: name},
				Destination: v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: "shop"}},
		}, metav1.CreateOptions{})
	}
	traceShard := map[string]int{} // trace id → shard of its app
	created := make([]*v1alpha1.Application, shardedApps)
	for i := range shardedApps {
		name := fmt.Sprintf("sharded-%02d", i)
		app, err := createApp(name)
		if err != nil {
			t.Fatal(err)
		}
		created[i] = app
		shardOf[name] = source.ShardOf(app.UID, 2)
		if _, err := deployments.Create(ctx, shardedDeployment(name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	perShard := [2]int{}
	for _, s := range shardOf {
		perShard[s]++
	}
	t.Logf("apps per shard: %v", perShard)
	if perShard[0] == 0 || perShard[1] == 0 {
		t.Fatalf("apps per shard %v: want some in each", perShard)
	}
	started := metav1.NewTime(time.Now().Truncate(time.Second))
	for i, app := range created {
		app.Status.OperationState = &v1alpha1.OperationState{Phase: synccommon.OperationRunning, StartedAt: started,
			Operation: v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{Revision: "abc123"}}}
		app.Status.Sync.Status, app.Status.Health.Status = v1alpha1.SyncStatusCodeOutOfSync, "Progressing"
		var err error
		if created[i], err = apps.Update(ctx, app, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		traceShard[model.OperationID(string(app.UID), started.Time)] = shardOf[app.Name]
	}
	time.Sleep(1500 * time.Millisecond)
	for i, app := range created {
		finished := metav1.NewTime(time.Now())
		op := app.Status.OperationState
		op.Phase, op.FinishedAt, op.SyncResult = synccommon.OperationSucceeded, &finished, &v1alpha1.SyncOperationResult{Revision: "abc123"}
		app.Status.Sync.Status, app.Status.Health.Status = v1alpha1.SyncStatusCodeSynced, "Healthy"
		if i%3 == 0 {
			op.Phase, op.Message = synccommon.OperationFailed, "one or more objects failed to apply"
			app.Status.Sync.Status, app.Status.Health.Status = v1alpha1.SyncStatusCodeOutOfSync, "Degraded"
		}
		if _, err := apps.Update(ctx, app, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// The shards' per-app series: disjoint, and together the unsharded
	// replica's.
	var shardSeries [2]map[string]float64
	eventually(t, scenarioTimeout, func() error {
		want, err := scrapeAppSeries(whole)
		if err != nil {
			return err
		}
		if n := countFamily(want, "crowsnest_app_workload_replicas"); n != 4*shardedApps {
			return fmt.Errorf("unsharded: %d workload series, want %d", n, 4*shardedApps)
		}
		if n := countFamily(want, "crowsnest_app_syncs_total"); n == 0 {
			return fmt.Errorf("unsharded: no syncs counted yet")
		}
		union := map[string]float64{}
		for i, c := range shards {
			got, err := scrapeAppSeries(c)
			if err != nil {
				return err
			}
			for k, v := range got {
				if _, dup := union[k]; dup {
					return fmt.Errorf("%s served by both shards", k)
				}
				union[k] = v
				if app := appOf(k); shardOf[app] != i {
					return fmt.Errorf("shard %d serves %s of %s, an app of shard %d", i, k, app, shardOf[app])
				}
			}
			shardSeries[i] = got
		}
		return diffSeries(union, want)
	})
	t.Logf("per-app series: %d and %d", len(shardSeries[0]), len(shardSeries[1]))

	// Each operation's trace: sent once, by its app's shard.
	eventually(t, scenarioTimeout, func() error {
		for i, r := range receivers {
			roots := rootSpans(r)
			for id, n := range roots {
				if n != 1 {
					return fmt.Errorf("receiver %d: trace %s sent %d times", i, id, n)
				}
				if s, ok := traceShard[id]; !ok || (i < 2 && s != i) {
					return fmt.Errorf("receiver %d got trace %s, of shard %d (known: %v)", i, id, s, ok)
				}
			}
			want := len(traceShard)
			if i < 2 {
				want = perShard[i]
			}
			if len(roots) != want {
				return fmt.Errorf("receiver %d: %d traces, want %d", i, len(roots), want)
			}
		}
		return nil
	})
	time.Sleep(time.Second) // a late duplicate would show now
	for i, r := range receivers {
		for id, n := range rootSpans(r) {
			if n != 1 {
				t.Errorf("receiver %d: trace %s sent %d times", i, id, n)
			}
		}
	}

	// Kill shard 1 the hard way: shard 0 serves the same series, and
	// keeps watching.
	before, err := scrapeAppSeries(shards[0])
	if err != nil {
		t.Fatal(err)
	}
	p := shards[1].Process
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	eventually(t, 10*time.Second, func() error {
		if _, _, err := shards[1].Get("/healthz"); err == nil {
			return fmt.Errorf("shard 1 still answers")
		}
		return nil
	})
	time.Sleep(3 * time.Second)
	if err := shards[0].ExpectStatus("/readyz", http.StatusOK); err != nil {
		t.Errorf("shard 0 after shard 1 was killed: %v", err)
	}
	after, err := scrapeAppSeries(shards[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := diffSeries(after, before); err != nil {
		t.Errorf("shard 0's series changed when shard 1 was killed: %v", err)
	}
	// A new app of shard 0 still shows up there.
	for i := 0; ; i++ {
		name := fmt.Sprintf("late-%02d", i)
		app, err := createApp(name)
		if err != nil {
			t.Fatal(err)
		}
		if source.ShardOf(app.UID, 2) == 0 {
			eventually(t, scenarioTimeout, func() error { return shards[0].ExpectSample(1, "crowsnest_app_info", "name", name) })
			break
		}
	}
}

// shardedDeployment is a Deployment tracked to app by Argo CD's annotation.
func shardedDeployment(app string) *appsv1.Deployment {
	one := int32(1)
	labels := map[string]string{"app": app}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: "shop", Labels: labels,
			Annotations: map[string]string{"argocd.argoproj.io/tracking-id": app + ":apps/Deployment:shop/" + app}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:v1"}}},
			},
		},
	}
}

// scrapeAppSeries returns crowsnest's per-app series (crowsnest_app_*
// with namespace and name labels), by their labels, with their values; the
// values of the times the process observed itself (timestamps, durations)
// as 0, since they differ between processes.
func scrapeAppSeries(c *Crowsnest) (map[string]float64, error) {
	m, err := c.Scrape()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, s := range m.Samples {
		name := string(s.Metric[promodel.MetricNameLabel])
		if !strings.HasPrefix(name, "crowsnest_app_") || s.Metric["namespace"] == "" || s.Metric["name"] == "" {
			continue
		}
		v := float64(s.Value)
		if strings.Contains(name, "_timestamp_seconds") || strings.Contains(name, "_duration_seconds") {
			v = 0
		}
		out[s.Metric.String()] = v
	}
	return out, nil
}

// appOf is the name label of a series as scrapeAppSeries keys it.
func appOf(series string) string {
	_, rest, _ := strings.Cut(series, `, name="`)
	if rest == "" {
		_, rest, _ = strings.Cut(series, `{name="`)
	}
	name, _, _ := strings.Cut(rest, `"`)
	return name
}

func countFamily(series map[string]float64, family string) int {
	n := 0
	for k := range series {
		if strings.HasPrefix(k, family+"{") {
			n++
		}
	}
	return n
}

// diffSeries describes how got differs from want (nil if not at all): the
// first few series missing, extra or with another value.
func diffSeries(got, want map[string]float64) error {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if v, ok := got[k]; !ok {
			diffs = append(diffs, "missing "+k)
		} else if v != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", k, v, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "extra "+k)
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return fmt.Errorf("%d series vs %d: %s", len(got), len(want), strings.Join(diffs, "; "))
}

// rootSpans counts the root spans a receiver got, by trace id.
func rootSpans(r *otlptest.Receiver) map[string]int {
	out := map[string]int{}
	for _, s := range r.Spans() {
		if s.ParentSpanID == "" {
			out[s.TraceID]++
		}
	}
	return out
}
