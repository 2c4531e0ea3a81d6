//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/trace"
)

// spokeApp is the app the hub's Argo CD deploys into the spoke.
const spokeApp = "spoke-app"

// spokeManifests are what spokeApp deploys: a Deployment, a StatefulSet,
// and a PreSync hook Job in wave -1.
func spokeManifests() map[string]string {
	return map[string]string{
		"app/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "registry.example.com/shop/web:1.0"}]}
`,
		"app/db.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "registry.example.com/shop/db:1.0"}]}
`,
		"app/migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    argocd.argoproj.io/hook: PreSync
    argocd.argoproj.io/sync-wave: "-1"
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "registry.example.com/shop/migrate:1.0"}]
`,
	}
}

// TestHubAndSpoke: Argo CD in a hub deploys into a spoke (another
// kube-apiserver with its own etcd) through a cluster Secret, the way hub
// and spoke installations run. crowsnest in the hub watches the spoke's
// workloads with a token that may only read them (--clusters.dir): the
// spoke's Deployment, StatefulSet and hook Job join the app with their
// wave; a hub Deployment carrying the same tracking id joins nothing; a
// degraded spoke workload is an event of the app; the spoke going down
// shows in crowsnest_cluster_up, blocks nothing, and recovers on its own.
func TestHubAndSpoke(t *testing.T) {
	start := time.Now()
	env := NewEnv(t)
	hub := env.StartKubeAPIServer(env.StartEtcd())
	spoke := env.StartKubeAPIServer(env.StartEtcd())
	hub.InstallArgoCDCRDs()
	argo := env.StartArgoCD(hub)
	StartStandInControllers(t, spoke.Kubernetes())
	ctx := t.Context()

	// Argo CD's own cluster Secret for the spoke: it deploys, so admin.
	argoConfig, err := json.Marshal(map[string]any{"bearerToken": spoke.AdminToken, "tlsClientConfig": map[string]any{"insecure": true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Kubernetes().CoreV1().Secrets(argoCDNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-spoke", Labels: map[string]string{"argocd.argoproj.io/secret-type": "cluster"}},
		StringData: map[string]string{"name": "spoke", "server": spoke.URL, "config": string(argoConfig)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// crowsnest's own Secret for the spoke, as the chart mounts it, with
	// the token of the read-only ServiceAccount the chart installs in a
	// spoke (mode=spoke). No kube-controller-manager runs here to fill the
	// chart's token Secret: the token is asked for, as kubectl does.
	spoke.CreateNamespace("crowsnest")
	spokeChart, err := helmRun(t, "template", "--namespace", "crowsnest", "--set", "mode=spoke")
	if err != nil {
		t.Fatalf("helm template --set mode=spoke: %v\n%s", err, spokeChart)
	}
	spoke.Kubectl(spokeChart, "apply", "-f", "-")
	token := strings.TrimSpace(spoke.Kubectl("", "-n", "crowsnest", "create", "token", "crowsnest"))
	env.RegisterSecret("spoke-serviceaccount-token", token)
	clustersDir := writeClusterSecret(t, env.Dir("clusters"), "spoke", spoke.URL, token)

	// In the hub, a Deployment of the same namespace and name with the
	// spoke app's tracking id: Argo CD's id names no cluster.
	hub.CreateNamespace("shop")
	hub.Kubectl(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations: {argocd.argoproj.io/tracking-id: "`+spokeApp+`:apps/Deployment:shop/web"}
spec:
  replicas: 5
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "registry.example.com/shop/web:1.0"}]}
`, "apply", "-f", "-")
	spoke.CreateNamespace("shop")

	jaeger := env.StartJaeger()
	cn := env.StartCrowsnest(hub.Kubeconfig, "--clusters.dir="+clustersDir,
		"--traces.otlp.endpoint="+jaeger.OTLPEndpoint, "--traces.otlp.protocol=http/protobuf")
	repoURL, revision := newManifestRepo(t, env.Dir("git"), spokeManifests())
	apps := hub.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	if _, err := apps.Create(ctx, &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: spokeApp, Namespace: argoCDNamespace},
		Spec: v1alpha1.ApplicationSpec{
			Project:     "default",
			Source:      &v1alpha1.ApplicationSource{RepoURL: repoURL, Path: "app", TargetRevision: "main"},
			Destination: v1alpha1.ApplicationDestination{Name: "spoke", Namespace: "shop"},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("hub, spoke and Argo CD up in %v (the hub's Argo CD deploys to %s)", time.Since(start).Round(time.Millisecond), argo.ClusterURL)

	requested := requestSync(ctx, t, apps, spokeApp, revision, false)
	eventually(t, signalTimeout, func() error {
		op, err := finishedOperation(ctx, apps, spokeApp, requested)
		if err != nil {
			return err
		}
		if op.Phase != synccommon.OperationSucceeded {
			t.Fatalf("Argo CD's sync into the spoke ended %s: %s", op.Phase, op.Message)
		}
		return nil
	})
	took := eventually(t, signalTimeout, func() error {
		m, err := cn.Scrape()
		if err != nil {
			return err
		}
		for _, w := range []struct {
			want           float64
			kind, workload string
		}{{2, "Deployment", "shop/web"}, {1, "StatefulSet", "shop/db"}} {
			if err := m.Expect(w.want, "crowsnest_app_workload_replicas", "name", spokeApp, "dest_cluster", "spoke", "kind", w.kind, "workload", w.workload, "state", "desired"); err != nil {
				return err
			}
		}
		if err := m.Expect(1, "crowsnest_app_workload_job_status", "name", spokeApp, "workload", "shop/migrate", "status", "Complete"); err != nil {
			return err
		}
		if err := m.Expect(1, "crowsnest_cluster_up", "dest_cluster", "spoke", "dest_server", spoke.URL); err != nil {
			return err
		}
		// The hook ran in wave -1: its wave is on the live Job in the
		// spoke, which crowsnest read there.
		if s := m.Find("crowsnest_sync_wave_duration_seconds_count", "phase", "PreSync", "wave", "-1"); len(s) != 1 || s[0].Value != 1 {
			return fmt.Errorf("PreSync wave -1 timed %v, want once", s)
		}
		if s := m.Find("crowsnest_sync_wave_duration_seconds_count", "wave", "unknown"); len(s) != 0 {
			return fmt.Errorf("waves timed as unknown: %v", s)
		}
		return nil
	})
	t.Logf("the spoke's workloads and hook wave on %s %v after the sync", spokeApp, took.Round(time.Millisecond))
	checkSpokeTrace(t, cn, jaeger)
	// Least privilege: every list and watch of the read-only token went
	// through (a missing verb shows as an error in the log).
	if log := cn.LogTail(500); strings.Contains(log, "level=ERROR") || strings.Contains(log, "forbidden") {
		t.Errorf("crowsnest logged errors reading the spoke with its read-only token:\n%s", lastLines(log, 10))
	}
	// And it is the least that works: without watch on jobs, the same
	// crowsnest cannot follow the hook Jobs, and says so.
	spoke.Kubectl(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: crowsnest-no-job-watch}
rules:
  - apiGroups: [apps]
    resources: [deployments, statefulsets, daemonsets]
    verbs: [get, list, watch]
  - apiGroups: [batch]
    resources: [jobs]
    verbs: [get, list]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: no-job-watch, namespace: crowsnest}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crowsnest-no-job-watch}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: crowsnest-no-job-watch}
subjects: [{kind: ServiceAccount, name: no-job-watch, namespace: crowsnest}]
`, "apply", "-f", "-")
	narrowToken := strings.TrimSpace(spoke.Kubectl("", "-n", "crowsnest", "create", "token", "no-job-watch"))
	env.RegisterSecret("spoke-narrow-token", narrowToken)
	narrowDir := writeClusterSecret(t, env.Dir("clusters-narrow"), "spoke", spoke.URL, narrowToken)
	narrow := env.NewCrowsnest(hub.Kubeconfig, "--clusters.dir="+narrowDir)
	// A log of its own: the first crowsnest's is "crowsnest.log".
	narrow.LogPath = filepath.Join(env.LogDir, "crowsnest-narrow.log")
	secrets.AddFile(narrow.LogPath, "crowsnest", true)
	narrow.Start()
	eventually(t, signalTimeout, func() error {
		if log := narrow.LogTail(500); !strings.Contains(log, "forbidden") || !strings.Contains(log, "jobs") {
			return fmt.Errorf("crowsnest without watch on jobs logged no forbidden watch of jobs")
		}
		return nil
	})
	if err := narrow.Stop(); err != nil {
		t.Logf("crowsnest without watch on jobs: %v", err)
	}

	// The spoke's Deployment short of ready replicas: an event of the app.
	d, err := spoke.Kubernetes().AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[annotationReadyReplicas] = "0"
	if _, err := spoke.Kubernetes().AppsV1().Deployments("shop").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, signalTimeout, func() error {
		for _, l := range strings.Split(cn.LogTail(500), "\n") {
			if strings.Contains(l, "event=workload_degraded") && strings.Contains(l, "app=argocd/"+spokeApp) && strings.Contains(l, "dest_cluster=spoke") && strings.Contains(l, "shop/web") {
				return nil
			}
		}
		return fmt.Errorf("no workload_degraded fact of %s's shop/web in crowsnest's log", spokeApp)
	})

	// The spoke goes down: crowsnest says so, and goes on serving the hub.
	if err := spoke.Process.Stop(); err != nil {
		t.Logf("spoke kube-apiserver: %v", err)
	}
	down := time.Now()
	eventually(t, 2*time.Minute, func() error {
		m, err := cn.Scrape()
		if err != nil {
			return err
		}
		if err := m.Expect(1, "crowsnest_app_info", "name", spokeApp); err != nil {
			return err
		}
		return m.Expect(0, "crowsnest_cluster_up", "dest_cluster", "spoke")
	})
	t.Logf("spoke down: crowsnest_cluster_up 0 after %v", time.Since(down).Round(time.Second))
	spoke.Start()
	up := time.Now()
	eventually(t, 2*time.Minute, func() error {
		m, err := cn.Scrape()
		if err != nil {
			return err
		}
		if err := m.Expect(1, "crowsnest_cluster_up", "dest_cluster", "spoke"); err != nil {
			return err
		}
		return m.Expect(2, "crowsnest_app_workload_replicas", "name", spokeApp, "workload", "shop/web", "state", "desired")
	})
	t.Logf("spoke back: crowsnest_cluster_up 1 after %v", time.Since(up).Round(time.Second))
}

// writeClusterSecret lays out, under dir, the cluster Secret crowsnest
// reads for the cluster name at server with a bearer token, as the chart
// mounts one (a directory with the keys name, server and config), and
// returns dir, for --clusters.dir.
// checkSpokeTrace reads the trace of the spoke app's sync from Jaeger: its
// root names the destination cluster, and the PreSync hook that ran in the
// spoke is a wave -1 span under the PreSync phase, timed from the live Job
// crowsnest read in the spoke.
func checkSpokeTrace(t *testing.T, cn *Crowsnest, jaeger *Jaeger) {
	t.Helper()
	var traceID string
	eventually(t, signalTimeout, func() error {
		for _, l := range strings.Split(cn.LogTail(2000), "\n") {
			if strings.Contains(l, "event=sync_finished") && strings.Contains(l, "app=argocd/"+spokeApp) {
				if _, id, ok := strings.Cut(l, "trace_id="); ok {
					traceID = strings.Fields(id)[0]
					return nil
				}
			}
		}
		return fmt.Errorf("no sync_finished of %s with a trace id in crowsnest's log", spokeApp)
	})
	var tr *JaegerTrace
	eventually(t, signalTimeout, func() (err error) {
		tr, err = jaeger.Trace(t.Context(), traceID)
		return err
	})
	roots := tr.Root()
	if len(roots) != 1 {
		t.Fatalf("trace %s has roots %v, want one", traceID, roots)
	}
	if got := roots[0].Attrs[trace.AttrDestCluster]; got != "spoke" {
		t.Errorf("the root span's %s = %q, want spoke", trace.AttrDestCluster, got)
	}
	var waves []string
	for _, p := range tr.Children(roots[0].SpanID) {
		for _, w := range tr.Children(p.SpanID) {
			waves = append(waves, p.Name+" "+w.Name)
		}
	}
	if !slices.Contains(waves, "PreSync wave -1") || slices.Contains(waves, "PreSync wave unknown") {
		t.Errorf("the trace's phases and waves are %v, want PreSync wave -1 (the spoke's hook) and none unknown", waves)
	}
}

func writeClusterSecret(t *testing.T, dir, name, server, token string) string {
	t.Helper()
	config, err := json.Marshal(map[string]any{"bearerToken": token, "tlsClientConfig": map[string]any{"insecure": true}})
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "cluster-"+name)
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"name": name, "server": server, "config": string(config)} {
		if err := os.WriteFile(filepath.Join(sub, k), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
