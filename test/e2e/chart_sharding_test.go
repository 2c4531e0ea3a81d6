//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/collect/source"
)

// TestHelmChartShardedInstall installs the chart with three shards
// (ci/sharded-values.yaml) into a real API server, which accepts the
// StatefulSet and its downward-API SHARD variable (NOTES name the shards),
// then runs the pods of
// ordinals 0 and 2 as a kubelet would (SHARD from the pod-index label,
// $(SHARD) expanded in the arguments) with the ServiceAccount's token:
// each is the shard of its ordinal, leads its own Lease (the Role reaches
// exactly those of the shards), and serves the Applications of its shard
// only.
func TestHelmChartShardedInstall(t *testing.T) {
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	for _, ns := range []string{"crowsnest", argoCDNamespace} {
		kas.CreateNamespace(ns)
	}
	values := filepath.Join(bin.repoRoot, "charts", "exporter", "ci", "sharded-values.yaml")
	out, err := helmRun(t, "template", "--namespace", "crowsnest", "-f", values)
	if err != nil {
		t.Fatal(err, out)
	}
	rendered := docs(t, out)
	out, err = helmRun(t, "install", "--kubeconfig", kas.Kubeconfig, "--namespace", "crowsnest", "--wait=false", "-f", values)
	if err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	for _, want := range []string{"3 shards: the StatefulSet crowsnest runs one pod per shard", "logs crowsnest-0   # one pod per shard: -0 to -2",
		"count by (total_shards) (crowsnest_shard_info) is 3."} {
		if !strings.Contains(out, want) {
			t.Errorf("helm install's NOTES lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "1.28") {
		t.Errorf("helm install's NOTES warn of Kubernetes 1.28 on a %s API server:\n%s", "1.37", out)
	}
	if got := kas.Kubectl("", "-n", "crowsnest", "get", "statefulset", "crowsnest", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].args}"); !strings.HasPrefix(got, "3 ") ||
		!strings.Contains(got, "--shard=$(SHARD)") || !strings.Contains(got, "--total-shards=3") {
		t.Errorf("the StatefulSet as stored: %s", got)
	}
	sa := "--as=system:serviceaccount:crowsnest:crowsnest"
	for lease, want := range map[string]string{"crowsnest-0-of-3": "yes", "crowsnest-2-of-3": "yes", "crowsnest": "no", "crowsnest-3-of-3": "no"} {
		if got := strings.TrimSpace(kasCanI(t, kas, "auth", "can-i", "update", "leases.coordination.k8s.io/"+lease, "-n", "crowsnest", sa)); got != want {
			t.Errorf("can the ServiceAccount update Lease %s: %s, want %s", lease, got, want)
		}
	}

	// Applications: nine at least, and some of each shard run below.
	shardOf := map[string]int{}
	has := func(shard int) bool {
		for _, s := range shardOf {
			if s == shard {
				return true
			}
		}
		return false
	}
	for i := 0; len(shardOf) < 9 || !has(0) || !has(2); i++ {
		name := fmt.Sprintf("chart-sharded-%02d", i)
		kas.Kubectl(fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s, namespace: %s}
spec:
  project: default
  source: {repoURL: https://example.com/repo.git, path: ., targetRevision: HEAD}
  destination: {server: https://kubernetes.default.svc, namespace: shop}
`, name, argoCDNamespace), "apply", "-f", "-")
		uid := kas.Kubectl("", "-n", argoCDNamespace, "get", "application", name, "-o", "jsonpath={.metadata.uid}")
		shardOf[name] = source.ShardOf(types.UID(strings.TrimSpace(uid)), 3)
	}

	kubeconfig := serviceAccountKubeconfig(t, env, kas, "sharded-sa")
	for _, ordinal := range []int{0, 2} {
		pod := podOf(t, env, fmt.Sprintf("crowsnest-%d", ordinal), rendered, nil, "crowsnest")
		if flags := flagsOf(pod.Args); flags["shard"] != fmt.Sprint(ordinal) || flags["total-shards"] != "3" {
			t.Fatalf("pod %d: args %v", ordinal, pod.Args)
		}
		cn := pod.start(env, fmt.Sprintf("crowsnest-shard-%d", ordinal), "http", &http.Client{}, "--kubeconfig="+kubeconfig)
		checks := []func() error{
			func() error { return cn.ExpectStatus("/readyz", http.StatusOK) },
			expectSamples(cn, sample(1, "crowsnest_leader"), sample(1, "crowsnest_shard_info", "shard", fmt.Sprint(ordinal), "total_shards", "3")),
		}
		for name, s := range shardOf {
			if s == ordinal {
				checks = append(checks, expectSamples(cn, sample(1, "crowsnest_app_info", "name", name)))
			} else {
				checks = append(checks, expectNoSeries(cn, "crowsnest_app_info", "name", name))
			}
		}
		eventually(t, scenarioTimeout, allOf(checks...))
		if log := strings.ToLower(cn.LogTail(1000)); strings.Contains(log, "forbidden") {
			t.Errorf("shard %d was refused by RBAC:\n%s", ordinal, lastLines(cn.LogTail(1000), 20))
		}
		if err := cn.Stop(); err != nil {
			t.Errorf("shard %d: %v", ordinal, err)
		}
	}
}
