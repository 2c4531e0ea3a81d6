//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The scale benchmark (`make bench-scale`; docs/scale.md has the figures):
// a real etcd and kube-apiserver holding N Applications of realistic size,
// written as Argo CD writes them (spec server-side applied, status patched
// by the controller): R resources in status.resources and in the last
// sync's result, a full history, a tenth of the apps drifted (OutOfSync,
// a few resources OutOfSync); optionally Deployments tracked to them.
// crowsnest is started against it once per run (no apps, the first
// namespace, all apps, apps and workloads), and each run reports the time
// to ready (/readyz and every app's series served), its memory (VmHWM,
// VmRSS), the scrape time and size in each encoding (identity, gzip,
// OpenMetrics, OpenMetrics+gzip; median of several) and, on the run with
// all apps, the event-to-metric latency while a churner patches apps'
// statuses at a steady rate. It is heavy (from 10 minutes at 10,000 apps
// on 2 cores), so it runs only when asked:
//
//	CROWSNEST_SCALE=1 go test -count=1 -tags e2e -run '^TestScale$' -timeout 180m -v ./test/e2e/
//
// Knobs (environment; defaults in brackets):
//
//	CROWSNEST_SCALE_APPS [10000]          Applications
//	CROWSNEST_SCALE_RESOURCES [50]        resources per app (status and sync result)
//	CROWSNEST_SCALE_HISTORY [10]          history entries per app
//	CROWSNEST_SCALE_DRIFT [0.1]           share of apps OutOfSync
//	CROWSNEST_SCALE_WORKLOADS [0]         Deployments tracked to the apps (adds a run)
//	CROWSNEST_SCALE_WRITERS [16]          concurrent writers creating the objects
//	CROWSNEST_SCALE_BIN [this tree]       the crowsnest binary to measure
//	CROWSNEST_SCALE_COMPARE               another binary, measured after it on the same objects
//	CROWSNEST_SCALE_SCRAPES [5]           scrapes per encoding (the median is reported)
//	CROWSNEST_SCALE_CHURN_RATE [20]       status patches per second during the churn
//	CROWSNEST_SCALE_CHURN_DURATION [60s]  how long the churn lasts (0 turns it off)
//	CROWSNEST_SCALE_POLL_INTERVAL [250ms] the latency poller's scrape period (start to start)
//	CROWSNEST_SCALE_READY_TIMEOUT [15m]   how long one start may take to serve every app
//	CROWSNEST_SCALE_STARTS [3]            starts of crowsnest on every app (the later ones without churn): the
//	                                      API server's share of a start varies (its garbage collection)
//	CROWSNEST_SCALE_WATCH_CACHE [auto]    on or off: kube-apiserver's watch cache for Applications;
//	                                      auto is on up to 20,000 apps, off above (see scaleWatchCacheApps)
//	CROWSNEST_SCALE_LIST_PROBE [auto]     before crowsnest, time ways of listing every app: all; whole (the
//	                                      default with the watch cache: the API server alone serving
//	                                      crowsnest's first list, three times); off (the default without)
//	CROWSNEST_SCALE_REPORT                also write the Markdown report to this file
//	CROWSNEST_SCALE_PPROF                 a directory: fetch CPU (start-up) and heap profiles of the
//	                                      run with all apps, if the binary serves /debug/pprof
//	CROWSNEST_SCALE_PPROF_SECONDS [30]    the length of that CPU profile
//	CROWSNEST_SCALE_RULES [1]             after the run with all apps, the real Prometheus scrapes that crowsnest
//	                                      as two replicas and evaluates crowsnest's rules; each group's
//	                                      evaluation time is reported (scale_rules_test.go); 0 turns it off
//	CROWSNEST_SCALE_RULES_EVALS [6]       evaluations of every group measured
//	CROWSNEST_SCALE_RULES_INTERVAL [15s]  every rule group's evaluation interval
//
// A run that fails (crowsnest exits, is not ready in time, or the machine
// runs low on memory, when the harness stops it) is reported as such and the
// benchmark goes on; the test fails at the end.

const (
	// scaleAppsPerNamespace: Applications live in namespaces apps-0,
	// apps-1, ... of this many each, so --namespaces=apps-0 watches a
	// fleet of this size.
	scaleAppsPerNamespace = 1000
	// scaleWorkloadNamespaces is how many namespaces (team-000, ...) the
	// Deployments are spread over.
	scaleWorkloadNamespaces = 100
	// scaleScrapes is how many identity scrapes, scaleScrapeGap apart,
	// follow the start before the memory is read.
	scaleScrapes   = 3
	scaleScrapeGap = 5 * time.Second
	// scaleReadyPoll is the period of the /readyz poll; scaleSeriesPoll the
	// pause between the full scrapes that wait for every app's series once
	// /readyz answers (each scrape costs crowsnest CPU, so not shorter).
	scaleReadyPoll  = 100 * time.Millisecond
	scaleSeriesPoll = 500 * time.Millisecond
	// scaleMinAvailable: below this much available memory on the machine
	// the harness stops crowsnest and records the run as failed, before
	// the kernel's OOM killer picks a victim (maybe the API server).
	scaleMinAvailable = 1 << 30
	// scaleHeadroom is the share of the chart's memory limit the largest
	// run may use at its peak: a quarter stays spare. Checked for fleets up
	// to the chart's sizing (scaleChartApps).
	scaleHeadroom  = 0.75
	scaleChartApps = 10000
	// scaleWatchCacheApps: above this many apps the API server's watch
	// cache for Applications is off by default. It holds every object
	// decoded (some 600 KiB of kube-apiserver RSS per app of 50 resources
	// were measured at 10,000 apps), which would not fit 50,000 apps
	// beside crowsnest in 24 GiB; without it lists are read from etcd and
	// watches are etcd's, as for a resource with --watch-cache-sizes=...#0.
	scaleWatchCacheApps = 20000
)

// scaleConfig is the benchmark's parameters, from the environment.
type scaleConfig struct {
	fleet         scaleFleet
	scrapes       int
	churnRate     float64
	churnDuration time.Duration
	pollInterval  time.Duration
	readyTimeout  time.Duration
	starts        int // starts of the all-apps run: the start-up figures vary
	watchCache    bool
	report        string
	pprofDir      string
	pprofSeconds  int
	rules         bool // measure the rules' evaluation (CROWSNEST_SCALE_RULES)
	rulesEvals    int
	rulesInterval time.Duration
}

func scaleConfigFromEnv(t *testing.T) scaleConfig {
	t.Helper()
	c := scaleConfig{
		fleet: scaleFleet{
			apps:      envInt(t, "CROWSNEST_SCALE_APPS", 10000),
			workloads: envInt(t, "CROWSNEST_SCALE_WORKLOADS", 0),
			resources: envInt(t, "CROWSNEST_SCALE_RESOURCES", 50),
			history:   envInt(t, "CROWSNEST_SCALE_HISTORY", 10),
			drift:     envFloat(t, "CROWSNEST_SCALE_DRIFT", 0.1),
			writers:   envInt(t, "CROWSNEST_SCALE_WRITERS", 16),
		},
		scrapes:       envInt(t, "CROWSNEST_SCALE_SCRAPES", 5),
		churnRate:     envFloat(t, "CROWSNEST_SCALE_CHURN_RATE", 20),
		churnDuration: envDuration(t, "CROWSNEST_SCALE_CHURN_DURATION", time.Minute),
		pollInterval:  envDuration(t, "CROWSNEST_SCALE_POLL_INTERVAL", 250*time.Millisecond),
		readyTimeout:  envDuration(t, "CROWSNEST_SCALE_READY_TIMEOUT", 15*time.Minute),
		starts:        envInt(t, "CROWSNEST_SCALE_STARTS", 3),
		report:        os.Getenv("CROWSNEST_SCALE_REPORT"),
		pprofDir:      os.Getenv("CROWSNEST_SCALE_PPROF"),
		pprofSeconds:  envInt(t, "CROWSNEST_SCALE_PPROF_SECONDS", 30),
		rules:         envInt(t, "CROWSNEST_SCALE_RULES", 1) != 0,
		rulesEvals:    envInt(t, "CROWSNEST_SCALE_RULES_EVALS", 6),
		rulesInterval: envDuration(t, "CROWSNEST_SCALE_RULES_INTERVAL", 15*time.Second),
	}
	f := c.fleet
	switch v := os.Getenv("CROWSNEST_SCALE_WATCH_CACHE"); v {
	case "", "auto":
		c.watchCache = f.apps <= scaleWatchCacheApps
	case "on", "off":
		c.watchCache = v == "on"
	default:
		t.Fatalf("CROWSNEST_SCALE_WATCH_CACHE=%q: want on, off or auto", v)
	}
	if f.apps < 1 || f.workloads < 0 || f.resources < 1 || f.history < 1 || f.drift < 0 || f.drift > 1 || f.writers < 1 ||
		c.scrapes < 1 || c.churnRate <= 0 || c.churnDuration < 0 || c.pollInterval <= 0 || c.readyTimeout <= 0 || c.starts < 1 ||
		c.rulesEvals < 1 || c.rulesInterval < time.Second {
		t.Fatalf("scale parameters out of range: %+v", c)
	}
	if f.apps > 100000 {
		t.Fatalf("CROWSNEST_SCALE_APPS=%d: app names have five digits", f.apps)
	}
	return c
}

func TestScale(t *testing.T) {
	if os.Getenv("CROWSNEST_SCALE") == "" {
		t.Skip("the scale benchmark runs only with CROWSNEST_SCALE=1 (make bench-scale): it takes from 10 minutes")
	}
	cfg := scaleConfigFromEnv(t)
	fleet := cfg.fleet
	began := time.Now()
	rep := &scaleReport{cfg: cfg, started: began.UTC()}
	rep.machine = describeMachine()
	t.Logf("machine: %s; GOMEMLIMIT=%q in crowsnest's environment", rep.machine, os.Getenv("GOMEMLIMIT"))

	binaries := []scaleBinary{{"this tree", bin.crowsnest}}
	if p := os.Getenv("CROWSNEST_SCALE_BIN"); p != "" {
		path, err := executable(p)
		if err != nil {
			t.Fatalf("CROWSNEST_SCALE_BIN: %v", err)
		}
		binaries[0] = scaleBinary{filepath.Base(path), path}
	}
	if p := os.Getenv("CROWSNEST_SCALE_COMPARE"); p != "" {
		path, err := executable(p)
		if err != nil {
			t.Fatalf("CROWSNEST_SCALE_COMPARE: %v", err)
		}
		name := "compare: " + filepath.Base(path)
		if name == "compare: "+binaries[0].name {
			name = "compare: " + path
		}
		binaries = append(binaries, scaleBinary{name, path})
	}

	env := NewEnv(t)
	etcd := env.NewEtcd()
	// The objects and their revisions until the API server compacts them
	// (every 5 minutes) outgrow etcd's default 2 GiB quota: some 100 KiB
	// per app (two writes, a churn patch or two) plus room.
	quota := max(8<<30, int64(fleet.apps)*256<<10)
	etcd.Args = append(etcd.Args, fmt.Sprintf("--quota-backend-bytes=%d", quota))
	etcd.Start()
	kas := env.NewKubeAPIServer(etcd)
	if !cfg.watchCache {
		kas.Args = append(kas.Args, "--watch-cache-sizes=applications.argoproj.io#0")
	}
	kas.Start()
	kas.InstallArgoCDCRDs()

	start := time.Now()
	fleet.create(t, kas)
	rep.setup = time.Since(start)
	rep.appJSON, rep.appManaged = fleet.logSizes(t, kas)
	rep.etcdDB = etcdDBSize(etcd)
	rep.kasRSS, _ = procField(kas.pid(), "VmRSS")
	rep.etcdRSS, _ = procField(etcd.pid(), "VmRSS")
	t.Logf("created %d Applications (%d resources, %d history entries, %.0f%% drifted) and %d Deployments in %v with %d writers (%.0f objects/s); etcd database %s; kube-apiserver RSS %s, etcd RSS %s",
		fleet.apps, fleet.resources, fleet.history, fleet.drift*100, fleet.workloads, rep.setup.Round(time.Second), fleet.writers,
		float64(fleet.apps+fleet.workloads)/rep.setup.Seconds(), mib(rep.etcdDB), mib(rep.kasRSS), mib(rep.etcdRSS))

	// The probe shows what the API server alone needs to serve the list
	// crowsnest's start waits for: the floor under its time to ready.
	// Whole lists only, and only with the watch cache by default: without
	// it they come from etcd, and at 50,000 apps one timed out after 60 s.
	probe := os.Getenv("CROWSNEST_SCALE_LIST_PROBE")
	if probe == "" || probe == "auto" {
		probe = "off"
		if cfg.watchCache {
			probe = "whole"
		}
	}
	switch probe {
	case "off":
	case "all", "1", "whole":
		rep.lists = probeLists(t, etcd, kas, probe)
	default:
		t.Fatalf("CROWSNEST_SCALE_LIST_PROBE=%q: want all, whole, off or auto", probe)
	}

	firstNS := min(fleet.apps, scaleAppsPerNamespace)
	runs := []scaleRun{
		{name: "none", flags: []string{"--namespaces=scale-empty", "--workloads.kinds="}},
		{name: "first namespace", apps: firstNS, flags: []string{"--namespaces=apps-0", "--workloads.kinds="}},
		{name: "apps", apps: fleet.apps, churn: cfg.churnDuration > 0, profile: true, rules: cfg.rules, flags: []string{"--workloads.kinds="}},
	}
	for k := 2; k <= cfg.starts; k++ {
		runs = append(runs, scaleRun{name: fmt.Sprintf("apps, start %d", k), apps: fleet.apps, flags: []string{"--workloads.kinds="}})
	}
	if fleet.workloads > 0 {
		runs = append(runs, scaleRun{name: "apps and workloads", apps: fleet.apps, workloads: fleet.workloads, flags: []string{"--workloads.kinds=deployments"}})
	}
	for _, b := range binaries {
		for _, r := range runs {
			res := measureScale(t, env, etcd, kas, b, r, cfg)
			t.Logf("%s", res)
			rep.results = append(rep.results, res)
		}
	}
	rep.kasHWM, _ = procField(kas.pid(), "VmHWM")
	rep.etcdHWM, _ = procField(etcd.pid(), "VmHWM")
	rep.etcdDBEnd = etcdDBSize(etcd)
	rep.wall = time.Since(began)
	rep.machineEnd = loadAverage()

	md := rep.markdown()
	t.Logf("report:\n%s", md)
	if cfg.report != "" {
		if err := os.WriteFile(cfg.report, []byte(md), 0o644); err != nil {
			t.Errorf("write the report: %v", err)
		} else {
			t.Logf("report written to %s", cfg.report)
		}
	}

	for _, r := range rep.results {
		if r.err != "" {
			t.Errorf("%s, %s: %s", r.binary, r.run, r.err)
		}
		if r.rules == nil {
			continue
		}
		if r.rules.err != "" {
			t.Errorf("%s, %s: rules: %s", r.binary, r.run, r.rules.err)
		}
		for _, g := range r.rules.groups {
			if m := percentile(g.evals, 50); fleet.apps <= scaleChartApps && m > rulesGroupBudget {
				t.Errorf("%s: rule group %s evaluated in %v (median of %d) over %d apps of %d replicas, above %v",
					r.binary, g.name, m, len(g.evals), fleet.apps, r.rules.replicas, rulesGroupBudget)
			}
		}
	}
	if fleet.apps <= scaleChartApps {
		limit := chartMemoryLimit(t)
		target := rep.results[len(runs)-1]
		if budget := scaleHeadroom * limit; target.peakRSS > budget {
			t.Errorf("%d apps and %d workloads peaked at %s RSS, above %.0f%% of the chart's memory limit %s (%s)",
				fleet.apps, fleet.workloads, mib(target.peakRSS), scaleHeadroom*100, mib(limit), mib(budget))
		} else {
			t.Logf("peak RSS %s is %.0f%% of the chart's memory limit %s", mib(target.peakRSS), 100*target.peakRSS/limit, mib(limit))
		}
	}
}

// scaleBinary is a crowsnest binary the benchmark measures.
type scaleBinary struct{ name, path string }

// scaleRun is one start of crowsnest: which apps and workloads it watches.
type scaleRun struct {
	name            string
	apps, workloads int  // expected: the apps served and the workloads joined to them
	churn           bool // measure the event-to-metric latency
	profile         bool // fetch profiles (CROWSNEST_SCALE_PPROF)
	rules           bool // measure the rules' evaluation over its series
	flags           []string
}

// scaleResult is what one run measured; sizes in bytes.
type scaleResult struct {
	binary, run     string
	apps, workloads int
	err             string // why the run failed; empty if it did not
	load            string // the load average when it started
	build           string // crowsnest_build_info's version and revision
	readyz          time.Duration
	ready           time.Duration // from start until every app's series were served
	readyStep       time.Duration // the last wait's scrape time and pause: the resolution of ready
	cpuReady        float64       // crowsnest's CPU seconds (user+system) until ready
	kasCPU, etcdCPU float64       // kube-apiserver's and etcd's CPU seconds meanwhile (the lists)
	peakRSS         float64       // VmHWM after the scrapes: the peak, start-up included
	startRSS        float64       // VmRSS when ready
	endRSS          float64       // VmRSS after the scrapes
	endAnon         float64       // RssAnon after the scrapes: RSS without the binary's mapped pages
	heapInuse       float64       // go_memstats_heap_inuse_bytes of the last scrape
	liveHeap        float64       // the heap live at the last GC of the last scrape: its goal (go_memstats_next_gc_bytes) over 1 + GOGC/100 (go_gc_gogc_percent)
	encodings       []encodingResult
	churn           *churnResult
	finalHWM        float64 // VmHWM at the end of the run (churn included)
	finalRSS        float64 // VmRSS at the end of the run
	rules           *rulesResult
}

func (r scaleResult) String() string {
	if r.err != "" && r.ready == 0 {
		return fmt.Sprintf("%s, %s (%d apps, %d workloads): FAILED: %s; peak RSS %s", r.binary, r.run, r.apps, r.workloads, r.err, mib(r.peakRSS))
	}
	s := fmt.Sprintf("%s, %s (%d apps, %d workloads): /readyz after %v, every app's series after %v (±%v), %.1f s of CPU (kube-apiserver %.1f s, etcd %.1f s); peak RSS %s, RSS %s when ready and %s after %d scrapes (anonymous %s), heap in use %s, live heap ~%s",
		r.binary, r.run, r.apps, r.workloads, r.readyz.Round(100*time.Millisecond), r.ready.Round(100*time.Millisecond), r.readyStep.Round(100*time.Millisecond),
		r.cpuReady, r.kasCPU, r.etcdCPU, mib(r.peakRSS), mib(r.startRSS), mib(r.endRSS), scaleScrapes, mib(r.endAnon), mib(r.heapInuse), mib(r.liveHeap))
	for _, e := range r.encodings {
		s += fmt.Sprintf("; %s %s in %v", e.name, size(float64(e.bytes)), e.median.Round(time.Millisecond))
	}
	if r.churn != nil {
		s += "; churn: " + r.churn.String()
	}
	if r.rules != nil {
		s += "; " + r.rules.String()
	}
	if r.err != "" {
		s += "; FAILED: " + r.err
	}
	return s
}

// measureScale starts crowsnest, waits until it serves what run expects,
// scrapes it a few times, reads its memory, times a scrape in each encoding
// and, if the run asks for it, measures the event-to-metric latency under
// churn. A failure is recorded in the result, not fatal.
func measureScale(t *testing.T, env *Env, etcd *Etcd, kas *KubeAPIServer, b scaleBinary, run scaleRun, cfg scaleConfig) (res scaleResult) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", env.Port())
	args := append([]string{"--kubeconfig=" + kas.Kubeconfig, "--web.listen-address=" + addr, "--log.level=info"}, run.flags...)
	p := env.NewProcess(sanitize("crowsnest "+b.name+" "+run.name), b.path, args...)
	p.StopTimeout = crowsnestStopTimeout
	// A scrape of 10,000 apps is tens of MiB.
	c := &Crowsnest{Process: p, URL: "http://" + addr, client: &http.Client{Timeout: 2 * time.Minute}}
	defer c.client.CloseIdleConnections()

	res = scaleResult{binary: b.name, run: run.name, apps: run.apps, workloads: run.workloads, load: loadAverage()}
	pid := 0
	defer func() {
		// The peak so far, also for a failed run (0 once it has exited).
		if hwm, ok := procField(pid, "VmHWM"); ok {
			if res.rules == nil { // else read before Prometheus scraped it
				res.finalHWM = hwm
				res.finalRSS, _ = procField(pid, "VmRSS")
			}
			if res.peakRSS == 0 {
				res.peakRSS = hwm
			}
		}
		if err := p.Stop(); err != nil && res.err == "" {
			res.err = "stop: " + err.Error()
		}
	}()
	var prof *scaleProfiler
	if run.profile {
		prof = newScaleProfiler(cfg.pprofDir, cfg.pprofSeconds)
	}
	kasCPU0, etcdCPU0 := procCPU(kas.pid()), procCPU(etcd.pid())
	start := time.Now()
	p.Start()
	pid = p.pid()
	if prof != nil {
		prof.startCPU(c.URL, b, run)
		defer func() { t.Logf("%s, %s: CPU profile: %s", b.name, run.name, prof.wait()) }()
	}
	deadline := start.Add(cfg.readyTimeout)
	lastLog := start
	for {
		if err := p.checkAlive(); err != nil {
			res.err = fmt.Sprintf("after %v: %v", time.Since(start).Round(time.Second), err)
			return res
		}
		if avail := memAvailable(); avail > 0 && avail < scaleMinAvailable {
			res.err = fmt.Sprintf("stopped after %v: the machine has %s available (crowsnest RSS %s)",
				time.Since(start).Round(time.Second), mib(avail), mib(must(procField(pid, "VmRSS"))))
			return res
		}
		if time.Now().After(deadline) {
			res.err = fmt.Sprintf("did not serve %d apps and %d workloads within %v", run.apps, run.workloads, cfg.readyTimeout)
			return res
		}
		if res.readyz == 0 {
			if c.ExpectStatus("/readyz", http.StatusOK) != nil {
				time.Sleep(scaleReadyPoll)
				continue
			}
			res.readyz = time.Since(start)
		}
		began := time.Now()
		s, err := c.scaleScrape()
		if err == nil && s.apps == run.apps && s.workloads == run.workloads {
			res.readyStep = time.Since(began) + scaleSeriesPoll
			res.build = s.build
			break
		}
		if time.Since(lastLog) > 15*time.Second {
			lastLog = time.Now()
			if err != nil {
				t.Logf("%s: %v", run.name, err)
			} else {
				t.Logf("%s: serving %d of %d apps and %d of %d workloads after %v", run.name, s.apps, run.apps, s.workloads, run.workloads, time.Since(start).Round(time.Second))
			}
		}
		time.Sleep(scaleSeriesPoll)
	}
	res.ready = time.Since(start)
	res.cpuReady = procCPU(pid)
	res.kasCPU, res.etcdCPU = procCPU(kas.pid())-kasCPU0, procCPU(etcd.pid())-etcdCPU0
	res.startRSS, _ = procField(pid, "VmRSS")
	var last scaleScrape
	for range scaleScrapes {
		time.Sleep(scaleScrapeGap)
		s, err := c.scaleScrape()
		if err != nil {
			res.err = err.Error()
			return res
		}
		last = s
	}
	res.heapInuse = last.heapInuse
	res.liveHeap = last.liveHeap()
	res.endRSS, _ = procField(pid, "VmRSS")
	res.endAnon, _ = procField(pid, "RssAnon")
	res.peakRSS, _ = procField(pid, "VmHWM")
	if prof != nil {
		t.Logf("%s, %s: heap profile: %s", b.name, run.name, prof.heap(c.URL, b, run))
	}

	encodings, err := measureEncodings(c.URL, pid, run.apps, cfg.scrapes)
	res.encodings = encodings
	if err != nil {
		res.err = err.Error()
		return res
	}
	if run.churn {
		ch, err := churn(t, kas, c.URL, pid, cfg)
		res.churn = ch
		if err != nil {
			res.err = "churn: " + err.Error()
		}
	}
	if run.rules {
		// The run's own figures end here: Prometheus' scrapes below are
		// not the churn's.
		res.finalHWM, _ = procField(pid, "VmHWM")
		res.finalRSS, _ = procField(pid, "VmRSS")
		res.rules = measureRules(env, c.URL, b.name, run.apps, cfg)
		t.Logf("%s, %s: %s", b.name, run.name, res.rules)
	}
	return res
}

// scaleScrape is what the benchmark reads from one scrape.
type scaleScrape struct {
	apps, workloads int // apps with a sync status; workloads with desired replicas
	heapInuse       float64
	gcGoal          float64 // go_memstats_next_gc_bytes
	gogc            float64 // go_gc_gogc_percent; 0 when not exposed
	bytes           int
	build           string // crowsnest_build_info's version and revision
}

// liveHeap is the heap live at the last GC: the GC's goal is that times
// 1 + GOGC/100 (GOGC 100 when the binary does not say; crowsnest's default
// is 50 since --runtime.gogc).
func (s scaleScrape) liveHeap() float64 {
	gogc := s.gogc
	if gogc <= 0 {
		gogc = 100
	}
	return s.gcGoal / (1 + gogc/100)
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
		case strings.HasPrefix(line, "go_gc_gogc_percent "):
			s.gogc, _ = strconv.ParseFloat(strings.TrimPrefix(line, "go_gc_gogc_percent "), 64)
		case strings.HasPrefix(line, "crowsnest_build_info{"):
			s.build = strings.TrimSpace(labelValue(line, "version") + " " + labelValue(line, "revision"))
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("scrape: %w", err)
	}
	return s, nil
}

// labelValue returns the value of label key in a series line of the text
// format (no escapes expected in the values the benchmark reads).
func labelValue(line, key string) string {
	for _, sep := range []string{"{", ","} {
		if _, rest, ok := strings.Cut(line, sep+key+`="`); ok {
			v, _, _ := strings.Cut(rest, `"`)
			return v
		}
	}
	return ""
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

// procField reads a memory figure (VmRSS, VmHWM, RssAnon) of
// /proc/PID/status, in bytes; false if the process is gone.
func procField(pid int, field string) (float64, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
					return kb * 1024, true
				}
			}
		}
	}
	return 0, false
}

func must(v float64, _ bool) float64 { return v }

// procCPU is the CPU time a process used so far (user and system), in
// seconds; 0 if it is gone.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command may hold spaces; the fields after it are fixed: utime
	// and stime are the 12th and 13th after the state.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

// memAvailable is the machine's MemAvailable in bytes; 0 if unknown.
func memAvailable() float64 {
	return meminfo("MemAvailable")
}

func meminfo(field string) float64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// etcdDBSize reads etcd's database size from its metrics; 0 if unknown.
func etcdDBSize(etcd *Etcd) float64 {
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(etcd.ClientURL + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "etcd_mvcc_db_total_size_in_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// describeMachine names the CPU, memory, load, Go and server versions and
// the commit of the tree, for the record.
func describeMachine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kasVersion, err := requiredVersion(filepath.Join(repoRoot, kubeAPIServerModule), "k8s.io/kubernetes")
	if err != nil {
		kasVersion = "?"
	}
	etcdVersion := "?"
	if out, err := exec.Command(bin.etcd, "--version").Output(); err == nil {
		etcdVersion = strings.TrimPrefix(strings.SplitN(string(out), "\n", 2)[0], "etcd Version: ")
	}
	commit := "?"
	if out, err := command(bin.repoRoot, "git", "describe", "--always", "--dirty", "--abbrev=12"); err == nil {
		commit = strings.TrimSpace(out)
	}
	return fmt.Sprintf("%d CPUs (%s), %.1f GiB RAM, load average %s, %s (test), kube-apiserver %s, etcd %s, tree at %s",
		runtime.NumCPU(), model, meminfo("MemTotal")/(1<<30), loadAverage(), runtime.Version(), kasVersion, etcdVersion, commit)
}

func mib(bytes float64) string { return fmt.Sprintf("%.0f MiB", bytes/(1<<20)) }

// size renders bytes in KiB below a MiB, else in MiB with a decimal.
func size(bytes float64) string {
	if bytes < 1<<20 {
		return fmt.Sprintf("%.0f KiB", bytes/1024)
	}
	return fmt.Sprintf("%.1f MiB", bytes/(1<<20))
}

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

func envFloat(t *testing.T, name string, def float64) float64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) {
		t.Fatalf("%s: not a number: %q", name, v)
	}
	return f
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// percentile returns the p-th percentile (0 to 100, nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}
