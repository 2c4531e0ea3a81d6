//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	appclient "github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned/typed/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cnmodel "github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/otlptest"
)

// The Applications of TestWaveTiming, each in an env and a namespace of its
// own name.
const (
	appRetry = "waves-retry" // Helm hooks weighted -1 and 2, the second failing once; retried
	appTwice = "waves-twice" // one ConfigMap, synced twice in a row as fast as Argo CD allows
)

// wavesManifests: the retried app's PreSync hooks are Helm hooks (Argo CD
// runs helm.sh/hook: pre-install as PreSync and takes helm.sh/hook-weight
// as the wave), the second failing the first time it runs (the stand-in
// Job controller fails it once); its Sync phase has waves 0 and 1.
func wavesManifests() map[string]string {
	return map[string]string{
		"retry/schema.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: schema
  annotations:
    helm.sh/hook: pre-install
    helm.sh/hook-weight: "-1"
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: schema, image: "registry.example.com/shop/schema:1.0"}]
`,
		"retry/migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    helm.sh/hook: pre-install
    helm.sh/hook-weight: "2"
    ` + annotationJobResult + `: FailedOnce
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "registry.example.com/shop/migrate:1.0"}]
`,
		"retry/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  release: r1
`,
		"retry/late.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: late
  annotations:
    argocd.argoproj.io/sync-wave: "1"
data:
  release: r1
`,
		"plain/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  release: r1
`,
	}
}

// retryBackoff is the retried app's backoff: long enough to tell from a
// wave, short enough for the suite.
const retryBackoff = 3 * time.Second

// TestWaveTiming checks crowsnest's wave timing against the real Argo CD
// application controller, syncs asked for as its API server asks for them
// (`argocd app sync`):
//  1. a sync whose PreSync hook fails once is retried by Argo CD: crowsnest
//     counts one operation, times each attempt's waves as that attempt's
//     (each hook wave observed per attempt), puts each backoff in a span of
//     its own and no wave, and gives the Helm hooks the waves of their hook
//     weights (-1 and 2), not 0 or "unknown";
//  2. the gaps between those waves agree with the controller's wave delay
//     (2 s) for a crowsnest told 2 s, and disagree for one told 5 s;
//  3. two syncs of one app that start in the same second are counted twice,
//     with a trace each.
func TestWaveTiming(t *testing.T) {
	start := time.Now()
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	StartStandInControllers(t, kas.Kubernetes())
	argo := env.StartArgoCD(kas)
	apps := kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	repoURL, revision := newManifestRepo(t, env.Dir("git"), wavesManifests())

	cfg := "environments:\n"
	for _, name := range []string{appRetry, appTwice} {
		cfg += fmt.Sprintf("  - env: %s\n    match: {name: %s}\n", name, name)
		kas.CreateNamespace(name)
	}
	cfgPath := filepath.Join(env.Dir("crowsnest"), "crowsnest.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	otlp := &otlptest.Receiver{}
	otlpURL, stopOTLP, err := otlp.ServeGRPC()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopOTLP)
	cn := env.NewCrowsnest(kas.Kubeconfig, "--config.file="+cfgPath, "--traces.otlp.endpoint="+otlpURL, "--traces.otlp.protocol=grpc")
	cn.Process.Env = append(cn.Process.Env, "OTEL_BSP_SCHEDULE_DELAY=200")
	cn.Start()
	// A second crowsnest, told a wave delay longer than the controller's.
	cn5 := env.NewCrowsnest(kas.Kubeconfig, "--config.file="+cfgPath, "--argocd.sync-wave-delay=5s")
	cn5.Start()

	ctx, cancel := context.WithTimeout(t.Context(), apiCallTimeout)
	defer cancel()
	for name, path := range map[string]string{appRetry: "retry", appTwice: "plain"} {
		a := &v1alpha1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: argoCDNamespace},
			Spec: v1alpha1.ApplicationSpec{
				Project:     "default",
				Source:      &v1alpha1.ApplicationSource{RepoURL: repoURL, Path: path, TargetRevision: "main"},
				Destination: v1alpha1.ApplicationDestination{Server: argo.ClusterURL, Namespace: name},
				SyncPolicy: &v1alpha1.SyncPolicy{Retry: &v1alpha1.RetryStrategy{Limit: 2, Backoff: &v1alpha1.Backoff{
					Duration: retryBackoff.String(), Factor: ptrTo[int64](1), MaxDuration: retryBackoff.String(),
				}}},
			},
		}
		if _, err := apps.Create(ctx, a, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Application %s: %v", name, err)
		}
	}
	eventually(t, signalTimeout, func() error {
		for _, c := range []*Crowsnest{cn, cn5} {
			m, err := c.Scrape()
			if err != nil {
				return err
			}
			for _, name := range []string{appRetry, appTwice} {
				if len(m.Find("crowsnest_app_info", "name", name)) == 0 {
					return fmt.Errorf("crowsnest does not show %s yet", name)
				}
			}
		}
		return nil
	})
	t.Logf("wave timing environment up in %v", time.Since(start).Round(time.Millisecond))

	t.Run("retried sync times each attempt", func(t *testing.T) {
		retriedSync(t.Context(), t, apps, cn, cn5, otlp, revision)
	})
	t.Run("two syncs in one second count twice", func(t *testing.T) {
		twoSyncsInOneSecond(t.Context(), t, apps, cn, otlp, revision)
	})
}

func ptrTo[T any](v T) *T { return &v }

// retriedSync: case 1 and 2 of TestWaveTiming.
func retriedSync(ctx context.Context, t *testing.T, apps appclient.ApplicationInterface, cn, cn5 *Crowsnest, otlp *otlptest.Receiver, revision string) {
	requested := requestSync(ctx, t, apps, appRetry, revision, false)
	var op *v1alpha1.OperationState
	eventually(t, 2*signalTimeout, func() (err error) {
		op, err = finishedOperation(ctx, apps, appRetry, requested)
		return err
	})
	// Argo CD may retry more than once: a retry that starts while the
	// failed hook Job of the attempt before still exists finds it failed
	// and fails at once (v2.14 deletes hooks only before creating them).
	if op.Phase != synccommon.OperationSucceeded || op.RetryCount < 1 {
		t.Fatalf("Argo CD ended the sync of %s %s after %d retries (%q), want Succeeded after a retry", appRetry, op.Phase, op.RetryCount, op.Message)
	}
	a, err := apps.Get(ctx, appRetry, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	traceID := cnmodel.OperationID(string(a.UID), op.StartedAt.Time)
	t.Logf("Argo CD synced %s in %v with %d retries; trace %s", appRetry, op.FinishedAt.Sub(op.StartedAt.Time), op.RetryCount, traceID)

	// One operation (exact: the app has no automated sync, the test asked
	// for one, and Argo CD's retries are attempts of it, not operations);
	// every wave of the last attempt in the gauges, the hooks in the waves
	// of their weights; each attempt's waves observed
	// on their own: the hook waves of the first and the last attempt at
	// least, the Sync waves, which only the last reached, once.
	eventually(t, signalTimeout, func() error {
		m, err := cn.Scrape()
		if err != nil {
			return err
		}
		if err := expectOn(m, appRetry, syncsAre(1, 0, 0, 0)); err != nil {
			return err
		}
		for _, w := range [][2]string{{"PreSync", "-1"}, {"PreSync", "2"}, {"Sync", "0"}, {"Sync", "1"}} {
			if len(m.Find("crowsnest_app_last_sync_wave_duration_seconds", "name", appRetry, "phase", w[0], "wave", w[1])) != 1 {
				return fmt.Errorf("no last wave %s/%s of %s", w[0], w[1], appRetry)
			}
		}
		if got := m.Find("crowsnest_app_last_sync_wave_duration_seconds", "name", appRetry); len(got) != 4 {
			return fmt.Errorf("%s has %d last-wave series, want 4: %v", appRetry, len(got), got)
		}
		for w, least := range map[[2]string]float64{{"PreSync", "-1"}: 2, {"PreSync", "2"}: 2, {"Sync", "0"}: 1, {"Sync", "1"}: 1} {
			n, err := m.Value("crowsnest_sync_wave_duration_seconds_count", "env", appRetry, "phase", w[0], "wave", w[1])
			if err != nil {
				return err
			}
			if n < least || n > float64(op.RetryCount+1) || w[0] == "Sync" && n != 1 {
				return fmt.Errorf("wave %s/%s observed %v times in %d attempts, want at least %v (the Sync waves once)", w[0], w[1], n, op.RetryCount+1, least)
			}
		}
		return nil
	})

	// The trace: an attempt span per run, the backoff between two, each
	// attempt's waves within it.
	var spans map[string]otlptest.Span
	eventually(t, signalTimeout, func() error {
		spans = map[string]otlptest.Span{}
		for _, s := range otlp.Trace(traceID) {
			spans[s.SpanID] = s
		}
		if _, ok := spans[cnmodel.SpanID(traceID, cnmodel.RootPath)]; !ok {
			return fmt.Errorf("no root span of trace %s yet", traceID)
		}
		return nil
	})
	span := func(path string) otlptest.Span {
		t.Helper()
		s, ok := spans[cnmodel.SpanID(traceID, path)]
		if !ok {
			t.Fatalf("trace %s has no span %s (%d spans)", traceID, path, len(spans))
		}
		return s
	}
	var prev otlptest.Span
	for n := int64(0); n <= op.RetryCount; n++ {
		attempt := span(cnmodel.AttemptPath(n))
		if last := n == op.RetryCount; attempt.StatusError == last {
			t.Errorf("attempt %d of %d in error %v, want only the last to succeed", n, op.RetryCount, attempt.StatusError)
		}
		if n > 0 {
			backoff := span(cnmodel.BackoffPath(n))
			t.Logf("attempt %d [%s, %s], backoff %v", n-1, prev.Start.Format("15:04:05.000"), prev.End.Format("15:04:05.000"), backoff.End.Sub(backoff.Start).Round(time.Millisecond))
			// Argo CD keeps whole seconds: the backoff is seen within
			// a second or so of its length.
			if d := backoff.End.Sub(backoff.Start); d < retryBackoff-1500*time.Millisecond || d > retryBackoff+2*time.Second {
				t.Errorf("backoff %d lasted %v, want about %v", n, d, retryBackoff)
			}
			if backoff.Start.Before(prev.End) || attempt.Start.Before(backoff.End) {
				t.Errorf("attempt %d ends %v, backoff [%v, %v], attempt %d starts %v: overlapping", n-1, prev.End, backoff.Start, backoff.End, n, attempt.Start)
			}
		}
		prev = attempt
	}
	for _, n := range []int64{0, op.RetryCount} {
		attempt := span(cnmodel.AttemptPath(n))
		for _, wave := range []int64{-1, 2} {
			w := span(cnmodel.AttemptWavePath(n, "PreSync", wave))
			// Within its attempt, so after the backoff before it: no
			// wave absorbs a backoff.
			if w.Start.Before(attempt.Start) || w.End.After(attempt.End) {
				t.Errorf("attempt %d's PreSync wave %d [%v, %v] outside its attempt [%v, %v]", n, wave, w.Start, w.End, attempt.Start, attempt.End)
			}
		}
	}

	// The controller's delay is 2 s: the crowsnest told 2 s agrees, the
	// one told 5 s does not.
	eventually(t, signalTimeout, func() error {
		m, err := cn.Scrape()
		if err != nil {
			return err
		}
		gap, err := m.Value("crowsnest_sync_wave_gap_min_seconds")
		if err != nil {
			return err
		}
		if gap < 2 || gap > 5 {
			return fmt.Errorf("shortest gap between waves %vs, want at least the controller's 2 s delay and not much more", gap)
		}
		if err := m.Expect(0, "crowsnest_sync_wave_delay_mismatch"); err != nil {
			return err
		}
		return cn5.ExpectSample(1, "crowsnest_sync_wave_delay_mismatch")
	})
	if !strings.Contains(cn5.Process.LogTail(200), "disagree with --argocd.sync-wave-delay") {
		t.Errorf("the crowsnest told 5 s logged no warning; log tail:\n%s", cn5.Process.LogTail(20))
	}
}

// twoSyncsInOneSecond: case 3 of TestWaveTiming. A one-ConfigMap sync ends
// within a fraction of a second (its one wave is the last: no delay), so a
// second one asked for as soon as the first has ended, the first asked for
// early in a second, starts in the same second. It tries a few times: how
// fast Argo CD is varies.
func twoSyncsInOneSecond(ctx context.Context, t *testing.T, apps appclient.ApplicationInterface, cn *Crowsnest, otlp *otlptest.Receiver, revision string) {
	a, err := apps.Get(ctx, appTwice, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const tries = 8
	syncs, same := 0, 0
	var sameStart time.Time
	for try := 0; try < tries && same == 0; try++ {
		// Early in a second.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
		var started [2]time.Time
		for i := range started {
			requested := requestSync(ctx, t, apps, appTwice, revision, false)
			op := waitFinished(ctx, t, apps, appTwice, requested)
			if op.Phase != synccommon.OperationSucceeded {
				t.Fatalf("sync of %s ended %s: %q", appTwice, op.Phase, op.Message)
			}
			syncs++
			started[i] = op.StartedAt.Time
		}
		if started[0].Equal(started[1]) {
			same++
			sameStart = started[0]
		}
		t.Logf("try %d: syncs started at %s and %s", try+1, started[0].Format(time.TimeOnly), started[1].Format(time.TimeOnly))
	}
	if same == 0 {
		t.Fatalf("Argo CD never started two syncs of %s in one second in %d tries", appTwice, tries)
	}
	// Exact: the app has no automated sync; these are the syncs the test
	// asked for, each waited for until Argo CD finished it.
	eventually(t, signalTimeout, func() error {
		return cn.ExpectSample(float64(syncs), "crowsnest_app_syncs_total", "name", appTwice, "result", "Succeeded")
	})
	for seq := range 2 {
		id := cnmodel.OperationSeqID(string(a.UID), sameStart, seq)
		eventually(t, signalTimeout, func() error {
			for _, s := range otlp.Trace(id) {
				if s.SpanID != cnmodel.SpanID(id, cnmodel.RootPath) {
					continue
				}
				// Watched whole, not made up afterwards from the
				// sync history (which has both too).
				if s.Attrs["crowsnest.partial"] != "false" {
					return fmt.Errorf("the trace %s of the sync %d started at %s is partial: crowsnest took it for the one before", id, seq, sameStart.Format(time.TimeOnly))
				}
				return nil
			}
			return fmt.Errorf("no trace %s of the sync %d started at %s", id, seq, sameStart.Format(time.TimeOnly))
		})
	}
	t.Logf("%d syncs, two of them in the same second, all counted, each with its trace", syncs)
}

// waitFinished polls the Application name every 20 ms until Argo CD has
// finished the operation asked for at requested, and returns it.
func waitFinished(ctx context.Context, t *testing.T, apps appclient.ApplicationInterface, name string, requested time.Time) *v1alpha1.OperationState {
	t.Helper()
	deadline := time.Now().Add(signalTimeout)
	for {
		op, err := finishedOperation(ctx, apps, name, requested)
		if err == nil {
			return op
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", signalTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
