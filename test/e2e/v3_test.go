//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	appclient "github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned/typed/application/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Applications of the Argo CD v3 scenarios of TestSignals.
const (
	appPaused   = "signals-paused"   // prod, automated: {enabled: false}
	appHydrated = "signals-hydrated" // a Source Hydrator app: a dry source, a hydrated branch
)

// hydratedBranch is the branch the Source Hydrator commits appHydrated's
// manifests to, and the app syncs from.
const hydratedBranch = "env/hydrated"

// pausedAutoSync: an app whose auto-sync is switched off the v3.1+ way
// (automated.enabled: false, the rest of the block kept) shows auto-sync
// off and, in prod, breaks no "syncs by hand" policy; the controller does
// not sync it. Switched on, it shows on and breaks the policy: the control.
func (s *signalsEnv) pausedAutoSync(ctx context.Context, t *testing.T) {
	s.kas.CreateNamespace(appPaused)
	app := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: appPaused, Namespace: argoCDNamespace},
		Spec: v1alpha1.ApplicationSpec{
			Project:     "default",
			Source:      &v1alpha1.ApplicationSource{RepoURL: s.repoURL, Path: "plain", TargetRevision: "main"},
			Destination: v1alpha1.ApplicationDestination{Server: s.argo.ClusterURL, Namespace: appPaused},
			SyncPolicy: &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{
				Enabled: new(false), SelfHeal: new(true), Prune: new(true),
			}},
		},
	}
	if _, err := s.apps.Create(ctx, app, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s: %v", appPaused, err)
	}
	got, err := s.apps.Get(ctx, appPaused, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a := got.Spec.SyncPolicy.Automated; a == nil || a.Enabled == nil || *a.Enabled {
		t.Fatalf("the v3.6.1 CRD did not keep automated.enabled: false: %+v", a)
	}
	paused := []sampleWant{
		{"crowsnest_app_info", []string{"autosync", "false", "self_heal", "false", "prune", "false"}, 1},
		{"crowsnest_app_policy_violation", []string{"policy", "auto_sync"}, 0},
		{"crowsnest_app_sync_status", []string{"status", "OutOfSync"}, 1},
	}
	eventually(t, signalTimeout, func() error { return s.expectAll(appPaused, paused) })
	// The controller compares it every few seconds (--app-resync 5) and
	// must not sync it: after 15 s it is still OutOfSync, never synced.
	time.Sleep(15 * time.Second)
	if got, err = s.apps.Get(ctx, appPaused, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if got.Status.OperationState != nil || got.Operation != nil {
		t.Fatalf("Argo CD synced %s, whose auto-sync is off: operation %+v, state %+v", appPaused, got.Operation, got.Status.OperationState)
	}
	if err := s.expectAll(appPaused, append(paused, syncsAre(0, 0, 0, 0)...)); err != nil {
		t.Fatal(err)
	}

	// The control: enabled: true is auto-sync, which prod's policy forbids.
	eventually(t, signalTimeout, func() error {
		a, err := s.apps.Get(ctx, appPaused, metav1.GetOptions{})
		if err != nil {
			return err
		}
		a.Spec.SyncPolicy.Automated.Enabled = new(true)
		_, err = s.apps.Update(ctx, a, metav1.UpdateOptions{})
		return err
	})
	// The controller may auto-sync it more than once in a second (it did
	// here, twice): the count is the one Argo CD reported, at least one.
	eventually(t, signalTimeout, func() error {
		a, err := s.apps.Get(ctx, appPaused, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if op := a.Status.OperationState; op == nil || !op.Phase.Completed() || a.Operation != nil {
			return fmt.Errorf("Argo CD has not finished auto-syncing %s", appPaused)
		}
		succeeded, failed, err := completedOperations(ctx, s.kas, appPaused)
		if err != nil {
			return err
		}
		if succeeded == 0 || failed != 0 {
			return fmt.Errorf("Argo CD reported %d successful and %d failed operations of %s, want at least one successful and none failed", succeeded, failed, appPaused)
		}
		return s.expectAll(appPaused, []sampleWant{
			{"crowsnest_app_info", []string{"autosync", "true", "self_heal", "true", "prune", "true"}, 1},
			{"crowsnest_app_policy_violation", []string{"policy", "auto_sync"}, 1},
			{"crowsnest_app_syncs_total", []string{"result", "Succeeded"}, float64(succeeded)},
			{"crowsnest_app_syncs_total", []string{"result", "Failed"}, 0},
		})
	})
}

// hydrator: an app whose manifests Argo CD's Source Hydrator renders from a
// dry source into a branch of the same repository (pushed by the real
// commit server) shows the hydration's phase, its SHAs (checked against
// git), each hydration counted once, as many as Argo CD wrote to the app
// (watchHydrations), and failed ones, as many as the controller logged,
// with a lag that lasts until the next success.
func (s *signalsEnv) hydrator(ctx context.Context, t *testing.T) {
	dir := s.env.Dir("hydrator-git")
	repoURL, dryHead := newManifestRepo(t, dir, map[string]string{"dry/config.yaml": hydratedConfig("one")})
	ops := watchHydrations(ctx, t, s.kas, appHydrated)
	createHydratedApp(ctx, t, s.kas, s.apps, s.argo, appHydrated, repoURL)
	// hydrated: Argo CD hydrated dry (at least once), and crowsnest shows
	// it, with as many hydrations as Argo CD's.
	hydrated := func(dry string) error {
		total, ofDry := ops.hydrated(dry)
		if ofDry == 0 {
			return fmt.Errorf("Argo CD has not hydrated %s yet (%d hydrations of other dry commits)", dry, total)
		}
		hyd, err := exec.Command("git", "-C", dir, "rev-parse", hydratedBranch).Output()
		if err != nil {
			return fmt.Errorf("no branch %s yet: %w", hydratedBranch, err)
		}
		if err := s.expectAll(appHydrated, []sampleWant{
			{"crowsnest_app_hydration_phase", []string{"phase", "Hydrated"}, 1},
			{"crowsnest_app_hydration_info", []string{"dry_sha", dry, "hydrated_sha", strings.TrimSpace(string(hyd)), "sync_branch", hydratedBranch, "dry_path", "dry"}, 1},
			{"crowsnest_app_hydrations_total", []string{"result", "Hydrated"}, float64(total)},
			{"crowsnest_app_hydrations_total", []string{"result", "Failed"}, 0},
			{"crowsnest_app_sync_status", []string{"status", "Synced"}, 1},
		}); err != nil {
			return fmt.Errorf("Argo CD hydrated %d times, %s %d times: %w", total, dry, ofDry, err)
		}
		return nil
	}
	eventually(t, signalTimeout, func() error { return hydrated(dryHead) })
	if err := s.absent(appHydrated, "crowsnest_app_hydration_lagging_since_timestamp_seconds"); err != nil {
		t.Error(err)
	}

	// A new dry commit: hydrated (and synced) again, counted once more.
	if err := os.WriteFile(filepath.Join(dir, "dry", "config.yaml"), []byte(hydratedConfig("two")), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, dir, "commit", "-qam", "dry: two")
	dryHead = gitIn(t, dir, "rev-parse", "HEAD")
	eventually(t, signalTimeout, func() error { return hydrated(dryHead) })

	// A dry path that does not exist fails the hydration: a failure, and
	// the hydrated branch lags the dry source from then on.
	failedAt := time.Now()
	eventually(t, signalTimeout, func() error {
		a, err := s.apps.Get(ctx, appHydrated, metav1.GetOptions{})
		if err != nil {
			return err
		}
		a.Spec.SourceHydrator.DrySource.Path = "missing"
		_, err = s.apps.Update(ctx, a, metav1.UpdateOptions{})
		return err
	})
	eventually(t, signalTimeout, func() error {
		// The controller may fail it more than once (it hydrates again
		// when asked to refresh): its log says how often.
		failures, err := s.hydrationFailures(appHydrated)
		if err != nil {
			return err
		}
		if failures == 0 {
			return fmt.Errorf("the controller has not failed to hydrate %s yet", appHydrated)
		}
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		total, _ := ops.hydrated("")
		if err := expectOn(m, appHydrated, []sampleWant{
			{"crowsnest_app_hydration_phase", []string{"phase", "Failed"}, 1},
			{"crowsnest_app_hydrations_total", []string{"result", "Failed"}, float64(failures)},
			{"crowsnest_app_hydrations_total", []string{"result", "Hydrated"}, float64(total)},
		}); err != nil {
			return fmt.Errorf("the controller logged %d failures, Argo CD wrote %d hydrations: %w", failures, total, err)
		}
		since, err := m.Value("crowsnest_app_hydration_lagging_since_timestamp_seconds", "name", appHydrated)
		if err != nil {
			return err
		}
		if at := time.Unix(int64(since), 0); at.Before(failedAt.Add(-2*time.Second)) || at.After(time.Now()) {
			return fmt.Errorf("lagging since %v, want after the dry path broke at %v", at, failedAt)
		}
		return nil
	})
}

// hydrations counts the hydrate operations Argo CD's hydrator ended
// Hydrated for an Application, as a watch of it saw them written to
// status.sourceHydrator.currentOperation: one per startedAt (set when the
// hydrator marks the app Hydrating, kept while that operation runs), the
// hydrator's own identity of an operation. It may hydrate a dry commit
// more than once: its queue item can fire again for the commit it is
// hydrating (argo-cd#27926), which is a new operation, a new startedAt,
// unless it finds the app still Hydrating; then it writes the same one
// Hydrated twice. Having seen it Hydrating again tells a new operation
// started in the second the last one did.
type hydrations struct {
	mu      sync.Mutex
	running bool   // the last version seen had an operation Hydrating
	last    string // the finished operation last counted: startedAt and phase
	ofDry   map[string]int
	total   int
}

// watchHydrations watches the Application name (which need not exist yet)
// until t ends and counts its hydrations.
func watchHydrations(ctx context.Context, t *testing.T, kas *KubeAPIServer, name string) *hydrations {
	t.Helper()
	h := &hydrations{ofDry: map[string]int{}}
	watchApplication(ctx, t, kas, name, func(a *v1alpha1.Application) {
		op := a.Status.SourceHydrator.CurrentOperation
		if op == nil {
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		switch op.Phase {
		case v1alpha1.HydrateOperationPhaseHydrating:
			h.running = true
		case v1alpha1.HydrateOperationPhaseHydrated, v1alpha1.HydrateOperationPhaseFailed:
			key := fmt.Sprint(op.StartedAt.Unix(), op.Phase)
			if key != h.last || h.running {
				h.last = key
				if op.Phase == v1alpha1.HydrateOperationPhaseHydrated {
					h.ofDry[op.DrySHA]++
					h.total++
				}
			}
			h.running = false
		}
	})
	return h
}

// hydrated returns how many hydrations Argo CD ended Hydrated, in all and
// of the dry commit dry.
func (h *hydrations) hydrated(dry string) (total, ofDry int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total, h.ofDry[dry]
}

// hydrationFailures counts the hydrate operations of app name the
// application controller ended Failed: it logs each one once, at error
// level, as it sets the app's hydrator error ("failed to hydrate app", or
// "failed to validate hydration app" before it renders anything).
func (s *signalsEnv) hydrationFailures(name string) (int, error) {
	b, err := os.ReadFile(s.argo.Controller.LogPath)
	if err != nil {
		return 0, fmt.Errorf("read the controller's log: %w", err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"application":"`+name+`"`) &&
			(strings.Contains(line, `"msg":"failed to hydrate app`) || strings.Contains(line, `"msg":"failed to validate hydration app`)) {
			n++
		}
	}
	return n, nil
}

// createHydratedApp creates, with the Secret that lets Argo CD's commit
// server push to repoURL (a file:// repository: no credentials but the
// URL), the auto-synced Source Hydrator app name (and its namespace),
// whose hydrator renders repoURL's dry/ into hydratedBranch's hydrated/ of
// the same repository.
func createHydratedApp(ctx context.Context, t *testing.T, kas *KubeAPIServer, apps appclient.ApplicationInterface, argo *ArgoCD, name, repoURL string) {
	t.Helper()
	if _, err := kas.Kubernetes().CoreV1().Secrets(argoCDNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-write", Labels: map[string]string{"argocd.argoproj.io/secret-type": "repository-write"}},
		StringData: map[string]string{"url": repoURL, "type": "git"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the write repository Secret: %v", err)
	}
	kas.CreateNamespace(name)
	if _, err := apps.Create(ctx, &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: argoCDNamespace},
		Spec: v1alpha1.ApplicationSpec{
			Project: "default",
			SourceHydrator: &v1alpha1.SourceHydrator{
				DrySource:  v1alpha1.DrySource{RepoURL: repoURL, Path: "dry", TargetRevision: "HEAD"},
				SyncSource: v1alpha1.SyncSource{TargetBranch: hydratedBranch, Path: "hydrated"},
			},
			Destination: v1alpha1.ApplicationDestination{Server: argo.ClusterURL, Namespace: name},
			SyncPolicy:  &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

// hydratedConfig is the dry source of appHydrated: one ConfigMap.
func hydratedConfig(value string) string {
	return `apiVersion: v1
kind: ConfigMap
metadata:
  name: hydrated
data:
  value: "` + value + `"
`
}

// absent checks that app name has no series of metric.
func (s *signalsEnv) absent(name, metric string) error {
	m, err := s.cn.Scrape()
	if err != nil {
		return err
	}
	if v, err := m.Value(metric, "name", name); err == nil {
		return fmt.Errorf("%s{name=%q} = %v, want none", metric, name, v)
	}
	return nil
}
