//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
)

const (
	// outage is how long TestKubeSourceSurvivesAPIServerOutage keeps
	// kube-apiserver down.
	outage = 20 * time.Second
	// reconnectTimeout bounds how long crowsnest may take to catch up once
	// the API server is back: its list and watch retries back off to 5 s
	// at most (client-go's own backoff, up to a minute, never grows during
	// an outage), then one relist.
	reconnectTimeout = 20 * time.Second
	// settleTimeout bounds how long a change takes to show in /metrics
	// while the API server is up.
	settleTimeout = 15 * time.Second
	// revision is the Git revision the test apps are synced to.
	revision = "0123456789abcdef0123456789abcdef01234567"
)

// TestKubeSourceSurvivesAPIServerOutage stops kube-apiserver under a running
// crowsnest: crowsnest must report the outage (source_up 0, /readyz 503)
// while it keeps serving the last known state, recover by itself when the
// API server is back, and not count an operation twice after relisting.
func TestKubeSourceSurvivesAPIServerOutage(t *testing.T) {
	testStart := time.Now()
	env := NewEnv(t)
	etcd := env.StartEtcd()
	kas := env.StartKubeAPIServer(etcd)
	kas.InstallArgoCDCRDs()
	kas.CreateNamespace("argocd")
	apps := kas.Apps("argocd")

	cn := env.StartCrowsnest(kas.Kubeconfig, env.lokiBearer()...)
	took := eventually(t, settleTimeout, allOf(
		func() error { return cn.ExpectStatus("/readyz", http.StatusOK) },
		func() error { return cn.ExpectSample(1, "crowsnest_source_up", "source", "kubernetes") },
	))
	t.Logf("crowsnest ready in %v; set-up took %v", took.Round(time.Millisecond), time.Since(testStart).Round(time.Millisecond))

	// crowsnest counts the operations that finish after its first event
	// (earlier ones are its baseline). billing's creation is that first
	// event; guestbook's sync finishes after it.
	apps.Create(apps.New("billing", v1alpha1.SyncStatusCodeOutOfSync, health.HealthStatusHealthy))
	eventually(t, settleTimeout, func() error {
		return cn.ExpectSample(1, "crowsnest_app_sync_status", "name", "billing", "status", "OutOfSync")
	})
	guestbook := apps.New("guestbook", v1alpha1.SyncStatusCodeSynced, health.HealthStatusHealthy)
	synced := time.Now()
	guestbook.Status.OperationState = finishedSync(revision, synccommon.OperationSucceeded, synced, synced)
	apps.Create(guestbook)

	wantState := allOf(
		func() error { return cn.ExpectStatus("/readyz", http.StatusOK) },
		expectSamples(cn,
			sample(1, "crowsnest_source_up", "source", "kubernetes"),
			sample(1, "crowsnest_app_sync_status", "namespace", "argocd", "name", "guestbook", "status", "Synced"),
			sample(1, "crowsnest_app_health_status", "name", "guestbook", "status", "Healthy"),
			sample(1, "crowsnest_app_syncs_total", "name", "guestbook", "result", "Succeeded"),
			sample(0, "crowsnest_app_syncs_total", "name", "guestbook", "result", "Failed"),
			sample(1, "crowsnest_app_sync_status", "namespace", "argocd", "name", "billing", "status", "OutOfSync"),
			sample(0, "crowsnest_app_syncs_total", "name", "billing", "result", "Succeeded"),
		),
	)
	eventually(t, settleTimeout, wantState)

	// The outage.
	down := time.Now()
	kas.Stop()
	stopped := time.Since(down)
	eventually(t, outage-stopped, allOf(
		func() error { return cn.ExpectStatus("/readyz", http.StatusServiceUnavailable) },
		func() error { return cn.ExpectSample(0, "crowsnest_source_up", "source", "kubernetes") },
	))
	t.Logf("crowsnest reported the outage %v after kube-apiserver was told to stop (it took %v to stop)",
		time.Since(down).Round(time.Millisecond), stopped.Round(time.Millisecond))
	// The last known state stays served while the source is down.
	lastKnown := expectSamples(cn,
		sample(0, "crowsnest_source_up", "source", "kubernetes"),
		sample(1, "crowsnest_app_sync_status", "name", "guestbook", "status", "Synced"),
		sample(1, "crowsnest_app_syncs_total", "name", "guestbook", "result", "Succeeded"),
		sample(1, "crowsnest_app_sync_status", "name", "billing", "status", "OutOfSync"),
	)
	checkServing := func(when string) {
		t.Helper()
		if !cn.Running() {
			t.Fatalf("%s: crowsnest exited during the API server outage", when)
		}
		if err := allOf(lastKnown, func() error { return cn.ExpectStatus("/healthz", http.StatusOK) })(); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if err := cn.ExpectStatus("/readyz", http.StatusServiceUnavailable); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
	}
	checkServing("early in the outage")
	time.Sleep(time.Until(down.Add(outage)))
	checkServing(fmt.Sprintf("after %v of outage", outage))

	// The API server comes back on the same port with the same etcd.
	kas.Start()
	took = eventually(t, reconnectTimeout, allOf(
		func() error { return cn.ExpectStatus("/readyz", http.StatusOK) },
		func() error { return cn.ExpectSample(1, "crowsnest_source_up", "source", "kubernetes") },
	))
	t.Logf("crowsnest reconnected %v after kube-apiserver was ready again (outage %v in all)", took.Round(time.Millisecond), time.Since(down).Round(time.Millisecond))
	if err := wantState(); err != nil {
		t.Fatalf("after reconnecting: %v", err)
	}

	// Once crowsnest is ready again it is caught up: a change shows within
	// settleTimeout, and guestbook's new snapshot, which still carries the
	// counted operation, does not count it again. (The informer's first
	// watch after the restart ends at once with 410 "too old resource
	// version"; crowsnest must stay unready until the relist, not report
	// ready on the watch call's success while its state is stale.)
	apps.Update("guestbook", func(app *v1alpha1.Application) {
		app.Status.Health.Status = health.HealthStatusDegraded
	})
	took = eventually(t, settleTimeout, expectSamples(cn,
		sample(1, "crowsnest_app_health_status", "name", "guestbook", "status", "Degraded"),
		sample(1, "crowsnest_app_syncs_total", "name", "guestbook", "result", "Succeeded"),
	))
	t.Logf("a change made after crowsnest reported ready again showed %v later", took.Round(time.Millisecond))

	// Changes after the outage show; a deleted app's series vanish.
	apps.Update("billing", func(app *v1alpha1.Application) {
		app.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced
	})
	apps.Delete("guestbook")
	eventually(t, settleTimeout, allOf(
		expectSamples(cn,
			sample(1, "crowsnest_app_sync_status", "name", "billing", "status", "Synced"),
			sample(0, "crowsnest_app_sync_status", "name", "billing", "status", "OutOfSync"),
		),
		expectNoSeries(cn, "crowsnest_app_drift_since_timestamp_seconds", "name", "billing"),
		expectNoSeries(cn, "", "name", "guestbook"),
	))

	if err := cn.Stop(); err != nil {
		t.Errorf("crowsnest did not exit cleanly on SIGTERM: %v", err)
	}
	t.Logf("test took %v", time.Since(testStart).Round(time.Millisecond))
}

// TestKubeSourceUnreachableAtStart starts crowsnest before its API server:
// it must keep running, healthy but not ready, and become ready once the
// API server is up.
func TestKubeSourceUnreachableAtStart(t *testing.T) {
	testStart := time.Now()
	env := NewEnv(t)
	etcd := env.NewEtcd()
	kas := env.NewKubeAPIServer(etcd) // its port is chosen, nothing listens yet

	cn := env.StartCrowsnest(kas.Kubeconfig, env.lokiURLWithPassword()...)
	notReady := allOf(
		func() error { return cn.ExpectStatus("/healthz", http.StatusOK) },
		func() error { return cn.ExpectStatus("/readyz", http.StatusServiceUnavailable) },
		func() error { return cn.ExpectSample(0, "crowsnest_source_up", "source", "kubernetes") },
	)
	eventually(t, settleTimeout, notReady)
	// Long enough for several failed list calls.
	time.Sleep(3 * time.Second)
	if !cn.Running() {
		t.Fatal("crowsnest exited while the API server was unreachable")
	}
	if err := notReady(); err != nil {
		t.Fatalf("while the API server is unreachable: %v", err)
	}

	etcd.Start()
	kas.Start()
	kas.InstallArgoCDCRDs()
	kas.CreateNamespace("argocd")
	apps := kas.Apps("argocd")
	apps.Create(apps.New("guestbook", v1alpha1.SyncStatusCodeSynced, health.HealthStatusHealthy))
	took := eventually(t, reconnectTimeout, allOf(
		func() error { return cn.ExpectStatus("/readyz", http.StatusOK) },
		expectSamples(cn,
			sample(1, "crowsnest_source_up", "source", "kubernetes"),
			sample(1, "crowsnest_app_sync_status", "name", "guestbook", "status", "Synced"),
		),
	))
	t.Logf("crowsnest ready %v after the API server and CRDs were (%v after crowsnest started)",
		took.Round(time.Millisecond), time.Since(testStart).Round(time.Millisecond))

	if err := cn.Stop(); err != nil {
		t.Errorf("crowsnest did not exit cleanly on SIGTERM: %v", err)
	}
	t.Logf("test took %v", time.Since(testStart).Round(time.Millisecond))
}

// allOf returns a check that runs checks in order and returns the first
// error.
func allOf(checks ...func() error) func() error {
	return func() error {
		for _, c := range checks {
			if err := c(); err != nil {
				return err
			}
		}
		return nil
	}
}

// wantSample is one expected sample: a value for a metric name and label
// pairs.
type wantSample struct {
	value  float64
	name   string
	labels []string
}

func sample(value float64, name string, labels ...string) wantSample {
	return wantSample{value: value, name: name, labels: labels}
}

// expectSamples returns a check that scrapes crowsnest once and compares
// every wanted sample.
func expectSamples(cn *Crowsnest, want ...wantSample) func() error {
	return func() error {
		m, err := cn.Scrape()
		if err != nil {
			return err
		}
		for _, w := range want {
			if err := m.Expect(w.value, w.name, w.labels...); err != nil {
				return err
			}
		}
		return nil
	}
}

// expectNoSeries returns a check that scrapes crowsnest and fails if any
// sample of name ("" for any) carries the label pairs.
func expectNoSeries(cn *Crowsnest, name string, labels ...string) func() error {
	return func() error {
		m, err := cn.Scrape()
		if err != nil {
			return err
		}
		if found := m.Find(name, labels...); len(found) > 0 {
			return fmt.Errorf("%d series %s%s still present, e.g. %s", len(found), name, formatLabels(labels), found[0].Metric)
		}
		return nil
	}
}
