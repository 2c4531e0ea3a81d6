//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crowsnest/crowsnest/internal/rules"
)

// helmTemplate renders the chart with helm, as `helm template` would for
// an install into namespace crowsnest.
func helmTemplate(t *testing.T, sets ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	args := []string{"template", "crowsnest", filepath.Join(bin.repoRoot, "charts", "exporter"), "--namespace", "crowsnest"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, err := exec.CommandContext(ctx, bin.helm, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// docs splits rendered YAML into objects.
func docs(t *testing.T, rendered string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(rendered))
	var out []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("rendered chart: %v", err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

func get(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

// TestHelmChart renders the chart, checks what an operator relies on, then
// applies it to a real kube-apiserver and runs crowsnest as the rendered
// Deployment does (its arguments, environment and mounted config; see
// podOf) with a token of the chart's ServiceAccount: with the chart's RBAC
// it watches Applications and workloads; with list taken away from the
// ClusterRole it cannot. chart_options_test.go tests each option.
func TestHelmChart(t *testing.T) {
	all := docs(t, helmTemplate(t, "serviceMonitor.enabled=true", "prometheusRule.enabled=true", "replicaCount=2", "networkPolicy.enabled=true"))
	kinds := map[string][]map[string]any{}
	for _, d := range all {
		k, _ := d["kind"].(string)
		kinds[k] = append(kinds[k], d)
	}
	for _, k := range []string{"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap", "NetworkPolicy", "PodDisruptionBudget"} {
		if len(kinds[k]) == 0 {
			t.Errorf("the chart renders no %s", k)
		}
	}
	// Security context and probes.
	c := get(kinds["Deployment"][0], "spec", "template", "spec", "containers").([]any)[0]
	pod := get(kinds["Deployment"][0], "spec", "template", "spec", "securityContext")
	if get(pod, "runAsNonRoot") != true || get(pod, "seccompProfile", "type") != "RuntimeDefault" ||
		get(c, "securityContext", "readOnlyRootFilesystem") != true || fmt.Sprint(get(c, "securityContext", "capabilities", "drop")) != "[ALL]" ||
		get(c, "livenessProbe", "httpGet", "path") != "/healthz" || get(c, "readinessProbe", "httpGet", "path") != "/readyz" {
		t.Errorf("deployment security context or probes: pod %v container %v", pod, c)
	}
	// The ClusterRole only reads.
	for _, r := range get(kinds["ClusterRole"][0], "rules").([]any) {
		for _, v := range get(r, "verbs").([]any) {
			if !slices.Contains([]any{"get", "list", "watch"}, v) {
				t.Errorf("ClusterRole rule %v grants %v", r, v)
			}
		}
	}
	// The PrometheusRule holds every alert; the dashboards are labelled
	// for the Grafana sidecar.
	prText, _ := yaml.Marshal(kinds["PrometheusRule"][0])
	for _, a := range rules.Alerts() {
		if !bytes.Contains(prText, []byte("alert: "+a.Name)) {
			t.Errorf("PrometheusRule lacks %s", a.Name)
		}
	}
	dashboards := 0
	for _, cm := range kinds["ConfigMap"] {
		if get(cm, "metadata", "labels", "grafana_dashboard") == "1" {
			dashboards++
		}
	}
	if dashboards != 3 {
		t.Errorf("%d dashboard ConfigMaps, want 3 (fleet, app, DORA)", dashboards)
	}
	if len(docs(t, helmTemplate(t, "replicaCount=1"))) >= len(all)-2 {
		t.Errorf("one replica should render no PodDisruptionBudget, and no ServiceMonitor or PrometheusRule by default")
	}

	// Installed into a real API server, enforced by RBAC.
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	kas.CreateNamespace("crowsnest")
	kas.CreateNamespace(argoCDNamespace)
	kas.CreateNamespace("shop")
	// Two replicas: the leader election Role is rendered too.
	twoReplicas := helmTemplate(t, "replicaCount=2")
	kas.Kubectl(twoReplicas, "apply", "-f", "-")
	kas.Kubectl(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: rbac-probe, namespace: argocd, labels: {env: dev}}
spec:
  project: default
  source: {repoURL: https://example.com/repo.git, path: ., targetRevision: HEAD}
  destination: {server: https://kubernetes.default.svc, namespace: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, annotations: {argocd.argoproj.io/tracking-id: "rbac-probe:apps/Deployment:shop/web"}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: example.com/web:1}]}
`, "apply", "-f", "-")
	kubeconfig := serviceAccountKubeconfig(t, env, kas, "sa")
	// As the chart runs it with two replicas, its arguments, environment
	// and mounted config as rendered (the Lease is the release's, in
	// $POD_NAMESPACE); the kubeconfig stands in for the in-cluster token.
	podRun := podOf(t, env, "chart-pod", docs(t, twoReplicas), nil, "crowsnest")
	if f := flagsOf(podRun.Args); f["leader-elect"] != "true" || f["leader-elect.lease-name"] != "crowsnest" || !slices.Contains(podRun.Env, "POD_NAMESPACE=crowsnest") {
		t.Errorf("two replicas: args %v env %v, want leader election on the release's Lease", podRun.Args, podRun.Env)
	}
	if f := flagsOf(podRun.Args); f["checkpoint.configmap"] != "crowsnest-state" {
		t.Errorf("args %v, want the checkpoint in the chart's ConfigMap crowsnest-state", podRun.Args)
	}
	cn := podRun.start(env, "crowsnest", "http", &http.Client{Timeout: 5 * time.Second}, "--kubeconfig="+kubeconfig, "--checkpoint.interval=1s")
	eventually(t, scenarioTimeout, func() error {
		if err := cn.ExpectStatus("/readyz", 200); err != nil {
			return err
		}
		// The checkpoint Role (get, update of the chart's ConfigMap) is
		// enough to save it.
		if err := cn.ExpectSample(0, "crowsnest_checkpoint_saves_total", "result", "failed"); err != nil {
			return err
		}
		if out := kas.Kubectl("", "-n", "crowsnest", "get", "configmap", "crowsnest-state", "-o", "jsonpath={.data.checkpoint\\.json}"); !strings.Contains(out, `"watermark"`) {
			return fmt.Errorf("ConfigMap crowsnest-state holds %q, want a checkpoint", out)
		}
		// The Role reaches the release's Lease only, and that is enough.
		if err := cn.ExpectSample(1, "crowsnest_leader"); err != nil {
			return err
		}
		if err := cn.ExpectSample(1, "crowsnest_app_info", "name", "rbac-probe"); err != nil {
			return err
		}
		return cn.ExpectSample(2, "crowsnest_app_workload_replicas", "name", "rbac-probe", "kind", "Deployment", "state", "desired")
	})
	// Every list and watch the chart's RBAC must allow went through: a
	// missing verb (a watch on Deployments, say) shows as an error in the
	// log ("Failed to watch", "forbidden") even where a first list got
	// the data.
	time.Sleep(3 * time.Second)
	if log := cn.LogTail(500); strings.Contains(log, "level=ERROR") {
		t.Errorf("crowsnest logged errors with the chart's RBAC:\n%s", lastLines(log, 10))
	}
	if err := cn.Stop(); err != nil {
		t.Errorf("crowsnest: %v", err)
	}

	// Without list on Applications, crowsnest with the same token cannot
	// become ready: the ClusterRole is what lets it work.
	crippled := strings.Replace(helmTemplate(t), "resources: [applications, appprojects, applicationsets]\n    verbs: [get, list, watch]", "resources: [applications, appprojects, applicationsets]\n    verbs: [get, watch]", 1)
	if crippled == helmTemplate(t) {
		t.Fatal("could not take list away from the rendered ClusterRole")
	}
	kas.Kubectl(crippled, "apply", "-f", "-")
	denied := env.StartCrowsnest(kubeconfig)
	time.Sleep(10 * time.Second)
	if err := denied.ExpectStatus("/readyz", 503); err != nil {
		t.Errorf("without list on applications: %v", err)
	}
	if err := denied.ExpectSample(0, "crowsnest_source_up", "source", "kubernetes"); err != nil {
		t.Errorf("without list on applications: %v", err)
	}
	if !strings.Contains(strings.ToLower(denied.LogTail(200)), "forbidden") {
		t.Errorf("crowsnest's log does not say the list was forbidden:\n%s", denied.LogTail(40))
	}
}

// serviceAccountKubeconfig writes, in env's directory dir, a kubeconfig
// with a token of the chart's ServiceAccount (crowsnest/crowsnest), the
// token registered as a secret that must appear in no output.
func serviceAccountKubeconfig(t *testing.T, env *Env, kas *KubeAPIServer, dir string) string {
	t.Helper()
	token := strings.TrimSpace(kas.Kubectl("", "-n", "crowsnest", "create", "token", "crowsnest"))
	env.RegisterSecret("chart-serviceaccount-token-"+dir, token)
	kubeconfig := filepath.Join(env.Dir(dir), "kubeconfig")
	if err := writeKubeconfig(kubeconfig, kas.URL, token); err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}
