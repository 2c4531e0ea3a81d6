//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// startArgoCDServer starts argocd-server (the same binary) on the running
// Argo CD, with a read-only account "crowsnest", and returns its address
// and a token of that account.
func (s *scenarioEnv) startArgoCDServer(ctx context.Context, t *testing.T) (addr, token string, server *Process) {
	t.Helper()
	a := startArgoCDServer(ctx, t, s.env, s.kas, s.argo)
	return a.addr, a.token, a.process
}

// argoCDServer is a running argocd-server, with a read-only token for
// crowsnest and an admin session for the argocd CLI.
type argoCDServer struct {
	addr, token string
	process     *Process
	// cliConfig is the argocd CLI's config file, logged in as admin.
	cliConfig string
}

// cli runs the argocd CLI, logged in as admin, and returns its output.
func (a *argoCDServer) cli(ctx context.Context, args ...string) (string, error) {
	c, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(c, bin.argoCD("argocd"), append(args, "--config", a.cliConfig)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("argocd %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// startArgoCDServer starts argocd-server on the running Argo CD, gives
// the account crowsnest a read-only API token and logs the CLI in as admin.
func startArgoCDServer(ctx context.Context, t *testing.T, env *Env, k *KubeAPIServer, argo *ArgoCD) *argoCDServer {
	t.Helper()
	k.Kubectl(`{"data":{"accounts.crowsnest":"apiKey"}}`, "-n", argoCDNamespace, "patch", "configmap", "argocd-cm", "--type=merge", "--patch-file=/dev/stdin")
	if _, err := k.Kubernetes().CoreV1().ConfigMaps(argoCDNamespace).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "argocd-rbac-cm", Labels: map[string]string{"app.kubernetes.io/part-of": "argocd"}},
		Data:       map[string]string{"policy.csv": "g, crowsnest, role:readonly\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	port := env.Port()
	p := env.NewProcess("argocd-server", bin.argoCD("argocd-server"),
		"--kubeconfig", k.Kubeconfig, "--namespace", argoCDNamespace, "--insecure",
		"--port", strconv.Itoa(port), "--metrics-port", strconv.Itoa(env.Port()),
		"--redis", argo.RedisAddr, "--repo-server", argo.RepoServerAddr, "--loglevel", "info")
	p.Start()
	waitListening(t, p, port)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var password string
	eventually(t, scenarioTimeout, func() error {
		sec, err := k.Kubernetes().CoreV1().Secrets(argoCDNamespace).Get(ctx, "argocd-initial-admin-secret", metav1.GetOptions{})
		if err != nil {
			return err
		}
		password = string(sec.Data["password"])
		return nil
	})
	env.RegisterSecret("argocd-admin-password", password)
	cfg := filepath.Join(env.Dir("argocd-cli"), "config")
	cli := func(args ...string) string {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		out, err := exec.CommandContext(c, bin.argoCD("argocd"), append(args, "--config", cfg)...).CombinedOutput()
		if err != nil {
			t.Fatalf("argocd %s: %v\n%s", args[0], err, out)
		}
		return string(out)
	}
	eventually(t, scenarioTimeout, func() error {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(c, bin.argoCD("argocd"), "login", addr, "--plaintext", "--username", "admin", "--password", password, "--config", cfg).CombinedOutput()
		if err != nil {
			return fmt.Errorf("argocd login: %v: %s", err, out)
		}
		return nil
	})
	token := strings.TrimSpace(cli("account", "generate-token", "--account", "crowsnest"))
	env.RegisterSecret("argocd-api-token", token)
	return &argoCDServer{addr: addr, token: token, process: p, cliConfig: cfg}
}

// stateLines are the per-app state series of a scrape (sync, health,
// operation phase, static facts, drift scope, conditions), as sorted text,
// without dest_cluster: the two sources name a cluster from what each can
// read (argoCDAPISource checks the API source's names).
func stateLines(c *Crowsnest) ([]string, error) {
	m, err := c.Scrape()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range m.Samples {
		name := string(s.Metric["__name__"])
		switch name {
		case "crowsnest_app_info", "crowsnest_app_sync_status", "crowsnest_app_health_status", "crowsnest_app_operation_phase",
			"crowsnest_app_out_of_sync_resources", "crowsnest_app_conditions", "crowsnest_app_last_sync_finished_timestamp_seconds":
			m := s.Metric.Clone()
			delete(m, "dest_cluster")
			out = append(out, m.String()+" "+s.Value.String())
		}
	}
	sort.Strings(out)
	return out, nil
}

// argoCDAPISource runs crowsnest on the Argo CD API with a read-only
// account's token and checks it serves the same state series as the
// Kubernetes source for the same apps.
func (s *scenarioEnv) argoCDAPISource(ctx context.Context, t *testing.T) {
	addr, token, server := s.startArgoCDServer(ctx, t)
	tokenFile := filepath.Join(s.env.Dir("argocd-api"), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(s.env.Dir("crowsnest"), "crowsnest.yml")
	api := s.env.StartCrowsnest("", "--source=argocd-api", "--argocd.server="+addr, "--argocd.plaintext",
		"--argocd.token-file="+tokenFile, "--config.file="+cfg, "--workloads.kinds=")
	var n int
	took := eventually(t, scenarioTimeout, func() (err error) {
		if err := api.ExpectStatus("/readyz", 200); err != nil {
			return err
		}
		n, err = sameStateSeries(api, s.cn)
		return err
	})
	t.Logf("the Argo CD API source serves the same %d state series as the Kubernetes source, %v after start", n, took.Round(time.Second))
	// dest_cluster is Argo CD's name for the destination, from its cluster
	// list: the e2e's cluster Secret names the API server's URL e2e, and
	// Argo CD names kubernetes.default.svc in-cluster itself.
	names := map[string]string{s.argo.ClusterURL: "e2e", "https://kubernetes.default.svc": "in-cluster"}
	m, err := api.Scrape()
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for _, sample := range m.Find("crowsnest_app_info") {
		server, dest := string(sample.Metric["dest_server"]), string(sample.Metric["dest_cluster"])
		if want, ok := names[server]; ok {
			named++
			if dest != want {
				t.Errorf("%s deploys to %s: dest_cluster %q from the API source, want Argo CD's name %q", sample.Metric["name"], server, dest, want)
			}
		}
	}
	if named == 0 {
		t.Error("no app of the API source deploys to a cluster Argo CD names")
	}
	if strings.Contains(api.LogTail(500), token) {
		t.Error("the token appears in crowsnest's log")
	}
	if err := api.ExpectSample(1, "crowsnest_source_up", "source", "argocd-api"); err != nil {
		t.Error(err)
	}

	// An app deleted while the stream is down: argocd-server sends no
	// DELETED for it after the reconnect, so only crowsnest's reconcile
	// against a full list can drop its series.
	apps := s.kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	like, err := apps.Get(ctx, "dev-backend", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doomed := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "deleted-offline", Namespace: argoCDNamespace, Labels: map[string]string{"env": "dev"}},
		Spec:       v1alpha1.ApplicationSpec{Project: like.Spec.Project, Source: like.Spec.Source.DeepCopy(), Destination: like.Spec.Destination},
	}
	if _, err := apps.Create(ctx, doomed, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, scenarioTimeout, func() error { return api.ExpectSample(1, "crowsnest_app_info", "name", doomed.Name) })
	if err := server.Stop(); err != nil {
		t.Logf("argocd-server stopped: %v", err)
	}
	eventually(t, scenarioTimeout, func() error { return api.ExpectSample(0, "crowsnest_source_up", "source", "argocd-api") })
	if err := apps.Delete(ctx, doomed.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := api.ExpectSample(1, "crowsnest_app_info", "name", doomed.Name); err != nil {
		t.Fatalf("the app's series went before the stream was back: %v", err)
	}
	server.Start()
	took = eventually(t, scenarioTimeout, func() error {
		m, err := api.Scrape()
		if err != nil {
			return err
		}
		if got := m.Find("crowsnest_app_info", "name", doomed.Name); len(got) != 0 {
			return fmt.Errorf("%s still has series after the reconnect: %v", doomed.Name, got)
		}
		// At least the doomed app: an app deleted just before argocd-server
		// first started may still have been in its first list (seen with
		// v3.6.1). That nothing else was dropped, and nothing is left, the
		// comparison with the Kubernetes source below shows.
		if n, err := m.Value("crowsnest_source_reconciled_apps_total", "source", "argocd-api", "action", "deleted"); err != nil || n < 1 {
			return fmt.Errorf("reconciled deletions %v (%v), want at least 1", n, err)
		}
		return nil
	})
	t.Logf("the app deleted while argocd-server was down lost its series %v after argocd-server was started again", took.Round(time.Second))
	eventually(t, scenarioTimeout, func() error {
		_, err := sameStateSeries(api, s.cn)
		return err
	})
}

// sameStateSeries checks that the API source api serves exactly the state
// series (stateLines) of the Kubernetes source kube, and returns how many.
func sameStateSeries(api, kube *Crowsnest) (int, error) {
	want, err := stateLines(kube)
	if err != nil {
		return 0, err
	}
	got, err := stateLines(api)
	if err != nil {
		return 0, err
	}
	if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		return 0, fmt.Errorf("the API source serves %d state series, the Kubernetes source %d, and they differ", len(got), len(want))
	}
	return len(got), nil
}
