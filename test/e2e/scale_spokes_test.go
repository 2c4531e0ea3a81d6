//go:build e2e

package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The hub-and-spoke scale benchmark (`make bench-spokes`; docs/scale.md,
// "Several clusters (hub and spoke)"): what each spoke cluster of
// --clusters.dir costs crowsnest in memory, goroutines, connections and
// start-up, at 0 (the baseline), 1, 5 and 20 spokes.
//
// The cheapest faithful setup on one machine: a hub kube-apiserver with
// Argo CD's CRDs and the Applications, and ONE spoke kube-apiserver (its
// own etcd) holding W Deployments, bound to 0.0.0.0 so that it answers on
// every address of 127.0.0.0/8. Spoke k is that server reached at
// https://127.0.x.y:PORT (spokeHost): a cluster Secret of its own (name spoke-NN, its
// own ServiceAccount token, tlsClientConfig.serverName spoke-NN so that
// client-go builds it a transport of its own as a distinct CA would), so
// crowsnest builds N clients, N discoveries, N sets of informers caching
// every workload of the spoke, and N probes: exactly the per-spoke cost.
// What one server cannot give: every object carries one tracking id, so it
// joins an app in one cluster only. The W Deployments are tracked to the
// fleet's A apps (apps-0/app-NNNNN, W/A each, written as TestScale writes
// its apps), deployed to spoke-01; each spoke app spoke-NN (in Argo CD's
// namespace, deployed to spoke-NN) has a StatefulSet and a hook Job of its
// own. So at N spokes the tracker holds N copies of the W Deployments
// (every cluster reads them, and a workload naming an app is kept whether
// or not its app is in that cluster) but only one copy joins an app and is
// rendered: the cost of the joined series (J) is measured apart, by a start
// with 1 spoke where the fleet is deployed to a cluster crowsnest does not
// watch.
//
// For each count, crowsnest is started with --clusters.dir holding that many
// spokes (rounds of 0, 1 unjoined, 1, 5, 20, CROWSNEST_SPOKES_STARTS times),
// and each start reports the time to /readyz, the time until every spoke's
// crowsnest_cluster_up is 1 and every spoke app's workload series are
// served (and the fleet's Deployments when joined), crowsnest's CPU until
// then and the spoke API server's, VmRSS when ready; then, once crowsnest's
// CPU is quiet (the unjoined Deployments delivered too), a few scrapes and
// two GCs (idle, crowsnest collects the start-up's garbage only at the
// runtime's periodic GC, and hands the freed heap back after the next one:
// some 4 minutes), VmHWM, VmRSS once it stops falling, the heap in use, the
// live heap, goroutines and open sockets. A start that is
// not ready in time, serves other workload series than expected, or logs an
// error fails the test.
//
//	CROWSNEST_SCALE_SPOKES=1 go test -count=1 -tags e2e -run '^TestScaleSpokes$' -timeout 60m -v ./test/e2e/
//
// Knobs (environment; defaults in brackets):
//
//	CROWSNEST_SPOKES_WORKLOADS [1000]       Deployments in the spoke, tracked to the fleet's apps
//	CROWSNEST_SPOKES_APPS [W/10]            the fleet's apps (one app of 1,000 Deployments makes
//	                                        crowsnest render the app once per Deployment it reads)
//	CROWSNEST_SPOKES_COUNTS [1,5,20]        spoke counts measured besides 0
//	CROWSNEST_SPOKES_STARTS [3]             rounds of every count (medians are reported)
//	CROWSNEST_SPOKES_READY_TIMEOUT [5m]     how long one start may take to serve every spoke
//	CROWSNEST_SPOKES_GOMEMLIMIT             GOMEMLIMIT in crowsnest's environment only (the chart's
//	                                        default gives it 0.9 × its 1536Mi limit: 1382MiB)
//	CROWSNEST_SPOKES_SETTLE [0]             after the memory reading, watch RSS and the free heap
//	                                        this long more (logged); RSS settled is then read at its end
//	CROWSNEST_SCALE_BIN [this tree]         the crowsnest binary to measure
//	CROWSNEST_SCALE_REPORT                  also write the Markdown report to this file
//	CROWSNEST_SCALE_PPROF                   a directory: a heap profile of every start after its
//	                                        scrapes, if the binary serves /debug/pprof
const (
	// spokesWriters is how many goroutines write the spoke's Deployments.
	spokesWriters = 16
	// spokesPoll is the pause between the scrapes that wait for every
	// spoke's series once /readyz answers.
	spokesPoll = 250 * time.Millisecond
	// spokesUnwatched is the cluster the fleet's apps are deployed to in
	// the unjoined run: no Secret names it.
	spokesUnwatched = "not-watched"
	// crowsnest is quiet when it used at most spokesQuietCPU seconds of
	// CPU in each of spokesQuietSeconds consecutive seconds; it is waited
	// for up to spokesQuietTimeout.
	spokesQuietCPU     = 0.03
	spokesQuietSeconds = 3
	spokesQuietTimeout = 2 * time.Minute
	// VmRSS is settled when it moved less than spokesRSSStep over
	// spokesRSSGap, waited for up to spokesRSSTimeout.
	spokesRSSStep    = 1 << 20
	spokesRSSGap     = 5 * time.Second
	spokesRSSTimeout = 90 * time.Second
	// spokesGCs is how many GCs after the quiet the memory is read after;
	// spokesGCTimeout bounds the wait for them (the runtime forces one 2
	// minutes after the last).
	spokesGCs       = 2
	spokesGCTimeout = 5 * time.Minute
)

type spokesConfig struct {
	binary       scaleBinary
	pprofDir     string
	memLimit     string // GOMEMLIMIT for crowsnest; empty: none
	settle       time.Duration
	workloads    int
	apps         int
	counts       []int
	starts       int
	readyTimeout time.Duration
	report       string
}

func spokesConfigFromEnv(t *testing.T) spokesConfig {
	t.Helper()
	c := spokesConfig{
		workloads:    envInt(t, "CROWSNEST_SPOKES_WORKLOADS", 1000),
		starts:       envInt(t, "CROWSNEST_SPOKES_STARTS", 3),
		readyTimeout: envDuration(t, "CROWSNEST_SPOKES_READY_TIMEOUT", 5*time.Minute),
		report:       os.Getenv("CROWSNEST_SCALE_REPORT"),
		pprofDir:     os.Getenv("CROWSNEST_SCALE_PPROF"),
		memLimit:     os.Getenv("CROWSNEST_SPOKES_GOMEMLIMIT"),
		settle:       envDuration(t, "CROWSNEST_SPOKES_SETTLE", 0),
		binary:       scaleBinary{"this tree", bin.crowsnest},
	}
	if p := os.Getenv("CROWSNEST_SCALE_BIN"); p != "" {
		path, err := executable(p)
		if err != nil {
			t.Fatalf("CROWSNEST_SCALE_BIN: %v", err)
		}
		c.binary = scaleBinary{filepath.Base(path), path}
	}
	counts := os.Getenv("CROWSNEST_SPOKES_COUNTS")
	if counts == "" {
		counts = "1,5,20"
	}
	for f := range strings.SplitSeq(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1000 {
			t.Fatalf("CROWSNEST_SPOKES_COUNTS=%q: want counts from 1 to 1000, comma-separated", counts)
		}
		c.counts = append(c.counts, n)
	}
	slices.Sort(c.counts)
	c.counts = slices.Compact(c.counts)
	c.apps = envInt(t, "CROWSNEST_SPOKES_APPS", max(1, c.workloads/10))
	if c.workloads < 0 || c.apps < 1 || c.apps > 100000 || c.starts < 1 || c.readyTimeout <= 0 {
		t.Fatalf("spoke benchmark parameters out of range: %+v", c)
	}
	return c
}

// spokesRun is one start of crowsnest: how many spokes it watches and
// whether the fleet's Deployments join their apps.
type spokesRun struct {
	spokes int
	joined bool
}

func (r spokesRun) String() string {
	switch {
	case r.spokes == 0:
		return "0 spokes"
	case !r.joined:
		return fmt.Sprintf("%d spoke(s), fleet not joined", r.spokes)
	}
	return fmt.Sprintf("%d spoke(s)", r.spokes)
}

// spokesResult is what one start measured; sizes in bytes.
type spokesResult struct {
	run             spokesRun
	round           int
	err             string
	readyz, ready   time.Duration // to /readyz; to every spoke's series
	quiet           time.Duration // to crowsnest's CPU quiet (every spoke's lists handled); 0 if not within spokesQuietTimeout
	quietCPU        float64       // crowsnest's CPU seconds until then
	gc              time.Duration // to the spokesGCs-th GC after the quiet, when the memory is read
	cpu             float64       // crowsnest's CPU seconds until ready
	spokeCPU        float64       // the spoke kube-apiserver's and etcd's CPU seconds until quiet
	hubCPU          float64       // the hub kube-apiserver's and etcd's
	startRSS        float64       // VmRSS when ready
	peakRSS, endRSS float64       // VmHWM after the scrapes, VmRSS settled after them
	liveHeap        float64       // of the last scrape (see scaleScrape.liveHeap)
	heapInuse       float64       // go_memstats_heap_inuse_bytes of the last scrape: spans in use, live or not
	heapKept        float64       // free heap not handed back to the OS (heap_idle − heap_released)
	goroutines      float64       // go_goroutines of the last scrape
	sockets         int           // open sockets after the scrapes
	series          int           // spoke workloads with desired replicas, when ready
	build           string        // crowsnest_build_info's version and revision
	warnings        []string      // WARN lines of crowsnest's log
}

// spokesBench is the benchmark's servers and objects.
type spokesBench struct {
	cfg                 spokesConfig
	env                 *Env
	hub, spoke          *KubeAPIServer
	hubEtcd, spokeEtcd  *Etcd
	fleet               scaleFleet
	fleetDest           string // the fleet's apps' destination now
	maxSpokes           int
	dirs                map[int]string // spoke count -> --clusters.dir
	servers             []string       // spoke k's URL
	setup               time.Duration
	spokeRSS, spokeHWM  float64 // the spoke kube-apiserver's after the setup; its peak at the end
	deploymentJSON      int
	machine, machineEnd string
	started             time.Time
	wall                time.Duration
}

func spokeName(k int) string { return fmt.Sprintf("spoke-%02d", k+1) }

// spokeHost is the loopback address spoke k is reached at.
func spokeHost(k int) string { return fmt.Sprintf("127.0.%d.%d", 1+k/200, 1+k%200) }

func TestScaleSpokes(t *testing.T) {
	if os.Getenv("CROWSNEST_SCALE_SPOKES") == "" {
		t.Skip("the hub-and-spoke scale benchmark runs only with CROWSNEST_SCALE_SPOKES=1 (make bench-spokes): it takes about an hour")
	}
	cfg := spokesConfigFromEnv(t)
	b := &spokesBench{cfg: cfg, env: NewEnv(t), maxSpokes: cfg.counts[len(cfg.counts)-1], dirs: map[int]string{}, started: time.Now().UTC()}
	b.machine = describeMachine()
	t.Logf("machine: %s", b.machine)
	b.setUp(t)

	runs := []spokesRun{{spokes: 0, joined: true}, {spokes: 1, joined: false}}
	for _, n := range cfg.counts {
		runs = append(runs, spokesRun{spokes: n, joined: true})
	}
	var results []spokesResult
	for round := 1; round <= cfg.starts; round++ {
		for _, run := range runs {
			b.deployFleet(t, run.joined && run.spokes > 0)
			res := b.measure(t, run, round)
			t.Logf("%s", res)
			results = append(results, res)
		}
	}
	b.spokeHWM, _ = procField(b.spoke.pid(), "VmHWM")
	b.machineEnd = loadAverage()
	b.wall = time.Since(b.started)

	md := b.markdown(runs, results)
	t.Logf("report:\n%s", md)
	if cfg.report != "" {
		if err := os.WriteFile(cfg.report, []byte(md), 0o644); err != nil {
			t.Errorf("write the report: %v", err)
		} else {
			t.Logf("report written to %s", cfg.report)
		}
	}
	for _, r := range results {
		if r.err != "" {
			t.Errorf("%s, round %d: %s", r.run, r.round, r.err)
		}
	}
}

// setUp starts the hub and the spoke, writes the objects and the cluster
// Secrets of every spoke count.
func (b *spokesBench) setUp(t *testing.T) {
	t.Helper()
	env, cfg := b.env, b.cfg
	ctx := t.Context()
	start := time.Now()
	b.hubEtcd = env.StartEtcd()
	b.hub = env.StartKubeAPIServer(b.hubEtcd)
	b.hub.InstallArgoCDCRDs()
	b.spokeEtcd = env.StartEtcd()
	b.spoke = env.NewKubeAPIServer(b.spokeEtcd)
	// Every address of 127.0.0.0/8 is this server (the last flag wins).
	b.spoke.Args = append(b.spoke.Args, "--bind-address=0.0.0.0")
	b.spoke.Start()

	// The hub: the fleet's apps as TestScale writes its apps (50
	// resources, 10 history entries), and one app per spoke.
	b.fleet = scaleFleet{apps: cfg.apps, workloads: cfg.workloads, resources: 50, history: 10, writers: spokesWriters}
	b.hub.CreateNamespace(argoCDNamespace)
	for i := 0; i < b.fleet.apps; i += scaleAppsPerNamespace {
		b.hub.CreateNamespace(b.fleet.appNamespace(i))
	}
	b.parallel(t, b.fleet.apps, func(i int) error { return b.fleet.createApp(ctx, b.hub.ArgoCD(), i) })
	b.deployFleet(t, true)
	apps := b.hub.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	for k := range b.maxSpokes {
		name := spokeName(k)
		now := metav1.Now()
		if _, err := apps.Create(ctx, &v1alpha1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: argoCDNamespace},
			Spec: v1alpha1.ApplicationSpec{
				Project:     "default",
				Source:      &v1alpha1.ApplicationSource{RepoURL: "https://git.example.com/platform/shop.git", Path: "shop", TargetRevision: "main"},
				Destination: v1alpha1.ApplicationDestination{Name: name, Namespace: "shop"},
			},
			Status: v1alpha1.ApplicationStatus{
				Sync:         v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCodeSynced, Revision: fmt.Sprintf("%040x", k)},
				Health:       v1alpha1.AppHealthStatus{Status: "Healthy"},
				ReconciledAt: &now,
			},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Application %s: %v", name, err)
		}
	}

	// The spoke: crowsnest's read-only ServiceAccount as the chart
	// installs it in a spoke (mode=spoke), the fleet's
	// Deployments, and each spoke app's StatefulSet and hook Job.
	b.spoke.CreateNamespace("crowsnest")
	spokeChart, err := helmRun(t, "template", "--namespace", "crowsnest", "--set", "mode=spoke")
	if err != nil {
		t.Fatalf("helm template --set mode=spoke: %v\n%s", err, spokeChart)
	}
	b.spoke.Kubectl(spokeChart, "apply", "-f", "-")
	for i := range min(b.fleet.apps, scaleWorkloadNamespaces) {
		b.spoke.CreateNamespace(b.fleet.destination(i))
	}
	b.spoke.CreateNamespace("shop")
	b.createSpokeObjects(t)
	b.setup = time.Since(start)
	b.spokeRSS, _ = procField(b.spoke.pid(), "VmRSS")
	if d, err := b.spoke.Kubernetes().AppsV1().Deployments(b.fleet.destination(0)).Get(ctx, b.fleet.appName(0)+"-"+component(0), metav1.GetOptions{}); err == nil {
		raw, _ := json.Marshal(d)
		b.deploymentJSON = len(raw)
	}
	t.Logf("set up in %v: %d Applications in the hub; %d Deployments and %d StatefulSets and Jobs in the spoke (a Deployment is %s of JSON); spoke kube-apiserver RSS %s",
		b.setup.Round(time.Second), b.fleet.apps+b.maxSpokes, cfg.workloads, 2*b.maxSpokes, size(float64(b.deploymentJSON)), mib(b.spokeRSS))

	// Spoke k: its own token (as every spoke has its own ServiceAccount)
	// and its own address.
	for k := range b.maxSpokes {
		b.servers = append(b.servers, fmt.Sprintf("https://%s:%d", spokeHost(k), b.spoke.Port))
	}
	tokens := make([]string, b.maxSpokes)
	for k := range tokens {
		tokens[k] = strings.TrimSpace(b.spoke.Kubectl("", "-n", "crowsnest", "create", "token", "crowsnest", "--duration=24h"))
		env.RegisterSecret(spokeName(k)+"-token", tokens[k])
	}
	// The spoke answers on every address crowsnest is given.
	for _, k := range []int{0, b.maxSpokes - 1} {
		if err := probeSpoke(ctx, b.servers[k], tokens[k]); err != nil {
			t.Fatalf("the spoke kube-apiserver bound to 0.0.0.0 does not answer at %s: %v", b.servers[k], err)
		}
	}
	for _, n := range append([]int{0, 1}, cfg.counts...) {
		if b.dirs[n] != "" {
			continue
		}
		dir := env.Dir(fmt.Sprintf("clusters-%d", n))
		for k := range n {
			writeClusterSecret(t, dir, spokeName(k), b.servers[k], tokens[k])
			// A CA of its own would give each spoke's client a TLS
			// transport of its own (client-go caches them by TLS
			// settings, not by host): the server name does the same.
			config, err := json.Marshal(map[string]any{"bearerToken": tokens[k], "tlsClientConfig": map[string]any{"insecure": true, "serverName": spokeName(k)}})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "cluster-"+spokeName(k), "config"), config, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		b.dirs[n] = dir
	}
}

// probeSpoke lists the spoke's Deployments with token at server, as the
// cluster Secret will.
func probeSpoke(ctx context.Context, server, token string) error {
	client, err := kubernetes.NewForConfig(&rest.Config{Host: server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	_, err = client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{Limit: 1})
	return err
}

// parallel calls task(0), ..., task(n-1) from spokesWriters goroutines,
// each retried while the API server turns it away for now; it fails the
// test with the first error.
func (b *spokesBench) parallel(t *testing.T, n int, task func(int) error) {
	t.Helper()
	ctx := t.Context()
	tasks := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range spokesWriters {
		wg.Go(func() {
			for i := range tasks {
				if err := retryTransient(ctx, func() error { return task(i) }); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		tasks <- i
	}
	close(tasks)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

// createSpokeObjects writes the fleet's Deployments and each spoke app's
// StatefulSet and hook Job.
func (b *spokesBench) createSpokeObjects(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	cfg := b.spoke.RESTConfig()
	cfg.QPS, cfg.Burst = 5000, 10000
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.parallel(t, b.cfg.workloads, func(j int) error { return b.fleet.createDeployment(ctx, kube, j) })

	one := int32(1)
	for k := range b.maxSpokes {
		app := spokeName(k)
		db, migrate := "db-"+strconv.Itoa(k+1), "migrate-"+strconv.Itoa(k+1)
		labels := map[string]string{"app": db}
		sts, err := kube.AppsV1().StatefulSets("shop").Create(ctx, &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: db, Annotations: map[string]string{"argocd.argoproj.io/tracking-id": app + ":apps/StatefulSet:shop/" + db}},
			Spec: appsv1.StatefulSetSpec{
				Replicas: &one, ServiceName: db,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "registry.example.com/shop/db:1.0"}}},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create StatefulSet %s: %v", db, err)
		}
		sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: sts.Generation, Replicas: 1, ReadyReplicas: 1, CurrentReplicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}
		if _, err := kube.AppsV1().StatefulSets("shop").UpdateStatus(ctx, sts, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("write the status of StatefulSet %s: %v", db, err)
		}
		zero := int32(0)
		job, err := kube.BatchV1().Jobs("shop").Create(ctx, &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: migrate, Annotations: map[string]string{
				"argocd.argoproj.io/tracking-id": app + ":batch/Job:shop/" + migrate,
				"argocd.argoproj.io/hook":        "PreSync", "argocd.argoproj.io/sync-wave": "-1",
			}},
			Spec: batchv1.JobSpec{
				BackoffLimit: &zero,
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "migrate", Image: "registry.example.com/shop/migrate:1.0"}}}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create Job %s: %v", migrate, err)
		}
		// Finished as the Job controller finishes it.
		started := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
		done := metav1.NewTime(time.Now().Truncate(time.Second))
		job.Status = batchv1.JobStatus{StartTime: &started, CompletionTime: &done, Succeeded: 1, Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastProbeTime: done, LastTransitionTime: done},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastProbeTime: done, LastTransitionTime: done},
		}}
		if _, err := kube.BatchV1().Jobs("shop").UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("write the status of Job %s: %v", migrate, err)
		}
	}
}

// deployFleet points the fleet's apps at spoke-01 (joined) or at a
// cluster crowsnest does not watch.
func (b *spokesBench) deployFleet(t *testing.T, joined bool) {
	t.Helper()
	dest := spokeName(0)
	if !joined {
		dest = spokesUnwatched
	}
	if dest == b.fleetDest {
		return
	}
	argo := b.hub.ArgoCD()
	b.parallel(t, b.fleet.apps, func(i int) error {
		patch := fmt.Sprintf(`{"spec":{"destination":{"server":null,"name":%q,"namespace":%q}}}`, dest, b.fleet.destination(i))
		if _, err := argo.ArgoprojV1alpha1().Applications(b.fleet.appNamespace(i)).Patch(t.Context(), b.fleet.appName(i),
			types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("deploy app %s to %s: %w", b.fleet.appName(i), dest, err)
		}
		return nil
	})
	b.fleetDest = dest
}

// measure starts crowsnest on the hub with run's spokes, waits until it
// serves what they hold, scrapes it a few times and reads its figures. A
// failure is recorded in the result.
func (b *spokesBench) measure(t *testing.T, run spokesRun, round int) (res spokesResult) {
	t.Helper()
	env := b.env
	res = spokesResult{run: run, round: round}
	addr := fmt.Sprintf("127.0.0.1:%d", env.Port())
	name := sanitize(fmt.Sprintf("crowsnest %s round %d", run, round))
	p := env.NewProcess(name, b.cfg.binary.path, "--kubeconfig="+b.hub.Kubeconfig, "--web.listen-address="+addr, "--log.level=info",
		"--clusters.dir="+b.dirs[run.spokes])
	p.StopTimeout = crowsnestStopTimeout
	if b.cfg.memLimit != "" {
		p.Env = append(p.Env, "GOMEMLIMIT="+b.cfg.memLimit)
	}
	c := &Crowsnest{Process: p, URL: "http://" + addr, client: &http.Client{Timeout: 30 * time.Second}}
	defer c.client.CloseIdleConnections()
	pid := 0
	defer func() {
		if res.peakRSS == 0 {
			res.peakRSS, _ = procField(pid, "VmHWM")
		}
		for _, l := range strings.Split(p.LogTail(5000), "\n") {
			switch {
			case strings.Contains(l, "level=ERROR") && res.err == "":
				res.err = "crowsnest logged an error: " + l
			case strings.Contains(l, "level=WARN"):
				res.warnings = append(res.warnings, l)
			}
		}
		if err := p.Stop(); err != nil && res.err == "" {
			res.err = "stop: " + err.Error()
		}
	}()

	spokeCPU0 := procCPU(b.spoke.pid()) + procCPU(b.spokeEtcd.pid())
	hubCPU0 := procCPU(b.hub.pid()) + procCPU(b.hubEtcd.pid())
	start := time.Now()
	p.Start()
	pid = p.pid()
	deadline := start.Add(b.cfg.readyTimeout)
	lastLog := start
	for {
		if err := p.checkAlive(); err != nil {
			res.err = fmt.Sprintf("after %v: %v", time.Since(start).Round(time.Second), err)
			return res
		}
		if time.Now().After(deadline) {
			why := "/readyz never answered 200"
			if res.readyz > 0 {
				_, why = b.served(c, run)
			}
			res.err = fmt.Sprintf("not ready within %v: %s", b.cfg.readyTimeout, why)
			return res
		}
		if res.readyz == 0 {
			if c.ExpectStatus("/readyz", http.StatusOK) != nil {
				time.Sleep(scaleReadyPoll)
				continue
			}
			res.readyz = time.Since(start)
		}
		series, why := b.served(c, run)
		if why == "" {
			res.series = series
			break
		}
		if time.Since(lastLog) > 15*time.Second {
			lastLog = time.Now()
			t.Logf("%s: %s after %v", run, why, time.Since(start).Round(time.Second))
		}
		time.Sleep(spokesPoll)
	}
	res.ready = time.Since(start)
	res.cpu = procCPU(pid)
	res.startRSS, _ = procField(pid, "VmRSS")
	if at, cpu, ok := quietFor(pid, spokesQuietTimeout); ok {
		res.quiet, res.quietCPU = max(at.Sub(start), res.ready), max(cpu, res.cpu)
	} else {
		t.Logf("%s, round %d: crowsnest's CPU not quiet within %v", run, round, spokesQuietTimeout)
	}
	// The servers' CPU until now: the spoke's lists end by the quiet.
	res.spokeCPU = procCPU(b.spoke.pid()) + procCPU(b.spokeEtcd.pid()) - spokeCPU0
	res.hubCPU = procCPU(b.hub.pid()) + procCPU(b.hubEtcd.pid()) - hubCPU0
	last, err := c.Scrape()
	if err != nil {
		res.err = err.Error()
		return res
	}
	gcs0, _ := last.Value("go_gc_duration_seconds_count")
	for range scaleScrapes {
		time.Sleep(scaleScrapeGap)
		m, err := c.Scrape()
		if err != nil {
			res.err = err.Error()
			return res
		}
		last = m
	}
	// Idle after its start, crowsnest allocates next to nothing, so the
	// garbage of the spokes' lists stays in the heap until the runtime's
	// periodic GC (2 minutes after the last); and the runtime hands the
	// freed heap back to the OS only after the GC after that (the first
	// one's goal is still scaled by the start-up's). The memory is read
	// after the second GC that follows the quiet, once RSS stopped falling.
	for began := time.Now(); ; {
		if n, err := last.Value("go_gc_duration_seconds_count"); err == nil && n >= gcs0+spokesGCs {
			gc, _ := last.Value("go_memstats_last_gc_time_seconds")
			res.gc = time.Unix(0, int64(gc*1e9)).Sub(start)
			break
		}
		if time.Since(began) > spokesGCTimeout {
			t.Logf("%s, round %d: not %d GCs within %v of the quiet", run, round, spokesGCs, spokesGCTimeout)
			break
		}
		time.Sleep(scaleScrapeGap)
		m, err := c.Scrape()
		if err != nil {
			res.err = err.Error()
			return res
		}
		last = m
	}
	res.peakRSS, _ = procField(pid, "VmHWM")
	res.endRSS = settledRSS(pid)
	for watch := time.Now(); time.Since(watch) < b.cfg.settle; {
		time.Sleep(15 * time.Second)
		m, err := c.Scrape()
		if err != nil {
			res.err = err.Error()
			return res
		}
		idle, _ := m.Value("go_memstats_heap_idle_bytes")
		released, _ := m.Value("go_memstats_heap_released_bytes")
		inuse, _ := m.Value("go_memstats_heap_inuse_bytes")
		rss, _ := procField(pid, "VmRSS")
		t.Logf("%s, round %d: %v after the reading: RSS %s, heap in use %s, free heap kept %s", run, round,
			time.Since(watch).Round(time.Second), mib(rss), size(inuse), size(idle-released))
		res.endRSS = rss
	}
	res.sockets = sockets(pid)
	last, err = c.Scrape()
	if err != nil {
		res.err = err.Error()
		return res
	}
	var s scaleScrape
	s.gcGoal, _ = last.Value("go_memstats_next_gc_bytes")
	s.gogc, _ = last.Value("go_gc_gogc_percent")
	res.liveHeap = s.liveHeap()
	res.heapInuse, _ = last.Value("go_memstats_heap_inuse_bytes")
	idle, _ := last.Value("go_memstats_heap_idle_bytes")
	released, _ := last.Value("go_memstats_heap_released_bytes")
	res.heapKept = idle - released
	res.goroutines, _ = last.Value("go_goroutines")
	if build := last.Find("crowsnest_build_info"); len(build) == 1 {
		res.build = strings.TrimSpace(string(build[0].Metric["version"]) + " " + string(build[0].Metric["revision"]))
	}
	if sp := newScaleProfiler(b.cfg.pprofDir, 0); sp != nil {
		t.Logf("%s, round %d: heap profile: %s", run, round, sp.heap(c.URL, b.cfg.binary, scaleRun{name: fmt.Sprintf("%s round %d", run, round)}))
	}
	// Still what the spokes hold, and no more.
	if _, why := b.servedBy(last, run); why != "" {
		res.err = "after the scrapes: " + why
	}
	return res
}

// served scrapes crowsnest and returns how many spoke workloads it serves
// with their desired replicas, and what is missing ("" when nothing).
func (b *spokesBench) served(c *Crowsnest, run spokesRun) (int, string) {
	m, err := c.Scrape()
	if err != nil {
		return 0, err.Error()
	}
	return b.servedBy(m, run)
}

// servedBy checks a scrape against run: every watched spoke up, its app's
// StatefulSet and Job joined, the fleet's Deployments joined if the fleet
// app is deployed to a watched spoke, and no workload joined to an app of a
// spoke crowsnest does not watch.
func (b *spokesBench) servedBy(m *Metrics, run spokesRun) (int, string) {
	desired := map[string]int{} // app -> workloads with desired replicas
	fleet := 0                  // of the fleet's apps
	for _, s := range m.Find("crowsnest_app_workload_replicas", "state", "desired") {
		name := string(s.Metric["name"])
		desired[name]++
		if strings.HasPrefix(name, "app-") {
			fleet++
		}
	}
	jobs := map[string]int{}
	for _, s := range m.Find("crowsnest_app_workload_job_status", "status", "Complete") {
		if s.Value == 1 {
			jobs[string(s.Metric["name"])]++
		}
	}
	total := 0
	for _, n := range desired {
		total += n
	}
	var missing []string
	for k := range run.spokes {
		name := spokeName(k)
		if v, err := m.Value("crowsnest_cluster_up", "dest_server", b.servers[k]); err != nil || v != 1 {
			missing = append(missing, name+" not up")
		}
		if desired[name] != 1 || jobs[name] != 1 {
			missing = append(missing, fmt.Sprintf("%s: %d StatefulSets and %d complete Jobs joined, want 1 and 1", name, desired[name], jobs[name]))
		}
	}
	for k := run.spokes; k < b.maxSpokes; k++ {
		if name := spokeName(k); desired[name] != 0 || jobs[name] != 0 {
			missing = append(missing, fmt.Sprintf("%s (not watched) has %d workloads and %d Jobs joined", name, desired[name], jobs[name]))
		}
	}
	if ups := m.Find("crowsnest_cluster_up"); len(ups) != run.spokes {
		missing = append(missing, fmt.Sprintf("%d crowsnest_cluster_up series, want %d", len(ups), run.spokes))
	}
	want := 0
	if run.joined && run.spokes > 0 {
		want = b.cfg.workloads
	}
	if fleet != want {
		missing = append(missing, fmt.Sprintf("the fleet's apps have %d of %d Deployments joined", fleet, want))
	}
	if len(missing) > 0 {
		if len(missing) > 4 {
			missing = append(missing[:4], fmt.Sprintf("and %d more", len(missing)-4))
		}
		return total, strings.Join(missing, "; ")
	}
	return total, ""
}

// quietFor waits until process pid used at most spokesQuietCPU seconds of
// CPU in each of spokesQuietSeconds consecutive seconds, and returns when
// that quiet began and the CPU seconds pid had used then; ok is false if
// that did not happen within timeout.
func quietFor(pid int, timeout time.Duration) (since time.Time, cpu float64, ok bool) {
	deadline := time.Now().Add(timeout)
	prev, prevAt, quiet := procCPU(pid), time.Now(), 0
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		now, at := procCPU(pid), time.Now()
		if now-prev <= spokesQuietCPU {
			if quiet == 0 {
				since, cpu = prevAt, prev
			}
			quiet++
		} else {
			quiet = 0
		}
		if quiet >= spokesQuietSeconds {
			return since, cpu, true
		}
		prev, prevAt = now, at
	}
	return time.Time{}, 0, false
}

// settledRSS returns VmRSS of process pid once it moved less than
// spokesRSSStep over spokesRSSGap (or after spokesRSSTimeout).
func settledRSS(pid int) float64 {
	deadline := time.Now().Add(spokesRSSTimeout)
	rss, _ := procField(pid, "VmRSS")
	for time.Now().Before(deadline) {
		time.Sleep(spokesRSSGap)
		now, _ := procField(pid, "VmRSS")
		if now-rss < spokesRSSStep && rss-now < spokesRSSStep {
			return now
		}
		rss = now
	}
	return rss
}

// sockets counts the open sockets of process pid.
func sockets(pid int) int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

func (r spokesResult) String() string {
	s := fmt.Sprintf("%s, round %d: /readyz after %v, every spoke's series (%d workloads) after %v, %.1f s of CPU (spoke API server and etcd %.1f s, hub's %.1f s), quiet after %v (%.1f s of CPU), GC %d after %v; RSS %s when ready, %s settled after it, peak %s; live heap ~%s, heap in use %s, free heap kept %s; %.0f goroutines, %d sockets",
		r.run, r.round, r.readyz.Round(10*time.Millisecond), r.series, r.ready.Round(10*time.Millisecond), r.cpu, r.spokeCPU, r.hubCPU, r.quiet.Round(100*time.Millisecond), r.quietCPU,
		spokesGCs, r.gc.Round(time.Second), mib(r.startRSS), mib(r.endRSS), mib(r.peakRSS), size(r.liveHeap), size(r.heapInuse), size(r.heapKept), r.goroutines, r.sockets)
	if len(r.warnings) > 0 {
		s += fmt.Sprintf("; %d warnings logged, the first: %s", len(r.warnings), r.warnings[0])
	}
	if r.err != "" {
		s += "; FAILED: " + r.err
	}
	return s
}

// spokesRow is the medians of one run's starts that did not fail.
type spokesRow struct {
	run                                         spokesRun
	starts, failed                              int
	readyz, ready, quiet                        time.Duration
	quietCPU, spokeCPU                          float64
	startRSS, peakRSS, endRSS, liveHeap, gorout float64
	heapInuse, heapKept                         float64
	endRSSMin, endRSSMax                        float64 // the range of RSS settled
	sockets                                     float64
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func rowOf(run spokesRun, results []spokesResult) spokesRow {
	row := spokesRow{run: run}
	var readyz, ready, quiet, cpu, spokeCPU, startRSS, peak, end, live, inuse, kept, gor, sock []float64
	for _, r := range results {
		if r.run != run {
			continue
		}
		row.starts++
		if r.err != "" {
			row.failed++
			continue
		}
		readyz, ready, quiet = append(readyz, r.readyz.Seconds()), append(ready, r.ready.Seconds()), append(quiet, r.quiet.Seconds())
		cpu, spokeCPU = append(cpu, r.quietCPU), append(spokeCPU, r.spokeCPU)
		startRSS, peak, end = append(startRSS, r.startRSS), append(peak, r.peakRSS), append(end, r.endRSS)
		live, gor, sock = append(live, r.liveHeap), append(gor, r.goroutines), append(sock, float64(r.sockets))
		inuse, kept = append(inuse, r.heapInuse), append(kept, r.heapKept)
	}
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	row.readyz, row.ready, row.quiet = sec(median(readyz)), sec(median(ready)), sec(median(quiet))
	row.quietCPU, row.spokeCPU = median(cpu), median(spokeCPU)
	row.startRSS, row.peakRSS, row.endRSS, row.liveHeap = median(startRSS), median(peak), median(end), median(live)
	row.gorout, row.sockets, row.heapInuse, row.heapKept = median(gor), median(sock), median(inuse), median(kept)
	if len(end) > 0 {
		row.endRSSMin, row.endRSSMax = slices.Min(end), slices.Max(end)
	}
	return row
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// signedSize is size with a sign.
func signedSize(bytes float64) string {
	if bytes < 0 {
		return "−" + size(-bytes)
	}
	return size(bytes)
}

func (b *spokesBench) markdown(runs []spokesRun, results []spokesResult) string {
	var w strings.Builder
	cfg := b.cfg
	fmt.Fprintf(&w, "#### %s UTC: hub and spokes, %s Deployments in the spoke\n\n", b.started.Format("2006-01-02 15:04"), thousands(cfg.workloads))
	fmt.Fprintf(&w, "- Machine: %s; load average at the end %s; the whole benchmark took %v.\n", b.machine, b.machineEnd, b.wall.Round(time.Second))
	for _, r := range results {
		if r.build != "" {
			fmt.Fprintf(&w, "- crowsnest: %s (%s), crowsnest_build_info %s.\n", cfg.binary.name, cfg.binary.path, r.build)
			break
		}
	}
	memLimit := "none (no GOMEMLIMIT, no cgroup limit)"
	if cfg.memLimit != "" {
		memLimit = "GOMEMLIMIT=" + cfg.memLimit
	}
	fmt.Fprintf(&w, "- crowsnest's memory limit: %s.\n", memLimit)
	fmt.Fprintf(&w, "- Spoke: one kube-apiserver (own etcd) bound to 0.0.0.0, reached as spoke k at https://127.0.x.y:%d, each with its own cluster Secret, token and TLS server name; %s Deployments tracked to the fleet's %s apps (%s of JSON each as served), and a StatefulSet and a complete hook Job per spoke app (%d each). Setup %v; spoke kube-apiserver RSS %s after it, peak %s.\n",
		b.spoke.Port, thousands(cfg.workloads), thousands(b.fleet.apps), size(float64(b.deploymentJSON)), b.maxSpokes, b.setup.Round(time.Second), mib(b.spokeRSS), mib(b.spokeHWM))
	fmt.Fprintf(&w, "- Hub: %s Applications (the fleet's: 50 resources, 10 history entries, deployed to spoke-01; spoke-NN: deployed to spoke-NN). crowsnest's default workload kinds. Medians of %d starts each (rounds of every count). Quiet: from when crowsnest's CPU stayed under %.0f ms a second for %d s (every spoke's lists handled). Then %d scrapes 5 s apart, and a scrape every 5 s until %d GCs followed the quiet (idle, crowsnest collects its start-up's garbage at the runtime's periodic GC, 2 minutes after the last, and hands the freed heap back to the OS after the next one); RSS settled: once it moved less than 1 MiB in 5 s after them; heap in use, free heap kept (idle, not released) and live heap (the GC goal over 1 + GOGC/100) from the scrape after that.\n\n",
		thousands(b.fleet.apps+b.maxSpokes), cfg.starts, spokesQuietCPU*1000, spokesQuietSeconds, scaleScrapes, spokesGCs)
	fmt.Fprintln(&w, "| spokes | /readyz | every spoke's series | quiet | crowsnest CPU until quiet | spoke API server + etcd CPU | peak RSS | RSS when ready | RSS settled (range) | heap in use | free heap kept | live heap | goroutines | sockets | (RSS − RSS₀) / N |")
	fmt.Fprintln(&w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	rows := map[spokesRun]spokesRow{}
	for _, run := range runs {
		rows[run] = rowOf(run, results)
	}
	base := rows[runs[0]]
	for _, run := range runs {
		r := rows[run]
		per := "—"
		if run.spokes > 0 && r.endRSS > 0 {
			per = signedSize((r.endRSS - base.endRSS) / float64(run.spokes))
		}
		name := run.String()
		if r.failed > 0 {
			name += fmt.Sprintf(" (%d of %d starts FAILED)", r.failed, r.starts)
		}
		settled := mib(r.endRSS)
		if r.starts-r.failed > 1 {
			settled += fmt.Sprintf(" (%.0f–%.0f)", r.endRSSMin/(1<<20), r.endRSSMax/(1<<20))
		}
		fmt.Fprintf(&w, "| %s | %.2f s | %.2f s | %.1f s | %.1f s | %.1f s | %s | %s | %s | %s | %s | %s | %.0f | %.0f | %s |\n",
			name, r.readyz.Seconds(), r.ready.Seconds(), r.quiet.Seconds(), r.quietCPU, r.spokeCPU,
			mib(r.peakRSS), mib(r.startRSS), settled, size(r.heapInuse), size(r.heapKept), size(r.liveHeap), r.gorout, r.sockets, per)
	}

	// Per spoke: the slope over the joined counts (the fleet's series are
	// rendered once at every one of them), and the joined series apart.
	var ns, rss, peak, heap, inuse, gor, sock, quiet, cpu, spokeCPU []float64
	for _, run := range runs {
		if !run.joined || run.spokes == 0 {
			continue
		}
		r := rows[run]
		ns = append(ns, float64(run.spokes))
		rss, peak, heap = append(rss, r.endRSS), append(peak, r.peakRSS), append(heap, r.liveHeap)
		gor, sock, inuse = append(gor, r.gorout), append(sock, r.sockets), append(inuse, r.heapInuse)
		quiet, cpu, spokeCPU = append(quiet, r.quiet.Seconds()), append(cpu, r.quietCPU), append(spokeCPU, r.spokeCPU)
	}
	unjoined, joined1 := rows[spokesRun{1, false}], rows[spokesRun{1, true}]
	perRSS, perInuse, perHeap, perPeak := slope(ns, rss), slope(ns, inuse), slope(ns, heap), slope(ns, peak)
	// The joined series from the heap: the unjoined start's RSS keeps
	// more free heap (nothing allocates after its lists), which swamps them.
	joinInuse, joinHeap := joined1.heapInuse-unjoined.heapInuse, joined1.liveHeap-unjoined.liveHeap
	if cfg.workloads == 0 {
		joinInuse, joinHeap = 0, 0 // nothing to join: the difference is noise
	}
	fmt.Fprintf(&w, "\nPer spoke of %s Deployments (least-squares slope over %v spokes, each spoke reading all of them):\n\n", thousands(cfg.workloads), cfg.counts)
	fmt.Fprintf(&w, "- memory: %s heap in use, %s live heap, %s RSS settled, %s peak RSS (its clients, discovery, probe, informer caches and the tracker's copy of its workloads);\n",
		signedSize(perInuse), signedSize(perHeap), signedSize(perRSS), signedSize(perPeak))
	fmt.Fprintf(&w, "- the joined series of its %s Deployments (1 spoke, joined − not joined): %s heap in use, %s live heap; rendered once here at every count, once per spoke in a real fleet;\n",
		thousands(cfg.workloads), signedSize(joinInuse), signedSize(joinHeap))
	fmt.Fprintf(&w, "- so a spoke of %s workloads keeps ~%s of heap in use (%s live) resident, measured ~%s of RSS settled (with the free heap the runtime had not handed back yet), and peaks at ~%s during the start-up;\n",
		thousands(cfg.workloads), signedSize(perInuse+joinInuse), signedSize(perHeap+joinHeap), signedSize(perRSS+joinInuse), signedSize(perPeak+joinInuse))
	fmt.Fprintf(&w, "- %.1f goroutines and %.2f sockets; start-up %.2f s until quiet, %.2f s of crowsnest CPU and %.2f s of the spoke API server's (with etcd).\n",
		slope(ns, gor), slope(ns, sock), slope(ns, quiet), slope(ns, cpu), slope(ns, spokeCPU))
	fmt.Fprintf(&w, "- 100 spokes of %s workloads (0 spokes + 100 × per spoke): resident at least %s + 100 × %s = %s (RSS at 0 spokes plus the heap in use); RSS settled as measured %s + 100 × %s = %s; peak %s + 100 × %s = %s.\n",
		thousands(cfg.workloads),
		mib(base.endRSS), signedSize(perInuse+joinInuse), mib(base.endRSS+100*(perInuse+joinInuse)),
		mib(base.endRSS), signedSize(perRSS+joinInuse), mib(base.endRSS+100*(perRSS+joinInuse)),
		mib(base.peakRSS), signedSize(perPeak+joinInuse), mib(base.peakRSS+100*(perPeak+joinInuse)))
	return w.String()
}
