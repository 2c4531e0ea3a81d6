//go:build e2e

package e2e

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/lokitest"
	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/otlptest"
	"github.com/crowsnest/crowsnest/internal/trace"
)

// updateRecordings rewrites test/e2e/testdata/*.jsonl and the embedded demo
// recording from this run: go test -tags e2e ./test/e2e -run Scenarios -update-recordings
var updateRecordings = flag.Bool("update-recordings", false, "write this run's Argo CD recordings to testdata and the demo")

const (
	// syncTimeout bounds a sync of the whole fixture by the real Argo CD
	// on 2 cores: the root app's five waves, then each child's own.
	syncTimeout = 4 * time.Minute
	// scenarioTimeout bounds one change (a sync, a drift) showing up in
	// Prometheus.
	scenarioTimeout = 2 * time.Minute
	// apiServerOutage is how long scenario 4 keeps kube-apiserver down.
	apiServerOutage = 20 * time.Second
)

// crowsnestConfig puts the fixture's apps in their env by their env label.
const crowsnestConfig = `environments:
  - env: prod
    match: {labels: {env: prod}}
  - env: stage
    match: {labels: {env: stage}}
  - env: dev
    match: {labels: {env: dev}}
  - env: mgmt
    match: {labels: {env: mgmt}}
`

// autoSynced are the apps Argo CD syncs by itself.
func autoSynced() []string {
	names := []string{"root"}
	for _, a := range fixtureApps {
		if a.autoSync() {
			names = append(names, a.name())
		}
	}
	return names
}

// scenarioEnv is everything the scenarios share.
type scenarioEnv struct {
	t        *testing.T
	env      *Env
	kas      *KubeAPIServer
	argo     *ArgoCD
	git      *GitFixture
	cn       *Crowsnest
	prom     *Prometheus
	am       *Alertmanager // gets the alerts of Prometheus and crowsnest's direct pages
	amDirect *Alertmanager // gets only crowsnest's direct pages
	rec      *Process
	recPath  string
	otlp     *otlptest.Receiver
	loki     *lokitest.Receiver
	// cnStores is a second crowsnest, a replica of cn as a user would run
	// it, sending its traces to a real Jaeger and its facts to a real
	// VictoriaLogs (through its Loki push API).
	cnStores *Crowsnest
	jaeger   *Jaeger
	vlogs    *VictoriaLogs
}

// The base URLs of --argocd.url and --grafana.url in the scenarios.
const (
	e2eArgoCDURL  = "https://argocd.e2e.invalid"
	e2eGrafanaURL = "https://grafana.e2e.invalid/grafana"
)

// TestArgoCDScenarios runs crowsnest against a real Argo CD syncing the
// fixture and checks what the real Prometheus scraped from it:
//  1. a fresh sync of the root app and its dev and stage children;
//  2. a sync whose PreSync hook Job fails (fixed by a later commit);
//  3. drift in prod (cleared later by a sync by hand);
//  4. kube-apiserver down for 20 s in the middle of a sync.
//
// `crowsnest record` runs beside it; the recording up to the end of
// scenario 3, before the fixes, is the demo's.
func TestArgoCDScenarios(t *testing.T) {
	s := startScenarioEnv(t)
	ctx := t.Context()

	t.Run("1 fresh sync", func(t *testing.T) { s.freshSync(ctx, t) })
	t.Run("2 failing sync", func(t *testing.T) { s.failingSync(ctx, t) })
	t.Run("3 prod drift", func(t *testing.T) { s.prodDrift(ctx, t) })
	// The first recording, the demo's, ends here: dev-backend's last sync
	// failed and prod has drifted, so the demo's final state shows both.
	first := s.stopRecorder("argocd-scenarios-1-3.jsonl")
	s.startRecorder()
	t.Run("2 fixed", func(t *testing.T) { s.fixMigration(ctx, t) })
	t.Run("3 fixed", func(t *testing.T) { s.fixProdDrift(ctx, t) })
	t.Run("5 workloads and policy", func(t *testing.T) { s.workloadsAndPolicy(ctx, t) })
	t.Run("6 Argo CD API source", func(t *testing.T) { s.argoCDAPISource(ctx, t) })
	t.Run("4 API server outage", func(t *testing.T) { s.apiServerOutage(ctx, t) })
	second := s.stopRecorder("argocd-scenario-4-outage.jsonl")
	if *updateRecordings && !t.Failed() {
		s.saveRecording(first, "argocd-scenarios-1-3.jsonl", filepath.Join(bin.repoRoot, "internal", "demo", "recording.jsonl"))
		s.saveRecording(second, "argocd-scenario-4-outage.jsonl")
	}
}

func startScenarioEnv(t *testing.T) *scenarioEnv {
	t.Helper()
	start := time.Now()
	env := NewEnv(t)
	etcd := env.StartEtcd()
	kas := env.StartKubeAPIServer(etcd)
	kas.InstallArgoCDCRDs()
	StartStandInControllers(t, kas.Kubernetes())
	argo := env.StartArgoCD(kas)
	s := &scenarioEnv{t: t, env: env, kas: kas, argo: argo}
	s.git = NewGitFixture(t, env.Dir("git"), kas.URL)

	cfg := filepath.Join(env.Dir("crowsnest"), "crowsnest.yml")
	if err := os.WriteFile(cfg, []byte(crowsnestConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	// Traces go to an in-process OTLP receiver over gRPC.
	s.otlp = &otlptest.Receiver{}
	otlpURL, stopOTLP, err := s.otlp.ServeGRPC()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopOTLP)
	// Events go to an in-process Loki push receiver.
	s.loki = &lokitest.Receiver{}
	lokiURL, stopLoki, err := s.loki.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopLoki)
	s.am = env.StartAlertmanager()
	s.amDirect = env.StartAlertmanager()
	s.cn = env.NewCrowsnest(kas.Kubeconfig, "--config.file="+cfg, "--traces.otlp.endpoint="+otlpURL, "--traces.otlp.protocol=grpc",
		"--loki.url="+lokiURL,
		"--alertmanager.url="+s.am.URL, "--alertmanager.url="+s.env.withPassword(s.amDirect.URL, "alertmanager-url-password"), fmt.Sprintf("--alertmanager.for-scale=%g", alertForScale),
		"--argocd.url="+e2eArgoCDURL, "--grafana.url="+e2eGrafanaURL)
	s.cn.Process.Env = append(s.cn.Process.Env, "OTEL_BSP_SCHEDULE_DELAY=200")
	s.cn.Process.Args = append(s.cn.Process.Args, s.env.lokiBasicAuth(s.loki)...)
	s.cn.Start()
	// The replica with the real stores. Trace ids are the operation's,
	// the same in every replica (leader election hands over on them), so
	// an exemplar cn exposes leads to the trace and facts cnStores sent.
	s.jaeger = env.StartJaeger()
	s.vlogs = env.StartVictoriaLogs()
	s.cnStores = env.NewCrowsnest(kas.Kubeconfig, "--config.file="+cfg,
		"--traces.otlp.endpoint="+s.jaeger.OTLPEndpoint, "--traces.otlp.protocol=http/protobuf", "--loki.url="+s.vlogs.LokiURL,
		"--argocd.url="+e2eArgoCDURL, "--grafana.url="+e2eGrafanaURL)
	s.cnStores.Process.Env = append(s.cnStores.Process.Env, "OTEL_BSP_SCHEDULE_DELAY=200")
	s.cnStores.Start()
	s.startRecorder()
	s.prom = env.StartPrometheus([]string{strings.TrimPrefix(s.cn.URL, "http://")}, s.am)
	eventually(t, scenarioTimeout, func() error {
		return s.prom.ExpectValue(`crowsnest_source_up{source="kubernetes"}`, 1)
	})
	t.Logf("scenario environment up in %v", time.Since(start).Round(time.Millisecond))
	return s
}

// startRecorder runs `crowsnest record` next to the daemon.
func (s *scenarioEnv) startRecorder() {
	s.t.Helper()
	s.recPath = filepath.Join(s.env.Dir("recordings"), fmt.Sprintf("rec-%d.jsonl", time.Now().UnixNano()))
	s.rec = s.env.NewProcess("crowsnest-record", bin.crowsnest, "record", "--kubeconfig="+s.kas.Kubeconfig, "--out="+s.recPath)
	s.rec.Start()
}

// stopRecorder stops the recorder and returns its recording's path.
func (s *scenarioEnv) stopRecorder(name string) string {
	s.t.Helper()
	if err := s.rec.Stop(); err != nil {
		s.t.Errorf("crowsnest record (%s): %v", name, err)
	}
	fi, err := os.Stat(s.recPath)
	if err != nil {
		s.t.Fatalf("recording %s: %v", name, err)
	}
	s.t.Logf("recording %s: %d bytes", name, fi.Size())
	return s.recPath
}

func (s *scenarioEnv) saveRecording(from string, name string, extra ...string) {
	s.t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, to := range append([]string{filepath.Join(recordingsDir(), name)}, extra...) {
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o644); err != nil {
			s.t.Fatal(err)
		}
		s.t.Logf("wrote %s", to)
	}
}

// q formats a PromQL selector for app name.
func q(metric, name string, labels ...string) string {
	sel := fmt.Sprintf(`%s{name=%q`, metric, name)
	for i := 0; i+1 < len(labels); i += 2 {
		sel += fmt.Sprintf(`,%s=%q`, labels[i], labels[i+1])
	}
	return sel + "}"
}

// expectState checks sync and health of app in Prometheus.
func (s *scenarioEnv) expectState(name, sync, health string) error {
	if err := s.prom.ExpectValue(q("crowsnest_app_sync_status", name, "status", sync), 1); err != nil {
		return err
	}
	return s.prom.ExpectValue(q("crowsnest_app_health_status", name, "status", health), 1)
}

// completedOperations counts the operations Argo CD's controller reported
// completed for app name, by whether they succeeded: it creates one
// Kubernetes Event (reason OperationCompleted, never aggregated) for each,
// selective syncs and dry runs included. The history is no oracle for v3:
// its self-heal syncs only the resources that drifted, which the history
// leaves out. The Events outlive a restart of the controller; they do not
// tell Failed from Error (argoCDSyncs does).
func completedOperations(ctx context.Context, kas *KubeAPIServer, name string) (succeeded, failed int, err error) {
	events, err := kas.Kubernetes().CoreV1().Events(argoCDNamespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Application,reason=OperationCompleted,involvedObject.name=" + name,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list the events of %s: %w", name, err)
	}
	for _, e := range events.Items {
		switch {
		case strings.HasSuffix(e.Message, " succeeded"):
			succeeded++
		case strings.Contains(e.Message, " failed:"):
			failed++
		}
	}
	return succeeded, failed, nil
}

// syncResults are the phases a completed operation ends in, as Argo CD's
// argocd_app_sync_total and crowsnest's syncs_total (no terminate-op in
// the scenarios: crowsnest's Terminated stays 0) label them.
var syncResults = []string{"Succeeded", "Failed", "Error"}

// argoCDSyncs returns the operations (dry runs left out) of app name that
// Argo CD's application controller completed since it started, by phase:
// its own argocd_app_sync_total, counted where it writes each completed
// operation, with its OperationCompleted Event. Unlike the Events it tells
// Failed from Error; it starts from nothing when the controller restarts.
func argoCDSyncs(argo *ArgoCD, name string) (map[string]float64, error) {
	m, err := scrapeURL(argo.ControllerMetrics)
	if err != nil {
		return nil, fmt.Errorf("the application controller's metrics: %w", err)
	}
	out := map[string]float64{}
	for _, s := range m.Find("argocd_app_sync_total", "namespace", argoCDNamespace, "name", name, "dry_run", "false") {
		out[string(s.Metric["phase"])] += float64(s.Value)
	}
	return out, nil
}

// expectSyncsMatchArgoCD checks, for each app, that crowsnest counted as
// many operations per result as Argo CD's controller reported completed
// (argoCDSyncs), once no operation of the app is running: how often Argo
// CD syncs, retries or gives up is Argo CD's to say, not the scenario's.
func (s *scenarioEnv) expectSyncsMatchArgoCD(ctx context.Context, names ...string) error {
	apps := s.kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	for _, name := range names {
		app, err := apps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if app.Operation != nil || app.Status.OperationState != nil && !app.Status.OperationState.Phase.Completed() {
			return fmt.Errorf("%s: operation still running", name)
		}
		argo, err := argoCDSyncs(s.argo, name)
		if err != nil {
			return err
		}
		for _, r := range syncResults {
			if err := s.prom.ExpectValue(q("crowsnest_app_syncs_total", name, "result", r), argo[r]); err != nil {
				return fmt.Errorf("Argo CD reported %v operations of %s completed %s (%d entries in its history): %w", argo[r], name, r, len(app.Status.History), err)
			}
		}
	}
	return nil
}

func (s *scenarioEnv) freshSync(ctx context.Context, t *testing.T) {
	start := time.Now()
	s.kas.ApplyRoot(s.git)
	took := eventually(t, syncTimeout, func() error {
		for _, name := range autoSynced() {
			if err := s.expectState(name, "Synced", "Healthy"); err != nil {
				return err
			}
		}
		return s.expectSyncsMatchArgoCD(ctx, autoSynced()...)
	})
	t.Logf("root, dev and stage Synced/Healthy in Prometheus %v after the root app was applied", took.Round(time.Second))
	// Prod waits for a person: crowsnest shows it OutOfSync, never synced.
	eventually(t, scenarioTimeout, func() error {
		if err := s.prom.ExpectValue(q("crowsnest_app_sync_status", "prod-backend", "status", "OutOfSync"), 1); err != nil {
			return err
		}
		return s.prom.ExpectValue(q("crowsnest_app_syncs_total", "prod-backend", "result", "Succeeded"), 0)
	})
	if err := s.prom.ExpectValue(`count(crowsnest_app_info{autosync="false",env="prod"})`, 1); err != nil {
		t.Error(err)
	}
	// The sync duration histogram carries each operation's trace id as an
	// exemplar, scraped as OpenMetrics and stored by the real Prometheus.
	// The root's sync of the fixture's five waves is its first full sync,
	// the first entry of its history: v3's self-heal may sync a drifted
	// child Application again right after, selectively (one wave).
	root, err := s.kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace).Get(ctx, "root", metav1.GetOptions{})
	if err != nil || len(root.Status.History) == 0 || root.Status.History[0].DeployStartedAt == nil {
		t.Fatalf("root app: %v (history %v)", err, root.Status.History)
	}
	rootStarted := root.Status.History[0].DeployStartedAt.Time
	want := model.OperationID(string(root.UID), rootStarted)
	eventually(t, scenarioTimeout, func() error {
		ids, err := s.prom.ExemplarTraceIDs(`crowsnest_sync_duration_seconds_bucket{env="mgmt"}`)
		if err != nil {
			return err
		}
		if !ids[want] {
			return fmt.Errorf("exemplar trace ids %v lack the root sync's %s", ids, want)
		}
		return nil
	})
	s.checkRootTrace(t, rootStarted, want)
	// The same trace id is in root's sync_finished event in Loki.
	eventually(t, scenarioTimeout, func() error {
		for _, e := range s.loki.Entries() {
			if e.Labels["event"] == "sync_finished" && e.Labels["env"] == "mgmt" && e.Labels["job"] == "crowsnest" &&
				strings.Contains(e.Line, `"app":"argocd/root"`) && strings.Contains(e.Line, `"trace_id":"`+want+`"`) {
				return nil
			}
		}
		return fmt.Errorf("no sync_finished event of root with trace id %s among %d Loki entries", want, len(s.loki.Entries()))
	})
	s.checkRealStores(ctx, t, want)
	// Prod has not been synced: it trails stage, more and more.
	lag := func() (float64, error) {
		v, err := s.prom.Query(`crowsnest_promotion_lag_seconds{group="backend",from="stage",to="prod"}`)
		if err != nil || len(v) != 1 {
			return 0, fmt.Errorf("promotion lag stage→prod: %v (%v)", v, err)
		}
		return v[0].Value, nil
	}
	var first float64
	eventually(t, scenarioTimeout, func() (err error) {
		if first, err = lag(); err == nil && first <= 0 {
			err = fmt.Errorf("promotion lag stage→prod %v, want > 0", first)
		}
		return err
	})
	eventually(t, scenarioTimeout, func() error {
		second, err := lag()
		if err == nil && second <= first {
			err = fmt.Errorf("promotion lag stage→prod went from %v to %v, want it growing", first, second)
		}
		return err
	})
	t.Logf("scenario 1 took %v", time.Since(start).Round(time.Second))
}

// checkRootTrace checks the trace of the root app's five-wave sync as the
// in-process OTLP receiver got it: one trace, with the exemplar's id; its
// wave spans in wave order, back to back, each but the last at least Argo
// CD's 2 s wave delay, nested in the Sync phase span and that in the root.
func (s *scenarioEnv) checkRootTrace(t *testing.T, started time.Time, traceID string) {
	t.Helper()
	var spans []otlptest.Span
	eventually(t, scenarioTimeout, func() error {
		spans = s.otlp.Trace(traceID)
		if len(spans) < 7 {
			return fmt.Errorf("trace %s has %d spans, want the root, its phase and 5 waves", traceID, len(spans))
		}
		return nil
	})
	// Exactly one trace for the operation: every span of the root app's
	// operation that started at started is in it, and none twice.
	ids := map[string]bool{}
	for _, sp := range s.otlp.Spans() {
		if sp.Attrs[trace.AttrApp] == "argocd/root" && sp.Start.Unix() == started.Unix() {
			if sp.TraceID != traceID {
				t.Errorf("root sync span in trace %s, want only %s", sp.TraceID, traceID)
			}
		}
		if sp.TraceID == traceID {
			if ids[sp.SpanID] {
				t.Errorf("span %s (%s) received twice", sp.SpanID, sp.Name)
			}
			ids[sp.SpanID] = true
		}
	}
	var rootSpan, phase otlptest.Span
	var waves []otlptest.Span
	for _, sp := range spans {
		switch {
		case sp.ParentSpanID == "":
			rootSpan = sp
		case sp.Name == "Sync":
			phase = sp
		case strings.HasPrefix(sp.Name, "wave "):
			waves = append(waves, sp)
		default:
			t.Errorf("unexpected span %q in the root's trace", sp.Name)
		}
	}
	if rootSpan.Name != "sync argocd/root" || rootSpan.Attrs[trace.AttrResult] != "Succeeded" || rootSpan.Attrs[trace.AttrPartial] != "false" {
		t.Fatalf("root span %q attrs %v, want sync argocd/root, Succeeded, not partial", rootSpan.Name, rootSpan.Attrs)
	}
	if phase.ParentSpanID != rootSpan.SpanID || phase.Start.Before(rootSpan.Start) || phase.End.After(rootSpan.End) {
		t.Errorf("Sync phase span [%v, %v] parent %s: not inside the root span [%v, %v]", phase.Start, phase.End, phase.ParentSpanID, rootSpan.Start, rootSpan.End)
	}
	sort.Slice(waves, func(i, j int) bool { return waves[i].Start.Before(waves[j].Start) })
	if len(waves) != 5 {
		t.Fatalf("%d wave spans, want 5", len(waves))
	}
	for i, w := range waves {
		d := w.End.Sub(w.Start)
		t.Logf("root %s: %v (%d resources)", w.Name, d.Round(time.Millisecond), len(w.Events))
		if w.Name != fmt.Sprintf("wave %d", i) {
			t.Errorf("wave span %d is %q: not in wave order", i, w.Name)
		}
		if w.ParentSpanID != phase.SpanID || w.Start.Before(phase.Start) || w.End.After(phase.End) {
			t.Errorf("%s [%v, %v]: not inside the Sync phase span [%v, %v]", w.Name, w.Start, w.End, phase.Start, phase.End)
		}
		if i > 0 && w.Start.Before(waves[i-1].End) {
			t.Errorf("%s starts at %v, before %s ends at %v", w.Name, w.Start, waves[i-1].Name, waves[i-1].End)
		}
		// Argo CD sleeps 2 s after every wave but the operation's last
		// (argo-cd controller/sync.go delayBetweenSyncWaves).
		if i < len(waves)-1 && d < 2*time.Second {
			t.Errorf("%s lasted %v, less than Argo CD's 2 s wave delay", w.Name, d)
		}
		if len(w.Events) == 0 {
			t.Errorf("%s has no resource events", w.Name)
		}
	}
}

// checkRealStores walks the user's path from the slow sync's exemplar on
// real stores: its trace in Jaeger (the root, the Sync phase and a span per
// wave, with the CI/CD semantic conventions), then its facts in
// VictoriaLogs by trace id.
func (s *scenarioEnv) checkRealStores(ctx context.Context, t *testing.T, traceID string) {
	t.Helper()
	var tr *JaegerTrace
	eventually(t, scenarioTimeout, func() (err error) {
		if tr, err = s.jaeger.Trace(ctx, traceID); err != nil {
			return err
		}
		if len(tr.Spans) < 7 {
			return fmt.Errorf("Jaeger holds %d spans of trace %s, want the root, its phase and 5 waves", len(tr.Spans), traceID)
		}
		return nil
	})
	roots := tr.Root()
	if len(roots) != 1 {
		t.Fatalf("trace %s in Jaeger has roots %v, want one", traceID, roots)
	}
	root := roots[0]
	for k, want := range map[string]string{
		trace.AttrResult: "Succeeded", trace.AttrApp: "argocd/root", trace.AttrEnv: "mgmt",
		"cicd.pipeline.name": "argocd/root", "cicd.pipeline.action.name": "SYNC", "cicd.pipeline.result": "success",
		"cicd.pipeline.run.id": traceID,
	} {
		if root.Attrs[k] != want {
			t.Errorf("Jaeger root span %q: %s = %q, want %q", root.Name, k, root.Attrs[k], want)
		}
	}
	if root.Name != "sync argocd/root" || root.Service != "crowsnest" || root.Attrs["vcs.ref.head.revision"] == "" {
		t.Errorf("Jaeger root span %q of service %q, attributes %v", root.Name, root.Service, root.Attrs)
	}
	phases := tr.Children(root.SpanID)
	if len(phases) != 1 || phases[0].Name != "Sync" {
		t.Fatalf("Jaeger: the root's children are %v, want the Sync phase", phases)
	}
	waves := tr.Children(phases[0].SpanID)
	if len(waves) != 5 {
		t.Fatalf("Jaeger: %d wave spans under Sync, want 5", len(waves))
	}
	for i, w := range waves { // sorted by start
		if w.Name != fmt.Sprintf("wave %d", i) || w.Attrs[trace.AttrWave] != strconv.Itoa(i) ||
			w.Attrs["cicd.pipeline.task.type"] != "deploy" || w.Attrs["cicd.pipeline.task.run.result"] != "success" || len(w.Events) == 0 {
			t.Errorf("Jaeger wave span %d: %q attributes %v, %d resource events", i, w.Name, w.Attrs, len(w.Events))
		}
	}
	t.Logf("Jaeger: trace %s, %d spans, root %v", traceID, len(tr.Spans), root.Duration)
	// Trace to logs: the facts with this trace id, by the query a
	// Grafana trace-to-logs link runs.
	q := `{job="crowsnest"} trace_id:="` + traceID + `"`
	eventually(t, scenarioTimeout, func() error {
		got, err := s.vlogs.Query(ctx, q)
		if err != nil {
			return err
		}
		events := map[string]int{}
		for _, e := range got {
			events[e["event"]]++
			if e["app"] != "argocd/root" || e["env"] != "mgmt" {
				return fmt.Errorf("VictoriaLogs: %s returned a fact of another app: %v", q, e)
			}
			if e["event"] == "sync_finished" && e["result"] != "Succeeded" {
				return fmt.Errorf("VictoriaLogs: sync_finished %v, want result Succeeded", e)
			}
		}
		if events["sync_finished"] != 1 || events["sync_started"] != 1 || events["wave_entered"] < 5 {
			return fmt.Errorf("VictoriaLogs: %s: facts %v, want one sync_started, one sync_finished and a wave_entered per wave", q, events)
		}
		return nil
	})
}

func (s *scenarioEnv) failingSync(ctx context.Context, t *testing.T) {
	start := time.Now()
	s.git.FailMigration = true
	s.git.Release = "r2"
	s.git.Commit("r2: a migration that fails in dev")
	s.kas.Refresh(ctx, "dev-backend")
	s.expectSyncFailedAlert(ctx, t)
	eventually(t, scenarioTimeout, func() error {
		if err := s.prom.ExpectValue(q("crowsnest_app_operation_phase", "dev-backend", "phase", "Failed"), 1); err != nil {
			return err
		}
		if v, err := s.prom.Query(q("crowsnest_app_last_sync_finished_timestamp_seconds", "dev-backend", "result", "Failed")); err != nil || len(v) != 1 || v[0].Value < float64(start.Unix()) {
			return fmt.Errorf("last_sync_finished{result=Failed} of dev-backend: %v (%v), want one sample after %v", v, err, start)
		}
		// Argo CD will not auto-sync the failed revision again, and says so.
		if err := s.prom.ExpectValue(q("crowsnest_app_conditions", "dev-backend", "type", "SyncError"), 1); err != nil {
			return err
		}
		// The failure the scenario makes: Argo CD's own count of the
		// failed operations, at least this one.
		argo, err := argoCDSyncs(s.argo, "dev-backend")
		if err != nil {
			return err
		}
		if argo["Failed"] < 1 {
			return fmt.Errorf("Argo CD reported %v failed operations of dev-backend, want at least the r2 sync's", argo["Failed"])
		}
		return s.expectSyncsMatchArgoCD(ctx, "dev-backend")
	})
	t.Logf("failed sync of dev-backend seen in Prometheus after %v", time.Since(start).Round(time.Second))
	// The failed PreSync hook Job shows in the workload series while it
	// exists (the retry deletes it: BeforeHookCreation), and as a
	// workload_degraded event in Loki.
	eventually(t, scenarioTimeout, func() error {
		if err := s.prom.ExpectValue(`max_over_time(crowsnest_app_workload_job_status{name="dev-backend",workload="shop-dev/backend-migrate",status="Failed"}[10m])`, 1); err != nil {
			return err
		}
		for _, e := range s.loki.Entries() {
			if e.Labels["event"] == "workload_degraded" && e.Labels["env"] == "dev" &&
				strings.Contains(e.Line, `"workload":"shop-dev/backend-migrate"`) && strings.Contains(e.Line, `"job_status":"Failed"`) {
				return nil
			}
		}
		return fmt.Errorf("no workload_degraded event of the failed migration Job in Loki")
	})
}

func (s *scenarioEnv) fixMigration(ctx context.Context, t *testing.T) {
	start := time.Now()
	s.git.FailMigration = false
	s.git.Release = "r3"
	s.git.Commit("r3: fix the migration")
	s.kas.Refresh(ctx, "dev-backend")
	eventually(t, scenarioTimeout, func() error {
		if err := s.prom.ExpectValue(q("crowsnest_app_operation_phase", "dev-backend", "phase", "Succeeded"), 1); err != nil {
			return err
		}
		if err := s.expectState("dev-backend", "Synced", "Healthy"); err != nil {
			return err
		}
		if v, err := s.prom.Query(q("crowsnest_app_conditions", "dev-backend")); err != nil || len(v) != 0 {
			return fmt.Errorf("conditions of dev-backend after the fix: %v (%v)", v, err)
		}
		return s.expectSyncsMatchArgoCD(ctx, "dev-backend")
	})
	t.Logf("fixed sync of dev-backend seen in Prometheus after %v", time.Since(start).Round(time.Second))
	took := eventually(t, scenarioTimeout, func() error {
		return s.expectNoAlert(ctx, map[string]string{"alertname": "CrowsnestSyncFailed", "name": "dev-backend"})
	})
	t.Logf("CrowsnestSyncFailed of dev-backend resolved in both Alertmanagers %v later", took.Round(time.Second))
}

// expectSyncFailedAlert waits for dev-backend's sync to fail and measures
// how soon CrowsnestSyncFailed reaches Alertmanager directly from
// crowsnest, and how soon Prometheus fires it, after Argo CD's finishedAt;
// the direct page must take at most 5 s. Both paths carry the same labels:
// the Alertmanager that gets both holds one alert.
func (s *scenarioEnv) expectSyncFailedAlert(ctx context.Context, t *testing.T) {
	t.Helper()
	// dest_cluster: dev-backend deploys to the API server crowsnest
	// reads, which is the cluster it runs in (--workloads.cluster's
	// default name).
	want := map[string]string{"alertname": "CrowsnestSyncFailed", "name": "dev-backend", "env": "dev", "severity": "warning", "project": "default", "namespace": argoCDNamespace, "dest_cluster": "in-cluster"}
	var direct, rule time.Time
	eventually(t, scenarioTimeout, func() error {
		if direct.IsZero() {
			if got, err := s.amDirect.FindAlerts(ctx, want); err == nil && len(got) > 0 {
				direct = time.Now()
			}
		}
		if rule.IsZero() {
			if v, err := s.prom.Query(`ALERTS{alertname="CrowsnestSyncFailed",name="dev-backend",alertstate="firing"}`); err == nil && len(v) > 0 {
				rule = time.Now()
			}
		}
		if direct.IsZero() || rule.IsZero() {
			return fmt.Errorf("CrowsnestSyncFailed of dev-backend: direct page seen %v, Prometheus firing %v", !direct.IsZero(), !rule.IsZero())
		}
		return nil
	})
	app, err := s.kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace).Get(ctx, "dev-backend", metav1.GetOptions{})
	if err != nil || app.Status.OperationState == nil || app.Status.OperationState.FinishedAt == nil {
		t.Fatalf("dev-backend's operation: %v", err)
	}
	// finishedAt is whole seconds: the real finish is up to 1 s later.
	finished := app.Status.OperationState.FinishedAt.Time
	t.Logf("CrowsnestSyncFailed: direct page in Alertmanager %v after finishedAt, Prometheus rule firing %v after (poll %v, finishedAt truncated to seconds)",
		direct.Sub(finished).Round(10*time.Millisecond), rule.Sub(finished).Round(10*time.Millisecond), eventuallyPoll)
	if d := direct.Sub(finished); d > 5*time.Second {
		t.Errorf("direct page took %v after the operation finished, want at most 5 s", d)
	}
	// Both paths link the alert to the app's dashboard and to the app in
	// Argo CD: the pager from its flags, the rule from the base URLs it
	// was rendered with.
	links := map[string]string{
		"dashboard_url": e2eGrafanaURL + "/d/crowsnest-app/crowsnest-app?var-app=dev-backend&var-namespace=argocd&var-cluster=&var-env=dev&var-project=default",
		"argocd_url":    e2eArgoCDURL + "/applications/" + argoCDNamespace + "/dev-backend",
	}
	eventually(t, scenarioTimeout, func() error {
		direct, err := s.amDirect.Annotations(ctx, want)
		if err != nil {
			return err
		}
		rule, err := s.prom.AlertAnnotations(map[string]string{"alertname": "CrowsnestSyncFailed", "name": "dev-backend"})
		if err != nil {
			return err
		}
		for path, anns := range map[string][]map[string]string{"direct page": direct, "Prometheus rule": rule} {
			if len(anns) != 1 {
				return fmt.Errorf("%s: %d alerts, want one", path, len(anns))
			}
			for k, v := range links {
				if anns[0][k] != v {
					return fmt.Errorf("%s: annotation %s = %q, want %q", path, k, anns[0][k], v)
				}
			}
		}
		return nil
	})
	eventually(t, scenarioTimeout, func() error {
		got, err := s.am.FindAlerts(ctx, map[string]string{"alertname": "CrowsnestSyncFailed", "name": "dev-backend"})
		if err != nil {
			return err
		}
		if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
			return fmt.Errorf("Alertmanager holds %v, want one alert %v from both paths", got, want)
		}
		return nil
	})
}

// expectNoAlert checks that neither Alertmanager holds an active alert
// with the labels of want.
func (s *scenarioEnv) expectNoAlert(ctx context.Context, want map[string]string) error {
	for _, am := range []*Alertmanager{s.am, s.amDirect} {
		got, err := am.FindAlerts(ctx, want)
		if err != nil {
			return err
		}
		if len(got) > 0 {
			return fmt.Errorf("%s still holds %v", am.URL, got)
		}
	}
	return nil
}

func (s *scenarioEnv) prodDrift(ctx context.Context, t *testing.T) {
	start := time.Now()
	s.kas.SyncByHand(ctx, "prod-backend")
	eventually(t, scenarioTimeout, func() error {
		if err := s.expectState("prod-backend", "Synced", "Healthy"); err != nil {
			return err
		}
		return s.expectSyncsMatchArgoCD(ctx, "prod-backend")
	})
	eventually(t, scenarioTimeout, func() error {
		return s.prom.ExpectValue(`crowsnest_promotion_lag_seconds{group="backend",from="stage",to="prod"}`, 0)
	})
	// A sync started the way the argocd CLI starts one (.operation set,
	// the operation state cleared) is watched from its start: its waves
	// are timed.
	eventually(t, scenarioTimeout, func() error {
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		if got := m.Find("crowsnest_app_last_sync_wave_duration_seconds", "name", "prod-backend"); len(got) == 0 {
			return fmt.Errorf("no timed waves of prod-backend's sync by hand")
		}
		return nil
	})

	// Someone edits a live object of the prod app by hand.
	edited := time.Now()
	cm, err := s.kas.Kubernetes().CoreV1().ConfigMaps("shop-prod").Get(ctx, "backend-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["release"] = "hotfix-by-hand"
	if _, err := s.kas.Kubernetes().CoreV1().ConfigMaps("shop-prod").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, scenarioTimeout, func() error {
		if err := s.prom.ExpectValue(q("crowsnest_app_sync_status", "prod-backend", "status", "OutOfSync", "env", "prod"), 1); err != nil {
			return err
		}
		if err := s.prom.ExpectValue(q("crowsnest_app_out_of_sync_resources", "prod-backend", "kind", "ConfigMap", "group", ""), 1); err != nil {
			return err
		}
		v, err := s.prom.Query(q("crowsnest_app_drift_since_timestamp_seconds", "prod-backend"))
		if err != nil {
			return err
		}
		if len(v) != 1 {
			return fmt.Errorf("drift_since of prod-backend: %d samples", len(v))
		}
		since := time.Unix(0, int64(v[0].Value*1e9))
		if since.Before(edited.Add(-time.Second)) || since.After(time.Now()) {
			return fmt.Errorf("drift since %v, want between the edit at %v and now", since, edited)
		}
		return nil
	})
	t.Logf("prod drift seen in Prometheus %v after the edit", took.Round(time.Second))
	took = eventually(t, scenarioTimeout, func() error {
		for _, am := range []*Alertmanager{s.am, s.amDirect} {
			got, err := am.FindAlerts(ctx, map[string]string{"alertname": "CrowsnestProdDrift", "name": "prod-backend", "env": "prod", "severity": "critical"})
			if err != nil {
				return err
			}
			if len(got) != 1 {
				return fmt.Errorf("%s: CrowsnestProdDrift of prod-backend: %v", am.URL, got)
			}
		}
		return nil
	})
	t.Logf("CrowsnestProdDrift (critical) in both Alertmanagers %v after the drift showed (for: 5m scaled to %v)", took.Round(time.Second), time.Duration(alertForScale*float64(5*time.Minute)))
	// Drift in dev pages nobody: dev-backend has been OutOfSync since its
	// failed sync in scenario 2 (longer than the for), and there is no
	// critical alert outside prod.
	if err := s.prom.ExpectValue(q("crowsnest_app_sync_status", "dev-backend", "status", "OutOfSync", "env", "dev"), 1); err != nil {
		t.Errorf("the dev drift this check relies on is gone: %v", err)
	}
	for _, am := range []*Alertmanager{s.am, s.amDirect} {
		all, err := am.ActiveAlerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range all {
			if a["severity"] == "critical" && a["env"] != "prod" {
				t.Errorf("%s: critical alert outside prod: %v", am.URL, a)
			}
		}
	}
	checkDashboardQueries(t, s.prom, nil, nil, nil, "crowsnest-fleet", "crowsnest-app")
	// The dashboards' log queries, in LogsQL, against the facts the
	// replica pushed to VictoriaLogs: dev-backend's failed sync (scenario
	// 2) and prod's drift.
	devFinished := logFact{"event": "sync_finished", "app": argoCDNamespace + "/dev-backend"}
	checkDashboardLogQueries(ctx, t, s.vlogs, nil, map[string][]logFact{
		"Recent failed syncs and drift": {
			{"event": "sync_finished", "app": argoCDNamespace + "/dev-backend", "result": "Failed"},
			{"event": "drift_began", "app": argoCDNamespace + "/prod-backend"},
		},
		"Recent facts": {devFinished},
		"Fact log":     {devFinished},
	}, "crowsnest-fleet", "crowsnest-app")
	if v, err := s.prom.Query(q("crowsnest_app_out_of_sync_resources", "prod-backend")); err != nil || len(v) != 1 {
		t.Errorf("drifted kinds of prod-backend: %v (%v), want only the edited ConfigMap", v, err)
	}
	t.Logf("scenario 3 took %v", time.Since(start).Round(time.Second))
}

func (s *scenarioEnv) fixProdDrift(ctx context.Context, t *testing.T) {
	start := time.Now()

	// The fix: a selective sync of the drifted ConfigMap, as one does from
	// the UI. (A full re-sync right after the first one would be a no-op on
	// Argo CD v2.14: its merge patch of the operation state keeps the
	// previous operation's syncResult, so a multi-wave sync resumes
	// believing every task already ran; argoproj/argo-cd#29332.)
	s.kas.SyncByHand(ctx, "prod-backend", v1alpha1.SyncOperationResource{Kind: "ConfigMap", Name: "backend-config", Namespace: "shop-prod"})
	eventually(t, scenarioTimeout, func() error {
		if err := s.expectState("prod-backend", "Synced", "Healthy"); err != nil {
			return err
		}
		if v, err := s.prom.Query(q("crowsnest_app_drift_since_timestamp_seconds", "prod-backend")); err != nil || len(v) != 0 {
			return fmt.Errorf("drift_since of prod-backend still %v (%v)", v, err)
		}
		return s.expectSyncsMatchArgoCD(ctx, "prod-backend")
	})
	eventually(t, scenarioTimeout, func() error {
		return s.expectNoAlert(ctx, map[string]string{"alertname": "CrowsnestProdDrift"})
	})
	t.Logf("prod drift cleared in Prometheus %v after the selective sync", time.Since(start).Round(time.Second))
}

func (s *scenarioEnv) apiServerOutage(ctx context.Context, t *testing.T) {
	start := time.Now()
	s.git.Release = "r4"
	s.git.Commit("r4: a release for dev and stage")
	s.kas.Refresh(ctx, "dev-backend", "dev-frontend", "stage-backend", "stage-frontend")
	// Mid-run: stop the API server as soon as a sync is under way.
	eventually(t, scenarioTimeout, func() error {
		running, err := s.prom.Query(`crowsnest_app_operation_phase{phase="Running"} == 1`)
		if err == nil && len(running) == 0 {
			err = fmt.Errorf("no operation running yet")
		}
		return err
	})
	if err := s.kas.Stop(); err != nil {
		t.Logf("kube-apiserver stopped: %v", err)
	}
	down := time.Now()
	eventually(t, apiServerOutage, func() error {
		if err := s.cn.ExpectStatus("/readyz", http.StatusServiceUnavailable); err != nil {
			return err
		}
		return s.prom.ExpectValue(`crowsnest_source_up{source="kubernetes"}`, 0)
	})
	time.Sleep(time.Until(down.Add(apiServerOutage)))
	s.kas.Start()
	took := eventually(t, reconnectTimeout, func() error {
		if err := s.cn.ExpectStatus("/readyz", http.StatusOK); err != nil {
			return err
		}
		return s.prom.ExpectValue(`crowsnest_source_up{source="kubernetes"}`, 1)
	})
	t.Logf("crowsnest ready again %v after kube-apiserver restarted", took.Round(time.Second))

	// An operation the outage broke can fail for good: Argo CD then
	// refuses to auto-sync that revision again. Such failures count too
	// (Argo CD's count of them is expectSyncsMatchArgoCD's oracle); an
	// operator answers them with a new release, and so does the test.
	apps := s.kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	var gaveUp []string
	broken := map[string]*v1alpha1.OperationState{}
	eventually(t, syncTimeout, func() error {
		gaveUp, broken = nil, map[string]*v1alpha1.OperationState{}
		for _, name := range autoSynced() {
			app, err := apps.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			op := app.Status.OperationState
			if op == nil || !op.Phase.Completed() {
				return fmt.Errorf("%s: operation not finished", name)
			}
			if op.Phase != synccommon.OperationSucceeded && op.StartedAt.Unix() >= start.Unix() {
				gaveUp = append(gaveUp, name)
				broken[name] = op
			}
		}
		return nil
	})
	if len(gaveUp) > 0 {
		for _, name := range gaveUp {
			t.Logf("the outage broke %s's sync for good: %s %s", name, broken[name].Phase, broken[name].Message)
		}
		s.git.Release = "r5"
		s.git.Commit("r5: release again after the outage")
		s.kas.Refresh(ctx, gaveUp...)
	}
	eventually(t, syncTimeout, func() error {
		for _, name := range autoSynced() {
			if err := s.expectState(name, "Synced", "Healthy"); err != nil {
				return err
			}
		}
		return s.expectSyncsMatchArgoCD(ctx, append(autoSynced(), "prod-backend")...)
	})
	if exited, _ := s.cn.Exited(); exited {
		t.Error("crowsnest exited during the outage")
	}
	t.Logf("scenario 4 took %v", time.Since(start).Round(time.Second))
}

// workloadsAndPolicy holds a Deployment below its ready replicas and sees it
// in the workload series and as a Loki event; and gives a prod app
// auto-sync, which trips the policy alert in Prometheus.
func (s *scenarioEnv) workloadsAndPolicy(ctx context.Context, t *testing.T) {
	setReady := func(value *string) {
		t.Helper()
		d, err := s.kas.Kubernetes().AppsV1().Deployments("shop-dev").Get(ctx, "backend", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if value == nil {
			delete(d.Annotations, annotationReadyReplicas)
		} else {
			d.Annotations[annotationReadyReplicas] = *value
		}
		if _, err := s.kas.Kubernetes().AppsV1().Deployments("shop-dev").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	replicas := func(state string) string {
		return `crowsnest_app_workload_replicas{name="dev-backend",kind="Deployment",workload="shop-dev/backend",state="` + state + `"}`
	}
	// Two Deployments beside dev-backend's that Argo CD (annotation
	// tracking, v3's default) does not count as its own: a Helm release
	// labelled app.kubernetes.io/instance=dev-backend, and one with
	// dev-backend's tracking id copied onto it. Neither joins the app: no
	// series, no event, though both stay short of ready replicas.
	strangers := []string{"helm-release", "copied-id"}
	for _, name := range strangers {
		one := int32(1)
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop-dev", Labels: map[string]string{"app.kubernetes.io/instance": "dev-backend"},
				Annotations: map[string]string{annotationReadyReplicas: "0"}},
			Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:v1"}}}}},
		}
		if name == "copied-id" {
			d.Annotations["argocd.argoproj.io/tracking-id"] = "dev-backend:apps/Deployment:shop-dev/backend"
		}
		if _, err := s.kas.Kubernetes().AppsV1().Deployments("shop-dev").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	zero := "0"
	setReady(&zero)
	took := eventually(t, scenarioTimeout, func() error {
		if err := s.prom.ExpectValue(replicas("ready"), 0); err != nil {
			return err
		}
		v, err := s.prom.Query(replicas("desired"))
		if err != nil || len(v) != 1 || v[0].Value < 1 {
			return fmt.Errorf("desired replicas %v (%v), want at least 1", v, err)
		}
		for _, e := range s.loki.Entries() {
			if e.Labels["event"] == "workload_degraded" && strings.Contains(e.Line, `"app":"argocd/dev-backend"`) && strings.Contains(e.Line, `"workload":"shop-dev/backend"`) {
				return nil
			}
		}
		return fmt.Errorf("no workload_degraded event for shop-dev/backend in Loki")
	})
	t.Logf("Deployment held at 0 ready replicas: in Prometheus and Loki %v later", took.Round(time.Second))
	// By now crowsnest has seen the strangers (created before backend's
	// change, on the same watch) and Prometheus has scraped since.
	if v, err := s.prom.Query(`crowsnest_app_workload_replicas{workload=~"shop-dev/(helm-release|copied-id)"}`); err != nil || len(v) != 0 {
		t.Errorf("Deployments Argo CD does not track joined an app: %v (%v)", v, err)
	}
	for _, e := range s.loki.Entries() {
		if e.Labels["event"] == "workload_degraded" && (strings.Contains(e.Line, "shop-dev/helm-release") || strings.Contains(e.Line, "shop-dev/copied-id")) {
			t.Errorf("a workload Argo CD does not track was reported degraded: %s", e.Line)
		}
	}
	for _, name := range strangers {
		if err := s.kas.Kubernetes().AppsV1().Deployments("shop-dev").Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
	setReady(nil)
	eventually(t, scenarioTimeout, func() error {
		v, err := s.prom.Query(replicas("ready"))
		if err != nil || len(v) != 1 || v[0].Value < 1 {
			return fmt.Errorf("ready replicas %v (%v), want back to desired", v, err)
		}
		return nil
	})
	// Every workload row of the README's metrics table marked "Kubernetes
	// source" (cert-manager rows need its CRD) is in Prometheus.
	for _, name := range readmeKubernetesMetrics(t) {
		if v, err := s.prom.Query(`count(` + name + `)`); err != nil || len(v) != 1 {
			t.Errorf("README lists %s, Prometheus has none: %v", name, err)
		}
	}

	// A prod app that auto-syncs, created by hand (not through the root
	// app, whose self-heal would revert it), with a path that does not
	// exist, so it never syncs anything.
	app := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "prod-rogue", Namespace: argoCDNamespace, Labels: map[string]string{"env": "prod"}},
		Spec: v1alpha1.ApplicationSpec{
			Project:     "default",
			Source:      &v1alpha1.ApplicationSource{RepoURL: s.git.URL(), Path: "does-not-exist", TargetRevision: "HEAD"},
			Destination: v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: "shop-prod"},
			SyncPolicy:  &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{}},
		},
	}
	apps := s.kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	if _, err := apps.Create(ctx, app, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := apps.Delete(ctx, app.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete %s: %v", app.Name, err)
		}
	}()
	took = eventually(t, scenarioTimeout, func() error {
		return s.prom.ExpectValue(`ALERTS{alertname="CrowsnestPolicyViolated",alertstate="firing",name="prod-rogue",env="prod",policy="auto_sync"}`, 1)
	})
	t.Logf("CrowsnestPolicyViolated firing for the auto-syncing prod app %v after it was created (for: 10m scaled to %v)", took.Round(time.Second), time.Duration(alertForScale*float64(10*time.Minute)))
}

// readmeKubernetesMetrics returns the metrics of the README's table marked
// "(Kubernetes source)".
func readmeKubernetesMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bin.repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(crowsnest_[a-z_]+)` \\(Kubernetes source\\) \\|").FindAllStringSubmatch(string(data), -1) {
		out = append(out, m[1])
	}
	if len(out) < 3 {
		t.Fatalf("README lists %d Kubernetes-source metrics, want the workload rows", len(out))
	}
	return out
}
