//go:build e2e

package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/otlptest"
)

// TestLeaderElectionHandsOver runs two crowsnest replicas with
// --leader-elect against a real kube-apiserver. Only the leader sends a
// sync's trace and page; when it is killed (SIGKILL, no Lease release) the
// other takes over within 20 s and sends the next ones; no trace id is
// ever sent twice.
func TestLeaderElectionHandsOver(t *testing.T) {
	ctx := t.Context()
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	kas.CreateNamespace(argoCDNamespace)
	var otlp otlptest.Receiver
	otlpURL, stopOTLP, err := otlp.ServeGRPC()
	if err != nil {
		t.Fatal(err)
	}
	defer stopOTLP()
	am := env.StartAlertmanager()
	start := func() *Crowsnest {
		c := env.NewCrowsnest(kas.Kubeconfig, "--leader-elect", "--leader-elect.namespace="+argoCDNamespace,
			"--traces.otlp.endpoint="+otlpURL, "--traces.otlp.protocol=grpc", "--alertmanager.url="+am.URL)
		c.Process.Env = append(c.Process.Env, "OTEL_BSP_SCHEDULE_DELAY=200")
		c.Start()
		return c
	}
	replicas := []*Crowsnest{start(), start()}
	leader := func() (int, error) {
		found := -1
		for i, c := range replicas {
			if c == nil {
				continue
			}
			if err := c.ExpectSample(1, "crowsnest_leader"); err == nil {
				if found >= 0 {
					return -1, fmt.Errorf("replicas %d and %d both lead", found, i)
				}
				found = i
			}
		}
		if found < 0 {
			return -1, fmt.Errorf("no replica leads")
		}
		return found, nil
	}
	var first int
	eventually(t, scenarioTimeout, func() (err error) { first, err = leader(); return err })

	apps := kas.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	// sync runs one operation of a new app through Running to phase, as
	// Argo CD would write it, and returns its trace id.
	sync := func(name string, phase synccommon.OperationPhase) string {
		t.Helper()
		started := metav1.NewTime(time.Now().Truncate(time.Second))
		app := &v1alpha1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: argoCDNamespace},
			Spec: v1alpha1.ApplicationSpec{Project: "default", Source: &v1alpha1.ApplicationSource{RepoURL: "https://example.com/r.git", Path: "."},
				Destination: v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: "x"}},
		}
		created, err := apps.Create(ctx, app, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status.OperationState = &v1alpha1.OperationState{Phase: synccommon.OperationRunning, StartedAt: started,
			Operation: v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{}}}
		if created, err = apps.Update(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		finished := metav1.NewTime(time.Now())
		created.Status.OperationState.Phase, created.Status.OperationState.FinishedAt = phase, &finished
		if _, err := apps.Update(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		return model.OperationID(string(created.UID), started.Time)
	}
	expectTrace := func(id string) {
		t.Helper()
		eventually(t, scenarioTimeout, func() error {
			if len(otlp.Trace(id)) == 0 {
				return fmt.Errorf("no trace %s", id)
			}
			return nil
		})
	}
	expectPage := func(name string) {
		t.Helper()
		eventually(t, scenarioTimeout, func() error {
			got, err := am.FindAlerts(ctx, map[string]string{"alertname": "CrowsnestSyncFailed", "name": name})
			if err == nil && len(got) == 0 {
				err = fmt.Errorf("no page for %s", name)
			}
			return err
		})
	}
	expectTrace(sync("ha-before", synccommon.OperationSucceeded))

	// Kill the leader the hard way: its Lease is not released.
	killed := time.Now()
	p := replicas[first].Process
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	replicas[first] = nil
	took := eventually(t, 30*time.Second, func() error {
		i, err := leader()
		if err == nil && i == first {
			err = fmt.Errorf("the killed replica still leads")
		}
		return err
	})
	t.Logf("the other replica leads %v after the leader was killed (Lease duration 15 s)", time.Since(killed).Round(100*time.Millisecond))
	if took > 20*time.Second {
		t.Errorf("takeover took %v, want at most 20 s", took)
	}
	expectTrace(sync("ha-after", synccommon.OperationSucceeded))
	sync("ha-failed", synccommon.OperationFailed)
	expectPage("ha-failed")
	time.Sleep(2 * time.Second) // let any late export arrive

	// No trace sent twice: one root span per trace id.
	roots := map[string]int{}
	for _, s := range otlp.Spans() {
		if s.ParentSpanID == "" {
			roots[s.TraceID]++
		}
	}
	for id, n := range roots {
		if n != 1 {
			t.Errorf("trace %s sent %d times", id, n)
		}
	}
	if len(roots) != 3 {
		t.Errorf("%d traces, want the 3 syncs'", len(roots))
	}

	// A graceful stop hands over at once: the leader releases its Lease
	// before it exits, and a follower takes it within its retry period.
	current, err := leader()
	if err != nil {
		t.Fatal(err)
	}
	replicas = append(replicas, start())
	newest := replicas[len(replicas)-1]
	eventually(t, scenarioTimeout, func() error { return newest.ExpectSample(0, "crowsnest_leader") })
	sigterm := time.Now()
	if err := replicas[current].Process.Stop(); err != nil {
		t.Errorf("the leader's exit after SIGTERM: %v", err)
	}
	replicas[current] = nil
	eventually(t, 10*time.Second, func() error { _, err := leader(); return err })
	handover := time.Since(sigterm)
	t.Logf("a follower leads %v after the leader got SIGTERM", handover.Round(10*time.Millisecond))
	if handover > 2*time.Second {
		t.Errorf("handover after SIGTERM took %v, want at most 2 s", handover)
	}
}
