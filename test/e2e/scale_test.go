//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The scale benchmark: crowsnest's memory with 10,000 Applications of
// realistic size and 20,000 Deployments, as the chart's sizing is based on.
// It is heavy (some 15 minutes, a few GiB for etcd and kube-apiserver), so
// it runs only when asked: `make scale`, or
//
//	CROWSNEST_SCALE=1 go test -count=1 -tags e2e -run TestScale -timeout 60m -v ./test/e2e/
//
// CROWSNEST_SCALE_APPS and CROWSNEST_SCALE_WORKLOADS change the sizes;
// CROWSNEST_SCALE_COMPARE names another crowsnest binary (e.g. one built
// from main before a change) measured on the same objects.

const (
	// scaleAppsPerNamespace: Applications live in namespaces apps-0,
	// apps-1, ... of this many each, so --namespaces=apps-0 watches a
	// fleet of this size.
	scaleAppsPerNamespace = 1000
	// scaleWorkloadNamespaces is how many namespaces (team-000, ...) the
	// Deployments are spread over.
	scaleWorkloadNamespaces = 100
	// scaleAppResources is the length of each app's status.resources and
	// of its last operation's syncResult.resources.
	scaleAppResources = 30
	// scaleAppHistory is the length of each app's status.history (Argo
	// CD's default revisionHistoryLimit).
	scaleAppHistory = 10
	// scaleWriters is how many goroutines create the objects.
	scaleWriters = 16
	// scaleReadyTimeout bounds one crowsnest start until it serves every
	// app's series.
	scaleReadyTimeout = 15 * time.Minute
	// scaleScrapes is how many scrapes follow the start, scaleScrapeGap
	// apart.
	scaleScrapes   = 3
	scaleScrapeGap = 5 * time.Second
	// scaleHeadroom is the share of the chart's memory limit the largest
	// run may use at its peak: a quarter stays spare.
	scaleHeadroom = 0.75
)

func TestScale(t *testing.T) {
	if os.Getenv("CROWSNEST_SCALE") == "" {
		t.Skip("the scale benchmark runs only with CROWSNEST_SCALE=1 (make scale): it takes some 15 minutes")
	}
	apps := envInt(t, "CROWSNEST_SCALE_APPS", 10000)
	workloads := envInt(t, "CROWSNEST_SCALE_WORKLOADS", 20000)
	if apps < 1 || workloads < 0 {
		t.Fatalf("CROWSNEST_SCALE_APPS=%d, CROWSNEST_SCALE_WORKLOADS=%d: want at least one app and no negative count", apps, workloads)
	}
	t.Logf("machine: %s; GOMEMLIMIT=%q in crowsnest's environment", machine(), os.Getenv("GOMEMLIMIT"))

	env := NewEnv(t)
	etcd := env.NewEtcd()
	// The objects and their revisions until the API server compacts them
	// outgrow etcd's default 2 GiB quota.
	etcd.Args = append(etcd.Args, "--quota-backend-bytes=8589934592")
	etcd.Start()
	kas := env.StartKubeAPIServer(etcd)
	kas.InstallArgoCDCRDs()

	fleet := scaleFleet{apps: apps, workloads: workloads}
	start := time.Now()
	fleet.create(t, kas)
	t.Logf("created %d Applications and %d Deployments in %v", apps, workloads, time.Since(start).Round(time.Second))
	fleet.logSizes(t, kas)

	binaries := []scaleBinary{{"this tree", bin.crowsnest}}
	if p := os.Getenv("CROWSNEST_SCALE_COMPARE"); p != "" {
		path, err := executable(p)
		if err != nil {
			t.Fatalf("CROWSNEST_SCALE_COMPARE: %v", err)
		}
		binaries = append(binaries, scaleBinary{"compare: " + filepath.Base(path), path})
	}
	firstNS := min(apps, scaleAppsPerNamespace)
	runs := []scaleRun{
		{"none", 0, 0, []string{"--namespaces=scale-empty", "--workloads.kinds="}},
		{"first namespace", firstNS, 0, []string{"--namespaces=apps-0", "--workloads.kinds="}},
		{"apps", apps, 0, []string{"--workloads.kinds="}},
		{"apps and workloads", apps, workloads, []string{"--workloads.kinds=deployments"}},
	}
	var results []scaleResult
	for _, b := range binaries {
		for _, r := range runs {
			res := measureScale(t, env, kas, b, r, fleet)
			t.Logf("%s", res)
			results = append(results, res)
		}
	}
	t.Logf("results (machine: %s):\n%s", machine(), scaleTable(results))

	limit := chartMemoryLimit(t)
	target := results[len(runs)-1]
	if budget := scaleHeadroom * limit; target.peakRSS > budget {
		t.Errorf("%d apps and %d workloads peaked at %s RSS, above %.0f%% of the chart's memory limit %s (%s)",
			apps, workloads, mib(target.peakRSS), scaleHeadroom*100, mib(limit), mib(budget))
	} else {
		t.Logf("peak RSS %s is %.0f%% of the chart's memory limit %s", mib(target.peakRSS), 100*target.peakRSS/limit, mib(limit))
	}
}

// scaleBinary is a crowsnest binary the benchmark measures.
type scaleBinary struct{ name, path string }

// scaleRun is one start of crowsnest: which apps and workloads it watches.
type scaleRun struct {
	name            string
	apps, workloads int // expected: the apps served and the workloads joined to them
	flags           []string
}

// scaleResult is what one run measured; sizes in bytes.
type scaleResult struct {
	binary, run     string
	apps, workloads int
	ready           time.Duration // from start until every app's series were served
	peakRSS         float64       // VmHWM at the end: the peak, start-up included
	startRSS        float64       // VmRSS when ready
	endRSS          float64       // VmRSS after the scrapes
	endAnon         float64       // RssAnon after the scrapes: RSS without the binary's mapped pages
	heapInuse       float64       // go_memstats_heap_inuse_bytes of the last scrape
	gcGoal          float64       // go_memstats_next_gc_bytes of the last scrape: twice the heap live at the last GC (GOGC=100)
	scrapeBytes     int
	scrapeTime      time.Duration // the slowest scrape
}

func (r scaleResult) String() string {
	return fmt.Sprintf("%s, %s (%d apps, %d workloads): ready in %v, peak RSS %s, RSS %s when ready and %s after %d scrapes (anonymous %s), heap in use %s, live heap ~%s, scrape %s in %v",
		r.binary, r.run, r.apps, r.workloads, r.ready.Round(100*time.Millisecond), mib(r.peakRSS), mib(r.startRSS), mib(r.endRSS),
		scaleScrapes, mib(r.endAnon), mib(r.heapInuse), mib(r.gcGoal/2), mib(float64(r.scrapeBytes)), r.scrapeTime.Round(time.Millisecond))
}

// measureScale starts crowsnest, waits until it serves what run expects,
// scrapes it a few times and reads its memory.
func measureScale(t *testing.T, env *Env, kas *KubeAPIServer, b scaleBinary, run scaleRun, fleet scaleFleet) scaleResult {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", env.Port())
	args := append([]string{"--kubeconfig=" + kas.Kubeconfig, "--web.listen-address=" + addr, "--log.level=info"}, run.flags...)
	p := env.NewProcess(sanitize("crowsnest "+b.name+" "+run.name), b.path, args...)
	p.StopTimeout = crowsnestStopTimeout
	// A scrape of 10,000 apps is tens of MiB.
	c := &Crowsnest{Process: p, URL: "http://" + addr, client: &http.Client{Timeout: time.Minute}}
	defer c.client.CloseIdleConnections()
	defer func() { _ = p.Stop() }()

	res := scaleResult{binary: b.name, run: run.name, apps: run.apps, workloads: run.workloads}
	start := time.Now()
	p.Start()
	pid := p.pid()
	deadline := start.Add(scaleReadyTimeout)
	for {
		if err := p.checkAlive(); err != nil {
			t.Fatalf("%s: %v", run.name, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: crowsnest did not serve %d apps and %d workloads within %v", run.name, run.apps, run.workloads, scaleReadyTimeout)
		}
		if c.ExpectStatus("/readyz", http.StatusOK) == nil {
			s, err := c.scaleScrape()
			if err == nil && s.apps == run.apps && s.workloads == run.workloads {
				break
			}
			if err == nil {
				t.Logf("%s: serving %d of %d apps and %d of %d workloads after %v", run.name, s.apps, run.apps, s.workloads, run.workloads, time.Since(start).Round(time.Second))
			}
		}
		time.Sleep(2 * time.Second)
	}
	res.ready = time.Since(start)
	res.startRSS = procStatus(t, pid, "VmRSS")
	var last scaleScrape
	for range scaleScrapes {
		time.Sleep(scaleScrapeGap)
		began := time.Now()
		s, err := c.scaleScrape()
		if err != nil {
			t.Fatalf("%s: %v", run.name, err)
		}
		res.scrapeTime = max(res.scrapeTime, time.Since(began))
		last = s
	}
	res.scrapeBytes = last.bytes
	res.heapInuse = last.heapInuse
	res.gcGoal = last.gcGoal
	res.endRSS = procStatus(t, pid, "VmRSS")
	res.endAnon = procStatus(t, pid, "RssAnon")
	res.peakRSS = procStatus(t, pid, "VmHWM")
	return res
}

// scaleScrape is what the benchmark reads from one scrape.
type scaleScrape struct {
	apps, workloads int // apps with a sync status; workloads with desired replicas
	heapInuse       float64
	gcGoal          float64
	bytes           int
}

func (c *Crowsnest) scaleScrape() (scaleScrape, error) {
	var s scaleScrape
	req, err := http.NewRequest(http.MethodGet, c.URL+"/metrics", nil)
	if err != nil {
		return s, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := c.client.Do(req)
	if err != nil {
		return s, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("scrape: %s", resp.Status)
	}
	// Counted line by line: parsing a scrape of 10,000 apps whole would
	// cost the test more than crowsnest.
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		s.bytes += len(line) + 1
		switch {
		case strings.HasPrefix(line, "crowsnest_app_sync_status{") && strings.HasSuffix(line, "} 1"):
			s.apps++
		case strings.HasPrefix(line, "crowsnest_app_workload_replicas{") && strings.Contains(line, `state="desired"`):
			s.workloads++
		case strings.HasPrefix(line, "go_memstats_heap_inuse_bytes "):
			s.heapInuse, _ = strconv.ParseFloat(strings.TrimPrefix(line, "go_memstats_heap_inuse_bytes "), 64)
		case strings.HasPrefix(line, "go_memstats_next_gc_bytes "):
			s.gcGoal, _ = strconv.ParseFloat(strings.TrimPrefix(line, "go_memstats_next_gc_bytes "), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("scrape: %w", err)
	}
	return s, nil
}

// pid is the process id of the current run.
func (p *Process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// procStatus reads a memory figure (VmRSS, VmHWM) of /proc/PID/status, in
// bytes.
func procStatus(t *testing.T, pid int, field string) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the memory of crowsnest: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
					return kb * 1024
				}
			}
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// scaleTable renders the results as a Markdown table, and the cost per app
// and per workload each binary's runs imply.
func scaleTable(results []scaleResult) string {
	var b strings.Builder
	b.WriteString("| binary | run | apps | workloads | ready after | peak RSS | RSS when ready | RSS after scrapes | Go heap in use | live heap | scrape |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %v | %s | %s | %s | %s | ~%s | %s in %v |\n", r.binary, r.run, r.apps, r.workloads,
			r.ready.Round(time.Second), mib(r.peakRSS), mib(r.startRSS), mib(r.endRSS), mib(r.heapInuse), mib(r.gcGoal/2),
			mib(float64(r.scrapeBytes)), r.scrapeTime.Round(time.Millisecond))
	}
	// Each binary's runs are none, first namespace, apps, apps and
	// workloads, in that order.
	for i := 0; i+3 < len(results); i += 4 {
		none, apps, all := results[i], results[i+2], results[i+3]
		perApp := func(f func(scaleResult) float64) float64 { return (f(apps) - f(none)) / float64(apps.apps) }
		perWorkload := func(f func(scaleResult) float64) float64 {
			if all.workloads == 0 {
				return math.NaN()
			}
			return (f(all) - f(apps)) / float64(all.workloads)
		}
		peak := func(r scaleResult) float64 { return r.peakRSS }
		live := func(r scaleResult) float64 { return r.gcGoal / 2 }
		fmt.Fprintf(&b, "\n%s: per app %.1f KiB peak RSS, %.1f KiB live heap; per workload %.1f KiB peak RSS, %.1f KiB live heap; base %s peak RSS",
			none.binary, perApp(peak)/1024, perApp(live)/1024, perWorkload(peak)/1024, perWorkload(live)/1024, mib(none.peakRSS))
	}
	return b.String()
}

func mib(bytes float64) string { return fmt.Sprintf("%.0f MiB", bytes/(1<<20)) }

// chartMemoryLimit reads resources.limits.memory of the chart's values.
func chartMemoryLimit(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bin.repoRoot, "charts/exporter/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Resources struct {
			Limits struct {
				Memory string `yaml:"memory"`
			} `yaml:"limits"`
		} `yaml:"resources"`
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatalf("chart values: %v", err)
	}
	q, err := resource.ParseQuantity(values.Resources.Limits.Memory)
	if err != nil {
		t.Fatalf("chart values: resources.limits.memory: %v", err)
	}
	return q.AsApproximateFloat64()
}

// machine describes the machine for the record.
func machine() string {
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				mem = fmt.Sprintf("%.0f GiB", kb/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%d CPUs, %s RAM, %s", runtime.NumCPU(), mem, runtime.Version())
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// scaleFleet is the benchmark's objects: apps Applications in namespaces
// apps-N, scaleAppsPerNamespace each, and workloads Deployments in
// namespaces team-NNN, each tracked by Argo CD's annotation to an app
// (app i has Deployments i, i+apps, i+2*apps, ...).
type scaleFleet struct{ apps, workloads int }

func (f scaleFleet) appNamespace(i int) string {
	return fmt.Sprintf("apps-%d", i/scaleAppsPerNamespace)
}
func (f scaleFleet) appName(i int) string { return fmt.Sprintf("app-%05d", i) }

// destination is where app i deploys to.
func (f scaleFleet) destination(i int) string {
	return fmt.Sprintf("team-%03d", i%scaleWorkloadNamespaces)
}

// component names the j-th workload of an app.
func component(j int) string {
	names := []string{"api", "worker", "web", "cron"}
	if j < len(names) {
		return names[j]
	}
	return fmt.Sprintf("svc%d", j)
}

// create writes every object, with scaleWriters goroutines.
func (f scaleFleet) create(t *testing.T, kas *KubeAPIServer) {
	t.Helper()
	cfg := kas.RESTConfig()
	cfg.QPS, cfg.Burst = 5000, 10000
	cfg.WarningHandler = rest.NoWarnings{} // the finalizer's name, 40,000 times
	argo, err := versioned.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	namespaces := []string{"scale-empty"}
	for i := 0; i < f.apps; i += scaleAppsPerNamespace {
		namespaces = append(namespaces, f.appNamespace(i))
	}
	for i := range min(f.apps, scaleWorkloadNamespaces) {
		namespaces = append(namespaces, f.destination(i))
	}
	for _, ns := range namespaces {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}

	var done atomic.Int64
	total := int64(f.apps + f.workloads)
	tasks := make(chan func() error)
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range scaleWriters {
		wg.Go(func() {
			for task := range tasks {
				if err := retryTransient(ctx, task); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
				done.Add(1)
			}
		})
	}
	progress := time.NewTicker(15 * time.Second)
	defer progress.Stop()
	send := func(task func() error) {
		for {
			select {
			case tasks <- task:
				return
			case <-progress.C:
				t.Logf("created %d of %d objects", done.Load(), total)
			}
		}
	}
	for i := range f.apps {
		send(func() error { return f.createApp(ctx, argo, i) })
	}
	for j := range f.workloads {
		send(func() error { return f.createDeployment(ctx, kube, j) })
	}
	close(tasks)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

// retryTransient retries a write the API server turned away for now.
func retryTransient(ctx context.Context, task func() error) error {
	var err error
	for attempt := range 5 {
		if err = task(); err == nil || !(apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) ||
			apierrors.IsTimeout(err) || apierrors.IsInternalError(err) || apierrors.IsConflict(err)) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * time.Second):
		}
	}
	return err
}

// createApp writes app i as Argo CD's users and controller do: the spec
// server-side applied (with the last-applied annotation a client-side
// apply, e.g. of an app-of-apps, leaves), then the status written by the
// application controller's patch.
func (f scaleFleet) createApp(ctx context.Context, client versioned.Interface, i int) error {
	ns, name, dest := f.appNamespace(i), f.appName(i), f.destination(i)
	team := fmt.Sprintf("team-%03d", i%scaleWorkloadNamespaces)
	envName := []string{"dev", "stage", "prod"}[i%3]
	rev := func(k int) string { return fmt.Sprintf("%040x", uint64(i)*1_000_003+uint64(k)) }
	src := v1alpha1.ApplicationSource{
		RepoURL:        "https://git.example.com/platform/deployments.git",
		Path:           "charts/" + name,
		TargetRevision: "main",
		Helm: &v1alpha1.ApplicationSourceHelm{
			ReleaseName: name,
			ValueFiles:  []string{"values.yaml", "values-" + envName + ".yaml"},
			Parameters: []v1alpha1.HelmParameter{
				{Name: "image.tag", Value: "v1.42." + strconv.Itoa(i%50)},
				{Name: "replicaCount", Value: "2"},
				{Name: "ingress.host", Value: name + "." + envName + ".example.com"},
			},
		},
	}
	factor := int64(2)
	limit := int64(10)
	spec := v1alpha1.ApplicationSpec{
		Project:     team,
		Source:      &src,
		Destination: v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: dest},
		SyncPolicy: &v1alpha1.SyncPolicy{
			Automated:   &v1alpha1.SyncPolicyAutomated{Prune: new(true), SelfHeal: new(true)},
			SyncOptions: v1alpha1.SyncOptions{"CreateNamespace=true", "PruneLast=true", "RespectIgnoreDifferences=true"},
			Retry:       &v1alpha1.RetryStrategy{Limit: 5, Backoff: &v1alpha1.Backoff{Duration: "5s", Factor: &factor, MaxDuration: "3m"}},
		},
		IgnoreDifferences: []v1alpha1.ResourceIgnoreDifferences{
			{Group: "apps", Kind: "Deployment", JSONPointers: []string{"/spec/replicas"}},
			{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration", JQPathExpressions: []string{".webhooks[]?.clientConfig.caBundle"}},
		},
		RevisionHistoryLimit: &limit,
	}
	labels := map[string]string{"team": team, "env": envName, "app.kubernetes.io/part-of": "platform", "argocd.argoproj.io/instance": "root-" + envName}
	annotations := map[string]string{
		"notifications.argoproj.io/subscribe.on-sync-failed.slack": team + "-alerts",
		"link.argocd.argoproj.io/runbook":                          "https://runbooks.example.com/" + name,
	}
	apply := map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Application",
		"metadata":   map[string]any{"name": name, "namespace": ns, "labels": labels, "annotations": annotations, "finalizers": []string{"resources-finalizer.argocd.argoproj.io"}},
		"spec":       spec,
	}
	lastApplied, err := json.Marshal(apply)
	if err != nil {
		return err
	}
	annotations["kubectl.kubernetes.io/last-applied-configuration"] = string(lastApplied)
	body, err := json.Marshal(apply)
	if err != nil {
		return err
	}
	force := true
	apps := client.ArgoprojV1alpha1().Applications(ns)
	if _, err := apps.Patch(ctx, name, types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "argocd-applicationset-controller", Force: &force}); err != nil {
		return fmt.Errorf("apply Application %s/%s: %w", ns, name, err)
	}

	now := time.Now().Truncate(time.Second)
	at := func(ago time.Duration) metav1.Time { return metav1.NewTime(now.Add(-ago)) }
	kinds := []struct{ group, version, kind string }{
		{"apps", "v1", "Deployment"}, {"apps", "v1", "Deployment"}, {"", "v1", "Service"}, {"", "v1", "Service"},
		{"", "v1", "ConfigMap"}, {"", "v1", "ConfigMap"}, {"", "v1", "ConfigMap"}, {"", "v1", "ConfigMap"},
		{"", "v1", "Secret"}, {"", "v1", "Secret"}, {"", "v1", "ServiceAccount"},
		{"rbac.authorization.k8s.io", "v1", "Role"}, {"rbac.authorization.k8s.io", "v1", "RoleBinding"},
		{"autoscaling", "v2", "HorizontalPodAutoscaler"}, {"autoscaling", "v2", "HorizontalPodAutoscaler"},
		{"policy", "v1", "PodDisruptionBudget"}, {"policy", "v1", "PodDisruptionBudget"},
		{"networking.k8s.io", "v1", "Ingress"}, {"networking.k8s.io", "v1", "NetworkPolicy"},
		{"monitoring.coreos.com", "v1", "ServiceMonitor"}, {"monitoring.coreos.com", "v1", "PrometheusRule"},
		{"batch", "v1", "CronJob"}, {"external-secrets.io", "v1beta1", "ExternalSecret"},
		{"cert-manager.io", "v1", "Certificate"}, {"", "v1", "PersistentVolumeClaim"},
		{"", "v1", "ConfigMap"}, {"", "v1", "ConfigMap"}, {"", "v1", "Secret"},
		{"keda.sh", "v1alpha1", "ScaledObject"}, {"", "v1", "Service"},
	}
	var resources []v1alpha1.ResourceStatus
	var results []*v1alpha1.ResourceResult
	for k := range scaleAppResources {
		kd := kinds[k%len(kinds)]
		rname := name + "-" + strings.ToLower(kd.kind)
		if kd.kind == "Deployment" {
			rname = name + "-" + component(k)
		} else if k > 0 {
			rname += "-" + strconv.Itoa(k)
		}
		wave := int64(k % 4)
		resources = append(resources, v1alpha1.ResourceStatus{
			Group: kd.group, Version: kd.version, Kind: kd.kind, Namespace: dest, Name: rname,
			Status: v1alpha1.SyncStatusCodeSynced, Health: &v1alpha1.HealthStatus{Status: health.HealthStatusHealthy}, SyncWave: wave,
		})
		results = append(results, &v1alpha1.ResourceResult{
			Group: kd.group, Version: kd.version, Kind: kd.kind, Namespace: dest, Name: rname,
			Status: synccommon.ResultCodeSynced, Message: strings.ToLower(kd.kind) + "/" + rname + " unchanged",
			HookPhase: synccommon.OperationRunning, SyncPhase: synccommon.SyncPhaseSync,
		})
	}
	var history v1alpha1.RevisionHistories
	for k := range scaleAppHistory {
		started := at(time.Duration(scaleAppHistory-k) * time.Hour)
		history = append(history, v1alpha1.RevisionHistory{
			Revision: rev(k), DeployedAt: at(time.Duration(scaleAppHistory-k)*time.Hour - 40*time.Second), ID: int64(k),
			Source: src, DeployStartedAt: &started, InitiatedBy: v1alpha1.OperationInitiator{Automated: true},
		})
	}
	finished := at(0)
	status := v1alpha1.ApplicationStatus{
		Resources: resources,
		Sync: v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCodeSynced, Revision: rev(scaleAppHistory - 1),
			ComparedTo: v1alpha1.ComparedTo{Source: src, Destination: spec.Destination, IgnoreDifferences: spec.IgnoreDifferences}},
		Health:  v1alpha1.AppHealthStatus{Status: health.HealthStatusHealthy},
		History: history,
		OperationState: &v1alpha1.OperationState{
			Operation: v1alpha1.Operation{
				Sync:        &v1alpha1.SyncOperation{Revision: rev(scaleAppHistory - 1), Prune: true, SyncOptions: spec.SyncPolicy.SyncOptions},
				InitiatedBy: v1alpha1.OperationInitiator{Automated: true},
				Retry:       v1alpha1.RetryStrategy{Limit: 5},
			},
			Phase:      synccommon.OperationSucceeded,
			Message:    "successfully synced (all tasks run)",
			SyncResult: &v1alpha1.SyncOperationResult{Resources: results, Revision: rev(scaleAppHistory - 1), Source: src},
			StartedAt:  at(time.Hour),
			FinishedAt: &finished,
		},
		ReconciledAt: &finished,
		SourceType:   v1alpha1.ApplicationSourceTypeHelm,
		Summary: v1alpha1.ApplicationSummary{
			ExternalURLs: []string{"https://" + name + "." + envName + ".example.com"},
			Images:       []string{"registry.example.com/" + name + ":v1.42." + strconv.Itoa(i%50), "registry.example.com/envoy:v1.31.2", "registry.example.com/otel-collector:0.112.0"},
		},
		ControllerNamespace: "argocd",
	}
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	if _, err := apps.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "argocd-application-controller"}); err != nil {
		return fmt.Errorf("write the status of Application %s/%s: %w", ns, name, err)
	}
	return nil
}

// createDeployment writes workload j as Argo CD's client-side apply does
// (the last-applied annotation, manager argocd-controller), then its
// status as kube-controller-manager does.
func (f scaleFleet) createDeployment(ctx context.Context, client kubernetes.Interface, j int) error {
	i := j % f.apps
	app, ns := f.appName(i), f.destination(i)
	name := app + "-" + component(j/f.apps)
	instance := f.appNamespace(i) + "_" + app // Argo CD's name of an app outside its own namespace
	selector := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/instance": app}
	labels := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/instance": app,
		"app.kubernetes.io/version": "v1.42." + strconv.Itoa(i%50), "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "service-3.7.1"}
	replicas := int32(2)
	env := make([]corev1.EnvVar, 0, 16)
	for k := range 12 {
		env = append(env, corev1.EnvVar{Name: fmt.Sprintf("FEATURE_FLAG_%02d", k), Value: strconv.FormatBool(k%2 == 0)})
	}
	env = append(env,
		corev1.EnvVar{Name: "DATABASE_URL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: app + "-db"}, Key: "url"}}},
		corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		corev1.EnvVar{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://otel-collector.observability:4318"},
	)
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			InitialDelaySeconds: 5, PeriodSeconds: 10, TimeoutSeconds: 2, FailureThreshold: 3}
	}
	res := func(cpu, mem string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)},
		}
	}
	nonRoot, noEscalation, readOnly := true, false, true
	d := &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: map[string]string{
			"argocd.argoproj.io/tracking-id": instance + ":apps/Deployment:" + ns + "/" + name,
			"argocd.argoproj.io/sync-wave":   "2",
		}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					"checksum/config":      fmt.Sprintf("%064x", j),
					"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
				}},
				Spec: corev1.PodSpec{
					ServiceAccountName: app,
					SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: &nonRoot, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: "app", Image: "registry.example.com/" + app + ":v1.42." + strconv.Itoa(i%50),
						Args:           []string{"--config=/etc/app/config.yaml", "--log.format=json"},
						Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
						Env:            env,
						EnvFrom:        []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: app + "-env"}}}},
						Resources:      res("100m", "256Mi"),
						LivenessProbe:  probe("/healthz"),
						ReadinessProbe: probe("/readyz"),
						VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "tmp", MountPath: "/tmp"}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &noEscalation, ReadOnlyRootFilesystem: &readOnly,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}, {
						Name: "envoy", Image: "registry.example.com/envoy:v1.31.2",
						Args:      []string{"-c", "/etc/envoy/envoy.yaml", "--service-cluster", name},
						Ports:     []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001}},
						Resources: res("50m", "64Mi"),
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: app + "-config"}}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
						Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchLabels: selector}, TopologyKey: "kubernetes.io/hostname"},
					}}}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone",
						WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: selector}}},
				},
			},
		},
	}
	lastApplied, err := json.Marshal(d)
	if err != nil {
		return err
	}
	d.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = string(lastApplied)
	deployments := client.AppsV1().Deployments(ns)
	created, err := deployments.Create(ctx, d, metav1.CreateOptions{FieldManager: "argocd-controller"})
	if apierrors.IsAlreadyExists(err) {
		// A retry of a create whose answer was lost.
		created, err = deployments.Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("create Deployment %s/%s: %w", ns, name, err)
	}
	now := metav1.Now()
	created.Status = appsv1.DeploymentStatus{
		ObservedGeneration: created.Generation, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, LastUpdateTime: now, LastTransitionTime: now,
				Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability."},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, LastUpdateTime: now, LastTransitionTime: now,
				Reason: "NewReplicaSetAvailable", Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", name+"-7d9f8b6c5d")},
		},
	}
	if _, err := deployments.UpdateStatus(ctx, created, metav1.UpdateOptions{FieldManager: "kube-controller-manager"}); err != nil {
		return fmt.Errorf("write the status of Deployment %s/%s: %w", ns, name, err)
	}
	return nil
}

// logSizes logs the size of one app and one Deployment as the API server
// serves them, managed fields included.
func (f scaleFleet) logSizes(t *testing.T, kas *KubeAPIServer) {
	t.Helper()
	ctx := t.Context()
	app, err := kas.ArgoCD().ArgoprojV1alpha1().Applications(f.appNamespace(0)).Get(ctx, f.appName(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	size := func(v any) string {
		b, _ := json.Marshal(v)
		return fmt.Sprintf("%.1f KiB", float64(len(b))/1024)
	}
	managed := size(app.ManagedFields)
	t.Logf("an Application is %s of JSON (managed fields %s, last-applied %.1f KiB)", size(app), managed,
		float64(len(app.Annotations["kubectl.kubernetes.io/last-applied-configuration"]))/1024)
	if f.workloads == 0 {
		return
	}
	d, err := kas.Kubernetes().AppsV1().Deployments(f.destination(0)).Get(ctx, f.appName(0)+"-"+component(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a Deployment is %s of JSON (managed fields %s, last-applied %.1f KiB)", size(d), size(d.ManagedFields),
		float64(len(d.Annotations["kubectl.kubernetes.io/last-applied-configuration"]))/1024)
}
