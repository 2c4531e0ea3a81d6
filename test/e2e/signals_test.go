//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	appclient "github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned/typed/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// signalTimeout bounds one step of the signals scenarios: Argo CD
	// acting on an operation, crowsnest showing it.
	signalTimeout = time.Minute
	// controllerRestartTimeout bounds a restarted application controller
	// syncing its caches and finishing the operation that waited for it.
	controllerRestartTimeout = 2 * time.Minute
	// quietPeriod is how long after crowsnest counted a terminated sync
	// nothing may page for it.
	quietPeriod = 15 * time.Second
	// pendingHold is how long a pending sync must stay pending while the
	// controller is down.
	pendingHold = 3 * time.Second
)

// The Applications of the signals scenarios, one per scenario, each in an
// environment (and a namespace) of its own name.
const (
	appTerminated = "signals-terminated" // a sync held by its PreSync hook, then terminated
	appFailing    = "signals-failing"    // a sync that fails: it must page (the control)
	appDryRun     = "signals-dryrun"     // a real sync, then a dry run
	appPending    = "signals-pending"    // a sync asked for while the controller is down
	appHeldDryRun = "signals-held"       // a real sync, then a dry run the stopped controller holds
	appFrozen     = "signals-frozen"     // prod, in a project whose deny window freezes it, then drifted
	appMulti      = "signals-multi"      // two sources: the plain ConfigMap and another one
	appRelease    = "signals-release"    // prod, synced by hand: a merge, a hand edit, a rollback
)

// frozenProject is the AppProject of appFrozen: its sync windows are the
// change freeze the scenario opens and closes.
const frozenProject = "frozen"

// signalsApps maps each app to its path in the manifests repository.
func signalsApps() map[string]string {
	return map[string]string{
		appTerminated: "hook",
		appFailing:    "invalid",
		appDryRun:     "plain",
		appPending:    "plain",
		appHeldDryRun: "plain",
		appFrozen:     "plain",
		appMulti:      "plain", // and "extra": see createApp
		appRelease:    "release",
	}
}

// signalsManifests are the files of the manifests repository. The PreSync
// hook Job never finishes: this cluster has no Job controller (and the
// signals tests start no stand-in controllers), so the Job never gets a
// status and Argo CD sees it Progressing, its hook Running. The invalid
// ConfigMap's name is refused by the API server, which fails the sync.
func signalsManifests() map[string]string {
	return map[string]string{
		"plain/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  release: r1
`,
		"hook/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  release: r1
`,
		"hook/migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    argocd.argoproj.io/hook: PreSync
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "registry.example.com/shop/migrate:1.0"}]
`,
		"extra/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: extra-settings
data:
  feature: "on"
`,
		"release/config.yaml": releaseManifests("r1"),
		"invalid/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: Not_A_Valid_Name
data:
  release: r1
`,
	}
}

// signalsEnv is what the signals scenarios share: one kube-apiserver, one
// real Argo CD, crowsnest paging one Alertmanager directly, and a
// Prometheus with crowsnest's rules (not sending to Alertmanager, so the
// Alertmanager holds crowsnest's direct pages only; the rules' alerts are
// read from Prometheus's ALERTS series).
type signalsEnv struct {
	kas      *KubeAPIServer
	argo     *ArgoCD
	apps     appclient.ApplicationInterface
	revision string // the manifests repository's one commit
	repoURL  string // the manifests repository
	cn       *Crowsnest
	prom     *Prometheus
	am       *Alertmanager // direct pages only
	// amBoth takes the direct pages and Prometheus' alerts, as one
	// kube-prometheus-stack Alertmanager does.
	amBoth  *Alertmanager
	obs     *observer
	env     *Env
	rec     *Process // crowsnest record, with -update-recordings
	recPath string
}

// TestSignals checks the operation signals crowsnest derives from what a
// person does to a sync, against the real Argo CD application controller,
// driven as its API server drives it:
//  1. a sync terminated with terminate-op counts as Terminated, never as
//     Failed, and pages nobody, while a failed sync next to it does;
//  2. a dry run after a real sync counts as a dry run and moves none of the
//     sync counts, timestamps and durations;
//  3. a sync asked for while the application controller is down shows as
//     Pending, with its pending-since time, until the controller runs it;
//  4. a dry run asked for while the controller is down leaves the phase
//     of the real sync before it (not Pending), and once run counts as a
//     dry run only, as in 2;
//  5. a prod app drifted while a deny sync window of its project is open
//     shows as held, and CrowsnestProdDrift stays quiet (not even pending)
//     until the window lets manual syncs through (manualSync: true);
//  6. a multi-source app's sync carries both sources' revisions (Argo CD
//     fills only revisions[] then) and its series show both sources;
//  7. a prod app synced by hand: a merge waiting for its sync and a
//     rollback are awaiting sync, not drift, and CrowsnestProdDrift stays
//     quiet; a hand edit is live drift and pages, also while a release
//     waits.
func TestSignals(t *testing.T) {
	start := time.Now()
	s := startSignalsEnv(t)
	ctx := t.Context()
	t.Run("terminated sync does not page", func(t *testing.T) { s.terminatedSync(ctx, t) })
	t.Run("dry run changes nothing", func(t *testing.T) { s.dryRun(ctx, t) })
	t.Run("pending while the controller is down", func(t *testing.T) { s.pendingWhileControllerDown(ctx, t) })
	t.Run("dry run waiting for the controller keeps the phase", func(t *testing.T) { s.heldDryRun(ctx, t) })
	t.Run("a deny window holds prod drift from paging", func(t *testing.T) { s.frozenDrift(ctx, t) })
	t.Run("a multi-source app shows both sources and both revisions", func(t *testing.T) { s.multiSource(ctx, t) })
	t.Run("auto-sync turned off with automated.enabled false breaks no prod policy", func(t *testing.T) { s.pausedAutoSync(ctx, t) })
	t.Run("a Source Hydrator app shows its hydrations, their SHAs and a failure", func(t *testing.T) { s.hydrator(ctx, t) })
	// Last: its merge moves main for every app of the repository.
	t.Run("a prod release awaiting its sync and a rollback are no drift; a hand edit is", func(t *testing.T) { s.releaseAwaitingSync(ctx, t) })
	if *updateRecordings {
		s.saveDemo(ctx, t)
	}
	t.Logf("TestSignals took %v", time.Since(start).Round(time.Second))
}

func startSignalsEnv(t *testing.T) *signalsEnv {
	t.Helper()
	start := time.Now()
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	argo := env.StartArgoCD(kas)
	s := &signalsEnv{env: env, kas: kas, argo: argo, apps: kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)}
	if *updateRecordings {
		s.recPath = filepath.Join(env.Dir("recordings"), "signals.jsonl")
		s.rec = env.NewProcess("crowsnest-record", bin.crowsnest, "record", "--kubeconfig="+kas.Kubeconfig, "--out="+s.recPath)
		s.rec.Start()
	}
	repoURL, revision := newManifestRepo(t, env.Dir("git"), signalsManifests())
	s.repoURL, s.revision = repoURL, revision
	ctx, cancel := context.WithTimeout(t.Context(), apiCallTimeout)
	defer cancel()
	if _, err := kas.ArgoCD().ArgoprojV1alpha1().AppProjects(argoCDNamespace).Create(ctx, &v1alpha1.AppProject{
		ObjectMeta: metav1.ObjectMeta{Name: frozenProject, Namespace: argoCDNamespace},
		Spec: v1alpha1.AppProjectSpec{
			SourceRepos:  []string{"*"},
			Destinations: []v1alpha1.ApplicationDestination{{Server: "*", Namespace: "*"}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create AppProject %s: %v", frozenProject, err)
	}

	var cfg strings.Builder
	cfg.WriteString("environments:\n")
	apps := signalsApps()
	for _, name := range slices.Sorted(maps.Keys(apps)) {
		fmt.Fprintf(&cfg, "  - env: %s\n    match: {name: %s}\n", envOf(name), name)
		kas.CreateNamespace(name)
		s.createApp(t, name, repoURL, apps[name])
	}
	// The v3 scenarios create their apps themselves.
	for _, name := range []string{appPaused, appHydrated} {
		fmt.Fprintf(&cfg, "  - env: %s\n    match: {name: %s}\n", envOf(name), name)
	}
	cfgPath := filepath.Join(env.Dir("crowsnest"), "crowsnest.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s.am = env.StartAlertmanager()
	s.amBoth = env.StartAlertmanager()
	s.cn = env.NewCrowsnest(kas.Kubeconfig, "--config.file="+cfgPath, "--metrics.per-app-histograms",
		"--alertmanager.url="+s.am.URL, "--alertmanager.url="+s.amBoth.URL, "--alertmanager.evaluation-interval=250ms",
		"--alertmanager.external-label=prometheus="+operatorPrometheus)
	s.cn.Start()
	s.prom = env.StartOperatorPrometheus([]string{strings.TrimPrefix(s.cn.URL, "http://")}, s.amBoth)
	waitScraped(t, s.cn, s.prom)
	s.obs = observe(t, s.cn, s.am)
	t.Logf("signals environment up in %v", time.Since(start).Round(time.Millisecond))
	return s
}

// createApp creates the Application name, deploying path of repoURL to the
// namespace of its name; it syncs only when asked to (no automated sync,
// no retry).
func (s *signalsEnv) createApp(t *testing.T, name, repoURL, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), apiCallTimeout)
	defer cancel()
	spec := v1alpha1.ApplicationSpec{
		Project:     projectOf(name),
		Source:      &v1alpha1.ApplicationSource{RepoURL: repoURL, Path: path, TargetRevision: "main"},
		Destination: v1alpha1.ApplicationDestination{Server: s.argo.ClusterURL, Namespace: name},
	}
	if name == appMulti {
		spec.Source = nil
		spec.Sources = v1alpha1.ApplicationSources{
			{RepoURL: repoURL, Path: path, TargetRevision: "main"},
			{RepoURL: repoURL, Path: "extra", TargetRevision: "main"},
		}
	}
	_, err := s.apps.Create(ctx, &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: argoCDNamespace},
		Spec:       spec,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Application %s: %v", name, err)
	}
}

// envOf is the environment of app name: its own name, but prod for the
// apps whose scenarios judge prod alerts (CrowsnestProdDrift, the failed
// prod sync's one alert).
func envOf(name string) string {
	if name == appFrozen || name == appPaused || name == appRelease || name == appFailing {
		return "prod"
	}
	return name
}

// projectOf is the AppProject of app name.
func projectOf(name string) string {
	if name == appFrozen {
		return frozenProject
	}
	return "default"
}

// expectAll scrapes crowsnest once and checks each sample of want of app
// name.
func (s *signalsEnv) expectAll(name string, want []sampleWant) error {
	m, err := s.cn.Scrape()
	if err != nil {
		return err
	}
	return expectOn(m, name, want)
}

// expectOn checks each sample of want of app name in the scrape m.
func expectOn(m *Metrics, name string, want []sampleWant) error {
	for _, w := range want {
		if err := m.Expect(w.value, w.metric, append([]string{"name", name}, w.labels...)...); err != nil {
			return err
		}
	}
	return nil
}

// sampleWant is one expected sample of an app's series.
type sampleWant struct {
	metric string
	labels []string
	value  float64
}

// phaseIs expects the app's operation phase state set at phase: 1 there,
// 0 at every other phase.
func phaseIs(phase string) []sampleWant {
	var out []sampleWant
	for _, p := range []string{"Pending", "Running", "Terminating", "Succeeded", "Failed", "Error", "Terminated"} {
		v := 0.0
		if p == phase {
			v = 1
		}
		out = append(out, sampleWant{"crowsnest_app_operation_phase", []string{"phase", p}, v})
	}
	return out
}

// syncsAre expects the app's syncs_total per result. The scenarios' literal
// counts are exact: their apps (createApp) have no automated sync and no
// retry, so each operation is one the test asked for with requestSync and
// waited for, which Argo CD does not repeat by itself (pausedAutoSync,
// whose app auto-syncs, takes its count from Argo CD's Events).
func syncsAre(succeeded, failed, errored, terminated float64) []sampleWant {
	return []sampleWant{
		{"crowsnest_app_syncs_total", []string{"result", "Succeeded"}, succeeded},
		{"crowsnest_app_syncs_total", []string{"result", "Failed"}, failed},
		{"crowsnest_app_syncs_total", []string{"result", "Error"}, errored},
		{"crowsnest_app_syncs_total", []string{"result", "Terminated"}, terminated},
	}
}

// hookRunning tells whether op's result shows a PreSync hook running.
func hookRunning(op *v1alpha1.OperationState) bool {
	if op.SyncResult == nil {
		return false
	}
	for _, r := range op.SyncResult.Resources {
		if r.HookType == synccommon.HookTypePreSync && r.HookPhase == synccommon.OperationRunning {
			return true
		}
	}
	return false
}

// terminatedSync: a person syncs an app whose PreSync hook never finishes,
// then terminates the sync. Argo CD writes it Failed, "Operation
// terminated"; crowsnest must count it Terminated, show phase Terminated,
// and page nobody, neither directly nor through the Prometheus rule. A
// sync of another app that really fails, meanwhile, pages both ways: the
// alert paths work.
func (s *signalsEnv) terminatedSync(ctx context.Context, t *testing.T) {
	start := time.Now()
	requested := requestSync(ctx, t, s.apps, appTerminated, s.revision, false)
	eventually(t, signalTimeout, func() error {
		a, err := s.apps.Get(ctx, appTerminated, metav1.GetOptions{})
		if err != nil {
			return err
		}
		// The sync iteration that created the hook has ended once Argo CD
		// says it waits for it: terminating now is not overwritten by it
		// (see terminateOperation).
		if op := a.Status.OperationState; op == nil || op.Phase != synccommon.OperationRunning || !hookRunning(op) ||
			!strings.HasPrefix(op.Message, "waiting for completion of hook") {
			return fmt.Errorf("Argo CD has not started the sync of %s with its PreSync hook running: %+v", appTerminated, op)
		}
		return s.expectAll(appTerminated, phaseIs("Running"))
	})
	var op *v1alpha1.OperationState
	var terminated time.Time
	clicks := 0
	eventually(t, signalTimeout, func() (err error) {
		if op, err = finishedOperation(ctx, s.apps, appTerminated, requested); err == nil {
			return nil
		}
		// Terminate, and again if Argo CD is back at Running after a
		// while: the termination was lost.
		if a, gerr := s.apps.Get(ctx, appTerminated, metav1.GetOptions{}); gerr == nil && a.Operation != nil && a.Status.OperationState != nil &&
			a.Status.OperationState.Phase == synccommon.OperationRunning && time.Since(terminated) > 5*time.Second {
			if terr := terminateOperation(ctx, s.apps, appTerminated); terr != nil {
				return terr
			}
			terminated = time.Now()
			clicks++
		}
		return err
	})
	if clicks > 1 {
		t.Logf("terminated %d times: the controller overwrote Terminating with Running", clicks)
	}
	if op.Phase != synccommon.OperationFailed || op.Message != "Operation terminated" {
		t.Fatalf("Argo CD ended the terminated sync %s: %q, want Failed: \"Operation terminated\"", op.Phase, op.Message)
	}
	took := eventually(t, signalTimeout, func() error {
		return s.expectAll(appTerminated, append(syncsAre(0, 0, 0, 1), phaseIs("Terminated")...))
	})
	counted := time.Now()
	t.Logf("terminated sync counted by crowsnest %v after Argo CD ended it", took.Round(time.Millisecond))

	// The control: a sync that fails pages, directly and through the rule.
	failRequested := requestSync(ctx, t, s.apps, appFailing, s.revision, false)
	eventually(t, signalTimeout, func() (err error) {
		op, err = finishedOperation(ctx, s.apps, appFailing, failRequested)
		return err
	})
	if op.Phase != synccommon.OperationFailed {
		t.Fatalf("the sync of %s ended %s: %q, want Failed", appFailing, op.Phase, op.Message)
	}
	took = eventually(t, signalTimeout, func() error {
		if err := s.expectAll(appFailing, append(syncsAre(0, 1, 0, 0), phaseIs("Failed")...)); err != nil {
			return err
		}
		if _, paged := s.obs.Paged(appFailing); !paged {
			return fmt.Errorf("no direct page CrowsnestSyncFailed for %s in Alertmanager", appFailing)
		}
		return s.prom.ExpectValue(q("ALERTS", appFailing, "alertname", "CrowsnestProdSyncFailed", "alertstate", "firing"), 1)
	})
	t.Logf("control: the sync of %s failed (%q), paged directly and by the rule within %v", appFailing, op.Message, took.Round(time.Millisecond))
	s.oneAlertPerIncident(ctx, t, appFailing)

	// Nothing pages for the terminated sync, even for a moment.
	time.Sleep(time.Until(counted.Add(quietPeriod)))
	if at, paged := s.obs.Paged(appTerminated); paged {
		t.Errorf("Alertmanager held CrowsnestSyncFailed for %s (first seen at %s; crowsnest showed the sync counted at %s)", appTerminated, at.Format("15:04:05.000"), counted.Format("15:04:05.000"))
	}
	phases := s.obs.Phases(appTerminated)
	t.Logf("phases crowsnest exposed for %s: %v", appTerminated, phases)
	for _, p := range phases {
		if strings.Contains(p, "Failed") || strings.Contains(p, "Error") || strings.Contains(p, "+") {
			t.Errorf("crowsnest exposed phase %s for the terminated sync (phases seen: %v)", p, phases)
		}
	}
	// Prometheus's memory: the rule never went pending or firing, and no
	// scrape ever saw the Failed or Error phase.
	window := fmt.Sprintf("[%ds]", int(time.Since(start).Seconds())+5)
	if v, err := s.prom.Query(`count_over_time(ALERTS{alertname="CrowsnestSyncFailed",name="` + appTerminated + `"}` + window + `)`); err != nil || len(v) != 0 {
		t.Errorf("Prometheus's CrowsnestSyncFailed for %s was pending or firing: %v (%v)", appTerminated, v, err)
	}
	if err := s.prom.ExpectValue(fmt.Sprintf(`max(max_over_time(crowsnest_app_operation_phase{name=%q,phase=~"Failed|Error"}%s))`, appTerminated, window), 0); err != nil {
		t.Errorf("Prometheus scraped a Failed or Error phase of the terminated sync: %v", err)
	}
	if err := s.expectAll(appTerminated, append(syncsAre(0, 0, 0, 1), phaseIs("Terminated")...)); err != nil {
		t.Errorf("after the quiet period: %v", err)
	}
}

// dryRunSnapshot returns the series of app name a dry run must leave as
// they are: its syncs, last successful and last finished sync, its sync
// duration histogram and phase, and the sync durations of its env (env is
// the app's name here).
func dryRunSnapshot(m *Metrics, name string) map[string]float64 {
	out := snapshot(m, []string{
		"crowsnest_app_syncs_total",
		"crowsnest_app_last_successful_sync_timestamp_seconds",
		"crowsnest_app_last_sync_finished_timestamp_seconds",
		"crowsnest_app_last_sync_duration_seconds",
		"crowsnest_app_sync_duration_seconds_count",
		"crowsnest_app_sync_duration_seconds_sum",
		"crowsnest_app_operation_phase",
	}, "name", name)
	for k, v := range snapshot(m, []string{"crowsnest_sync_duration_seconds_count", "crowsnest_sync_duration_seconds_sum"}, "env", name) {
		out[k] = v
	}
	return out
}

// dryRun: a person syncs an app for real, then asks for a dry run of it.
// crowsnest must count the dry run in dry_runs_total only: the app's
// syncs, last successful and last finished sync, sync durations (its own
// histogram and its env's in crowsnest_sync_duration_seconds) and phase
// stay as the real sync left them, the phase even while the dry run runs;
// and nothing pages.
func (s *signalsEnv) dryRun(ctx context.Context, t *testing.T) {
	before := s.syncForReal(ctx, t, appDryRun)
	mark := len(s.obs.Phases(appDryRun))
	requested := requestSync(ctx, t, s.apps, appDryRun, s.revision, true)
	s.expectDryRunOnly(ctx, t, appDryRun, requested, before, mark)
}

// heldDryRun: as dryRun, but the dry run is asked for while the
// application controller is down, so it waits, long enough to be seen:
// crowsnest must keep showing the real sync's phase, Succeeded, not
// Pending, and no pending_since (a dry run leaves the phase of the last
// real operation, and pages nobody, CrowsnestSyncStuck included, which
// counts Pending). Once the controller is back and has run it, it counts
// as a dry run only.
func (s *signalsEnv) heldDryRun(ctx context.Context, t *testing.T) {
	before := s.syncForReal(ctx, t, appHeldDryRun)
	s.stopController(t)
	mark := len(s.obs.Phases(appHeldDryRun))
	requested := requestSync(ctx, t, s.apps, appHeldDryRun, s.revision, true)
	time.Sleep(pendingHold)
	if a, err := s.apps.Get(ctx, appHeldDryRun, metav1.GetOptions{}); err != nil || a.Status.OperationState != nil || a.Operation == nil {
		t.Fatalf("with the controller down, %s's dry run was not left waiting: %v", appHeldDryRun, err)
	}
	if err := s.expectAll(appHeldDryRun, phaseIs("Succeeded")); err != nil {
		t.Errorf("%v after the dry run was asked for, with no controller to run it: %v", pendingHold, err)
	}
	m, err := s.cn.Scrape()
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Find("crowsnest_app_operation_pending_since_timestamp_seconds", "name", appHeldDryRun); len(got) != 0 {
		t.Errorf("pending_since of %s's waiting dry run: %v, want none", appHeldDryRun, got)
	}
	s.argo.Controller.Start()
	s.expectDryRunOnly(ctx, t, appHeldDryRun, requested, before, mark)
}

// syncForReal syncs app name for real, its first sync, waits until
// crowsnest shows it, Succeeded, and returns the series of the app a dry
// run must leave as they are, once at least 2 s have passed since Argo CD
// finished the sync: the timestamps are whole seconds, so a timestamp a dry
// run moved would show.
func (s *signalsEnv) syncForReal(ctx context.Context, t *testing.T, name string) map[string]float64 {
	t.Helper()
	requested := requestSync(ctx, t, s.apps, name, s.revision, false)
	var op *v1alpha1.OperationState
	eventually(t, signalTimeout, func() (err error) {
		op, err = finishedOperation(ctx, s.apps, name, requested)
		return err
	})
	if op.Phase != synccommon.OperationSucceeded {
		t.Fatalf("the real sync of %s ended %s: %q", name, op.Phase, op.Message)
	}
	var before map[string]float64
	eventually(t, signalTimeout, func() error {
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		want := append(syncsAre(1, 0, 0, 0), phaseIs("Succeeded")...)
		want = append(want, sampleWant{"crowsnest_app_sync_duration_seconds_count", []string{"result", "Succeeded"}, 1})
		if err := expectOn(m, name, want); err != nil {
			return err
		}
		if err := m.Expect(1, "crowsnest_sync_duration_seconds_count", "env", envOf(name), "result", "Succeeded"); err != nil {
			return err
		}
		if v, err := m.Value("crowsnest_app_last_successful_sync_timestamp_seconds", "name", name); err != nil || v < float64(requested.Unix()-1) {
			return fmt.Errorf("last successful sync of %s: %v (%v), want the real sync's", name, v, err)
		}
		if got := m.Find("crowsnest_app_dry_runs_total", "name", name); len(got) > 1 || len(got) == 1 && got[0].Value != 0 {
			return fmt.Errorf("dry runs of %s before any: %v", name, got)
		}
		before = dryRunSnapshot(m, name)
		return nil
	})
	time.Sleep(time.Until(op.FinishedAt.Add(2 * time.Second)))
	return before
}

// expectDryRunOnly waits for Argo CD to finish the dry run of app name
// asked for at requested and for crowsnest to count it in dry_runs_total;
// then, at once and 2 s later, it checks that the app's series in before
// (see dryRunSnapshot) have not moved, that crowsnest showed no other
// phase since the observer's mark, and that nothing paged for the app.
func (s *signalsEnv) expectDryRunOnly(ctx context.Context, t *testing.T, name string, requested time.Time, before map[string]float64, mark int) {
	t.Helper()
	var op *v1alpha1.OperationState
	eventually(t, controllerRestartTimeout, func() (err error) {
		op, err = finishedOperation(ctx, s.apps, name, requested)
		return err
	})
	if !op.Operation.Sync.DryRun || op.Phase != synccommon.OperationSucceeded {
		t.Fatalf("the dry run of %s ended %s: %q (dry run %v), want a Succeeded dry run", name, op.Phase, op.Message, op.Operation.Sync.DryRun)
	}
	took := eventually(t, signalTimeout, func() error {
		return s.cn.ExpectSample(1, "crowsnest_app_dry_runs_total", "name", name)
	})
	t.Logf("dry run of %s counted by crowsnest %v after Argo CD finished it", name, took.Round(time.Millisecond))
	for i, wait := range []time.Duration{0, 2 * time.Second} {
		time.Sleep(wait)
		m, err := s.cn.Scrape()
		if err != nil {
			t.Fatal(err)
		}
		if d := diffSnapshots(before, dryRunSnapshot(m, name)); d != "" {
			t.Errorf("look %d after the dry run: series moved: %s", i+1, d)
		}
		if err := m.Expect(1, "crowsnest_app_dry_runs_total", "name", name); err != nil {
			t.Errorf("look %d after the dry run: %v", i+1, err)
		}
	}
	if during := s.obs.Phases(name)[mark:]; len(during) > 0 {
		t.Errorf("crowsnest's phase of %s changed during the dry run: %v, want it to stay Succeeded", name, during)
	}
	if _, paged := s.obs.Paged(name); paged {
		t.Errorf("Alertmanager held CrowsnestSyncFailed for %s", name)
	}
}

// stopController stops Argo CD's application controller until the end of
// t, unless the test starts it again itself.
func (s *signalsEnv) stopController(t *testing.T) {
	t.Helper()
	if err := s.argo.Controller.Stop(); err != nil {
		t.Logf("application controller stopped: %v", err)
	}
	t.Cleanup(func() {
		if !s.argo.Controller.Running() {
			s.argo.Controller.Start()
		}
	})
}

// pendingWhileControllerDown: with the application controller stopped, a
// person asks for a sync. Nothing starts it: crowsnest must show it
// Pending, with pending_since, for as long as that lasts. When the
// controller is back it runs the sync, and crowsnest shows it Succeeded,
// pending_since gone.
func (s *signalsEnv) pendingWhileControllerDown(ctx context.Context, t *testing.T) {
	// The app is settled first: compared by Argo CD, OutOfSync, no
	// operation (crowsnest shows no phase).
	eventually(t, signalTimeout, func() error {
		a, err := s.apps.Get(ctx, appPending, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if a.Status.ReconciledAt == nil || a.Status.Sync.Status != v1alpha1.SyncStatusCodeOutOfSync {
			return fmt.Errorf("%s not compared yet: sync status %q", appPending, a.Status.Sync.Status)
		}
		return nil
	})
	s.stopController(t)
	requested := requestSync(ctx, t, s.apps, appPending, s.revision, false)
	pendingSince := func(m *Metrics) (time.Time, error) {
		v, err := m.Value("crowsnest_app_operation_pending_since_timestamp_seconds", "name", appPending)
		if err != nil {
			return time.Time{}, err
		}
		since := time.Unix(0, int64(v*1e9))
		if since.Before(requested.Add(-time.Second)) || since.After(time.Now()) {
			return since, fmt.Errorf("pending since %v, want between the request at %v and now", since, requested)
		}
		return since, nil
	}
	var since time.Time
	took := eventually(t, signalTimeout, func() error {
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		if err := expectOn(m, appPending, phaseIs("Pending")); err != nil {
			return err
		}
		since, err = pendingSince(m)
		return err
	})
	t.Logf("sync of %s Pending in crowsnest %v after it was asked for (pending since %v)", appPending, took.Round(time.Millisecond), since.Sub(requested).Round(time.Millisecond))
	time.Sleep(pendingHold)
	a, err := s.apps.Get(ctx, appPending, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Status.OperationState != nil || a.Operation == nil {
		t.Fatalf("with the controller down, %s has operation %v and operation state %+v, want the request only", appPending, a.Operation, a.Status.OperationState)
	}
	m, err := s.cn.Scrape()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Expect(1, "crowsnest_app_operation_phase", "name", appPending, "phase", "Pending"); err != nil {
		t.Errorf("%v later, still waiting: %v", pendingHold, err)
	}
	if still, err := pendingSince(m); err != nil || !still.Equal(since) {
		t.Errorf("%v later, still waiting: pending since %v (%v), want %v as before", pendingHold, still, err, since)
	}

	restarted := time.Now()
	s.argo.Controller.Start()
	var op *v1alpha1.OperationState
	eventually(t, controllerRestartTimeout, func() (err error) {
		op, err = finishedOperation(ctx, s.apps, appPending, requested)
		return err
	})
	if op.Phase != synccommon.OperationSucceeded {
		t.Fatalf("the sync of %s ended %s: %q", appPending, op.Phase, op.Message)
	}
	t.Logf("the restarted controller finished the sync %v after it started", time.Since(restarted).Round(time.Millisecond))
	eventually(t, signalTimeout, func() error {
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		if err := expectOn(m, appPending, append(syncsAre(1, 0, 0, 0), phaseIs("Succeeded")...)); err != nil {
			return err
		}
		if got := m.Find("crowsnest_app_operation_pending_since_timestamp_seconds", "name", appPending); len(got) != 0 {
			return fmt.Errorf("pending_since of %s still exposed: %v", appPending, got)
		}
		return nil
	})
	time.Sleep(2 * observePoll)
	t.Logf("phases crowsnest exposed for %s: %v", appPending, s.obs.Phases(appPending))
}

// frozenDrift: a prod app (synced by hand) is synced, then a deny window
// of its project opens (always active: every minute, for an hour) and
// someone edits the app's ConfigMap by hand. Argo CD reports the drift;
// crowsnest shows the app OutOfSync and held by the window, and
// Prometheus's CrowsnestProdDrift is not even pending. Once the window lets
// manual syncs through (manualSync: true) the same drift turns the alert
// pending: Argo CD judges a manual app's next sync by the manual rule.
func (s *signalsEnv) frozenDrift(ctx context.Context, t *testing.T) {
	s.syncForReal(ctx, t, appFrozen)
	projects := s.kas.ArgoCD().ArgoprojV1alpha1().AppProjects(argoCDNamespace)
	setWindows := func(windows v1alpha1.SyncWindows) {
		t.Helper()
		eventually(t, signalTimeout, func() error {
			p, err := projects.Get(ctx, frozenProject, metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Spec.SyncWindows = windows
			_, err = projects.Update(ctx, p, metav1.UpdateOptions{})
			return err
		})
	}
	setWindows(v1alpha1.SyncWindows{{Kind: "deny", Schedule: "* * * * *", Duration: "1h", Namespaces: []string{appFrozen}}})
	eventually(t, signalTimeout, func() error {
		return s.expectAll(appFrozen, []sampleWant{{"crowsnest_app_sync_window_held", nil, 1}})
	})

	// A hand edit in prod during the freeze.
	s.editByHand(ctx, t, appFrozen, "settings", "release", "hand-edited")
	eventually(t, signalTimeout, func() error {
		return s.expectAll(appFrozen, []sampleWant{
			{"crowsnest_app_sync_status", []string{"status", "OutOfSync"}, 1},
			{"crowsnest_app_sync_window_held", nil, 1},
		})
	})
	drift := `ALERTS{alertname="CrowsnestProdDrift",name="` + appFrozen + `"}`
	// Prometheus scrapes and evaluates every second here: give it several
	// rounds with the drift in view.
	eventually(t, signalTimeout, func() error {
		return s.prom.ExpectValue(`max(crowsnest_app_sync_status{name="`+appFrozen+`",status="OutOfSync"})`, 1)
	})
	time.Sleep(5 * time.Second)
	if v, err := s.prom.Query(drift); err != nil || len(v) != 0 {
		t.Errorf("%s during the freeze: %v (%v), want none", drift, v, err)
	}

	// The freeze lets manual syncs through (manualSync: true): Argo CD
	// would run a person's sync of this manual app, so the drift is not
	// held and pages; the window, nothing else, kept it quiet.
	setWindows(v1alpha1.SyncWindows{{Kind: "deny", Schedule: "* * * * *", Duration: "1h", Namespaces: []string{appFrozen}, ManualSync: true}})
	eventually(t, signalTimeout, func() error {
		return s.expectAll(appFrozen, []sampleWant{{"crowsnest_app_sync_window_held", nil, 0}})
	})
	eventually(t, signalTimeout, func() error {
		return s.prom.ExpectValue(`count(`+drift+`)`, 1)
	})
	// The same window still holds an app that auto-syncs: Argo CD judges
	// its automatic syncs, which manualSync does not let through. Turned
	// on, auto-sync shows held, and Argo CD does not sync the drift away.
	setAutoSync := func(on bool) {
		t.Helper()
		eventually(t, signalTimeout, func() error {
			a, err := s.apps.Get(ctx, appFrozen, metav1.GetOptions{})
			if err != nil {
				return err
			}
			a.Spec.SyncPolicy = nil
			if on {
				a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{SelfHeal: new(true)}}
			}
			_, err = s.apps.Update(ctx, a, metav1.UpdateOptions{})
			return err
		})
	}
	setAutoSync(true)
	eventually(t, signalTimeout, func() error {
		return s.expectAll(appFrozen, []sampleWant{
			{"crowsnest_app_sync_window_held", nil, 1},
			{"crowsnest_app_info", []string{"autosync", "true"}, 1},
		})
	})
	time.Sleep(5 * time.Second) // several of the controller's refreshes (--app-resync 5)
	if a, err := s.apps.Get(ctx, appFrozen, metav1.GetOptions{}); err != nil || a.Operation != nil || a.Status.Sync.Status != v1alpha1.SyncStatusCodeOutOfSync {
		t.Fatalf("Argo CD synced %s through a deny window while it auto-synced (%v)", appFrozen, err)
	}
	setAutoSync(false)
	eventually(t, signalTimeout, func() error {
		return s.expectAll(appFrozen, []sampleWant{{"crowsnest_app_sync_window_held", nil, 0}})
	})
	// The freeze ends: still an alert.
	setWindows(nil)
	eventually(t, signalTimeout, func() error {
		return s.prom.ExpectValue(`count(`+drift+`)`, 1)
	})
}

// saveDemo ends the recording in the states the demo should keep showing
// (the freeze back on, and a sync asked for while the controller is down,
// so Pending), then writes argocd-signals.jsonl in recordingsDir and the
// demo recording: scenarios 1–3, then this recording shifted to follow
// them by whole seconds (Argo CD's own times are whole seconds).
func (s *signalsEnv) saveDemo(ctx context.Context, t *testing.T) {
	projects := s.kas.ArgoCD().ArgoprojV1alpha1().AppProjects(argoCDNamespace)
	eventually(t, signalTimeout, func() error {
		p, err := projects.Get(ctx, frozenProject, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Spec.SyncWindows = v1alpha1.SyncWindows{{Kind: "deny", Schedule: "* * * * *", Duration: "1h", Namespaces: []string{appFrozen}}}
		_, err = projects.Update(ctx, p, metav1.UpdateOptions{})
		return err
	})
	s.stopController(t)
	requestSync(ctx, t, s.apps, appDryRun, s.revision, false)
	eventually(t, signalTimeout, func() error {
		return s.expectAll(appDryRun, phaseIs("Pending"))
	})
	time.Sleep(2 * time.Second)
	if err := s.rec.Stop(); err != nil {
		t.Errorf("crowsnest record: %v", err)
	}
	signals, err := os.ReadFile(s.recPath)
	if err != nil {
		t.Fatal(err)
	}
	testdata := recordingsDir()
	if err := os.WriteFile(filepath.Join(testdata, "argocd-signals.jsonl"), signals, 0o644); err != nil {
		t.Fatal(err)
	}
	scenarios, err := os.ReadFile(filepath.Join(testdata, "argocd-scenarios-1-3.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	demo, err := appendShifted(scenarios, signals, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(bin.repoRoot, "internal", "demo", "recording.jsonl")
	if err := os.WriteFile(to, demo, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s and testdata/argocd-signals.jsonl (%d bytes)", to, len(signals))
}

// recordedTime matches the times in a recording's lines: the events' own
// and every timestamp inside the objects (RFC 3339, UTC).
var recordedTime = regexp.MustCompile(`"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)"`)

// appendShifted returns first followed by second, every time of second
// moved by a whole number of seconds so that its first event comes gap
// after first's last one.
func appendShifted(first, second []byte, gap time.Duration) ([]byte, error) {
	times := func(b []byte) (lo, hi time.Time) {
		for _, m := range recordedTime.FindAllSubmatch(b, -1) {
			if ts, err := time.Parse(time.RFC3339Nano, string(m[1])); err == nil {
				if lo.IsZero() || ts.Before(lo) {
					lo = ts
				}
				if ts.After(hi) {
					hi = ts
				}
			}
		}
		return lo, hi
	}
	_, end := times(first)
	start, _ := times(second)
	if end.IsZero() || start.IsZero() {
		return nil, fmt.Errorf("no times in the recordings")
	}
	shift := end.Add(gap).Sub(start).Truncate(time.Second) + time.Second
	var err error
	shifted := recordedTime.ReplaceAllFunc(second, func(m []byte) []byte {
		raw := string(m[1 : len(m)-1])
		ts, perr := time.Parse(time.RFC3339Nano, raw)
		if perr != nil {
			err = perr
			return m
		}
		layout := time.RFC3339
		if strings.Contains(raw, ".") {
			layout = time.RFC3339Nano
		}
		return []byte(`"` + ts.Add(shift).UTC().Format(layout) + `"`)
	})
	if err != nil {
		return nil, err
	}
	return append(append([]byte{}, first...), shifted...), nil
}

// multiSource: a person syncs an app with two sources. Argo CD writes the
// revisions of both in syncResult.revisions and leaves revision empty;
// crowsnest's sync_finished fact (as its trace) must carry both, and
// crowsnest_app_source_info must have one series per source.
func (s *signalsEnv) multiSource(ctx context.Context, t *testing.T) {
	requested := requestSync(ctx, t, s.apps, appMulti, "", false)
	var op *v1alpha1.OperationState
	eventually(t, signalTimeout, func() (err error) {
		op, err = finishedOperation(ctx, s.apps, appMulti, requested)
		return err
	})
	if op.Phase != synccommon.OperationSucceeded || op.SyncResult == nil || len(op.SyncResult.Revisions) != 2 {
		t.Fatalf("the sync of %s ended %s with result %+v, want Succeeded with two revisions", appMulti, op.Phase, op.SyncResult)
	}
	want := "revision=" + strings.Join(op.SyncResult.Revisions, ",")
	eventually(t, signalTimeout, func() error {
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		if err := expectOn(m, appMulti, syncsAre(1, 0, 0, 0)); err != nil {
			return err
		}
		for i, path := range []string{"plain", "extra"} {
			if err := m.Expect(1, "crowsnest_app_source_info", "name", appMulti, "source", strconv.Itoa(i), "path", path); err != nil {
				return err
			}
		}
		for _, line := range strings.Split(s.cn.LogTail(5000), "\n") {
			if strings.Contains(line, "event=sync_finished") && strings.Contains(line, "app=argocd/"+appMulti) {
				if !strings.Contains(line, want) {
					return fmt.Errorf("sync_finished of %s: %s, want %s", appMulti, line, want)
				}
				return nil
			}
		}
		return fmt.Errorf("no sync_finished fact of %s in crowsnest's log yet", appMulti)
	})
}
