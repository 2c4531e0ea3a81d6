//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	appclient "github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned/typed/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/dashboards"
	"github.com/crowsnest/crowsnest/internal/lokitest"
	"github.com/crowsnest/crowsnest/internal/model"
)

// The apps of TestDeployments.
const (
	appDoraProd = "dora-prod" // prod, synced by hand with the argocd CLI
	appDoraDev  = "dora-dev"  // dev, auto-sync with self-heal
	// stage: a Helm chart synced by hand after `argocd app set -p`, as CI
	// does (helmParameters)
	appDoraHelm = "dora-helm"
)

// configMapHealth is a Lua health check (argocd-cm
// resource.customizations.health.ConfigMap) that makes a ConfigMap as
// healthy as its data.health says: a commit can break and fix the app's
// health without any controller.
const configMapHealth = `hs = {status = "Healthy", message = ""}
if obj.data ~= nil and obj.data.health == "Degraded" then
  hs.status = "Degraded"
  hs.message = "data.health says so"
end
return hs
`

// doraManifests are the prod app's three ConfigMaps in waves 0, 1 and 2
// (two wave delays per sync), the last one as healthy as health says.
func doraManifests(version, health string) map[string]string {
	cm := func(name string, wave int, data string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  annotations:\n    argocd.argoproj.io/sync-wave: \"%d\"\ndata:\n%s", name, wave, data)
	}
	return map[string]string{
		"prod/first.yaml":  cm("first", 0, fmt.Sprintf("  version: %q\n", version)),
		"prod/second.yaml": cm("second", 1, fmt.Sprintf("  version: %q\n", version)),
		// Read by the server-side apply app only (serverSideApply).
		"ssa/config.yaml": ssaConfig("one"),
		"prod/third.yaml": cm("third", 2, fmt.Sprintf("  version: %q\n  health: %s\n", version, health)),
		"dev/config.yaml": cm("dev-config", 0, "  greeting: hello\n"),
		// Read only with the source's directory.recurse (specOnly).
		"dev/extra/extra.yaml": cm("dev-extra", 0, "  greeting: hello\n"),
		// A Helm chart the real repo-server renders with helm
		// (helmParameters).
		"helm/Chart.yaml":            "apiVersion: v2\nname: dora-helm\nversion: 0.1.0\n",
		"helm/values.yaml":           "tag: v1\n",
		"helm/templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: helm-config\ndata:\n  tag: {{ .Values.tag | quote }}\n",
	}
}

// cdEventsReceiver is an HTTP receiver of CloudEvents in structured mode.
type cdEventsReceiver struct {
	mu     sync.Mutex
	events []map[string]any
}

func (r *cdEventsReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var ev map[string]any
	if err == nil {
		err = json.Unmarshal(body, &ev)
	}
	if err != nil || !strings.HasPrefix(req.Header.Get("Content-Type"), "application/cloudevents+json") {
		http.Error(w, fmt.Sprintf("not a structured CloudEvent (%s): %v", req.Header.Get("Content-Type"), err), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (r *cdEventsReceiver) Events() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.events...)
}

// deploymentsEnv runs crowsnest beside the real Argo CD controller,
// repo-server and argocd-server (for commit metadata), with Prometheus, a
// Loki receiver and a CloudEvents receiver.
type deploymentsEnv struct {
	env    *Env
	kas    *KubeAPIServer
	argo   *ArgoCD
	server *argoCDServer
	apps   appclient.ApplicationInterface
	gitDir string
	cn     *Crowsnest
	prom   *Prometheus
	loki   *lokitest.Receiver
	// vlogs gets the facts of a second crowsnest, a replica of cn, for the
	// dashboards' log queries on a real store.
	vlogs   *VictoriaLogs
	events  *cdEventsReceiver
	commits map[string]time.Time // commit → its author date
	// resync is the prod app's re-sync, watched for its expected finish.
	resync *v1alpha1.OperationState
	// rec records the run with -update-recordings (crowsnest record).
	rec     *Process
	recPath string
}

// saveRecording stops the recorder and writes its recording to
// testdata/<version>/argocd-deployments.jsonl, which the tracker's unit
// tests replay (TestRecordedDeployments).
func (s *deploymentsEnv) saveRecording(t *testing.T) {
	t.Helper()
	time.Sleep(2 * time.Second)
	if err := s.rec.Stop(); err != nil {
		t.Errorf("crowsnest record: %v", err)
	}
	b, err := os.ReadFile(s.recPath)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(recordingsDir(), "argocd-deployments.jsonl")
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", to, len(b))
}

// TestDeployments checks deployments, DORA's four keys and a sync's
// progress against the real Argo CD, driven with the argocd CLI against
// argocd-server as a person does:
//  1. a prod deployment of a commit authored 3 h ago: its lead time, read
//     back from Prometheus, is the sync's end minus the author date;
//  2. a re-sync of the same revision and a dry run are no deployment; the
//     re-sync's expected finish, predicted as it began from the first
//     sync's waves, is within the stated tolerance of its real finish;
//  3. a deployment whose app turns Degraded is a failed change, and the
//     next deployment that makes it Healthy ends it: its recovery time;
//  4. `argocd app rollback` counts as rolled back and fails the deployment
//     it undoes;
//  5. a self-heal of drift in dev is no deployment;
//  6. each deployment reaches Loki once, with its commit's author, and the
//     CloudEvents receiver once as a CDEvent.
func TestDeployments(t *testing.T) {
	start := time.Now()
	s := startDeploymentsEnv(t)
	ctx := t.Context()
	t.Run("prod deployment lead time", func(t *testing.T) { s.firstDeployment(ctx, t) })
	t.Run("re-sync and dry run are no deployment; the ETA", func(t *testing.T) { s.resyncAndDryRun(ctx, t) })
	t.Run("degraded change, its recovery", func(t *testing.T) { s.degradedAndRecovered(ctx, t) })
	t.Run("rollback", func(t *testing.T) { s.rollback(ctx, t) })
	t.Run("self-heal is no deployment", func(t *testing.T) { s.selfHeal(ctx, t) })
	t.Run("one event per deployment in Loki and as a CloudEvent", func(t *testing.T) { s.deploymentEvents(t) })
	t.Run("DORA dashboard queries return data", func(t *testing.T) {
		// The four keys are recording rules: wait for an evaluation after
		// the last recovery.
		eventually(t, signalTimeout, func() error {
			for _, record := range []string{"crowsnest:deployments:increase1d", "crowsnest:change_lead_time_seconds:p50_7d", "crowsnest:change_failure_rate:ratio_7d", "crowsnest:deployment_recovery_seconds:p50_7d"} {
				samples, err := s.prom.Query(record + `{env="prod"}`)
				if err != nil {
					return err
				}
				if len(samples) == 0 {
					return fmt.Errorf("no %s yet", record)
				}
			}
			return nil
		})
		// The running syncs' panels have data only while a sync runs: they
		// are queried at instants through the re-sync, every 250 ms from
		// its start to a second after Argo CD's finishedAt (cut to the
		// second: the sync ran until after it).
		running := func(q dashboards.Query) bool { return strings.HasPrefix(q.Panel, "Running syncs") }
		var during []time.Time
		for at := s.resync.StartedAt.Time; at.Before(s.resync.FinishedAt.Add(time.Second)); at = at.Add(250 * time.Millisecond) {
			during = append(during, at)
		}
		vars := map[string]string{"app": appDoraProd, "env": ".*", "project": "default"}
		// The rollout panels need an ApplicationSet's RollingSync:
		// TestRollingSync checks them.
		checkDashboardQueries(t, s.prom, nil, vars, func(q dashboards.Query) bool { return !running(q) && !rolloutPanel(q) }, "crowsnest-dora")
		checkDashboardQueries(t, s.prom, during, vars, running, "crowsnest-dora")
		prod := argoCDNamespace + "/" + appDoraProd
		checkDashboardLogQueries(t.Context(), t, s.vlogs, vars, map[string][]logFact{
			"Recent prod deployments": {
				{"event": "deployment_finished", "app": prod, "result": "succeeded"},
				{"event": "deployment_finished", "app": prod, "result": "rolled_back"},
			},
			"annotation Failed changes": {
				{"event": "change_failed", "app": prod, "reason": "degraded"},
				{"event": "change_failed", "app": prod, "reason": "rolled_back"},
			},
		}, "crowsnest-dora")
	})
	t.Run("a changed source is a deployment, also on the revision the app was Synced to", func(t *testing.T) { s.specOnly(ctx, t) })
	t.Run("argocd app set -p: a deployment dated from the new source, or from the commit CI names", func(t *testing.T) { s.helmParameters(ctx, t) })
	t.Run("a hydrated revision's lead time runs from its dry commit", func(t *testing.T) { s.hydrated(ctx, t) })
	t.Run("a selective sync is no deployment; the full sync after it is one", func(t *testing.T) { s.selective(ctx, t) })
	t.Run("a restart counts what finished while crowsnest was down, once, and logs no first-look events", func(t *testing.T) { s.restart(ctx, t) })
	t.Run("server-side apply: a sync of a commit that changed nothing of the app is no deployment", func(t *testing.T) { s.serverSideApply(ctx, t) })
	t.Run("a change whose sync fails on a Degraded wave fails once", func(t *testing.T) { s.degradedDuringSync(ctx, t) })
	if *updateRecordings {
		s.saveRecording(t)
	}
	t.Logf("TestDeployments took %v", time.Since(start).Round(time.Second))
}

// specOnly: `argocd app set --directory-recurse` changes the dev app's
// source, not the revision Argo CD shows it Synced to; Argo CD auto-syncs
// it (its source differs from the last sync's) and writes a history entry
// of that revision with the new source. That is a deployment, whose event
// says the source changed (before, a sync to a revision the app was Synced
// to was taken for a drift repair); the number of deployments is Argo CD's
// own: the history entries added whose source or revision differs from
// the entry before them. (The controller may auto-sync it twice, the second
// time from a stale copy of the app: a second entry, of the same source and
// revision, and no deployment. The entry before is dev's first sync: the
// later commits changed only prod's files, so Argo CD moved dev's Synced
// revision without a sync.)
func (s *deploymentsEnv) specOnly(ctx context.Context, t *testing.T) {
	before, err := s.apps.Get(ctx, appDoraDev, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	entries, rev := len(before.Status.History), before.Status.Sync.Revision
	if before.Status.Sync.Status != v1alpha1.SyncStatusCodeSynced || before.Operation != nil {
		t.Fatalf("%s is %s (operation %v), want it Synced and idle", appDoraDev, before.Status.Sync.Status, before.Operation)
	}
	if entries == 0 {
		t.Fatalf("%s has no history: want its first sync's", appDoraDev)
	}
	if _, err := s.server.cli(ctx, "app", "set", appDoraDev, "--directory-recurse"); err != nil {
		t.Fatal(err)
	}
	var changes int
	eventually(t, signalTimeout, func() error {
		app, err := s.apps.Get(ctx, appDoraDev, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if app.Operation != nil || app.Status.OperationState != nil && !app.Status.OperationState.Phase.Completed() {
			return fmt.Errorf("%s: an operation is running", appDoraDev)
		}
		h := app.Status.History
		if len(h) <= entries {
			return fmt.Errorf("%s: %d history entries, want more than %d", appDoraDev, len(h), entries)
		}
		if last := h[len(h)-1]; last.Revision != rev || last.Source.Directory == nil || !last.Source.Directory.Recurse {
			return fmt.Errorf("%s: newest history entry %s %+v, want revision %s with directory.recurse", appDoraDev, last.Revision, last.Source, rev)
		}
		changes = 0
		for i := entries; i < len(h); i++ {
			if h[i].Revision != h[i-1].Revision || !h[i].Source.Equals(&h[i-1].Source) {
				changes++
			}
		}
		_, err = s.kas.Kubernetes().CoreV1().ConfigMaps(appDoraDev).Get(ctx, "dev-extra", metav1.GetOptions{})
		return err
	})
	// dev's first deployment (selfHeal checked it is its only one) and a
	// deployment per change Argo CD's history shows: at least the set.
	s.expectCounts(t, appDoraDev, map[string]float64{"succeeded": float64(1 + changes)}, nil)
	eventually(t, signalTimeout, func() error {
		for _, line := range s.deployedLines(appDoraDev) {
			if line["source_changed"] == true && line["revision"] == rev {
				return nil
			}
		}
		return fmt.Errorf("no deployment_finished of %s with source_changed and revision %s in Loki", appDoraDev, rev)
	})
}

// helmParameters: CI's way of shipping a build, `argocd app set -p
// tag=$TAG` then `argocd app sync`, on a Helm chart the real repo-server
// renders with helm. Each set is a deployment of the same revision (Argo
// CD's own count: the history entries added, each with the revision the
// app was at); its lead time runs from when Argo CD first compared the app
// with the new parameter (after the set, before the sync), and, when CI
// names the commit it built in crowsnest.io/change-commit, from that
// commit's date as argocd-server's RevisionMetadata gives it.
func (s *deploymentsEnv) helmParameters(ctx context.Context, t *testing.T) {
	configTag := func(want string) func() error {
		return func() error {
			cm, err := s.kas.Kubernetes().CoreV1().ConfigMaps(appDoraHelm).Get(ctx, "helm-config", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cm.Data["tag"] != want {
				return fmt.Errorf("helm-config tag %q, want %q", cm.Data["tag"], want)
			}
			return nil
		}
	}
	first := s.syncApp(ctx, t, appDoraHelm, synccommon.OperationSucceeded)
	eventually(t, signalTimeout, configTag("v1"))
	rev := first.SyncResult.Revision

	// set -p, wait until Argo CD compared the app with it, then sync.
	set := time.Now()
	if _, err := s.server.cli(ctx, "app", "set", appDoraHelm, "-p", "tag=v2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, signalTimeout, func() error {
		app, err := s.apps.Get(ctx, appDoraHelm, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if src := app.Status.Sync.ComparedTo.Source; src.Helm == nil || len(src.Helm.Parameters) != 1 || app.Status.Sync.Status != v1alpha1.SyncStatusCodeOutOfSync {
			return fmt.Errorf("%s %s, compared with %+v: want OutOfSync against tag=v2", appDoraHelm, app.Status.Sync.Status, src.Helm)
		}
		return nil
	})
	// crowsnest judges the release awaiting its sync once Argo CD compared
	// after the last sync's end (whole seconds: a comparison in the
	// sync's second judges nothing; the controller compares again every
	// --app-resync, 5 s here).
	eventually(t, signalTimeout, func() error {
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		if len(m.Find("crowsnest_app_awaiting_sync_since_timestamp_seconds", "name", appDoraHelm)) != 1 {
			return fmt.Errorf("%s not yet awaiting its sync", appDoraHelm)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // a wait for approval, part of the lead time
	second := s.syncApp(ctx, t, appDoraHelm, synccommon.OperationSucceeded)
	eventually(t, signalTimeout, configTag("v2"))
	if second.SyncResult.Revision != rev {
		t.Fatalf("the sync after set -p deployed %s, want the same revision %s", second.SyncResult.Revision, rev)
	}
	lead, from, wait := s.helmDeployment(t, second)
	// It waited for the sync by hand from the comparison after the set
	// (awaiting sync) to the sync's start: the 2 s wait and the CLI's.
	if sinceSet := time.Since(set).Seconds(); wait < 1 || wait > sinceSet {
		t.Errorf("set -p deployment: release_wait_seconds %v, want between 1 and %v", wait, sinceSet)
	}
	// From the comparison crowsnest saw after the set (Argo CD keeps whole
	// seconds of the finish) to the sync's finish.
	if from != "source_change" || lead < second.FinishedAt.Sub(second.StartedAt.Time).Seconds()+1 || lead > time.Since(set).Seconds()+1 {
		t.Errorf("set -p deployment: lead time %vs from %q, want from the source change, between %v and %v s",
			lead, from, second.FinishedAt.Sub(second.StartedAt.Time).Seconds()+1, time.Since(set).Seconds()+1)
	}

	// CI names the commit it built (here one of the repository's, authored
	// 3 h ago) beside the set.
	var named string
	for sha, date := range s.commits {
		if time.Since(date) > 2*time.Hour {
			named = sha
		}
	}
	s.kas.Kubectl("", "-n", argoCDNamespace, "annotate", "application", appDoraHelm, "crowsnest.io/change-commit="+named)
	if _, err := s.server.cli(ctx, "app", "set", appDoraHelm, "-p", "tag=v3"); err != nil {
		t.Fatal(err)
	}
	third := s.syncApp(ctx, t, appDoraHelm, synccommon.OperationSucceeded)
	eventually(t, signalTimeout, configTag("v3"))
	lead, from, _ = s.helmDeployment(t, third)
	if want := third.FinishedAt.Sub(s.commits[named]).Seconds(); from != "annotation" || lead != want {
		t.Errorf("named change: lead time %vs from %q, want %vs from the annotation's commit", lead, from, want)
	}
	// Argo CD's count: three history entries, each a deployment.
	app, err := s.apps.Get(ctx, appDoraHelm, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.expectCounts(t, appDoraHelm, map[string]float64{"succeeded": float64(len(app.Status.History))}, nil)
	if len(app.Status.History) != 3 {
		t.Errorf("%s: %d history entries, want 3", appDoraHelm, len(app.Status.History))
	}

	// Back to tag=v2 the way Kargo promotes older freight: the spec moves
	// back and the app ends Synced to it. A rollback of the v3 deployment
	// (no longer "a normal deployment"), which fails v3 once.
	if _, err := s.server.cli(ctx, "app", "set", appDoraHelm, "-p", "tag=v2"); err != nil {
		t.Fatal(err)
	}
	s.syncApp(ctx, t, appDoraHelm, synccommon.OperationSucceeded)
	eventually(t, signalTimeout, configTag("v2"))
	s.expectCounts(t, appDoraHelm, map[string]float64{"succeeded": 3, "rolled_back": 1}, map[string]float64{"rolled_back": 1})
}

// deployedLines returns the deployment_finished lines of app (in
// argoCDNamespace) that crowsnest pushed to Loki so far, decoded.
func (s *deploymentsEnv) deployedLines(app string) []map[string]any {
	var out []map[string]any
	for _, e := range s.loki.Entries() {
		var line map[string]any
		if e.Labels["event"] == "deployment_finished" && json.Unmarshal([]byte(e.Line), &line) == nil && line["app"] == argoCDNamespace+"/"+app {
			out = append(out, line)
		}
	}
	return out
}

// helmDeployment waits for the helm app's deployment_finished of op in
// Loki and returns its lead time, what it runs from and its release wait.
func (s *deploymentsEnv) helmDeployment(t *testing.T, op *v1alpha1.OperationState) (float64, string, float64) {
	t.Helper()
	var lead, wait float64
	var from string
	eventually(t, signalTimeout, func() error {
		for _, line := range s.deployedLines(appDoraHelm) {
			// The line's ts is the fact's time, Argo CD's finishedAt (the
			// entry's is when it was shipped).
			if ts, _ := line["ts"].(string); ts != op.FinishedAt.UTC().Format(time.RFC3339Nano) {
				continue
			}
			if line["source_changed"] != true {
				return fmt.Errorf("deployment_finished %v: want source_changed", line)
			}
			lead, _ = line["lead_time_seconds"].(float64)
			from, _ = line["lead_time_from"].(string)
			wait, _ = line["release_wait_seconds"].(float64)
			return nil
		}
		return fmt.Errorf("no deployment_finished of %s at %v in Loki", appDoraHelm, op.FinishedAt.Time)
	})
	return lead, from, wait
}

// selective: `argocd app sync --resource` of a new commit syncs one
// ConfigMap; Argo CD writes no history entry for it, and it is no
// deployment. The full sync after it is one deployment. The counts are
// Argo CD's: the history entries each sync added.
func (s *deploymentsEnv) selective(ctx context.Context, t *testing.T) {
	deployments := func() float64 {
		t.Helper()
		m, err := s.cn.Scrape()
		if err != nil {
			t.Fatal(err)
		}
		v, err := m.Value("crowsnest_app_deployments_total", "name", appDoraProd, "result", "succeeded")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	history := func() int {
		t.Helper()
		a, err := s.apps.Get(ctx, appDoraProd, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(a.Status.History)
	}
	before, entries := deployments(), history()
	s.commit(t, doraManifests("8", "Healthy"), "prod: version 8", 30*time.Minute)
	op := s.sync(ctx, t, synccommon.OperationSucceeded, "--resource", ":ConfigMap:first")
	if op.Operation.Sync == nil || len(op.Operation.Sync.Resources) != 1 {
		t.Fatalf("the selective sync's operation selects %+v, want one resource", op.Operation.Sync)
	}
	// Counted as a sync (crowsnest saw it finish), not as a deployment.
	eventually(t, signalTimeout, func() error {
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		for _, smp := range m.Find("crowsnest_app_last_sync_finished_timestamp_seconds", "name", appDoraProd) {
			if float64(smp.Value) >= float64(op.FinishedAt.Unix()) {
				return nil
			}
		}
		return fmt.Errorf("crowsnest has not seen the selective sync finish")
	})
	if added := history() - entries; added != 0 || deployments() != before {
		t.Errorf("selective sync: %d history entries added, deployments %v → %v; want none", added, before, deployments())
	}
	s.sync(ctx, t, synccommon.OperationSucceeded)
	if added := history() - entries; added != 1 {
		t.Fatalf("full sync: %d history entries added, want 1", added)
	}
	eventually(t, signalTimeout, func() error {
		if got := deployments(); got != before+1 {
			return fmt.Errorf("deployments %v, want %v: the full sync's, once", got, before+1)
		}
		return nil
	})
}

// appDoraSSA syncs by hand with ServerSideApply=true (serverSideApply).
const appDoraSSA = "dora-ssa"

// ssaConfig is the server-side apply app's ConfigMap.
func ssaConfig(greeting string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-config\ndata:\n  greeting: " + greeting + "\n"
}

// serverSideApply: with ServerSideApply=true gitops-engine reports every
// resource "serverside-applied" whether it changed or not, so "every
// resource applied unchanged" never says that a sync changed nothing. A
// commit that changes nothing of the app leaves Argo CD showing it Synced
// to the new revision; a person's sync of it after that is a sync (Argo CD
// writes a history entry) but no deployment. A commit that changes the
// app's ConfigMap is one. Argo CD's history grows by one per sync: 3
// entries, 2 deployments.
func (s *deploymentsEnv) serverSideApply(ctx context.Context, t *testing.T) {
	s.kas.CreateNamespace(appDoraSSA)
	spec := v1alpha1.ApplicationSpec{
		Project:     "default",
		Source:      &v1alpha1.ApplicationSource{RepoURL: "file://" + s.gitDir, Path: "ssa", TargetRevision: "main"},
		Destination: v1alpha1.ApplicationDestination{Server: s.argo.ClusterURL, Namespace: appDoraSSA},
		SyncPolicy:  &v1alpha1.SyncPolicy{SyncOptions: v1alpha1.SyncOptions{"ServerSideApply=true"}},
	}
	if _, err := s.apps.Create(ctx, &v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Name: appDoraSSA, Namespace: argoCDNamespace}, Spec: spec}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s: %v", appDoraSSA, err)
	}
	counts := func() (deployments, syncs float64, err error) {
		m, err := s.cn.Scrape()
		if err != nil {
			return 0, 0, err
		}
		if deployments, err = m.Value("crowsnest_app_deployments_total", "name", appDoraSSA, "result", "succeeded"); err != nil {
			return 0, 0, err
		}
		syncs, err = m.Value("crowsnest_app_syncs_total", "name", appDoraSSA, "result", "Succeeded")
		return deployments, syncs, err
	}
	expect := func(wantDeployments, wantSyncs float64) {
		t.Helper()
		eventually(t, signalTimeout, func() error {
			d, n, err := counts()
			if err != nil {
				return err
			}
			if d != wantDeployments || n != wantSyncs {
				return fmt.Errorf("%s: %v deployments and %v syncs, want %v and %v", appDoraSSA, d, n, wantDeployments, wantSyncs)
			}
			return nil
		})
	}
	history := func() int {
		t.Helper()
		a, err := s.apps.Get(ctx, appDoraSSA, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(a.Status.History)
	}
	op := s.syncApp(ctx, t, appDoraSSA, synccommon.OperationSucceeded)
	for _, r := range op.SyncResult.Resources {
		if !strings.Contains(r.Message, "serverside-applied") {
			t.Fatalf("Argo CD applied %s/%s with %q, want server-side apply's \"serverside-applied\"", r.Kind, r.Name, r.Message)
		}
	}
	expect(1, 1)

	// A commit that changes only prod: Argo CD shows the SSA app Synced
	// to it; a sync of it applies the same ConfigMap, "serverside-applied".
	head := s.commit(t, doraManifests("9", "Healthy"), "prod: version 9", time.Minute)
	eventually(t, signalTimeout, func() error {
		a, err := s.apps.Get(ctx, appDoraSSA, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if a.Status.Sync.Status != v1alpha1.SyncStatusCodeSynced || a.Status.Sync.Revision != head {
			return fmt.Errorf("%s: %s at %s, want Argo CD to show it Synced to %s", appDoraSSA, a.Status.Sync.Status, a.Status.Sync.Revision, head)
		}
		return nil
	})
	op = s.syncApp(ctx, t, appDoraSSA, synccommon.OperationSucceeded)
	if op.SyncResult.Revision != head || len(op.SyncResult.Resources) == 0 || !strings.Contains(op.SyncResult.Resources[0].Message, "serverside-applied") {
		t.Fatalf("the no-op sync: revision %s, results %+v; want %s, serverside-applied", op.SyncResult.Revision, op.SyncResult.Resources, head)
	}
	expect(1, 2)

	// A commit that changes the app's ConfigMap: a deployment.
	s.commit(t, map[string]string{"ssa/config.yaml": ssaConfig("two")}, "ssa: greeting two", time.Minute)
	s.syncApp(ctx, t, appDoraSSA, synccommon.OperationSucceeded)
	expect(2, 3)
	if n := history(); n != 3 {
		t.Errorf("Argo CD's history of %s has %d entries, want one per sync (3)", appDoraSSA, n)
	}
}

// degradedDuringSync: a commit whose wave-0 ConfigMap is Degraded.
// gitops-engine fails a multi-wave sync's running task whose resource
// turns Degraded before the next wave (a last wave's Degraded resource
// does not fail the sync: tried, it Succeeded), so Argo CD's sync fails on
// wave 0, and the app turns
// Degraded while or right after the sync runs — within the failure window
// of prod's last deployment, which did nothing wrong. One bad change is
// one failed change: sync_failed once, no degraded blamed on the deployment
// before. Deltas: crowsnest restarted in an earlier subtest.
func (s *deploymentsEnv) degradedDuringSync(ctx context.Context, t *testing.T) {
	read := func() ([4]float64, error) {
		var out [4]float64
		m, err := s.cn.Scrape()
		if err != nil {
			return out, err
		}
		for i, q := range [][2]string{{"crowsnest_app_deployments_total", "failed"}, {"crowsnest_app_change_failures_total", "sync_failed"},
			{"crowsnest_app_change_failures_total", "degraded"}, {"crowsnest_app_deployments_total", "succeeded"}} {
			label := "result"
			if q[0] == "crowsnest_app_change_failures_total" {
				label = "reason"
			}
			if out[i], err = m.Value(q[0], "name", appDoraProd, label, q[1]); err != nil {
				return out, err
			}
		}
		return out, nil
	}
	before, err := read()
	if err != nil {
		t.Fatal(err)
	}
	_, failedBefore, err := completedOperations(ctx, s.kas, appDoraProd)
	if err != nil {
		t.Fatal(err)
	}
	broken := doraManifests("10", "Healthy")
	broken["prod/first.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n  annotations:\n    argocd.argoproj.io/sync-wave: \"0\"\ndata:\n  version: \"10\"\n  health: Degraded\n"
	s.commit(t, broken, "prod: version 10, broken in its first wave", 10*time.Minute)
	op := s.sync(ctx, t, synccommon.OperationFailed)
	t.Logf("Argo CD ended the sync %s: %q", op.Phase, op.Message)
	eventually(t, signalTimeout, func() error {
		a, err := s.apps.Get(ctx, appDoraProd, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if a.Status.Health.Status != "Degraded" {
			return fmt.Errorf("%s is %s, want Argo CD to show it Degraded", appDoraProd, a.Status.Health.Status)
		}
		return nil
	})
	var want [4]float64
	eventually(t, signalTimeout, func() error {
		_, failed, err := completedOperations(ctx, s.kas, appDoraProd)
		if err != nil {
			return err
		}
		n := float64(failed - failedBefore)
		if n < 1 {
			return fmt.Errorf("Argo CD reported %d failed operations of %s since, want the sync's", failed-failedBefore, appDoraProd)
		}
		// Failed operations of one change are one failed deployment and
		// one failed change; the deployment before is not blamed.
		want = [4]float64{before[0] + 1, before[1] + 1, before[2], before[3]}
		got, err := read()
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("deployments failed, change failures sync_failed and degraded, deployments succeeded: %v, want %v (before %v)", got, want, before)
		}
		return nil
	})
	// And so it stays while the app is Degraded.
	time.Sleep(5 * time.Second)
	if got, err := read(); err != nil || got != want {
		t.Errorf("5 s later: %v (%v), want %v", got, err, want)
	}

	// Recovery without Synced: the fix also drops prod's second ConfigMap
	// from Git. The sync (no prune) leaves it live, so Argo CD shows the
	// app Healthy and OutOfSync for good (the ConfigMap requires pruning):
	// a perpetual diff. The failed change recovers all the same.
	recoveries := func() (float64, error) {
		m, err := s.cn.Scrape()
		if err != nil {
			return 0, err
		}
		return m.Value("crowsnest_deployment_recovery_seconds_count", "env", "prod", "project", "default")
	}
	recovered, _ := recoveries() // absent (0) if none since the restart
	fix := doraManifests("11", "Healthy")
	delete(fix, "prod/second.yaml")
	if err := os.Remove(filepath.Join(s.gitDir, "prod", "second.yaml")); err != nil {
		t.Fatal(err)
	}
	s.commit(t, fix, "prod: version 11, fixed, without its second ConfigMap", 5*time.Minute)
	s.sync(ctx, t, synccommon.OperationSucceeded)
	eventually(t, signalTimeout, func() error {
		a, err := s.apps.Get(ctx, appDoraProd, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if a.Status.Health.Status != "Healthy" || a.Status.Sync.Status != v1alpha1.SyncStatusCodeOutOfSync {
			return fmt.Errorf("%s is %s and %s, want Argo CD to show it Healthy and OutOfSync (a ConfigMap to prune)", appDoraProd, a.Status.Health.Status, a.Status.Sync.Status)
		}
		n, err := recoveries()
		if err != nil {
			return err
		}
		if n != recovered+1 {
			return fmt.Errorf("crowsnest_deployment_recovery_seconds_count = %v, want %v: recovered while OutOfSync", n, recovered+1)
		}
		// The fix started while the app was still Degraded from the
		// failed sync: the spell stays that sync's, still one failed
		// change and no degraded one.
		got, err := read()
		if err != nil {
			return err
		}
		if got[1] != want[1] || got[2] != want[2] {
			return fmt.Errorf("after the fix: change failures sync_failed %v and degraded %v, want %v and %v", got[1], got[2], want[1], want[2])
		}
		return nil
	})
}

// appDoraHydrated is a Source Hydrator app (hydrated).
const appDoraHydrated = "dora-hydrated"

// hydrated: a Source Hydrator app deploys the hydrator's commits (authored
// at hydration); its deployments' lead time runs from the dry commit the
// hydration rendered, looked up through argocd-server's RevisionMetadata
// in the repository both live in. The second dry commit is authored 2 h
// ago: its deployment's lead time is those 2 h (exact to the second), not
// the seconds since the hydrator's commit.
func (s *deploymentsEnv) hydrated(ctx context.Context, t *testing.T) {
	dir := s.env.Dir("dora-hydrator-git")
	repoURL, _ := newManifestRepo(t, dir, map[string]string{"dry/config.yaml": hydratedConfig("one")})
	createHydratedApp(ctx, t, s.kas, s.apps, s.argo, appDoraHydrated, repoURL)
	deployedDry := func(dry string) (map[string]any, error) {
		for _, line := range s.deployedLines(appDoraHydrated) {
			if line["dry_sha"] == dry {
				return line, nil
			}
		}
		return nil, fmt.Errorf("no deployment_finished of %s with dry_sha %s in Loki", appDoraHydrated, dry)
	}
	first := gitIn(t, dir, "rev-parse", "HEAD")
	eventually(t, signalTimeout, func() error { _, err := deployedDry(first); return err })

	if err := os.WriteFile(filepath.Join(dir, "dry", "config.yaml"), []byte(hydratedConfig("two")), 0o644); err != nil {
		t.Fatal(err)
	}
	authored := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	cmd := exec.Command("git", "commit", "-qam", "dry: two")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+authored.Format(time.RFC3339), "GIT_COMMITTER_DATE="+authored.Format(time.RFC3339))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git commit: %v\n%s", err, out)
	}
	second := gitIn(t, dir, "rev-parse", "HEAD")
	// The hydrator notices the dry source at its own pace: ask it.
	if _, err := s.server.cli(ctx, "app", "get", appDoraHydrated, "--hard-refresh"); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	eventually(t, signalTimeout, func() error {
		var err error
		line, err = deployedDry(second)
		return err
	})
	hydratedSHA := strings.TrimSpace(gitIn(t, dir, "rev-parse", hydratedBranch))
	finished, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(line["ts"]))
	want := finished.Sub(authored).Seconds()
	if line["revision"] != hydratedSHA || line["lead_time_from"] != "commit" || line["commit_sha"] != second || line["lead_time_seconds"] != want {
		t.Errorf("deployment of the hydrated %s: %v; want the dry commit %s as its change, lead time %vs", hydratedSHA, line, second, want)
	}
}

// restart: crowsnest stops (gracefully: its last checkpoint saved in the
// real API server), Argo CD finishes two syncs of prod while it is down (a
// new commit, a deployment; then a re-sync), and crowsnest starts again.
// It counts those two, as Argo CD's history shows them, and one deployment;
// every sync reached Loki once over the whole test (by trace id), every
// deployment once as a CloudEvent, and the start logged no drift_began,
// sync_started or workload_degraded for what it found (prod is OutOfSync,
// awaiting a merge, at that time).
func (s *deploymentsEnv) restart(ctx context.Context, t *testing.T) {
	eventually(t, signalTimeout, func() error {
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		if v, err := m.Value("crowsnest_checkpoint_saves_total", "result", "ok"); err != nil || v < 1 {
			return fmt.Errorf("checkpoint saves %v (%v), want at least one", v, err)
		}
		return nil
	})
	before, err := s.apps.Get(ctx, appDoraProd, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cn.Stop(); err != nil {
		t.Fatalf("crowsnest did not stop cleanly: %v", err)
	}
	stopped := time.Now()
	s.commit(t, doraManifests("9", "Healthy"), "prod: version 9", time.Hour)
	s.sync(ctx, t, synccommon.OperationSucceeded)
	s.sync(ctx, t, synccommon.OperationSucceeded)
	after, err := s.apps.Get(ctx, appDoraProd, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Argo CD's own count of what finished while crowsnest was down.
	var whileDown []v1alpha1.RevisionHistory
	for _, h := range after.Status.History {
		if h.ID > before.Status.History.LastRevisionHistory().ID {
			whileDown = append(whileDown, h)
		}
	}
	if len(whileDown) != 2 {
		t.Fatalf("%d history entries added while crowsnest was down, want 2", len(whileDown))
	}
	// And a merge that prod awaits: OutOfSync when crowsnest looks first.
	s.commit(t, doraManifests("10", "Healthy"), "prod: version 10", 0)
	if _, err := s.server.cli(ctx, "app", "get", appDoraProd, "--hard-refresh"); err != nil {
		t.Fatal(err)
	}
	eventually(t, signalTimeout, func() error {
		app, err := s.apps.Get(ctx, appDoraProd, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if app.Status.Sync.Status != v1alpha1.SyncStatusCodeOutOfSync {
			return fmt.Errorf("%s is %s, want OutOfSync awaiting version 10", appDoraProd, app.Status.Sync.Status)
		}
		return nil
	})
	s.cn.Start()
	eventually(t, signalTimeout, func() error {
		return s.cn.ExpectSample(float64(len(whileDown)), "crowsnest_app_syncs_total", "name", appDoraProd, "result", "Succeeded")
	})
	s.expectCounts(t, appDoraProd, map[string]float64{"succeeded": 1}, nil)

	uid := string(after.UID)
	eventually(t, signalTimeout, func() error {
		perTrace := map[string]int{}
		for _, e := range s.loki.Entries() {
			var line map[string]any
			if json.Unmarshal([]byte(e.Line), &line) != nil {
				continue
			}
			ts, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(line["ts"]))
			switch ev := e.Labels["event"]; {
			case ev == "sync_finished" && line["app"] == argoCDNamespace+"/"+appDoraProd:
				perTrace[fmt.Sprint(line["trace_id"])]++
			case (ev == "drift_began" || ev == "sync_started" || ev == "workload_degraded") && ts.After(stopped):
				t.Errorf("first-look event after the restart: %s", e.Line)
			}
		}
		for _, h := range whileDown {
			id := model.OperationSeqID(uid, h.DeployStartedAt.Time, 0)
			if perTrace[id] != 1 {
				return fmt.Errorf("sync %s (started %v, while crowsnest was down) reached Loki %d times, want once", id, h.DeployStartedAt, perTrace[id])
			}
		}
		for id, n := range perTrace {
			if n != 1 {
				return fmt.Errorf("sync %s reached Loki %d times", id, n)
			}
		}
		return nil
	})
	eventually(t, signalTimeout, func() error {
		ids := map[string]int{}
		for _, ev := range s.events.Events() {
			ids[fmt.Sprint(ev["id"])]++
		}
		for id, n := range ids {
			if n != 1 {
				return fmt.Errorf("CloudEvent %s sent %d times", id, n)
			}
		}
		id := model.OperationSeqID(uid, whileDown[0].DeployStartedAt.Time, 0)
		for evID := range ids {
			if strings.HasPrefix(evID, id) {
				return nil
			}
		}
		return fmt.Errorf("no CloudEvent of the deployment %s made while crowsnest was down among %v", id, ids)
	})
}

func startDeploymentsEnv(t *testing.T) *deploymentsEnv {
	t.Helper()
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	argo := env.StartArgoCD(kas)
	health, err := json.Marshal(map[string]any{"data": map[string]string{"resource.customizations.health.ConfigMap": configMapHealth}})
	if err != nil {
		t.Fatal(err)
	}
	kas.Kubectl(string(health), "-n", argoCDNamespace, "patch", "configmap", "argocd-cm", "--type=merge", "--patch-file=/dev/stdin")
	s := &deploymentsEnv{
		env: env, kas: kas, argo: argo, apps: kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace),
		commits: map[string]time.Time{},
	}
	s.server = startArgoCDServer(t.Context(), t, env, kas, argo)
	if *updateRecordings {
		s.recPath = filepath.Join(env.Dir("recordings"), "deployments.jsonl")
		s.rec = env.NewProcess("crowsnest-record", bin.crowsnest, "record", "--kubeconfig="+kas.Kubeconfig, "--out="+s.recPath)
		s.rec.Start()
	}

	// The repository: an old commit, then the one prod deploys first,
	// authored 3 h ago.
	s.gitDir = env.Dir("dora-git")
	newManifestRepo(t, s.gitDir, doraManifests("0", "Healthy"))
	s.commit(t, doraManifests("1", "Healthy"), "prod: version 1", 3*time.Hour)

	tokenFile := filepath.Join(env.Dir("crowsnest"), "argocd-token")
	if err := os.WriteFile(tokenFile, []byte(s.server.token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(env.Dir("crowsnest"), "crowsnest.yml")
	cfg := fmt.Sprintf("environments:\n  - env: prod\n    match: {name: %s}\n  - env: dev\n    match: {name: %s}\n  - env: stage\n    match: {name: %s}\n",
		appDoraProd, appDoraDev, appDoraHelm)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.loki = &lokitest.Receiver{}
	lokiURL, stopLoki, err := s.loki.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopLoki)
	s.events = &cdEventsReceiver{}
	ce := httptest.NewServer(s.events)
	t.Cleanup(ce.Close)
	s.cn = env.NewCrowsnest(kas.Kubeconfig, "--config.file="+cfgPath,
		"--argocd.server="+s.server.addr, "--argocd.token-file="+tokenFile, "--argocd.plaintext",
		"--loki.url="+lokiURL, "--cloudevents.url="+ce.URL,
		// Its checkpoint, in the API server (namespace default: no
		// POD_NAMESPACE here), saved every second (restart).
		"--checkpoint.configmap=crowsnest-state", "--checkpoint.interval=1s")
	s.cn.Start()
	s.vlogs = env.StartVictoriaLogs()
	env.StartCrowsnest(kas.Kubeconfig, "--config.file="+cfgPath,
		"--argocd.server="+s.server.addr, "--argocd.token-file="+tokenFile, "--argocd.plaintext",
		"--loki.url="+s.vlogs.LokiURL)
	s.prom = env.StartPrometheus([]string{strings.TrimPrefix(s.cn.URL, "http://")}, nil)
	waitScraped(t, s.cn, s.prom)

	for name, auto := range map[string]bool{appDoraProd: false, appDoraDev: true, appDoraHelm: false} {
		kas.CreateNamespace(name)
		spec := v1alpha1.ApplicationSpec{
			Project:     "default",
			Source:      &v1alpha1.ApplicationSource{RepoURL: "file://" + s.gitDir, Path: strings.TrimPrefix(name, "dora-"), TargetRevision: "main"},
			Destination: v1alpha1.ApplicationDestination{Server: argo.ClusterURL, Namespace: name},
		}
		if auto {
			selfHeal := true
			spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{SelfHeal: &selfHeal}}
		}
		if _, err := s.apps.Create(t.Context(), &v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: argoCDNamespace}, Spec: spec}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	return s
}

// commit writes files to the repository and commits them, authored (and
// committed) ago before now; it returns the commit's hash.
func (s *deploymentsEnv) commit(t *testing.T, files map[string]string, message string, ago time.Duration) string {
	t.Helper()
	for rel, content := range files {
		if err := os.WriteFile(filepath.Join(s.gitDir, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	date := time.Now().Add(-ago).Truncate(time.Second)
	cmd := exec.Command("git", "commit", "-qam", message)
	cmd.Dir = s.gitDir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+date.Format(time.RFC3339), "GIT_COMMITTER_DATE="+date.Format(time.RFC3339))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git commit: %v\n%s", err, out)
	}
	head := gitIn(t, s.gitDir, "rev-parse", "HEAD")
	s.commits[head] = date
	return head
}

// sync syncs the prod app with the argocd CLI (asynchronously, as the UI
// does) and waits for the operation to finish in phase; extra are more CLI
// flags (--dry-run).
func (s *deploymentsEnv) sync(ctx context.Context, t *testing.T, phase synccommon.OperationPhase, extra ...string) *v1alpha1.OperationState {
	t.Helper()
	return s.syncApp(ctx, t, appDoraProd, phase, extra...)
}

// syncApp syncs app as sync does the prod app.
func (s *deploymentsEnv) syncApp(ctx context.Context, t *testing.T, app string, phase synccommon.OperationPhase, extra ...string) *v1alpha1.OperationState {
	t.Helper()
	// The CLI refuses nothing for an app whose comparison is stale, but
	// compares first: refresh so the new commit is the target.
	if _, err := s.server.cli(ctx, "app", "get", app, "--hard-refresh"); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	if _, err := s.server.cli(ctx, append([]string{"app", "sync", app, "--async"}, extra...)...); err != nil {
		t.Fatal(err)
	}
	return s.waitOperationOf(ctx, t, app, since, phase)
}

func (s *deploymentsEnv) waitOperation(ctx context.Context, t *testing.T, since time.Time, phase synccommon.OperationPhase) *v1alpha1.OperationState {
	t.Helper()
	return s.waitOperationOf(ctx, t, appDoraProd, since, phase)
}

func (s *deploymentsEnv) waitOperationOf(ctx context.Context, t *testing.T, app string, since time.Time, phase synccommon.OperationPhase) *v1alpha1.OperationState {
	t.Helper()
	var op *v1alpha1.OperationState
	eventually(t, signalTimeout, func() error {
		var err error
		op, err = finishedOperation(ctx, s.apps, app, since)
		return err
	})
	if op.Phase != phase {
		t.Fatalf("%s: operation %s (%s), want %s", app, op.Phase, op.Message, phase)
	}
	return op
}

// expectCounts expects an app's deployment and change failure counts, per
// app and aggregated. The callers' literal counts are exact: the prod and
// Helm apps have no automated sync policy and no retry, so each of their
// operations is one the test asked for and waited for (`argocd app sync`,
// `rollback`), which Argo CD does not repeat by itself; the dev app's
// auto-syncs Argo CD may repeat, but a repeat of the same revision and
// source is no deployment (specOnly takes dev's count from its history).
func (s *deploymentsEnv) expectCounts(t *testing.T, name string, deployments map[string]float64, failures map[string]float64) {
	t.Helper()
	var want []sampleWant
	for _, r := range []string{"succeeded", "failed", "rolled_back"} {
		want = append(want, sampleWant{"crowsnest_app_deployments_total", []string{"result", r}, deployments[r]})
	}
	for _, r := range []string{"sync_failed", "degraded", "rolled_back"} {
		want = append(want, sampleWant{"crowsnest_app_change_failures_total", []string{"reason", r}, failures[r]})
	}
	eventually(t, signalTimeout, func() error {
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		if err := expectOn(m, name, want); err != nil {
			return err
		}
		// The aggregated counters DORA's rules read count the same: each
		// app is the only one of its project in its env.
		env := map[string]string{appDoraProd: "prod", appDoraDev: "dev", appDoraHelm: "stage"}[name]
		for _, r := range []string{"succeeded", "failed", "rolled_back"} {
			if err := m.Expect(deployments[r], "crowsnest_deployments_total", "project", "default", "env", env, "result", r); err != nil {
				return err
			}
		}
		for _, r := range []string{"sync_failed", "degraded", "rolled_back"} {
			if err := m.Expect(failures[r], "crowsnest_change_failures_total", "project", "default", "env", env, "reason", r); err != nil {
				return err
			}
		}
		return nil
	})
}

// promValue is the single value of query in Prometheus.
func (s *deploymentsEnv) promValue(query string) (float64, error) {
	samples, err := s.prom.Query(query)
	if err != nil {
		return 0, err
	}
	if len(samples) != 1 {
		return 0, fmt.Errorf("%s: %d samples, want 1", query, len(samples))
	}
	return samples[0].Value, nil
}

func (s *deploymentsEnv) firstDeployment(ctx context.Context, t *testing.T) {
	op := s.sync(ctx, t, synccommon.OperationSucceeded)
	rev := op.SyncResult.Revision
	authored, ok := s.commits[rev]
	if !ok {
		t.Fatalf("prod synced %s, not the commit authored 3 h ago", rev)
	}
	s.expectCounts(t, appDoraProd, map[string]float64{"succeeded": 1}, nil)
	// Argo CD and git keep whole seconds: the lead time is exact to 1 s.
	want := op.FinishedAt.Sub(authored).Seconds()
	eventually(t, signalTimeout, func() error {
		n, err := s.promValue(`crowsnest_change_lead_time_seconds_count{env="prod",until="deployed"}`)
		if err != nil {
			return err
		}
		sum, err := s.promValue(`crowsnest_change_lead_time_seconds_sum{env="prod",until="deployed"}`)
		if err != nil {
			return err
		}
		if n != 1 || math.Abs(sum-want) > 2 {
			return fmt.Errorf("lead time: %v observations summing %v s, want 1 of %v s (finished %v, authored %v)", n, sum, want, op.FinishedAt.Time, authored)
		}
		return nil
	})
	if now := time.Since(authored).Seconds(); want > now || want < now-signalTimeout.Seconds() {
		t.Errorf("lead time %v s, want about now minus the author date (%v s)", want, now)
	}
	eventually(t, signalTimeout, func() error {
		n, err := s.promValue(`crowsnest_change_lead_time_seconds_count{env="prod",until="healthy"}`)
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("lead time to healthy: %v observations, want 1", n)
		}
		return nil
	})
}

// resyncAndDryRun re-syncs the revision prod runs, watching crowsnest's
// expected finish as it runs, then dry-runs: neither is a deployment.
func (s *deploymentsEnv) resyncAndDryRun(ctx context.Context, t *testing.T) {
	// Watch the expected finish from the moment the sync is asked for.
	type seen struct {
		at       time.Time
		expected float64
	}
	var first *seen
	done := make(chan struct{})
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			m, err := s.cn.Scrape()
			if err != nil {
				continue
			}
			if v, err := m.Value("crowsnest_app_sync_expected_finish_timestamp_seconds", "name", appDoraProd); err == nil {
				first = &seen{at: time.Now(), expected: v}
				return
			}
		}
	}()
	op := s.sync(ctx, t, synccommon.OperationSucceeded)
	s.resync = op
	close(done)
	<-watching
	if first == nil {
		t.Fatal("crowsnest showed no expected finish while the re-sync ran")
	}
	real := op.FinishedAt.Sub(op.StartedAt.Time)
	// Stated tolerance: 3 s or a quarter of the sync's duration, whichever
	// is more (Argo CD keeps whole seconds; the waves' delays are 2 s).
	tolerance := max(3*time.Second, real/4)
	expected := time.Unix(0, int64(first.expected*1e9))
	if diff := expected.Sub(op.FinishedAt.Time); diff.Abs() > tolerance {
		t.Errorf("expected finish %v (seen at %v), real finish %v: off by %v, tolerance %v (the sync took %v)", expected, first.at, op.FinishedAt.Time, diff, tolerance, real)
	} else {
		t.Logf("expected finish off by %v for a %v sync (tolerance %v)", diff, real, tolerance)
	}
	s.sync(ctx, t, synccommon.OperationSucceeded, "--dry-run")
	s.expectCounts(t, appDoraProd, map[string]float64{"succeeded": 1}, nil)
	// Exact: prod syncs only when the test asks (no automated policy, no
	// retry), and it asked for two real syncs; the dry run (an
	// OperationCompleted Event too) is counted apart, in dry_runs_total.
	if err := s.cn.ExpectSample(2, "crowsnest_app_syncs_total", "name", appDoraProd, "result", "Succeeded"); err != nil {
		t.Error(err)
	}
}

func (s *deploymentsEnv) degradedAndRecovered(ctx context.Context, t *testing.T) {
	s.commit(t, doraManifests("2", "Degraded"), "prod: version 2, broken", 2*time.Hour)
	s.sync(ctx, t, synccommon.OperationSucceeded)
	s.expectCounts(t, appDoraProd, map[string]float64{"succeeded": 2}, map[string]float64{"degraded": 1})
	brokenSeen := time.Now()
	s.commit(t, doraManifests("3", "Healthy"), "prod: version 3, fixed", time.Hour)
	s.sync(ctx, t, synccommon.OperationSucceeded)
	s.expectCounts(t, appDoraProd, map[string]float64{"succeeded": 3}, map[string]float64{"degraded": 1})
	eventually(t, signalTimeout, func() error {
		n, err := s.promValue(`crowsnest_deployment_recovery_seconds_count{env="prod"}`)
		if err != nil {
			return err
		}
		sum, err := s.promValue(`crowsnest_deployment_recovery_seconds_sum{env="prod"}`)
		if err != nil {
			return err
		}
		if n != 1 || sum <= 0 || sum > time.Since(brokenSeen).Seconds()+signalTimeout.Seconds() {
			return fmt.Errorf("recovery: %v observations summing %v s, want 1 of at most %v s", n, sum, time.Since(brokenSeen).Seconds()+signalTimeout.Seconds())
		}
		return nil
	})
}

func (s *deploymentsEnv) rollback(ctx context.Context, t *testing.T) {
	a, err := s.apps.Get(ctx, appDoraProd, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Back to the first deployment's revision, by its history id.
	var id int64 = -1
	for _, h := range a.Status.History {
		if d, ok := s.commits[h.Revision]; ok && time.Since(d) > 150*time.Minute {
			id = h.ID
			break
		}
	}
	if id < 0 {
		t.Fatalf("no history entry of the first deployment in %+v", a.Status.History)
	}
	since := time.Now()
	if _, err := s.server.cli(ctx, "app", "rollback", appDoraProd, fmt.Sprint(id)); err != nil {
		t.Fatal(err)
	}
	s.waitOperation(ctx, t, since, synccommon.OperationSucceeded)
	s.expectCounts(t, appDoraProd, map[string]float64{"succeeded": 3, "rolled_back": 1}, map[string]float64{"degraded": 1, "rolled_back": 1})
	eventually(t, signalTimeout, func() error {
		n, err := s.promValue(`crowsnest_deployment_recovery_seconds_count{env="prod"}`)
		if err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("recovery observations %v, want 2 (the rollback's)", n)
		}
		return nil
	})
}

func (s *deploymentsEnv) selfHeal(ctx context.Context, t *testing.T) {
	s.expectCounts(t, appDoraDev, map[string]float64{"succeeded": 1}, nil)
	m, err := s.cn.Scrape()
	if err != nil {
		t.Fatal(err)
	}
	syncs, err := m.Value("crowsnest_app_syncs_total", "name", appDoraDev, "result", "Succeeded")
	if err != nil {
		t.Fatal(err)
	}
	s.kas.Kubectl(`{"data":{"greeting":"drifted"}}`, "-n", appDoraDev, "patch", "configmap", "dev-config", "--type=merge", "--patch-file=/dev/stdin")
	// Argo CD may repair it with one sync or two (a full auto-sync to the
	// newer commit, then a self-heal, seen in the same second): at least
	// one, and the live ConfigMap back as committed.
	eventually(t, signalTimeout, func() error {
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		n, err := m.Value("crowsnest_app_syncs_total", "name", appDoraDev, "result", "Succeeded")
		if err != nil {
			return err
		}
		if n < syncs+1 {
			return fmt.Errorf("%s: %v successful syncs, want more than %v", appDoraDev, n, syncs)
		}
		cm, err := s.kas.Kubernetes().CoreV1().ConfigMaps(appDoraDev).Get(ctx, "dev-config", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if g := cm.Data["greeting"]; g != "hello" {
			return fmt.Errorf("live dev-config greeting %q, want it healed to hello", g)
		}
		return nil
	})
	s.expectCounts(t, appDoraDev, map[string]float64{"succeeded": 1}, nil)
}

// deploymentEvents: each of the prod app's deployments (3 and a rollback)
// reached Loki exactly once with its commit's author, and the CloudEvents
// receiver once. The counts are exact: prod has no automated sync, so they
// are the syncs and the rollback the test ran.
func (s *deploymentsEnv) deploymentEvents(t *testing.T) {
	eventually(t, signalTimeout, func() error {
		perTrace := map[string]int{}
		for _, e := range s.loki.Entries() {
			if e.Labels["event"] != "deployment_finished" {
				continue
			}
			var line map[string]any
			if err := json.Unmarshal([]byte(e.Line), &line); err != nil {
				return fmt.Errorf("Loki line %q: %v", e.Line, err)
			}
			if line["app"] != argoCDNamespace+"/"+appDoraProd {
				continue
			}
			if a, _ := line["author"].(string); !strings.HasPrefix(a, "crowsnest e2e") {
				return fmt.Errorf("deployment event without the commit's author: %s", e.Line)
			}
			id, _ := line["trace_id"].(string)
			perTrace[id]++
		}
		if len(perTrace) != 4 {
			return fmt.Errorf("deployment events of %d prod deployments in Loki, want 4: %v", len(perTrace), perTrace)
		}
		for id, n := range perTrace {
			if n != 1 {
				return fmt.Errorf("deployment %s reached Loki %d times", id, n)
			}
		}
		return nil
	})
	eventually(t, signalTimeout, func() error {
		types, ids := map[string]int{}, map[string]bool{}
		for _, ev := range s.events.Events() {
			data, _ := ev["data"].(map[string]any)
			subject, _ := data["subject"].(map[string]any)
			if subject["id"] != argoCDNamespace+"/"+appDoraProd {
				continue
			}
			typ, _ := ev["type"].(string)
			id, _ := ev["id"].(string)
			if ids[id] {
				return fmt.Errorf("CloudEvent %s delivered twice", id)
			}
			ids[id] = true
			types[typ]++
		}
		if types["dev.cdevents.service.deployed.0.2.0"] != 3 || types["dev.cdevents.service.rolledback.0.2.0"] != 1 {
			return fmt.Errorf("CloudEvents of the prod app by type %v, want 3 deployed and 1 rolledback", types)
		}
		return nil
	})
}
