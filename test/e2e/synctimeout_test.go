//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

const (
	// appTimedOut is the app whose sync the controller's sync timeout
	// ends: its PreSync hook Job never finishes (see signalsManifests).
	appTimedOut = "timeout-sync"
	// controllerSyncTimeout is the controller's --sync-timeout in this scenario's
	// own Argo CD (the other scenarios' controllers have none: a sync
	// they hold on a hook must outlive it).
	controllerSyncTimeout = 20 * time.Second
	// What the v3.6.1 controller writes for an operation past its sync
	// timeout (processRequestedAppOperation), and gitops-engine's end of a
	// terminated one (syncContext.Terminate) with the controller's suffix.
	timeoutTerminatingMessage = "operation is terminating due to timeout"
	timeoutFailedMessage      = "Operation terminated, triggered by controller sync timeout"
)

// TestSyncTimeout: with the application controller started with
// --sync-timeout, a person syncs an app whose PreSync hook never finishes
// (with a retry strategy, as requestSync copies it). The controller ends the
// sync Failed for its timeout (the Application, watched, is the oracle) and
// does not retry it. crowsnest must show phase Failed, count it in
// syncs_total{result="Failed"} as many times as Argo CD reported failed
// operations (its OperationCompleted Events), count a failed deployment
// (its revision was new), and page: directly in Alertmanager and through
// the Prometheus rule, as a failed sync does. A person's terminate-op stays
// Terminated and silent (TestSignals).
func TestSyncTimeout(t *testing.T) {
	start := time.Now()
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	argo := env.StartArgoCD(kas, "--sync-timeout", strconv.Itoa(int(controllerSyncTimeout.Seconds())))
	apps := kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	repoURL, revision := newManifestRepo(t, env.Dir("git"), signalsManifests())

	cfgPath := filepath.Join(env.Dir("crowsnest"), "crowsnest.yml")
	if err := os.WriteFile(cfgPath, []byte("environments:\n  - env: prod\n    match: {name: "+appTimedOut+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	am := env.StartAlertmanager()
	cn := env.NewCrowsnest(kas.Kubeconfig, "--config.file="+cfgPath,
		"--alertmanager.url="+am.URL, "--alertmanager.evaluation-interval=250ms")
	cn.Start()
	prom := env.StartPrometheus([]string{strings.TrimPrefix(cn.URL, "http://")}, nil)
	waitScraped(t, cn, prom)
	obs := observe(t, cn, am)

	kas.CreateNamespace(appTimedOut)
	factor := int64(2)
	if _, err := apps.Create(t.Context(), &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: appTimedOut, Namespace: argoCDNamespace},
		Spec: v1alpha1.ApplicationSpec{
			Project:     "default",
			Source:      &v1alpha1.ApplicationSource{RepoURL: repoURL, Path: "hook", TargetRevision: "main"},
			Destination: v1alpha1.ApplicationDestination{Server: argo.ClusterURL, Namespace: appTimedOut},
			SyncPolicy: &v1alpha1.SyncPolicy{Retry: &v1alpha1.RetryStrategy{
				Limit: 2, Backoff: &v1alpha1.Backoff{Duration: "1s", Factor: &factor, MaxDuration: "5s"},
			}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Application %s: %v", appTimedOut, err)
	}
	t.Logf("environment up in %v", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()
	expect := func(want []sampleWant) error {
		m, err := cn.Scrape()
		if err != nil {
			return err
		}
		return expectOn(m, appTimedOut, want)
	}
	states := watchOperationStates(ctx, t, kas, appTimedOut)

	requested := requestSync(ctx, t, apps, appTimedOut, revision, false)
	eventually(t, signalTimeout, func() error {
		a, err := apps.Get(ctx, appTimedOut, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if op := a.Status.OperationState; op == nil || op.Phase != synccommon.OperationRunning || !hookRunning(op) {
			return fmt.Errorf("Argo CD has not started the sync of %s with its PreSync hook running: %+v", appTimedOut, op)
		}
		return expect(phaseIs("Running"))
	})
	var op *v1alpha1.OperationState
	eventually(t, controllerSyncTimeout+signalTimeout, func() (err error) {
		op, err = finishedOperation(ctx, apps, appTimedOut, requested)
		return err
	})
	ended := time.Now()
	t.Logf("Argo CD ended the sync %v after it started: %s %q (retries %d); operation states written: %v",
		op.FinishedAt.Sub(op.StartedAt.Time), op.Phase, op.Message, op.RetryCount, states.list())
	if op.Phase != synccommon.OperationFailed || op.Message != timeoutFailedMessage {
		t.Fatalf("Argo CD ended the sync of %s %s: %q, want Failed: %q", appTimedOut, op.Phase, op.Message, timeoutFailedMessage)
	}
	if op.RetryCount != 0 {
		t.Errorf("Argo CD retried the timed-out sync %d times, want none", op.RetryCount)
	}
	if !states.saw(synccommon.OperationTerminating, timeoutTerminatingMessage) {
		t.Errorf("Argo CD never wrote Terminating %q: %v", timeoutTerminatingMessage, states.list())
	}

	// crowsnest: phase Failed, one failed sync per failed operation Argo
	// CD reported, a failed deployment, and a page both ways. Argo CD's
	// count is exactly 1: the app has no automated sync, the test asked
	// for one sync, and the timeout ended it without a retry (checked
	// above); so is the one failed deployment, of that sync's revision.
	var failed int
	took := eventually(t, signalTimeout, func() (err error) {
		if _, failed, err = completedOperations(ctx, kas, appTimedOut); err != nil {
			return err
		}
		if failed != 1 {
			return fmt.Errorf("Argo CD reported %d failed operations of %s, want 1", failed, appTimedOut)
		}
		m, err := cn.Scrape()
		if err != nil {
			return err
		}
		if err := expectOn(m, appTimedOut, append(syncsAre(0, float64(failed), 0, 0), phaseIs("Failed")...)); err != nil {
			return err
		}
		if err := m.Expect(1, "crowsnest_app_deployments_total", "name", appTimedOut, "result", "failed"); err != nil {
			return err
		}
		pages, err := am.FindAlerts(ctx, map[string]string{"alertname": "CrowsnestProdSyncFailed", "name": appTimedOut})
		if err != nil {
			return err
		}
		if len(pages) != 1 || pages[0]["severity"] != "critical" {
			return fmt.Errorf("direct pages CrowsnestProdSyncFailed for %s in Alertmanager: %v, want one critical", appTimedOut, pages)
		}
		return prom.ExpectValue(q("ALERTS", appTimedOut, "alertname", "CrowsnestProdSyncFailed", "alertstate", "firing"), 1)
	})
	t.Logf("crowsnest counted the timed-out sync Failed and it paged directly and by the rule %v after Argo CD ended it",
		took.Round(time.Millisecond))
	if at, paged := obs.Paged(appTimedOut); paged {
		t.Logf("first direct page seen %v after Argo CD's end of the sync was read", at.Sub(ended).Round(time.Millisecond))
	}
	phases := obs.Phases(appTimedOut)
	t.Logf("phases crowsnest exposed for %s: %v", appTimedOut, phases)
	for _, p := range phases {
		if p == "Terminated" || strings.Contains(p, "+") {
			t.Errorf("crowsnest exposed phase %s for the timed-out sync (phases seen: %v)", p, phases)
		}
	}
	// Counted once: still Argo CD's one after a few more reconciliations.
	time.Sleep(5 * time.Second)
	if err := expect(append(syncsAre(0, float64(failed), 0, 0), phaseIs("Failed")...)); err != nil {
		t.Errorf("5 s later: %v", err)
	}
	t.Logf("TestSyncTimeout took %v", time.Since(start).Round(time.Second))
}

// opStates records every operation state (phase and message) Argo CD wrote
// to an Application, as a watch saw each write.
type opStates struct {
	mu     sync.Mutex
	states []string
}

func (s *opStates) add(op *v1alpha1.OperationState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := fmt.Sprintf("%s: %q", op.Phase, op.Message)
	if n := len(s.states); n == 0 || s.states[n-1] != st {
		s.states = append(s.states, st)
	}
}

func (s *opStates) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.states...)
}

func (s *opStates) saw(phase synccommon.OperationPhase, message string) bool {
	want := fmt.Sprintf("%s: %q", phase, message)
	for _, st := range s.list() {
		if st == want {
			return true
		}
	}
	return false
}

// watchOperationStates watches the Application name until ctx ends and
// records each operation state written to it.
func watchOperationStates(ctx context.Context, t *testing.T, kas *KubeAPIServer, name string) *opStates {
	t.Helper()
	s := &opStates{}
	watchApplication(ctx, t, kas, name, func(a *v1alpha1.Application) {
		if a.Status.OperationState != nil {
			s.add(a.Status.OperationState)
		}
	})
	return s
}

// watchApplication watches the Application name (which need not exist
// yet) until ctx or t ends and calls seen with each version of it written,
// in order.
func watchApplication(ctx context.Context, t *testing.T, kas *KubeAPIServer, name string, seen func(*v1alpha1.Application)) {
	t.Helper()
	w, err := kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(),
	})
	if err != nil {
		t.Fatalf("watch Application %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.ResultChan() {
			if a, ok := e.Object.(*v1alpha1.Application); ok && e.Type != watch.Error {
				seen(a)
			}
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
}
