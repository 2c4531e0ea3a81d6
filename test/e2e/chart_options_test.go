//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// helmRun runs helm on the chart with args (after the chart path) and
// returns its combined output and error.
func helmRun(t *testing.T, verb string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	chart := filepath.Join(bin.repoRoot, "charts", "exporter")
	all := []string{verb}
	if verb == "install" || verb == "template" {
		all = append(all, "crowsnest")
	}
	all = append(append(all, chart), args...)
	out, err := exec.CommandContext(ctx, bin.helm, all...).CombinedOutput()
	return string(out), err
}

// chartValues is the chart's file of every option on (make chart lints it).
func chartValues() string {
	return filepath.Join(bin.repoRoot, "charts", "exporter", "ci", "all-on-values.yaml")
}

// byKind indexes rendered objects by kind.
func byKind(all []map[string]any) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, d := range all {
		k, _ := d["kind"].(string)
		out[k] = append(out[k], d)
	}
	return out
}

// TestHelmChartSchema: values.schema.json makes helm lint --strict (and
// every install) reject a value of the wrong type, naming it.
func TestHelmChartSchema(t *testing.T) {
	if out, err := helmRun(t, "lint", "--strict"); err != nil {
		t.Fatalf("helm lint --strict with the defaults: %v\n%s", err, out)
	}
	if out, err := helmRun(t, "lint", "--strict", "-f", chartValues()); err != nil {
		t.Fatalf("helm lint --strict with every option on: %v\n%s", err, out)
	}
	for set, field := range map[string]string{
		"replicaCount=abc":                                 "/replicaCount",
		"serviceMonitor.enabled=yes":                       "/serviceMonitor/enabled",
		"source=argo":                                      "/source",
		"links.grafanaURL=grafana":                         "/links/grafanaURL",
		"prometheusRule.overrides.CrowsnestSyncSlow.for=1": "/prometheusRule/overrides/CrowsnestSyncSlow/for",
		"loki.urll=http://loki:3100":                       "urll",
	} {
		out, err := helmRun(t, "lint", "--strict", "--set", set)
		if err == nil || !strings.Contains(out, field) {
			t.Errorf("helm lint --strict --set %s: %v, want a failure naming %s:\n%s", set, err, field, out)
		}
	}
	// Settings that cannot work together fail rendering with a message.
	for set, msg := range map[string]string{
		"source=argocd-api":        "needs argocd.server",
		"argocd.server=argocd:443": "argocd.tokenSecret.name",
		"rbac.namespaced=true":     "needs watchNamespaces",
		"prometheusRule.enabled=true,prometheusRule.overrides.CrowsnestNope.disabled=true": "CrowsnestNope: no such alert",
	} {
		out, err := helmRun(t, "template", "--set", set)
		if err == nil || !strings.Contains(out, msg) {
			t.Errorf("helm template --set %s: %v, want a failure saying %q:\n%s", set, err, msg, out)
		}
	}
}

// TestHelmChartOptions renders every option on and checks each reaches
// the object it is for.
func TestHelmChartOptions(t *testing.T) {
	out, err := helmRun(t, "template", "--namespace", "crowsnest", "-f", chartValues())
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	kinds := byKind(docs(t, out))
	dep := kinds["Deployment"][0]
	pod := get(dep, "spec", "template")
	c := get(pod, "spec", "containers").([]any)[0]
	args := fmt.Sprint(get(c, "args"))
	for _, want := range []string{
		"--argocd.server=argocd-server.argocd:443", "--argocd.token-file=/etc/crowsnest/secrets/argocd/token",
		"--argocd.ca-file=/etc/crowsnest/argocd-ca/ca.crt", "--argocd.url=https://argocd.example.com",
		"--grafana.url=https://grafana.example.com", "--web.config.file=/etc/crowsnest/web/web-config.yml",
		"--loki.username=crowsnest", "--loki.password-file=/etc/crowsnest/secrets/loki-password/password",
		"--cloudevents.url=http://events:8080", "--namespaces=argocd,team-a", "--leader-elect",
		"--deployments.failure-window=1h",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("container args %s lack %s", args, want)
		}
	}
	if img := get(c, "image"); img != "ghcr.io/crowsnest/crowsnest@sha256:0000000000000000000000000000000000000000000000000000000000000000" {
		t.Errorf("image %v, want the digest", img)
	}
	if get(dep, "metadata", "labels", "team") != "platform" || get(pod, "metadata", "labels", "tier") != "observability" ||
		get(pod, "metadata", "annotations", "example.com/scrape") != "false" || get(pod, "spec", "priorityClassName") != "system-cluster-critical" ||
		get(pod, "spec", "topologySpreadConstraints") == nil {
		t.Errorf("labels, pod annotations, priority class or topology spread missing: %v", pod)
	}
	env := fmt.Sprint(get(c, "env"))
	for _, want := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "crowsnest-otlp", "SSL_CERT_DIR", "/etc/crowsnest/ca", "GODEBUG"} {
		if !strings.Contains(env, want) {
			t.Errorf("container env %s lacks %s", env, want)
		}
	}
	if get(c, "envFrom") == nil {
		t.Error("extraEnvFrom not rendered")
	}
	// Every file an argument names is on a mounted volume of the Secret
	// or ConfigMap the values name.
	mounts := map[string]string{}
	for _, m := range get(c, "volumeMounts").([]any) {
		mounts[get(m, "name").(string)] = get(m, "mountPath").(string)
	}
	sources := map[string]string{}
	for _, v := range get(pod, "spec", "volumes").([]any) {
		name := get(v, "name").(string)
		switch {
		case get(v, "secret", "secretName") != nil:
			sources[name] = "secret/" + get(v, "secret", "secretName").(string)
		case get(v, "configMap", "name") != nil:
			sources[name] = "configmap/" + get(v, "configMap", "name").(string)
		default:
			sources[name] = "other"
		}
	}
	for vol, want := range map[string]string{
		"argocd-token": "secret/crowsnest-argocd-token", "argocd-ca": "configmap/argocd-ca", "loki-password": "secret/crowsnest-loki",
		"web-config": "secret/crowsnest-web-config", "web-tls": "secret/crowsnest-tls", "ca-bundle": "configmap/corporate-ca", "scratch": "other",
	} {
		if sources[vol] != want || mounts[vol] == "" {
			t.Errorf("volume %s: from %q mounted at %q, want from %s and mounted", vol, sources[vol], mounts[vol], want)
		}
	}
	if get(c, "readinessProbe", "httpGet", "scheme") != "HTTPS" {
		t.Errorf("with web TLS the probes must use HTTPS: %v", get(c, "readinessProbe"))
	}
	var webConfig bool
	for _, s := range kinds["Secret"] {
		if get(s, "metadata", "name") == "crowsnest-web-config" && strings.Contains(fmt.Sprint(get(s, "stringData")), "tls_server_config") {
			webConfig = true
		}
	}
	if !webConfig {
		t.Error("no Secret crowsnest-web-config holding web.config")
	}
	// RBAC: Applications through a Role per watched namespace only.
	var roles []string
	for _, r := range kinds["Role"] {
		if strings.HasSuffix(get(r, "metadata", "name").(string), "-applications") {
			roles = append(roles, get(r, "metadata", "namespace").(string))
		}
	}
	slices.Sort(roles)
	if fmt.Sprint(roles) != "[argocd team-a]" || len(kinds["RoleBinding"]) != 3 {
		t.Errorf("application Roles in %v (%d RoleBindings), want argocd and team-a (and the leader election's)", roles, len(kinds["RoleBinding"]))
	}
	if cr := fmt.Sprint(get(kinds["ClusterRole"][0], "rules")); strings.Contains(cr, "applications") {
		t.Errorf("namespaced RBAC, yet the ClusterRole grants applications: %s", cr)
	}
	// ServiceMonitor.
	ep := get(kinds["ServiceMonitor"][0], "spec", "endpoints").([]any)[0]
	if get(ep, "scrapeTimeout") != "20s" || get(ep, "scheme") != "https" || get(ep, "tlsConfig", "insecureSkipVerify") != true ||
		!strings.Contains(fmt.Sprint(get(ep, "relabelings")), "cluster") || !strings.Contains(fmt.Sprint(get(ep, "relabelings")), "job") ||
		get(ep, "metricRelabelings") == nil {
		t.Errorf("ServiceMonitor endpoint %v", ep)
	}
	// PrometheusRule overrides.
	var slow, drift int
	for _, g := range get(kinds["PrometheusRule"][0], "spec", "groups").([]any) {
		for _, r := range get(g, "rules").([]any) {
			switch get(r, "alert") {
			case "CrowsnestSyncSlow":
				slow++
			case "CrowsnestProdDrift":
				drift++
				if get(r, "for") != "15m" || get(r, "labels", "team") != "platform" || get(r, "labels", "severity") != "critical" {
					t.Errorf("CrowsnestProdDrift with overrides: %v", r)
				}
			}
		}
	}
	if slow != 0 || drift != 1 {
		t.Errorf("PrometheusRule has %d CrowsnestSyncSlow (disabled) and %d CrowsnestProdDrift", slow, drift)
	}
	// Dashboards in their folder; the helm test Pod.
	for _, cm := range kinds["ConfigMap"] {
		if get(cm, "metadata", "labels", "grafana_dashboard") == "1" && get(cm, "metadata", "annotations", "grafana_folder") != "Argo CD" {
			t.Errorf("dashboard ConfigMap %v without the folder annotation", get(cm, "metadata", "name"))
		}
	}
	var tested bool
	for _, p := range kinds["Pod"] {
		if get(p, "metadata", "annotations", "helm.sh/hook") == "test" && strings.Contains(fmt.Sprint(get(p, "spec", "containers")), "https://crowsnest:9829/readyz") {
			tested = true
		}
	}
	if !tested {
		t.Error("no helm test Pod asking /readyz (over HTTPS with web TLS)")
	}
}

// TestHelmChartInstallArgoCDAPI installs the chart with helm into a real
// API server with the argocd-api source, its token and Loki's password
// from Secrets, web TLS and a CA bundle: the API server accepts every
// object, the Deployment mounts what it names, and NOTES tell the user
// how to reach /metrics.
func TestHelmChartInstallArgoCDAPI(t *testing.T) {
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	kas.CreateNamespace("crowsnest")
	kas.Kubectl(`apiVersion: v1
kind: Secret
metadata: {name: crowsnest-argocd-token, namespace: crowsnest}
stringData: {token: not-a-real-token}
---
apiVersion: v1
kind: Secret
metadata: {name: crowsnest-loki, namespace: crowsnest}
stringData: {password: not-a-real-password}
---
apiVersion: v1
kind: Secret
metadata: {name: crowsnest-otlp, namespace: crowsnest}
stringData: {headers: "authorization=Bearer not-a-real-token"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: corporate-ca, namespace: crowsnest}
data: {ca.crt: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"}
`, "apply", "-f", "-")
	out, err := helmRun(t, "install", "--kubeconfig", kas.Kubeconfig, "--namespace", "crowsnest", "--wait=false",
		"--set", "source=argocd-api", "--set", "argocd.server=argocd-server.argocd:443", "--set", "argocd.tokenSecret.name=crowsnest-argocd-token",
		"--set", "loki.url=http://loki:3100", "--set", "loki.username=crowsnest", "--set", "loki.passwordSecret.name=crowsnest-loki",
		"--set", "traces.otlpEndpoint=http://tempo:4318", "--set", "traces.headersSecret.name=crowsnest-otlp",
		"--set", "caBundle.configMap=corporate-ca", "--set", "web.config.basic_auth_users.prometheus=$2y$10$abcdefghijklmnopqrstuu",
		"--set", "links.grafanaURL=https://grafana.example.com")
	if err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	for _, want := range []string{"through argocd-server at argocd-server.argocd:443", "kubectl -n crowsnest port-forward svc/crowsnest 9829", "crowsnest_source_up", "helm test crowsnest"} {
		if !strings.Contains(out, want) {
			t.Errorf("helm install's NOTES lack %q:\n%s", want, out)
		}
	}
	dep := kas.Kubectl("", "-n", "crowsnest", "get", "deployment", "crowsnest", "-o", "yaml")
	for _, want := range []string{"--source=argocd-api", "--argocd.token-file=/etc/crowsnest/secrets/argocd/token", "secretName: crowsnest-argocd-token",
		"secretName: crowsnest-loki", "secretName: crowsnest-web-config", "name: corporate-ca", "OTEL_EXPORTER_OTLP_HEADERS"} {
		if !strings.Contains(dep, want) {
			t.Errorf("the installed Deployment lacks %q", want)
		}
	}
	if strings.Contains(dep, "--workloads.kinds") {
		t.Error("the argocd-api source watches no workloads, yet --workloads.kinds is set")
	}
	// The workloads' RBAC is not granted to the API source.
	if cr := kas.Kubectl("", "get", "clusterrole", "crowsnest", "-o", "yaml"); strings.Contains(cr, "deployments") {
		t.Errorf("the argocd-api source's ClusterRole grants workloads:\n%s", cr)
	}
}
