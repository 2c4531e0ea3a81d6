//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	crowsnestrules "github.com/crowsnest/crowsnest/internal/rules"

	"github.com/crowsnest/crowsnest/internal/logtest"
)

// This file tests the chart's options: the schema rejects wrong values
// (TestHelmChartSchema), each option renders what it is for
// (TestHelmChartOptions), every flag the chart passes is one of crowsnest's
// (TestHelmChartFlags), and the chart installs into a real API server and
// its pod runs, as a kubelet would run it, with the Argo CD API source and
// with every option on (TestHelmChartInstall).

// helmRun runs helm verb on the chart with args (after the chart path) and
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

// ciValues are the chart's values files of ci/ (make chart lints each).
func ciValues(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(bin.repoRoot, "charts", "exporter", "ci", "*-values.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("charts/exporter/ci: %v %v", files, err)
	}
	return files
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

// render renders the chart into namespace crowsnest with helm template
// args (--set ..., -f ...) and returns its objects by kind.
func render(t *testing.T, args ...string) map[string][]map[string]any {
	t.Helper()
	out, err := helmRun(t, "template", append([]string{"--namespace", "crowsnest"}, args...)...)
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return byKind(docs(t, out))
}

// named returns the object of kind named name, or nil.
func named(kinds map[string][]map[string]any, kind, name string) map[string]any {
	for _, o := range kinds[kind] {
		if get(o, "metadata", "name") == name {
			return o
		}
	}
	return nil
}

// container returns the pod spec of the rendered Deployment (or, sharded,
// StatefulSet) and its crowsnest container.
func container(t *testing.T, kinds map[string][]map[string]any) (pod, c map[string]any) {
	t.Helper()
	workloads := append(slices.Clone(kinds["Deployment"]), kinds["StatefulSet"]...)
	if len(workloads) != 1 {
		t.Fatalf("%d Deployments and %d StatefulSets rendered, want 1 of either", len(kinds["Deployment"]), len(kinds["StatefulSet"]))
	}
	pod, _ = get(workloads[0], "spec", "template", "spec").(map[string]any)
	cs, _ := get(pod, "containers").([]any)
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	return pod, cs[0].(map[string]any)
}

// strs turns a rendered list of strings into a []string.
func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, s := range l {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

// flagsOf returns the names of the --flags in args (with their values).
func flagsOf(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok {
			value = "true"
		}
		out[name] = value
	}
	return out
}

// envVar returns the container's environment variable name, or nil.
func envVar(c map[string]any, name string) map[string]any {
	for _, e := range get(c, "env").([]any) {
		if get(e, "name") == name {
			return e.(map[string]any)
		}
	}
	return nil
}

// volume returns the pod's volume name, or nil, and the path its mount
// puts it at in the container.
func volume(pod, c map[string]any, name string) (map[string]any, string) {
	var mountPath string
	for _, m := range get(c, "volumeMounts").([]any) {
		if get(m, "name") == name {
			mountPath, _ = get(m, "mountPath").(string)
		}
	}
	for _, v := range get(pod, "volumes").([]any) {
		if get(v, "name") == name {
			return v.(map[string]any), mountPath
		}
	}
	return nil, mountPath
}

// ruleSet is the chart's copy of the rule file, parsed.
func ruleSet(t *testing.T) []any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bin.repoRoot, "charts", "exporter", "files", "crowsnest.rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f["groups"].([]any)
}

// TestHelmChartSchema: values.schema.json makes helm lint --strict (and
// helm template and install) reject a value of the wrong type or an unknown
// key, naming it; settings that cannot work together fail with a message.
func TestHelmChartSchema(t *testing.T) {
	if out, err := helmRun(t, "lint", "--strict"); err != nil {
		t.Fatalf("helm lint --strict with the defaults: %v\n%s", err, out)
	}
	for _, f := range ciValues(t) {
		if out, err := helmRun(t, "lint", "--strict", "-f", f); err != nil {
			t.Fatalf("helm lint --strict -f %s: %v\n%s", f, err, out)
		}
	}
	for _, c := range []struct{ set, field string }{
		{"replicaCount=abc", "/replicaCount"},
		{"replicaCount=0", "/replicaCount"},
		{"serviceMonitor.enabled=yes", "/serviceMonitor/enabled"},
		{`serviceMonitor.enabled="yes"`, "/serviceMonitor/enabled"},
		{"source=argo", "/source"},
		{"image.digest=latest", "/image/digest"},
		{"argocd.server=https://argocd.example.com", "/argocd/server"},
		{"argocd.insecure=1", "/argocd/insecure"},
		{"links.grafanaURL=grafana", "/links/grafanaURL"},
		{"deployments.failureWindow=1d", "/deployments/failureWindow"},
		{"cloudEvents.bufferSize=many", "/cloudEvents/bufferSize"},
		{"web.scheme=ftp", "/web/scheme"},
		{"web.config.tls_server_confg.cert_file=x", "tls_server_confg"},
		{"traces.protocol=http", "/traces/protocol"},
		{"podAnnotations.n=1", "/podAnnotations/n"},
		{"extraEnv[0].value=x", "/extraEnv/0"},
		{"extraVolumeMounts[0].name=x", "/extraVolumeMounts/0"},
		{"config.environments[0].match.projekt=prod", "projekt"},
		{"serviceMonitor.scrapeTimeout=10", "/serviceMonitor/scrapeTimeout"},
		{"prometheusRule.overrides.CrowsnestSyncSlow.for=1", "/prometheusRule/overrides/CrowsnestSyncSlow/for"},
		{"prometheusRule.overrides.CrowsnestSyncSlow.disable=true", "disable"},
		{"loki.urll=http://loki:3100", "urll"},
		{"sharding.totalShards=0", "/sharding/totalShards"},
		{"sharding.totalShards=two", "/sharding/totalShards"},
	} {
		out, err := helmRun(t, "lint", "--strict", "--set", c.set)
		if err == nil || !strings.Contains(out, c.field) {
			t.Errorf("helm lint --strict --set %s: %v, want a failure naming %s:\n%s", c.set, err, c.field, out)
		}
	}
	// The chart's README has a row for every value.
	readme, err := os.ReadFile(filepath.Join(bin.repoRoot, "charts", "exporter", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	vb, err := os.ReadFile(filepath.Join(bin.repoRoot, "charts", "exporter", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(vb, &values); err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			path := prefix + k
			// Values that are objects of their own (a config file, a probe,
			// a security context) have one row.
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 && !slices.Contains([]string{"config", "resources", "podSecurityContext", "securityContext", "livenessProbe", "readinessProbe", "dashboards.labels"}, path) {
				walk(path+".", sub)
				continue
			}
			if !strings.Contains(string(readme), "| `"+path+"` |") {
				t.Errorf("charts/exporter/README.md has no row for %s", path)
			}
		}
	}
	walk("", values)
	// helm template (and so install) enforces the schema too.
	if out, err := helmRun(t, "template", "--set", "replicaCount=abc"); err == nil || !strings.Contains(out, "/replicaCount") {
		t.Errorf("helm template --set replicaCount=abc: %v, want a failure naming /replicaCount:\n%s", err, out)
	}
	for set, msg := range map[string]string{
		"source=argocd-api":                                  "needs argocd.server",
		"argocd.server=argocd:443":                           "argocd.tokenSecret.name",
		"argocd.ca.configMap=ca":                             "argocd.ca needs argocd.server",
		"loki.username=u,loki.url=http://loki:3100":          "loki.username needs loki.passwordSecret.name",
		"loki.tenant=t":                                      "need loki.url",
		"web.configSecret=w,web.config.basic_auth_users.a=b": "exclusive",
		"caBundle.secret=a,caBundle.configMap=b":             "exclusive",
		"source=argocd-api,argocd.server=a:443,argocd.tokenSecret.name=t,replicaCount=2":   "needs source=kubernetes",
		"sharding.totalShards=2,replicaCount=2":                                            "replicaCount must be 1",
		"prometheusRule.enabled=true,prometheusRule.overrides.CrowsnestNope.disabled=true": "CrowsnestNope: no such alert",
	} {
		out, err := helmRun(t, "template", "--set", set)
		if err == nil || !strings.Contains(out, msg) {
			t.Errorf("helm template --set %s: %v, want a failure saying %q:\n%s", set, err, msg, out)
		}
	}
}

// TestHelmChartOptions renders the chart once per option and checks that
// the option reaches the object it is for, and only there.
func TestHelmChartOptions(t *testing.T) {
	defaults := render(t)
	defPod, defC := container(t, defaults)
	defArgs := strs(get(defC, "args"))

	t.Run("defaults", func(t *testing.T) {
		want := []string{
			"--config.file=/etc/crowsnest/config/crowsnest.yml", "--web.listen-address=:9829", "--log.level=info", "--source=kubernetes",
			"--workloads.kinds=deployments,statefulsets,daemonsets,jobs,rollouts,certificates",
			"--checkpoint.configmap=crowsnest-state",
			"--deployments.failure-window=1h", "--deployments.commit-timeout=5s",
		}
		if !slices.Equal(defArgs, want) {
			t.Errorf("default args\n%v\nwant\n%v", defArgs, want)
		}
		if get(defC, "image") != "ghcr.io/crowsnest/crowsnest:0.1.0" {
			t.Errorf("image %v, want the appVersion's tag", get(defC, "image"))
		}
		if n := len(get(defC, "env").([]any)); n != 1 || get(defC, "envFrom") != nil {
			t.Errorf("default env %v envFrom %v, want POD_NAMESPACE only", get(defC, "env"), get(defC, "envFrom"))
		}
		if vols := get(defPod, "volumes").([]any); len(vols) != 1 {
			t.Errorf("default volumes %v, want the config only", vols)
		}
		for _, k := range []string{"ServiceMonitor", "PrometheusRule", "Secret", "PodDisruptionBudget"} {
			if len(defaults[k]) != 0 {
				t.Errorf("the defaults render a %s", k)
			}
		}
		for _, probe := range []string{"livenessProbe", "readinessProbe"} {
			if get(defC, probe, "httpGet", "scheme") != "HTTP" || get(defC, probe, "httpGet", "port") != "metrics" {
				t.Errorf("%s %v", probe, get(defC, probe))
			}
		}
		for _, k := range []string{"priorityClassName", "topologySpreadConstraints", "nodeSelector", "tolerations", "affinity", "automountServiceAccountToken"} {
			if get(defPod, k) != nil {
				t.Errorf("the defaults set %s: %v", k, get(defPod, k))
			}
		}
		if fmt.Sprint(get(defC, "resources", "limits", "memory")) != "1536Mi" {
			t.Errorf("resources %v", get(defC, "resources"))
		}
	})

	t.Run("extraEnv, extraEnvFrom, extraVolumes, extraVolumeMounts, extraArgs", func(t *testing.T) {
		pod, c := container(t, render(t, "--set", "extraEnv[0].name=GODEBUG,extraEnv[0].value=x509sha1=1",
			"--set", "extraEnv[1].name=TOKEN,extraEnv[1].valueFrom.secretKeyRef.name=s,extraEnv[1].valueFrom.secretKeyRef.key=k",
			"--set", "extraEnvFrom[0].secretRef.name=more-env", "--set", "extraVolumes[0].name=extra,extraVolumes[0].secret.secretName=files",
			"--set", "extraVolumeMounts[0].name=extra,extraVolumeMounts[0].mountPath=/etc/extra", "--set", "extraArgs={--loki.buffer-size=5,--web.enable-lifecycle}"))
		if get(envVar(c, "GODEBUG"), "value") != "x509sha1=1" || get(envVar(c, "TOKEN"), "valueFrom", "secretKeyRef", "name") != "s" || envVar(c, "POD_NAMESPACE") == nil {
			t.Errorf("env %v", get(c, "env"))
		}
		if get(get(c, "envFrom").([]any)[0], "secretRef", "name") != "more-env" {
			t.Errorf("envFrom %v", get(c, "envFrom"))
		}
		if v, at := volume(pod, c, "extra"); get(v, "secret", "secretName") != "files" || at != "/etc/extra" {
			t.Errorf("extra volume %v at %q", v, at)
		}
		if args := strs(get(c, "args")); !slices.Equal(args[len(args)-2:], []string{"--loki.buffer-size=5", "--web.enable-lifecycle"}) {
			t.Errorf("extraArgs do not end the args: %v", args)
		}
	})

	t.Run("image.digest wins over image.tag", func(t *testing.T) {
		_, c := container(t, render(t, "--set", "image.tag=v9,image.digest=sha256:"+strings.Repeat("ab", 32)))
		if get(c, "image") != "ghcr.io/crowsnest/crowsnest@sha256:"+strings.Repeat("ab", 32) {
			t.Errorf("image %v", get(c, "image"))
		}
		if _, c := container(t, render(t, "--set", "image.tag=v9")); get(c, "image") != "ghcr.io/crowsnest/crowsnest:v9" {
			t.Errorf("image %v", get(c, "image"))
		}
	})

	t.Run("pod scheduling and metadata", func(t *testing.T) {
		kinds := render(t, "--set", "priorityClassName=high,podAnnotations.a=b,podLabels.tier=obs,nodeSelector.disk=ssd",
			"--set", "tolerations[0].key=k,tolerations[0].operator=Exists", "--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=z,affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
			"--set", "topologySpreadConstraints[0].maxSkew=1,topologySpreadConstraints[0].topologyKey=zone,topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
			"--set", "resources.limits.memory=2Gi,resources.requests.cpu=1")
		pod, c := container(t, kinds)
		tmpl := get(kinds["Deployment"][0], "spec", "template", "metadata")
		if get(pod, "priorityClassName") != "high" || get(tmpl, "annotations", "a") != "b" || get(tmpl, "labels", "tier") != "obs" ||
			get(pod, "nodeSelector", "disk") != "ssd" || get(pod, "tolerations") == nil || get(pod, "affinity", "nodeAffinity") == nil ||
			get(pod["topologySpreadConstraints"].([]any)[0], "topologyKey") != "zone" {
			t.Errorf("pod %v", pod)
		}
		// Pod labels stay out of the selector (it cannot change).
		if get(kinds["Deployment"][0], "spec", "selector", "matchLabels", "tier") != nil {
			t.Error("podLabels leaked into the Deployment's selector")
		}
		if get(c, "resources", "limits", "memory") != "2Gi" || fmt.Sprint(get(c, "resources", "requests", "cpu")) != "1" {
			t.Errorf("resources %v", get(c, "resources"))
		}
	})

	t.Run("commonLabels on every object", func(t *testing.T) {
		out, err := helmRun(t, "template", "--namespace", "crowsnest", "-f", chartValues(), "--set", "commonLabels.team=platform")
		if err != nil {
			t.Fatal(err, out)
		}
		for _, o := range docs(t, out) {
			if get(o, "metadata", "labels", "team") != "platform" {
				t.Errorf("%s %s lacks the common label", get(o, "kind"), get(o, "metadata", "name"))
			}
		}
	})

	t.Run("nameOverride and fullnameOverride", func(t *testing.T) {
		kinds := render(t, "--set", "fullnameOverride=cn")
		if named(kinds, "Deployment", "cn") == nil || named(kinds, "Service", "cn") == nil || named(kinds, "ClusterRole", "cn") == nil {
			t.Error("fullnameOverride does not name the objects")
		}
		kinds = render(t, "--set", "nameOverride=exporter")
		if d := named(kinds, "Deployment", "crowsnest-exporter"); d == nil || get(d, "metadata", "labels", "app.kubernetes.io/name") != "exporter" {
			t.Errorf("nameOverride: Deployments %v", kinds["Deployment"])
		}
	})

	t.Run("source argocd-api", func(t *testing.T) {
		kinds := render(t, "--set", "source=argocd-api,argocd.server=argocd.example.com:443,argocd.tokenSecret.name=argocd-token,argocd.tokenSecret.key=tok,argocd.resyncPeriod=2m")
		pod, c := container(t, kinds)
		flags := flagsOf(strs(get(c, "args")))
		if flags["source"] != "argocd-api" || flags["argocd.server"] != "argocd.example.com:443" || flags["argocd.token-file"] != "/etc/crowsnest/argocd-token/tok" ||
			flags["argocd.resync-period"] != "2m" {
			t.Errorf("args %v", get(c, "args"))
		}
		if _, ok := flags["workloads.kinds"]; ok {
			t.Error("--workloads.kinds with the argocd-api source (it reads no workloads)")
		}
		v, at := volume(pod, c, "argocd-token")
		if get(v, "secret", "secretName") != "argocd-token" || at != "/etc/crowsnest/argocd-token" || fmt.Sprint(get(v, "secret", "items")) != "[map[key:tok path:tok]]" {
			t.Errorf("token volume %v at %q", v, at)
		}
		// No Kubernetes access at all.
		if get(pod, "automountServiceAccountToken") != false {
			t.Error("the argocd-api source's pod mounts a service account token")
		}
		for _, k := range []string{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
			if len(kinds[k]) != 0 {
				t.Errorf("the argocd-api source renders a %s", k)
			}
		}
	})

	t.Run("kube-prometheus-stack's defaults", func(t *testing.T) {
		// No NetworkPolicy unless asked: one that admits only some
		// scrapers blocks the others without a word. Asked, with no peers,
		// it admits any pod of any namespace, to the metrics port only.
		if kinds := render(t); len(kinds["NetworkPolicy"]) != 0 {
			t.Error("a NetworkPolicy by default")
		}
		np := render(t, "--set", "networkPolicy.enabled=true")["NetworkPolicy"]
		if len(np) != 1 {
			t.Fatalf("%d NetworkPolicies with networkPolicy.enabled=true", len(np))
		}
		ingress := get(np[0], "spec", "ingress").([]any)
		if len(ingress) != 1 || get(ingress[0], "from") != nil || fmt.Sprint(get(ingress[0], "ports")) != "[map[port:metrics protocol:TCP]]" {
			t.Errorf("NetworkPolicy ingress %v, want the metrics port from anywhere", ingress)
		}
		// The stack's Prometheus selects monitors and rules by the label
		// release; a sample limit; dashboards in Grafana's namespace.
		kinds := render(t, "--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true,serviceMonitor.sampleLimit=500000,dashboards.namespace=monitoring",
			"--set", "serviceMonitor.additionalLabels.release=kube-prometheus-stack,prometheusRule.additionalLabels.release=kube-prometheus-stack")
		sm, rule := kinds["ServiceMonitor"], kinds["PrometheusRule"]
		if len(sm) != 1 || len(rule) != 1 {
			t.Fatalf("%d ServiceMonitors, %d PrometheusRules", len(sm), len(rule))
		}
		for _, o := range []map[string]any{sm[0], rule[0]} {
			if get(o, "metadata", "labels", "release") != "kube-prometheus-stack" {
				t.Errorf("%s without the label release: %v", get(o, "kind"), get(o, "metadata", "labels"))
			}
		}
		if v := get(sm[0], "spec", "sampleLimit"); fmt.Sprint(v) != "500000" {
			t.Errorf("ServiceMonitor sampleLimit %v, want 500000", v)
		}
		dashboards := 0
		for _, cm := range kinds["ConfigMap"] {
			if get(cm, "metadata", "labels", "grafana_dashboard") == "1" {
				dashboards++
				if ns := get(cm, "metadata", "namespace"); ns != "monitoring" {
					t.Errorf("dashboard %v in namespace %v, want monitoring", get(cm, "metadata", "name"), ns)
				}
			}
		}
		if dashboards != 3 {
			t.Errorf("%d dashboard ConfigMaps, want 3", dashboards)
		}
		// A PodMonitor instead, with the same settings.
		kinds = render(t, "--set", "serviceMonitor.enabled=true,podMonitor.enabled=true,serviceMonitor.sampleLimit=1000,serviceMonitor.additionalLabels.release=kps")
		if len(kinds["ServiceMonitor"]) != 0 || len(kinds["PodMonitor"]) != 1 {
			t.Fatalf("%d ServiceMonitors and %d PodMonitors with podMonitor.enabled, want only a PodMonitor", len(kinds["ServiceMonitor"]), len(kinds["PodMonitor"]))
		}
		pm := kinds["PodMonitor"][0]
		ep := get(pm, "spec", "podMetricsEndpoints").([]any)
		if get(pm, "metadata", "labels", "release") != "kps" || fmt.Sprint(get(pm, "spec", "sampleLimit")) != "1000" || len(ep) != 1 ||
			get(ep[0], "port") != "metrics" || get(ep[0], "honorLabels") != true || !strings.Contains(fmt.Sprint(get(ep[0], "relabelings")), "replacement:crowsnest") {
			t.Errorf("PodMonitor %v", pm)
		}
		if sel := get(pm, "spec", "selector", "matchLabels"); fmt.Sprint(sel) != fmt.Sprint(get(named(render(t), "Service", "crowsnest"), "spec", "selector")) {
			t.Errorf("PodMonitor selects %v, not the chart's pods", sel)
		}
	})

	t.Run("a spoke cluster: only the read-only account the hub reads it with", func(t *testing.T) {
		kinds := render(t, "--set", "mode=spoke")
		var got []string
		for k, objs := range kinds {
			for range objs {
				got = append(got, k)
			}
		}
		slices.Sort(got)
		if want := []string{"ClusterRole", "ClusterRoleBinding", "Secret", "ServiceAccount"}; !slices.Equal(got, want) {
			t.Errorf("mode=spoke renders %v, want %v: no crowsnest, no Service, no rules or dashboards", got, want)
		}
		role := named(kinds, "ClusterRole", "crowsnest")
		var resources []string
		for _, r := range get(role, "rules").([]any) {
			if verbs := fmt.Sprint(get(r, "verbs")); verbs != "[get list watch]" {
				t.Errorf("the spoke's ClusterRole grants %s on %v, want get, list and watch only", verbs, get(r, "resources"))
			}
			for _, res := range strs(get(r, "resources")) {
				resources = append(resources, fmt.Sprint(get(r, "apiGroups"))+"/"+res)
			}
		}
		if want := []string{"[apps]/deployments", "[apps]/statefulsets", "[apps]/daemonsets", "[batch]/jobs", "[argoproj.io]/rollouts", "[cert-manager.io]/certificates"}; !slices.Equal(resources, want) {
			t.Errorf("the spoke's ClusterRole reads %v, want the workload kinds %v", resources, want)
		}
		binding := named(kinds, "ClusterRoleBinding", "crowsnest")
		if s := get(binding, "subjects").([]any); len(s) != 1 || get(s[0], "name") != "crowsnest" || get(s[0], "namespace") != "crowsnest" {
			t.Errorf("the spoke's ClusterRoleBinding binds %v, want the ServiceAccount crowsnest/crowsnest", s)
		}
		token := named(kinds, "Secret", "crowsnest-token")
		if get(token, "type") != "kubernetes.io/service-account-token" || get(token, "metadata", "annotations", "kubernetes.io/service-account.name") != "crowsnest" {
			t.Errorf("the spoke's token Secret: %v", token)
		}
		// Fewer kinds, fewer rules; short-lived tokens instead of the Secret.
		kinds = render(t, "--set", "mode=spoke,workloadKinds=deployments,spoke.tokenSecret=false")
		if rules := get(named(kinds, "ClusterRole", "crowsnest"), "rules").([]any); len(rules) != 1 || fmt.Sprint(get(rules[0], "resources")) != "[deployments]" {
			t.Errorf("mode=spoke with workloadKinds=deployments: rules %v", rules)
		}
		if len(kinds["Secret"]) != 0 {
			t.Error("spoke.tokenSecret=false still renders a token Secret")
		}
		if out, err := helmRun(t, "template", "--set", "mode=hub-and-spoke"); err == nil || !strings.Contains(out, "mode") {
			t.Errorf("mode=hub-and-spoke accepted: %v\n%s", err, out)
		}
	})

	t.Run("tracking and the local cluster", func(t *testing.T) {
		_, ctr := container(t, render(t, "--set", "workloadsCluster=hub,argocd.trackingMethod=label,argocd.instanceLabelKey=example.com/app,argocd.installationID=hub-a"))
		flags := flagsOf(strs(get(ctr, "args")))
		for k, v := range map[string]string{"workloads.cluster": "hub", "argocd.tracking-method": "label",
			"argocd.instance-label-key": "example.com/app", "argocd.installation-id": "hub-a"} {
			if flags[k] != v {
				t.Errorf("--%s=%q, want %q (args %v)", k, flags[k], v, flags)
			}
		}
		// Spoke clusters' Secrets, each mounted in a directory of its own.
		pod, ctr := container(t, render(t, "--set", "clusterSecrets={prod-eu,prod-us}"))
		if f := flagsOf(strs(get(ctr, "args"))); f["clusters.dir"] != "/etc/crowsnest/clusters" {
			t.Errorf("--clusters.dir=%q, want /etc/crowsnest/clusters", f["clusters.dir"])
		}
		mounts := map[string]string{}
		for _, m := range get(ctr, "volumeMounts").([]any) {
			mounts[fmt.Sprint(get(m, "name"))] = fmt.Sprint(get(m, "mountPath"))
		}
		secrets := map[string]string{}
		for _, v := range get(pod, "volumes").([]any) {
			if name := get(v, "secret", "secretName"); name != nil {
				secrets[fmt.Sprint(get(v, "name"))] = fmt.Sprint(name)
			}
		}
		for i, name := range []string{"prod-eu", "prod-us"} {
			vol := fmt.Sprintf("cluster-%d", i)
			if mounts[vol] != "/etc/crowsnest/clusters/"+name || secrets[vol] != name {
				t.Errorf("%s: mounted at %q from Secret %q, want /etc/crowsnest/clusters/%s from %s", vol, mounts[vol], secrets[vol], name, name)
			}
		}
		// The argocd-api source watches no workloads: none of them.
		_, ctr = container(t, render(t, "--set", "source=argocd-api,argocd.server=a:443,argocd.tokenSecret.name=t,workloadsCluster=hub,argocd.trackingMethod=label,clusterSecrets={prod-eu}"))
		for k := range flagsOf(strs(get(ctr, "args"))) {
			if k == "workloads.cluster" || k == "clusters.dir" || strings.HasPrefix(k, "argocd.tracking") {
				t.Errorf("the argocd-api source passes --%s", k)
			}
		}
	})

	t.Run("argocd.server beside the Kubernetes source", func(t *testing.T) {
		for _, c := range []struct {
			sets      []string
			wantFlags map[string]string
			caFrom    string
		}{
			{[]string{"argocd.insecure=true", "argocd.grpcWeb=true", "argocd.syncWaveDelay=3s"},
				map[string]string{"argocd.insecure": "true", "argocd.grpc-web": "true", "argocd.sync-wave-delay": "3s"}, ""},
			{[]string{"argocd.plaintext=true"}, map[string]string{"argocd.plaintext": "true"}, ""},
			{[]string{"argocd.ca.secret=argocd-tls", "argocd.ca.key=ca.pem"}, map[string]string{"argocd.ca-file": "/etc/crowsnest/argocd-ca/ca.pem"}, "secret"},
			{[]string{"argocd.ca.configMap=argocd-ca"}, map[string]string{"argocd.ca-file": "/etc/crowsnest/argocd-ca/ca.crt"}, "configMap"},
		} {
			pod, ctr := container(t, render(t, "--set", "argocd.server=argocd-server.argocd:443,argocd.tokenSecret.name=tok", "--set", strings.Join(c.sets, ",")))
			flags := flagsOf(strs(get(ctr, "args")))
			if flags["source"] != "kubernetes" || flags["argocd.server"] != "argocd-server.argocd:443" || flags["argocd.token-file"] != "/etc/crowsnest/argocd-token/token" {
				t.Errorf("%v: args %v", c.sets, flags)
			}
			if _, ok := flags["argocd.resync-period"]; ok {
				t.Errorf("%v: --argocd.resync-period without the argocd-api source", c.sets)
			}
			for f, v := range c.wantFlags {
				if flags[f] != v {
					t.Errorf("%v: --%s=%q, want %q", c.sets, f, flags[f], v)
				}
			}
			if v, at := volume(pod, ctr, "argocd-ca"); c.caFrom != "" && (get(v, c.caFrom) == nil || at != "/etc/crowsnest/argocd-ca") {
				t.Errorf("%v: CA volume %v at %q", c.sets, v, at)
			}
			// gRPC-Web's client listens on a unix socket in /tmp: the
			// read-only root filesystem needs a volume there.
			if v, at := volume(pod, ctr, "tmp"); (c.wantFlags["argocd.grpc-web"] != "") != (get(v, "emptyDir") != nil && at == "/tmp") {
				t.Errorf("%v: /tmp volume %v at %q", c.sets, v, at)
			}
		}
	})

	t.Run("links", func(t *testing.T) {
		_, c := container(t, render(t, "--set", "links.argocdURL=https://argocd.example.com,links.grafanaURL=https://grafana.example.com/"))
		flags := flagsOf(strs(get(c, "args")))
		if flags["argocd.url"] != "https://argocd.example.com" || flags["grafana.url"] != "https://grafana.example.com/" {
			t.Errorf("args %v", flags)
		}
		if _, ok := flagsOf(defArgs)["argocd.url"]; ok {
			t.Error("--argocd.url by default")
		}
		// The rules link to the same URLs, as literals: every rule's
		// annotations are those rendered with the links.
		kinds := render(t, "--set", "prometheusRule.enabled=true,links.argocdURL=https://argocd.example.com,links.grafanaURL=https://grafana.example.com/")
		rendered, err := crowsnestrules.RenderWith(crowsnestrules.Alerts(), 1, crowsnestrules.Links{ArgoCD: "https://argocd.example.com", Grafana: "https://grafana.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := yaml.Unmarshal(rendered, &want); err != nil {
			t.Fatal(err)
		}
		got := get(kinds["PrometheusRule"][0], "spec", "groups").([]any)
		for gi, g := range want["groups"].([]any) {
			for ri, r := range get(g, "rules").([]any) {
				if a, w := get(got[gi], "rules").([]any)[ri].(map[string]any)["annotations"], r.(map[string]any)["annotations"]; !reflect.DeepEqual(a, w) {
					t.Errorf("group %v rule %d: annotations %v, want %v", get(g, "name"), ri, a, w)
				}
			}
		}
	})

	t.Run("web.tlsSecret alone serves HTTPS", func(t *testing.T) {
		kinds := render(t, "--set", "web.tlsSecret=crowsnest-tls,serviceMonitor.enabled=true")
		pod, c := container(t, kinds)
		s := named(kinds, "Secret", "crowsnest-web-config")
		var wc map[string]any
		if err := yaml.Unmarshal([]byte(fmt.Sprint(get(s, "stringData", "web-config.yml"))), &wc); err != nil || get(wc, "tls_server_config", "cert_file") != "/etc/crowsnest/tls/tls.crt" || get(wc, "tls_server_config", "key_file") != "/etc/crowsnest/tls/tls.key" {
			t.Errorf("web config Secret %v (%v)", s, err)
		}
		if flagsOf(strs(get(c, "args")))["web.config.file"] != "/etc/crowsnest/web/web-config.yml" {
			t.Errorf("args %v", get(c, "args"))
		}
		if v, at := volume(pod, c, "web-tls"); get(v, "secret", "secretName") != "crowsnest-tls" || at != "/etc/crowsnest/tls" {
			t.Errorf("TLS volume %v at %q", v, at)
		}
		if v, at := volume(pod, c, "web-config"); get(v, "secret", "secretName") != "crowsnest-web-config" || at != "/etc/crowsnest/web" {
			t.Errorf("web config volume %v at %q", v, at)
		}
		if get(c, "readinessProbe", "httpGet", "scheme") != "HTTPS" || get(c, "livenessProbe", "httpGet", "scheme") != "HTTPS" {
			t.Errorf("probes %v %v", get(c, "livenessProbe"), get(c, "readinessProbe"))
		}
		if ep := get(kinds["ServiceMonitor"][0], "spec", "endpoints").([]any)[0]; get(ep, "scheme") != "https" {
			t.Errorf("ServiceMonitor endpoint %v", ep)
		}
		if !strings.Contains(fmt.Sprint(get(kinds["Pod"][0], "spec", "containers")), "https://crowsnest:9829/readyz") {
			t.Errorf("helm test Pod %v", kinds["Pod"][0])
		}
		// The config changes roll the pods.
		tmpl := get(kinds["Deployment"][0], "spec", "template", "metadata", "annotations")
		if get(tmpl, "checksum/web-config") == nil {
			t.Errorf("no checksum/web-config annotation: %v", tmpl)
		}
	})

	t.Run("web.config basic auth, probes with a header", func(t *testing.T) {
		kinds := render(t, "--set", "web.config.basic_auth_users.prometheus=$2a$10$hash", "--set", "readinessProbe.httpGet.httpHeaders[0].name=Authorization,readinessProbe.httpGet.httpHeaders[0].value=Basic eA==")
		_, c := container(t, kinds)
		s := named(kinds, "Secret", "crowsnest-web-config")
		if yml := fmt.Sprint(get(s, "stringData", "web-config.yml")); !strings.Contains(yml, "basic_auth_users") || strings.Contains(yml, "tls_server_config") {
			t.Errorf("web config %q", yml)
		}
		rp := get(c, "readinessProbe")
		if get(rp, "httpGet", "scheme") != "HTTP" || get(rp, "httpGet", "path") != "/readyz" || get(rp, "periodSeconds") != 5 || !strings.Contains(fmt.Sprint(get(rp, "httpGet", "httpHeaders")), "Basic eA==") {
			t.Errorf("readiness probe %v", rp)
		}
		test := fmt.Sprint(get(kinds["Pod"][0], "spec", "containers"))
		if !strings.Contains(test, "Authorization: Basic eA==") || !strings.Contains(test, "http://crowsnest:9829/readyz") {
			t.Errorf("helm test Pod does not send the probe's header: %s", test)
		}
		// Another probe handler replaces the chart's httpGet.
		_, c = container(t, render(t, "--set", "livenessProbe.tcpSocket.port=metrics"))
		if get(c, "livenessProbe", "httpGet") != nil || get(c, "livenessProbe", "tcpSocket", "port") != "metrics" {
			t.Errorf("liveness probe %v", get(c, "livenessProbe"))
		}
	})

	t.Run("web.configSecret", func(t *testing.T) {
		kinds := render(t, "--set", "web.configSecret=my-web-config,web.scheme=https")
		pod, c := container(t, kinds)
		if v, _ := volume(pod, c, "web-config"); get(v, "secret", "secretName") != "my-web-config" {
			t.Errorf("web config volume %v", v)
		}
		if named(kinds, "Secret", "crowsnest-web-config") != nil {
			t.Error("the chart writes a web config beside web.configSecret")
		}
		if get(c, "readinessProbe", "httpGet", "scheme") != "HTTPS" || flagsOf(strs(get(c, "args")))["web.config.file"] == "" {
			t.Errorf("web.scheme=https not followed: %v", c)
		}
	})

	t.Run("loki", func(t *testing.T) {
		pod, c := container(t, render(t, "--set", "loki.url=http://loki:3100,loki.tenant=team-a,loki.job=cn,loki.username=crowsnest,loki.passwordSecret.name=loki-creds"))
		flags := flagsOf(strs(get(c, "args")))
		if flags["loki.url"] != "http://loki:3100" || flags["loki.tenant"] != "team-a" || flags["loki.job"] != "cn" || flags["loki.username"] != "crowsnest" ||
			flags["loki.password-file"] != "/etc/crowsnest/loki-password/password" {
			t.Errorf("args %v", flags)
		}
		if v, at := volume(pod, c, "loki-password"); get(v, "secret", "secretName") != "loki-creds" || at != "/etc/crowsnest/loki-password" {
			t.Errorf("password volume %v at %q", v, at)
		}
		pod, c = container(t, render(t, "--set", "loki.url=https://loki.example.com,loki.bearerTokenSecret.name=loki-token,loki.bearerTokenSecret.key=t"))
		if flagsOf(strs(get(c, "args")))["loki.bearer-token-file"] != "/etc/crowsnest/loki-token/t" {
			t.Errorf("args %v", get(c, "args"))
		}
		if v, _ := volume(pod, c, "loki-token"); get(v, "secret", "secretName") != "loki-token" {
			t.Errorf("token volume %v", v)
		}
	})

	t.Run("traces", func(t *testing.T) {
		_, c := container(t, render(t, "--set", "traces.otlpEndpoint=https://tempo:4317,traces.protocol=grpc,traces.headersSecret.name=otlp-auth"))
		flags := flagsOf(strs(get(c, "args")))
		if flags["traces.otlp.endpoint"] != "https://tempo:4317" || flags["traces.otlp.protocol"] != "grpc" {
			t.Errorf("args %v", flags)
		}
		if e := envVar(c, "OTEL_EXPORTER_OTLP_HEADERS"); get(e, "valueFrom", "secretKeyRef", "name") != "otlp-auth" || get(e, "valueFrom", "secretKeyRef", "key") != "headers" {
			t.Errorf("OTEL_EXPORTER_OTLP_HEADERS %v", e)
		}
	})

	t.Run("cloudEvents and deployments", func(t *testing.T) {
		_, c := container(t, render(t, "--set", "cloudEvents.url=https://events.example.com,cloudEvents.source=/crowsnest/prod,cloudEvents.bufferSize=50,deployments.failureWindow=30m,deployments.commitTimeout=2s"))
		flags := flagsOf(strs(get(c, "args")))
		for f, v := range map[string]string{"cloudevents.url": "https://events.example.com", "cloudevents.source": "/crowsnest/prod", "cloudevents.buffer-size": "50",
			"deployments.failure-window": "30m", "deployments.commit-timeout": "2s"} {
			if flags[f] != v {
				t.Errorf("--%s=%q, want %q", f, flags[f], v)
			}
		}
		if _, ok := flagsOf(defArgs)["cloudevents.url"]; ok {
			t.Error("--cloudevents.url by default")
		}
	})

	t.Run("caBundle", func(t *testing.T) {
		for _, from := range []string{"configMap", "secret"} {
			pod, c := container(t, render(t, "--set", "caBundle."+from+"=corporate-ca"))
			if get(envVar(c, "SSL_CERT_DIR"), "value") != "/etc/ssl/certs:/etc/crowsnest/ca" {
				t.Errorf("%s: SSL_CERT_DIR %v", from, envVar(c, "SSL_CERT_DIR"))
			}
			if v, at := volume(pod, c, "ca-bundle"); get(v, from) == nil || at != "/etc/crowsnest/ca" {
				t.Errorf("%s: CA volume %v at %q", from, v, at)
			}
		}
	})

	t.Run("serviceMonitor", func(t *testing.T) {
		kinds := render(t, "-f", chartValues())
		sm := kinds["ServiceMonitor"][0]
		ep := get(sm, "spec", "endpoints").([]any)[0]
		rl := get(ep, "relabelings").([]any)
		if get(ep, "interval") != "1m" || get(ep, "scrapeTimeout") != "20s" || get(ep, "scheme") != "https" || get(ep, "tlsConfig", "insecureSkipVerify") != true ||
			get(ep, "honorLabels") != true || get(ep, "basicAuth", "password", "name") != "crowsnest-scrape" || len(rl) != 2 || get(rl[0], "replacement") != "crowsnest" ||
			get(rl[1], "targetLabel") != "cluster" || get(get(ep, "metricRelabelings").([]any)[0], "action") != "drop" {
			t.Errorf("ServiceMonitor endpoint %v", ep)
		}
		if get(sm, "metadata", "labels", "release") != "kube-prometheus-stack" {
			t.Errorf("ServiceMonitor labels %v", get(sm, "metadata", "labels"))
		}
		sm = render(t, "--set", "serviceMonitor.enabled=true,serviceMonitor.namespace=monitoring,serviceMonitor.jobLabel=app.kubernetes.io/name,serviceMonitor.honorLabels=false,serviceMonitor.scheme=http,serviceMonitor.labels.a=b")["ServiceMonitor"][0]
		ep = get(sm, "spec", "endpoints").([]any)[0]
		if get(sm, "metadata", "namespace") != "monitoring" || fmt.Sprint(get(sm, "spec", "namespaceSelector", "matchNames")) != "[crowsnest]" ||
			get(sm, "spec", "jobLabel") != "app.kubernetes.io/name" || get(ep, "relabelings") != nil || get(ep, "honorLabels") != false || get(sm, "metadata", "labels", "a") != "b" {
			t.Errorf("ServiceMonitor %v", sm)
		}
	})

	t.Run("RBAC", func(t *testing.T) {
		readOnly := func(kinds map[string][]map[string]any) {
			for _, k := range []string{"ClusterRole", "Role"} {
				for _, r := range kinds[k] {
					if name := fmt.Sprint(get(r, "metadata", "name")); strings.HasSuffix(name, "-leader-election") {
						continue
					} else if strings.HasSuffix(name, "-checkpoint") {
						// Its own ConfigMap only, never create.
						if rules := fmt.Sprint(get(r, "rules")); rules != "[map[apiGroups:[] resourceNames:[crowsnest-state] resources:[configmaps] verbs:[get update]]]" {
							t.Errorf("Role %s rules %s, want get and update of ConfigMap crowsnest-state only", name, rules)
						}
						continue
					}
					for _, rule := range get(r, "rules").([]any) {
						for _, v := range get(rule, "verbs").([]any) {
							if !slices.Contains([]any{"get", "list", "watch"}, v) {
								t.Errorf("%s %s grants %v", k, get(r, "metadata", "name"), v)
							}
						}
					}
				}
			}
		}
		// Default: the ClusterRole reads Applications everywhere.
		readOnly(defaults)
		if !strings.Contains(fmt.Sprint(get(defaults["ClusterRole"][0], "rules")), "applications appprojects applicationsets") || len(defaults["Role"]) != 1 {
			t.Errorf("default RBAC: ClusterRole %v, Roles %v", get(defaults["ClusterRole"][0], "rules"), defaults["Role"])
		}
		// watchNamespaces: a Role and RoleBinding per namespace.
		kinds := render(t, "--set", "watchNamespaces={argocd,team-a}")
		readOnly(kinds)
		var roles, bindings []string
		for _, r := range kinds["Role"] {
			if get(r, "metadata", "name") != "crowsnest-checkpoint" {
				roles = append(roles, fmt.Sprintf("%s/%s:%v", get(r, "metadata", "namespace"), get(r, "metadata", "name"), get(r, "rules")))
			}
		}
		for _, b := range kinds["RoleBinding"] {
			if get(b, "metadata", "name") != "crowsnest-checkpoint" {
				bindings = append(bindings, fmt.Sprintf("%s/%s->%s:%v", get(b, "metadata", "namespace"), get(b, "metadata", "name"), get(b, "roleRef", "name"), get(b, "subjects")))
			}
		}
		sort.Strings(roles)
		sort.Strings(bindings)
		wantRoles := []string{
			"argocd/crowsnest-applications:[map[apiGroups:[argoproj.io] resources:[applications] verbs:[get list watch]]]",
			"team-a/crowsnest-applications:[map[apiGroups:[argoproj.io] resources:[applications] verbs:[get list watch]]]",
		}
		wantBindings := []string{
			"argocd/crowsnest-applications->crowsnest-applications:[map[kind:ServiceAccount name:crowsnest namespace:crowsnest]]",
			"team-a/crowsnest-applications->crowsnest-applications:[map[kind:ServiceAccount name:crowsnest namespace:crowsnest]]",
		}
		if !slices.Equal(roles, wantRoles) || !slices.Equal(bindings, wantBindings) {
			t.Errorf("Roles\n%v\nwant\n%v\nRoleBindings\n%v\nwant\n%v", roles, wantRoles, bindings, wantBindings)
		}
		cr := fmt.Sprint(get(kinds["ClusterRole"][0], "rules"))
		if strings.Contains(cr, "applications ") || !strings.Contains(cr, "appprojects applicationsets") {
			t.Errorf("namespaced RBAC: ClusterRole %s, want AppProjects, ApplicationSets and no Applications", cr)
		}
		// rbac.namespaced=false keeps the ClusterRole.
		kinds = render(t, "--set", "watchNamespaces={argocd},rbac.namespaced=false")
		if len(kinds["Role"]) != 1 || !strings.Contains(fmt.Sprint(get(kinds["ClusterRole"][0], "rules")), "applications appprojects applicationsets") {
			t.Errorf("rbac.namespaced=false: Roles %v, want the checkpoint's only", kinds["Role"])
		}
		// The ClusterRole reads exactly the workload kinds watched.
		cr = fmt.Sprint(get(render(t, "--set", "workloadKinds=deployments\\,jobs")["ClusterRole"][0], "rules"))
		if !strings.Contains(cr, "resources:[deployments]") || !strings.Contains(cr, "resources:[jobs]") || strings.Contains(cr, "statefulsets") ||
			strings.Contains(cr, "rollouts") || strings.Contains(cr, "certificates") {
			t.Errorf("workloadKinds=deployments,jobs: ClusterRole %s", cr)
		}
		cr = fmt.Sprint(get(render(t, "--set", "workloadKinds=")["ClusterRole"][0], "rules"))
		if strings.Contains(cr, "apps") || strings.Contains(cr, "batch") {
			t.Errorf("workloadKinds empty: ClusterRole %s", cr)
		}
		if kinds := render(t, "--set", "rbac.create=false"); len(kinds["ClusterRole"])+len(kinds["ClusterRoleBinding"]) != 0 {
			t.Error("rbac.create=false renders RBAC")
		}
	})

	t.Run("the job, the runbook base and the environments that page follow the values", func(t *testing.T) {
		kinds := render(t, "--set", "prometheusRule.enabled=true,serviceMonitor.enabled=true,serviceMonitor.job=argocd-observer",
			"--set", "prometheusRule.runbookURL=https://wiki.example.com/crowsnest,alertmanager.urls={http://am:9093}",
			"--set", "config.prod_environments=production|prod-.*")
		sm := fmt.Sprint(get(kinds["ServiceMonitor"][0], "spec", "endpoints"))
		if !strings.Contains(sm, "replacement:argocd-observer") {
			t.Errorf("the ServiceMonitor does not set job argocd-observer: %s", sm)
		}
		n := 0
		for _, g := range get(kinds["PrometheusRule"][0], "spec", "groups").([]any) {
			for _, r := range get(g, "rules").([]any) {
				r := r.(map[string]any)
				if expr := r["expr"].(string); strings.Contains(expr, `job="crowsnest"`) || strings.Contains(expr, `env="prod"`) || strings.Contains(expr, `env!="prod"`) {
					t.Errorf("%v still matches job crowsnest or env prod: %s", r["alert"], expr)
				}
				if r["alert"] == "CrowsnestProdSyncFailed" && !strings.Contains(r["expr"].(string), `env=~"production|prod-.*"`) ||
					r["alert"] == "CrowsnestSyncFailed" && !strings.Contains(r["expr"].(string), `env!~"production|prod-.*"`) {
					t.Errorf("%v does not follow prod_environments: %s", r["alert"], r["expr"])
				}
				if r["alert"] == "CrowsnestDown" && !strings.Contains(r["expr"].(string), `up{job="argocd-observer"}`) {
					t.Errorf("CrowsnestDown: %s", r["expr"])
				}
				if ann, ok := r["annotations"].(map[string]any); ok {
					n++
					if want := "https://wiki.example.com/crowsnest#" + strings.ToLower(r["alert"].(string)); ann["runbook_url"] != want {
						t.Errorf("%v runbook_url %v, want %s", r["alert"], ann["runbook_url"], want)
					}
				}
			}
		}
		if n == 0 {
			t.Error("no alert with annotations")
		}
		if args := fmt.Sprint(get(kinds["Deployment"][0], "spec", "template", "spec", "containers")); !strings.Contains(args, "--alertmanager.runbook-url=https://wiki.example.com/crowsnest") {
			t.Errorf("the pager is not given the runbook base: %s", args)
		}
		// The dashboards' prod panels follow the environments that page.
		prodPanels := 0
		for _, cm := range kinds["ConfigMap"] {
			data, _ := cm["data"].(map[string]any) // the checkpoint's has none
			for file, body := range data {
				if !strings.HasSuffix(file, ".json") {
					continue
				}
				var d map[string]any
				if err := json.Unmarshal([]byte(body.(string)), &d); err != nil {
					t.Errorf("%s does not parse: %v", file, err)
				}
				if strings.Contains(body.(string), `env=\"prod\"`) {
					t.Errorf("%s still queries env=\"prod\"", file)
				}
				prodPanels += strings.Count(body.(string), `env=~\"production|prod-.*\"`)
			}
		}
		if prodPanels == 0 {
			t.Error("no dashboard query follows prod_environments")
		}
	})

	t.Run("appLabelsAllowlist: the app alerts carry the allowlisted Application labels", func(t *testing.T) {
		kinds := render(t, "--set", "prometheusRule.enabled=true,appLabelsAllowlist={team,app.kubernetes.io/part-of}")
		if args := fmt.Sprint(get(kinds["Deployment"][0], "spec", "template", "spec", "containers")); !strings.Contains(args, "--metrics.app-labels-allowlist=team,app.kubernetes.io/part-of") {
			t.Errorf("crowsnest is not given the allowlist: %s", args)
		}
		// The rendered rules, as the real Prometheus' promtool checks and
		// evaluates them: a prod app drifting live, its labels series
		// beside it; the alert carries label_team.
		dir := t.TempDir()
		groups, err := yaml.Marshal(map[string]any{"groups": get(kinds["PrometheusRule"][0], "spec", "groups")})
		if err != nil {
			t.Fatal(err)
		}
		rulesFile := filepath.Join(dir, "rules.yaml")
		if err := os.WriteFile(rulesFile, groups, 0o600); err != nil {
			t.Fatal(err)
		}
		id := `namespace="argocd",name="shop-prod",project="shop",env="prod",job="crowsnest"`
		test := `rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'crowsnest_app_live_drift_since_timestamp_seconds{` + id + `,instance="a:9829"}'
        values: 1x10
      - series: 'crowsnest_app_live_drift_since_timestamp_seconds{` + id + `,instance="b:9829"}'
        values: 1x10
      - series: 'crowsnest_app_labels{` + id + `,instance="a:9829",label_team="payments",label_app_kubernetes_io_part_of="shop"}'
        values: 1x10
      - series: 'crowsnest_app_labels{` + id + `,instance="b:9829",label_team="payments",label_app_kubernetes_io_part_of="shop"}'
        values: 1x10
    promql_expr_test:
      - expr: ALERTS{alertname="CrowsnestProdDrift",alertstate="firing"}
        eval_time: 6m
        exp_samples:
          - labels: 'ALERTS{alertname="CrowsnestProdDrift",alertstate="firing",namespace="argocd",name="shop-prod",project="shop",env="prod",severity="critical",label_team="payments",label_app_kubernetes_io_part_of="shop"}'
            value: 1
`
		testFile := filepath.Join(dir, "test.yaml")
		if err := os.WriteFile(testFile, []byte(test), 0o600); err != nil {
			t.Fatal(err)
		}
		promtool := filepath.Join(filepath.Dir(bin.prometheus), "promtool")
		for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", testFile}} {
			if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
				t.Errorf("promtool %v: %v\n%s", args, err, out)
			}
		}
	})

	t.Run("prometheusRule overrides", func(t *testing.T) {
		kinds := render(t, "--set", "prometheusRule.enabled=true,prometheusRule.namespace=monitoring,prometheusRule.additionalLabels.release=kps",
			"--set", "prometheusRule.overrides.CrowsnestSyncSlow.disabled=true,prometheusRule.overrides.CrowsnestProdDrift.for=30m",
			"--set", "prometheusRule.overrides.CrowsnestSyncFailed.severity=page,prometheusRule.overrides.CrowsnestSyncFailed.labels.team=platform",
			"--set", "prometheusRule.overrides.CrowsnestSyncFailed.annotations.summary=Sync failed")
		pr := kinds["PrometheusRule"][0]
		if get(pr, "metadata", "namespace") != "monitoring" || get(pr, "metadata", "labels", "release") != "kps" {
			t.Errorf("PrometheusRule metadata %v", get(pr, "metadata"))
		}
		file := ruleSet(t)
		got := get(pr, "spec", "groups").([]any)
		// crowsnest-duration holds CrowsnestSyncSlow alone: disabled, the
		// group goes.
		if len(got) != len(file)-1 {
			t.Fatalf("%d groups, want %d", len(got), len(file)-1)
		}
		gi := -1
		for _, g := range file {
			if get(g, "name") == crowsnestrules.GroupDuration {
				continue
			}
			gi++
			if get(got[gi], "name") != get(g, "name") {
				t.Fatalf("group %d is %v, want %v", gi, get(got[gi], "name"), get(g, "name"))
			}
			var want []any
			for _, r := range get(g, "rules").([]any) {
				r := r.(map[string]any)
				switch r["alert"] {
				case "CrowsnestSyncSlow":
					continue
				case "CrowsnestProdDrift":
					r["for"] = "30m"
				case "CrowsnestSyncFailed":
					r["labels"].(map[string]any)["severity"] = "page"
					r["labels"].(map[string]any)["team"] = "platform"
					r["annotations"].(map[string]any)["summary"] = "Sync failed"
				}
				want = append(want, r)
			}
			// Every rule the overrides leave alone is the file's.
			if rules := get(got[gi], "rules").([]any); !reflect.DeepEqual(rules, want) {
				gy, _ := yaml.Marshal(rules)
				wy, _ := yaml.Marshal(want)
				t.Errorf("group %v:\n%s\nwant\n%s", get(g, "name"), gy, wy)
			}
		}
	})

	t.Run("dashboards folder", func(t *testing.T) {
		kinds := render(t, "--set", "dashboards.folder=Argo CD,dashboards.folderAnnotation=k8s-sidecar-target-directory,dashboards.annotations.a=b")
		n := 0
		for _, cm := range kinds["ConfigMap"] {
			if get(cm, "metadata", "labels", "grafana_dashboard") == "1" {
				n++
				if get(cm, "metadata", "annotations", "k8s-sidecar-target-directory") != "Argo CD" || get(cm, "metadata", "annotations", "a") != "b" {
					t.Errorf("dashboard %v annotations %v", get(cm, "metadata", "name"), get(cm, "metadata", "annotations"))
				}
			}
		}
		if n != 3 {
			t.Errorf("%d dashboards", n)
		}
		for _, cm := range defaults["ConfigMap"] {
			if get(cm, "metadata", "annotations") != nil {
				t.Errorf("default ConfigMap %v has annotations", get(cm, "metadata", "name"))
			}
		}
	})

	t.Run("sharding", func(t *testing.T) {
		// One shard: the Deployment, no shard flags.
		if len(defaults["StatefulSet"]) != 0 || len(defaults["Deployment"]) != 1 || slices.ContainsFunc(defArgs, func(a string) bool { return strings.Contains(a, "shard") }) {
			t.Errorf("the defaults render %d StatefulSets, %d Deployments, args %v", len(defaults["StatefulSet"]), len(defaults["Deployment"]), defArgs)
		}
		kinds := render(t, "--set", "sharding.totalShards=3,leaderElection.enabled=true")
		if len(kinds["Deployment"]) != 0 || len(kinds["StatefulSet"]) != 1 {
			t.Fatalf("sharded: %d Deployments, %d StatefulSets, want a StatefulSet only", len(kinds["Deployment"]), len(kinds["StatefulSet"]))
		}
		sts := kinds["StatefulSet"][0]
		if get(sts, "spec", "replicas") != 3 || get(sts, "spec", "serviceName") != "crowsnest" || get(sts, "spec", "podManagementPolicy") != "Parallel" ||
			!reflect.DeepEqual(get(sts, "spec", "selector"), get(defaults["Deployment"][0], "spec", "selector")) {
			t.Errorf("StatefulSet spec %v", get(sts, "spec"))
		}
		_, c := container(t, kinds)
		args := strs(get(c, "args"))
		flags := flagsOf(args)
		if flags["total-shards"] != "3" || flags["shard"] != "$(SHARD)" || flags["leader-elect.lease-name"] != "crowsnest" {
			t.Errorf("sharded args %v", args)
		}
		// The shard is the pod's ordinal, from the label the StatefulSet
		// controller sets (Kubernetes 1.28+), through an env var the
		// kubelet expands in the args: $(SHARD) must be the container's.
		shard := envVar(c, "SHARD")
		if get(shard, "valueFrom", "fieldRef", "fieldPath") != "metadata.labels['apps.kubernetes.io/pod-index']" {
			t.Errorf("env SHARD %v", shard)
		}
		for _, m := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(strings.Join(args, " "), -1) {
			if envVar(c, m[1]) == nil {
				t.Errorf("args refer to $(%s), which the container does not define: the kubelet would pass it as is", m[1])
			}
		}
		// Each shard's Lease, and a drain takes one shard at a time.
		var leases string
		for _, r := range kinds["Role"] {
			if strings.HasSuffix(fmt.Sprint(get(r, "metadata", "name")), "-leader-election") {
				leases = fmt.Sprint(get(r, "rules"))
			}
		}
		if !strings.Contains(leases, "resourceNames:[crowsnest-0-of-3 crowsnest-1-of-3 crowsnest-2-of-3]") {
			t.Errorf("the leader election Role reaches %s, want the Lease of each shard", leases)
		}
		if pdb := kinds["PodDisruptionBudget"]; len(pdb) != 1 || get(pdb[0], "spec", "maxUnavailable") != 1 || get(pdb[0], "spec", "minAvailable") != nil {
			t.Errorf("sharded PodDisruptionBudget %v", pdb)
		}
	})

	t.Run("service", func(t *testing.T) {
		svc := render(t, "--set", "service.port=9100,service.labels.x=y,service.annotations.a=b")["Service"][0]
		if get(svc, "metadata", "labels", "x") != "y" || get(svc, "metadata", "annotations", "a") != "b" || get(get(svc, "spec", "ports").([]any)[0], "port") != 9100 {
			t.Errorf("Service %v", svc)
		}
	})

	t.Run("helm test Pod", func(t *testing.T) {
		kinds := render(t, "--set", "tests.image.repository=mirror.example.com/busybox,tests.image.tag=1.36,networkPolicy.enabled=true",
			"--set", "networkPolicy.from[0].podSelector.matchLabels.app=scraper")
		if len(kinds["Pod"]) != 1 {
			t.Fatalf("%d Pods", len(kinds["Pod"]))
		}
		p := kinds["Pod"][0]
		c := get(p, "spec", "containers").([]any)[0]
		if get(p, "metadata", "annotations", "helm.sh/hook") != "test" || get(c, "image") != "mirror.example.com/busybox:1.36" ||
			!slices.Equal(strs(get(c, "command")), []string{"wget", "-q", "-T", "10", "-O", "-", "http://crowsnest:9829/readyz"}) {
			t.Errorf("helm test Pod %v", p)
		}
		// Restricted: as crowsnest's own pod.
		if get(p, "spec", "securityContext", "runAsNonRoot") != true || get(p, "spec", "securityContext", "seccompProfile", "type") != "RuntimeDefault" ||
			get(c, "securityContext", "allowPrivilegeEscalation") != false || get(c, "securityContext", "readOnlyRootFilesystem") != true ||
			fmt.Sprint(get(c, "securityContext", "capabilities", "drop")) != "[ALL]" || get(p, "spec", "automountServiceAccountToken") != false {
			t.Errorf("helm test Pod security %v", p)
		}
		// Neither the Service nor the PodDisruptionBudget selects it, and
		// the NetworkPolicy lets it in.
		sel := get(kinds["Service"][0], "spec", "selector").(map[string]any)
		match := true
		for k, v := range sel {
			match = match && get(p, "metadata", "labels", k) == v
		}
		if match {
			t.Errorf("the Service selects the helm test Pod: %v", get(p, "metadata", "labels"))
		}
		from := fmt.Sprint(get(kinds["NetworkPolicy"][0], "spec", "ingress"))
		if !strings.Contains(from, "app.kubernetes.io/name:crowsnest-test") {
			t.Errorf("NetworkPolicy ingress %s does not admit the helm test Pod", from)
		}
		if len(render(t, "--set", "tests.enabled=false")["Pod"]) != 0 {
			t.Error("tests.enabled=false renders the test Pod")
		}
	})
}

// TestHelmChartFlags checks every flag the chart passes, with every option
// on and with the argocd-api source, against crowsnest's own: a misspelt
// flag would crash-loop the pod.
func TestHelmChartFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	help, err := exec.CommandContext(ctx, bin.crowsnest, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("crowsnest serve --help: %v\n%s", err, help)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`--(?:\[no-\])?([a-z0-9][a-z0-9.-]*)`).FindAllStringSubmatch(string(help), -1) {
		known[m[1]] = true
	}
	for _, f := range []string{"source", "argocd.token-file", "loki.password-file"} {
		if !known[f] {
			t.Fatalf("could not read the flags from crowsnest serve --help (no --%s):\n%s", f, help)
		}
	}
	renders := map[string][]string{
		"argocd-api, insecure":  {"--set", "source=argocd-api,argocd.server=a:443,argocd.tokenSecret.name=t,argocd.insecure=true,argocd.grpcWeb=true"},
		"argocd-api, plaintext": {"--set", "source=argocd-api,argocd.server=a:80,argocd.tokenSecret.name=t,argocd.plaintext=true"},
		"tracking":              {"--set", "workloadsCluster=hub,argocd.trackingMethod=label,argocd.instanceLabelKey=k,argocd.installationID=i,clusterSecrets={s}"},
	}
	for _, f := range ciValues(t) {
		renders[filepath.Base(f)] = []string{"-f", f}
	}
	for what, args := range renders {
		_, c := container(t, render(t, args...))
		for name := range flagsOf(strs(get(c, "args"))) {
			if !known[name] {
				t.Errorf("%s: the chart passes --%s, which crowsnest does not know", what, name)
			}
		}
	}
}

// chartObjects are the contents of the Secrets and ConfigMaps a pod reads,
// by "secret/NAME" or "configmap/NAME", then key.
type chartObjects map[string]map[string]string

// manifest returns them as YAML for kubectl apply in namespace ns.
func (o chartObjects) manifest(ns string) string {
	var b strings.Builder
	names := make([]string, 0, len(o))
	for n := range o {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		kind, name, _ := strings.Cut(n, "/")
		obj := map[string]any{"apiVersion": "v1", "metadata": map[string]any{"name": name, "namespace": ns}}
		if kind == "secret" {
			obj["kind"] = "Secret"
			obj["stringData"] = o[n]
			if _, ok := o[n]["tls.key"]; ok {
				obj["type"] = "kubernetes.io/tls"
			}
		} else {
			obj["kind"] = "ConfigMap"
			obj["data"] = o[n]
		}
		y, _ := yaml.Marshal(obj)
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String()
}

// chartPod is the crowsnest container of a rendered Deployment made ready
// to run here, as a kubelet would run it: every volume written to a
// directory (Secrets and ConfigMaps in a kubelet's layout, ..data
// symlinks included), every path of a mount in the arguments, the
// environment and the mounted files moved to that directory, and the
// environment resolved (fieldRefs, secretKeyRefs).
type chartPod struct {
	Args []string
	Env  []string
	// Files are the mounted files by their path in the container.
	Files map[string]string
}

// podOf prepares the crowsnest container of the rendered objects, reading
// Secrets and ConfigMaps from the rendered ones and from external (those
// the user creates), in release namespace ns.
func podOf(t *testing.T, env *Env, name string, rendered []map[string]any, external chartObjects, ns string) *chartPod {
	t.Helper()
	podName := name
	objects := chartObjects{}
	for k, v := range external {
		objects[k] = v
	}
	for _, o := range rendered {
		data := map[string]string{}
		switch get(o, "kind") {
		case "ConfigMap":
			d, _ := get(o, "data").(map[string]any) // the checkpoint's has none
			for k, v := range d {
				data[k] = fmt.Sprint(v)
			}
			objects["configmap/"+get(o, "metadata", "name").(string)] = data
		case "Secret":
			if sd, ok := get(o, "stringData").(map[string]any); ok {
				for k, v := range sd {
					data[k] = fmt.Sprint(v)
				}
			}
			if d, ok := get(o, "data").(map[string]any); ok {
				for k, v := range d {
					b, err := base64.StdEncoding.DecodeString(fmt.Sprint(v))
					if err != nil {
						t.Fatalf("Secret %v: %v", get(o, "metadata", "name"), err)
					}
					data[k] = string(b)
				}
			}
			objects["secret/"+get(o, "metadata", "name").(string)] = data
		}
	}
	pod, c := container(t, byKind(rendered))
	root := env.Dir(name)
	vols := map[string]string{} // volume name → directory
	for _, v := range get(pod, "volumes").([]any) {
		vname := get(v, "name").(string)
		dir := filepath.Join(root, vname)
		var ref, items any
		switch {
		case get(v, "secret") != nil:
			ref, items = "secret/"+get(v, "secret", "secretName").(string), get(v, "secret", "items")
		case get(v, "configMap") != nil:
			ref, items = "configmap/"+get(v, "configMap", "name").(string), get(v, "configMap", "items")
		case get(v, "emptyDir") != nil:
		default:
			t.Fatalf("volume %v: only secret, configMap and emptyDir volumes are simulated", v)
		}
		vols[vname] = dir
		if ref == nil {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, ok := objects[ref.(string)]
		if !ok {
			t.Fatalf("volume %s: %s does not exist: the pod could not start", vname, ref)
		}
		files := map[string]string{}
		if items == nil {
			for k, val := range data {
				files[k] = val
			}
		}
		for _, it := range strs2(items) {
			val, ok := data[it[0]]
			if !ok {
				t.Fatalf("volume %s: %s has no key %s: the pod could not start", vname, ref, it[0])
			}
			files[it[1]] = val
		}
		writeKubeletVolume(t, dir, files)
	}
	// Mount paths, longest first, and where they are here.
	var mounts [][2]string
	for _, m := range get(c, "volumeMounts").([]any) {
		if get(m, "subPath") != nil {
			t.Fatalf("mount %v: subPath is not simulated", m)
		}
		dir, ok := vols[get(m, "name").(string)]
		if !ok {
			t.Fatalf("mount %v: no such volume", m)
		}
		mounts = append(mounts, [2]string{get(m, "mountPath").(string), dir})
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i][0]) > len(mounts[j][0]) })
	// move rewrites, in one pass, every mount path that starts a path in s
	// (after the start, "=", ":", a space or a quote) to its directory here.
	move := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); {
			replaced := false
			if i == 0 || strings.ContainsRune("=: \t\n\"'", rune(s[i-1])) {
				for _, m := range mounts {
					rest := s[i:]
					if strings.HasPrefix(rest, m[0]) && (len(rest) == len(m[0]) || strings.ContainsRune("/: \t\n\"'", rune(rest[len(m[0])]))) {
						b.WriteString(m[1])
						i += len(m[0])
						replaced = true
						break
					}
				}
			}
			if !replaced {
				b.WriteByte(s[i])
				i++
			}
		}
		return b.String()
	}
	p := &chartPod{Files: map[string]string{}}
	for _, m := range mounts {
		entries, _ := os.ReadDir(m[1])
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "..") {
				continue
			}
			path := filepath.Join(m[1], e.Name())
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			p.Files[m[0]+"/"+e.Name()] = string(b)
			// The files name mounted paths too (the web config its
			// certificate): move those as well.
			if moved := move(string(b)); moved != string(b) {
				target, err := filepath.EvalSymlinks(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(target, []byte(moved), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, a := range strs(get(c, "args")) {
		p.Args = append(p.Args, move(a))
	}
	for _, e := range get(c, "env").([]any) {
		name := get(e, "name").(string)
		switch {
		case get(e, "value") != nil:
			p.Env = append(p.Env, name+"="+move(fmt.Sprint(get(e, "value"))))
		case get(e, "valueFrom", "fieldRef", "fieldPath") == "metadata.namespace":
			p.Env = append(p.Env, name+"="+ns)
		case get(e, "valueFrom", "fieldRef", "fieldPath") == "metadata.labels['apps.kubernetes.io/pod-index']":
			// A StatefulSet's pod is named <set>-<ordinal>, and its
			// controller labels it with the ordinal.
			ordinal := podName[strings.LastIndex(podName, "-")+1:]
			if _, err := strconv.Atoi(ordinal); err != nil {
				t.Fatalf("env %s: the pod-index label of pod %s: name a StatefulSet's pod <set>-<ordinal>", name, podName)
			}
			p.Env = append(p.Env, name+"="+ordinal)
		case get(e, "valueFrom", "secretKeyRef") != nil:
			ref := get(e, "valueFrom", "secretKeyRef")
			val, ok := objects["secret/"+get(ref, "name").(string)][get(ref, "key").(string)]
			if !ok {
				t.Fatalf("env %s: Secret %v has no key %v: the pod could not start", name, get(ref, "name"), get(ref, "key"))
			}
			p.Env = append(p.Env, name+"="+val)
		default:
			t.Fatalf("env %v: not simulated", e)
		}
	}
	// The root filesystem is read-only: a temporary directory exists only
	// where a volume is mounted at /tmp (Go's os.TempDir reads TMPDIR).
	if get(c, "securityContext", "readOnlyRootFilesystem") == true {
		tmp := filepath.Join(root, "read-only-root-filesystem", "tmp") // never created
		for _, m := range mounts {
			if m[0] == "/tmp" {
				tmp = m[1]
			}
		}
		p.Env = append(p.Env, "TMPDIR="+tmp)
	}
	if ef, ok := get(c, "envFrom").([]any); ok {
		for _, f := range ef {
			ref, kind := get(f, "configMapRef"), "configmap/"
			if ref == nil {
				ref, kind = get(f, "secretRef"), "secret/"
			}
			data, ok := objects[kind+get(ref, "name").(string)]
			if !ok && get(ref, "optional") != true {
				t.Fatalf("envFrom %v: does not exist: the pod could not start", f)
			}
			for k, v := range data {
				p.Env = append(p.Env, k+"="+v)
			}
		}
	}
	// The kubelet expands $(VAR) in the arguments from the container's
	// environment, envFrom included ($$ escapes a $; an undefined variable stays as it is).
	vars := map[string]string{}
	for _, e := range p.Env {
		k, v, _ := strings.Cut(e, "=")
		vars[k] = v
	}
	varRef := regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for i, a := range p.Args {
		p.Args[i] = varRef.ReplaceAllStringFunc(a, func(m string) string {
			if m == "$$" {
				return "$"
			}
			if v, ok := vars[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		})
	}
	return p
}

// strs2 reads a rendered items list ({key, path}).
func strs2(items any) [][2]string {
	var out [][2]string
	l, _ := items.([]any)
	for _, it := range l {
		out = append(out, [2]string{fmt.Sprint(get(it, "key")), fmt.Sprint(get(it, "path"))})
	}
	return out
}

// writeKubeletVolume writes files into dir as the kubelet's atomic writer
// does: the files in a timestamped directory, ..data a symlink to it, and
// each file a symlink into ..data.
func writeKubeletVolume(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	ts := "..2026_01_01_00_00_00.000000001"
	if err := os.MkdirAll(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, ts, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// start runs the pod's crowsnest listening on a loopback port instead of
// the container's, with extra flags (e.g. --kubeconfig in place of the
// in-cluster service account), reached with client over scheme.
func (p *chartPod) start(env *Env, name, scheme string, client *http.Client, extra ...string) *Crowsnest {
	env.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", env.Port())
	var args []string
	for _, a := range p.Args {
		if strings.HasPrefix(a, "--web.listen-address=") {
			a = "--web.listen-address=" + addr
		}
		args = append(args, a)
	}
	proc := env.NewProcess(name, bin.crowsnest, append(args, extra...)...)
	proc.Env = p.Env
	proc.StopTimeout = crowsnestStopTimeout
	c := &Crowsnest{Process: proc, URL: scheme + "://" + addr, client: client}
	proc.beforeStop = func() { env.saveMetrics(c) }
	env.t.Cleanup(client.CloseIdleConnections)
	c.Start()
	return c
}

// basicAuthTransport adds a user and password to every request.
type basicAuthTransport struct {
	user, password string
	next           http.RoundTripper
}

func (b basicAuthTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(r)
}

// testCA is a certificate authority for the tests' TLS servers.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	PEM  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "crowsnest e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue returns a server certificate and key (PEM) for 127.0.0.1 and
// localhost.
func (ca *testCA) issue(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

// client returns an HTTP client that trusts ca and sends basic auth.
func (ca *testCA) client(user, password string) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	var rt http.RoundTripper = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	if user != "" {
		rt = basicAuthTransport{user: user, password: password, next: rt}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: rt}
}

// webPassword is the password whose bcrypt hash is webPasswordHash, the
// user prometheus's in ci/all-on-values.yaml (an example, not a secret).
const (
	webPassword     = "example-only"
	webPasswordHash = "$2a$10$vMvcocCE/OaBh8RmUhUUaeKb6FhRJa74.9H7HWJNegpT6UjxnYn.e"
)

// TestHelmChartInstall installs the chart into a real API server, then runs
// the crowsnest container of what it installed as a kubelet would (its
// volumes written out from the Secrets and ConfigMaps, its arguments and
// environment as rendered):
//
//   - with the argocd-api source: helm install with the token, Loki's
//     password, the OTLP headers, web TLS and basic auth, a CA bundle and
//     the links, each from a Secret or ConfigMap created first; NOTES say
//     how to reach /metrics; no RBAC, no service account token. The pod's
//     crowsnest serves HTTPS with basic auth, reaches a TLS argocd-server
//     whose CA only the CA bundle holds (and, without the bundle, does
//     not), and leaks none of the secrets;
//   - with every option on (ci/all-on-values.yaml): every object applies
//     (the Prometheus Operator's kinds through stand-in CRDs); the pod's
//     crowsnest, with its ServiceAccount's token and the namespaced Roles
//     of watchNamespaces, becomes ready, sees the Applications of a
//     watched namespace and their workloads, leads, and is never
//     forbidden; the ServiceAccount may read Applications nowhere else
//     and change nothing but its Lease.
func TestHelmChartInstall(t *testing.T) {
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	ca := newTestCA(t)
	webCert, webKey := ca.issue(t)
	valuesDir := env.Dir("values")
	writeValues := func(name, content string) string {
		path := filepath.Join(valuesDir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	// A TLS argocd-server stand-in whose certificate only ca signed: it
	// counts the requests that got through the TLS handshake.
	var requests atomic.Int64
	argoLog := &logtest.Buffer{}
	argo := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "not argocd-server", http.StatusNotImplemented)
	}))
	argoCert, argoKey := ca.issue(t)
	pair, err := tls.X509KeyPair([]byte(argoCert), []byte(argoKey))
	if err != nil {
		t.Fatal(err)
	}
	argo.EnableHTTP2 = true
	argo.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	argo.Config.ErrorLog = log.New(argoLog, "", 0)
	argo.StartTLS()
	t.Cleanup(argo.Close)
	argoAddr := strings.TrimPrefix(argo.URL, "https://")

	// 1. The argocd-api source.
	const apiNS = "crowsnest-api"
	kas.CreateNamespace(apiNS)
	token, lokiPassword, otlpToken := env.Secret("chart-argocd-token"), env.Secret("chart-loki-password"), env.Secret("chart-otlp-token")
	external := chartObjects{
		"secret/crowsnest-argocd-token": {"token": token},
		"secret/crowsnest-loki":         {"password": lokiPassword},
		"secret/crowsnest-otlp":         {"headers": "authorization=Bearer " + otlpToken},
		"secret/crowsnest-tls":          {"tls.crt": webCert, "tls.key": webKey},
		"configmap/corporate-ca":        {"ca.crt": ca.PEM},
	}
	kas.Kubectl(external.manifest(apiNS), "apply", "-f", "-")
	apiValues := fmt.Sprintf(`source: argocd-api
argocd: {server: %q, tokenSecret: {name: crowsnest-argocd-token}, grpcWeb: true, resyncPeriod: 1m}
loki: {url: "http://127.0.0.1:9", tenant: team-a, username: crowsnest, passwordSecret: {name: crowsnest-loki}}
traces: {otlpEndpoint: "http://127.0.0.1:9", headersSecret: {name: crowsnest-otlp}}
caBundle: {configMap: corporate-ca}
web:
  config: {basic_auth_users: {prometheus: %q}}
  tlsSecret: crowsnest-tls
readinessProbe:
  httpGet: {httpHeaders: [{name: Authorization, value: %q}]}
links: {argocdURL: "https://argocd.example.com", grafanaURL: "https://grafana.example.com"}
`, argoAddr, webPasswordHash, "Basic "+base64.StdEncoding.EncodeToString([]byte("prometheus:"+webPassword)))
	apiFile := writeValues("argocd-api.yaml", apiValues)
	out, err := helmRun(t, "install", "--kubeconfig", kas.Kubeconfig, "--namespace", apiNS, "--wait=false", "-f", apiFile, "--set", "argocd.insecure=true")
	if err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	for _, want := range []string{"through argocd-server at " + argoAddr, "kubectl -n " + apiNS + " port-forward svc/crowsnest 9829",
		"curl -sk -u USER:PASSWORD https://localhost:9829/metrics", `crowsnest_source_up{source="argocd-api"}`, "helm test crowsnest -n " + apiNS,
		"argocd.insecure: argocd-server's certificate is not verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("helm install's NOTES lack %q:\n%s", want, out)
		}
	}
	dep := kas.Kubectl("", "-n", apiNS, "get", "deployment", "crowsnest", "-o", "yaml")
	for _, want := range []string{"--source=argocd-api", "--argocd.token-file=/etc/crowsnest/argocd-token/token", "secretName: crowsnest-argocd-token",
		"secretName: crowsnest-loki", "secretName: crowsnest-web-config", "secretName: crowsnest-tls", "name: corporate-ca", "OTEL_EXPORTER_OTLP_HEADERS",
		"automountServiceAccountToken: false"} {
		if !strings.Contains(dep, want) {
			t.Errorf("the installed Deployment lacks %q", want)
		}
	}
	if crs := kas.Kubectl("", "get", "clusterroles,clusterrolebindings", "-l", "app.kubernetes.io/instance=crowsnest", "-o", "name"); strings.TrimSpace(crs) != "" {
		t.Errorf("the argocd-api source installed cluster RBAC: %s", crs)
	}
	// Run what helm installed (without --argocd.insecure: the CA bundle
	// must make argocd-server's certificate trusted).
	manifest := kas.Kubectl("", "-n", apiNS, "get", "deployment,configmap,secret", "-l", "app.kubernetes.io/instance=crowsnest", "-o", "yaml")
	var list struct{ Items []map[string]any }
	if err := yaml.Unmarshal([]byte(manifest), &list); err != nil {
		t.Fatal(err)
	}
	webClient := ca.client("prometheus", webPassword)
	runAPI := func(name string, objs []map[string]any) *Crowsnest {
		pod := podOf(t, env, name, objs, external, apiNS)
		var args []string
		for _, a := range pod.Args {
			if a != "--argocd.insecure" {
				args = append(args, a)
			}
		}
		pod.Args = args
		return pod.start(env, name, "https", webClient)
	}
	cn := runAPI("crowsnest-argocd-api", list.Items)
	eventually(t, 30*time.Second, func() error {
		if requests.Load() == 0 {
			return fmt.Errorf("argocd-server got no request through TLS; its log: %s", argoLog.String())
		}
		return nil
	})
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		if err := cn.ExpectStatus(path, want); err != nil {
			t.Error(err)
		}
	}
	if err := cn.ExpectSample(0, "crowsnest_source_up", "source", "argocd-api"); err != nil {
		t.Error(err)
	}
	if err := cn.ExpectSample(1, "crowsnest_links_info", "argocd_url", "https://argocd.example.com", "grafana_url", "https://grafana.example.com"); err != nil {
		t.Error(err)
	}
	// Without the password: 401.
	resp, err := ca.client("", "").Get(cn.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without basic auth: %s, want 401", resp.Status)
	}
	if err := cn.Stop(); err != nil {
		t.Errorf("crowsnest: %v", err)
	}
	// The control: without the CA bundle, argocd-server's certificate is
	// not trusted and no request gets through.
	out, err = helmRun(t, "template", "--namespace", apiNS, "-f", apiFile, "--set", "caBundle.configMap=")
	if err != nil {
		t.Fatal(err, out)
	}
	before := requests.Load()
	control := runAPI("crowsnest-argocd-api-no-ca", docs(t, out))
	eventually(t, 30*time.Second, func() error {
		if !strings.Contains(argoLog.String(), "TLS handshake error") {
			return fmt.Errorf("no refused TLS handshake at argocd-server yet")
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	if n := requests.Load() - before; n != 0 {
		t.Errorf("without the CA bundle, %d requests reached argocd-server", n)
	}
	if err := control.Stop(); err != nil {
		t.Errorf("crowsnest: %v", err)
	}

	// 2. Every option on.
	kas.Kubectl(monitoringCRDs, "apply", "-f", "-")
	kas.Kubectl("", "wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")
	for _, ns := range []string{"crowsnest", "argocd", "team-a", "team-b", "shop"} {
		kas.CreateNamespace(ns)
	}
	allOn := chartObjects{
		"secret/crowsnest-argocd-token": {"token": token},
		"secret/crowsnest-loki":         {"password": lokiPassword},
		"secret/crowsnest-otlp":         {"headers": "authorization=Bearer " + otlpToken},
		"secret/crowsnest-tls":          {"tls.crt": webCert, "tls.key": webKey},
		"secret/crowsnest-scrape":       {"username": "prometheus", "password": webPassword},
		"configmap/corporate-ca":        {"ca.crt": ca.PEM},
		"configmap/argocd-ca":           {"ca.crt": ca.PEM},
	}
	kas.Kubectl(allOn.manifest("crowsnest"), "apply", "-f", "-")
	out, err = helmRun(t, "template", "--namespace", "crowsnest", "-f", chartValues())
	if err != nil {
		t.Fatal(err, out)
	}
	rendered := docs(t, out)
	kas.Kubectl(out, "apply", "-f", "-")
	for _, o := range rendered {
		ns, _ := get(o, "metadata", "namespace").(string)
		args := []string{"get", strings.ToLower(get(o, "kind").(string)), get(o, "metadata", "name").(string), "-o", "name"}
		if ns != "" {
			args = append(args, "-n", ns)
		}
		kas.Kubectl("", args...)
	}
	// The ServiceAccount reads Applications in the watched namespaces only,
	// and changes nothing but its Lease.
	sa := "--as=system:serviceaccount:crowsnest:crowsnest"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "applications.argoproj.io", "-n", "argocd"}, "yes"},
		{[]string{"watch", "applications.argoproj.io", "-n", "team-a"}, "yes"},
		{[]string{"list", "applications.argoproj.io", "-n", "team-b"}, "no"},
		{[]string{"list", "applications.argoproj.io", "--all-namespaces"}, "no"},
		{[]string{"watch", "appprojects.argoproj.io", "--all-namespaces"}, "yes"},
		{[]string{"watch", "applicationsets.argoproj.io", "--all-namespaces"}, "yes"},
		{[]string{"watch", "deployments.apps", "--all-namespaces"}, "yes"},
		{[]string{"list", "daemonsets.apps", "--all-namespaces"}, "no"}, // not in workloadKinds
		{[]string{"update", "applications.argoproj.io", "-n", "argocd"}, "no"},
		{[]string{"get", "secrets", "-n", "crowsnest"}, "no"},
		{[]string{"update", "leases.coordination.k8s.io/crowsnest", "-n", "crowsnest"}, "yes"},
		{[]string{"update", "leases.coordination.k8s.io/other", "-n", "crowsnest"}, "no"},
	} {
		got := strings.TrimSpace(kasCanI(t, kas, append(append([]string{"auth", "can-i"}, c.args...), sa)...))
		if got != c.want {
			t.Errorf("kubectl auth can-i %s as the ServiceAccount: %s, want %s", strings.Join(c.args, " "), got, c.want)
		}
	}
	kas.Kubectl(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: watched, namespace: argocd, labels: {env: prod}}
spec:
  project: default
  source: {repoURL: https://example.com/repo.git, path: ., targetRevision: HEAD}
  destination: {server: https://kubernetes.default.svc, namespace: shop}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: unwatched, namespace: team-b}
spec:
  project: default
  source: {repoURL: https://example.com/repo.git, path: ., targetRevision: HEAD}
  destination: {server: https://kubernetes.default.svc, namespace: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, annotations: {argocd.argoproj.io/tracking-id: "watched:apps/Deployment:shop/web"}}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: example.com/web:1}]}
`, "apply", "-f", "-")
	kubeconfig := serviceAccountKubeconfig(t, env, kas, "all-on-sa")
	pod := podOf(t, env, "all-on-pod", rendered, allOn, "crowsnest")
	if pod.Files["/etc/crowsnest/config/crowsnest.yml"] == "" || !strings.Contains(pod.Files["/etc/crowsnest/web/web-config.yml"], "tls_server_config") {
		t.Errorf("mounted files: %v", pod.Files)
	}
	all := pod.start(env, "crowsnest-all-on", "https", webClient, "--kubeconfig="+kubeconfig)
	eventually(t, scenarioTimeout, allOf(
		func() error { return all.ExpectStatus("/readyz", 200) },
		expectSamples(all,
			sample(1, "crowsnest_leader"),
			sample(1, "crowsnest_app_info", "namespace", "argocd", "name", "watched", "env", "prod"),
			sample(3, "crowsnest_app_workload_replicas", "name", "watched", "kind", "Deployment", "state", "desired"),
			sample(1, "crowsnest_links_info", "argocd_url", "https://argocd.example.com", "grafana_url", "https://grafana.example.com")),
		expectNoSeries(all, "crowsnest_app_info", "name", "unwatched"),
	))
	time.Sleep(3 * time.Second)
	if log := strings.ToLower(all.LogTail(1000)); strings.Contains(log, "forbidden") || strings.Contains(log, "failed to watch") {
		t.Errorf("crowsnest with every option on was refused by RBAC:\n%s", lastLines(all.LogTail(1000), 20))
	}
	if err := all.Stop(); err != nil {
		t.Errorf("crowsnest: %v", err)
	}
}

// kasCanI runs kubectl auth can-i, which exits 1 for "no".
func kasCanI(t *testing.T, kas *KubeAPIServer, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), kubectlTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin.kubectl, append([]string{"--kubeconfig=" + kas.Kubeconfig}, args...)...).Output()
	if err != nil && !strings.Contains(string(out), "no") {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// monitoringCRDs stand in for the Prometheus Operator's CRDs (not in the
// module proxy): they take any spec, so the API server stores the chart's
// ServiceMonitor and PrometheusRule as they are.
const monitoringCRDs = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: prometheusrules.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: PrometheusRule, listKind: PrometheusRuleList, plural: prometheusrules, singular: prometheusrule}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// The example Application that deploys crowsnest with Argo CD tracks the
// release of the chart's version (never main), and its values are valid.
func TestExampleApplication(t *testing.T) {
	chartDir := filepath.Join(bin.repoRoot, "charts", "exporter")
	b, err := os.ReadFile(filepath.Join(chartDir, "examples", "argocd-application.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Spec struct {
			Source struct {
				TargetRevision string `yaml:"targetRevision"`
				Helm           struct {
					ValuesObject map[string]any `yaml:"valuesObject"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(b, &app); err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct{ Version string }
	if err := yaml.Unmarshal(c, &chart); err != nil {
		t.Fatal(err)
	}
	if want := "v" + chart.Version; app.Spec.Source.TargetRevision != want {
		t.Errorf("the example tracks %q, want the release tag %q", app.Spec.Source.TargetRevision, want)
	}
	values, err := yaml.Marshal(app.Spec.Source.Helm.ValuesObject)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, values, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := helmRun(t, "lint", "--strict", "-f", f); err != nil {
		t.Errorf("helm lint --strict with the example's values: %v\n%s", err, out)
	}
	if sm := render(t, "-f", f)["ServiceMonitor"]; len(sm) != 1 || get(sm[0], "metadata", "labels", "release") != "kube-prometheus-stack" {
		t.Errorf("the example's ServiceMonitor %v: want one, with kube-prometheus-stack's release label", sm)
	}
}
