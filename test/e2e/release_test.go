//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	appclient "github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned/typed/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// releaseManifests are appRelease's manifests at a release: the settings
// ConfigMap carries it; the flags ConfigMap never changes in Git.
func releaseManifests(release string) string {
	return `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  release: ` + release + `
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: flags
data:
  checkout: "on"
`
}

// releaseAwaitingSync: a prod app synced by hand, as the deployment model
// has it. A merge moves main: Argo CD shows the app OutOfSync until
// someone syncs; crowsnest shows a release awaiting its sync, no live
// drift, and CrowsnestProdDrift is not even pending. A hand edit while the
// release waits is live drift, and the alert goes pending. The sync ends
// both. A rollback (as `argocd app rollback` asks for it) leaves Git ahead
// of what runs: awaiting sync again, and no ProdDrift.
func (s *signalsEnv) releaseAwaitingSync(ctx context.Context, t *testing.T) {
	const name = appRelease
	drift := `ALERTS{alertname="CrowsnestProdDrift",name="` + name + `"}`
	live := `crowsnest_app_live_drift_since_timestamp_seconds{name="` + name + `"}`
	kinds := func(wantLive, wantAwaiting bool) error {
		m, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		for metric, want := range map[string]bool{
			"crowsnest_app_live_drift_since_timestamp_seconds":    wantLive,
			"crowsnest_app_awaiting_sync_since_timestamp_seconds": wantAwaiting,
		} {
			if got := len(m.Find(metric, "name", name)) == 1; got != want {
				return fmt.Errorf("%s of %s present %v, want %v", metric, name, got, want)
			}
		}
		return nil
	}
	// quiet checks that, since from, Prometheus never held ProdDrift for
	// the app, pending or firing, nor scraped live drift, giving its
	// evaluations (every second here) several rounds first.
	quiet := func(what string, from time.Time) {
		t.Helper()
		time.Sleep(5 * time.Second)
		window := fmt.Sprintf("[%ds]", int(time.Since(from).Seconds()))
		for _, q := range []string{`count_over_time(` + drift + window + `)`, `count_over_time(` + live + window + `)`} {
			if v, err := s.prom.Query(q); err != nil || len(v) != 0 {
				t.Errorf("%s: %s = %v (%v), want nothing", what, q, v, err)
			}
		}
	}
	syncTo := func(requested time.Time) *v1alpha1.OperationState {
		t.Helper()
		op := waitFinished(ctx, t, s.apps, name, requested)
		if op.Phase != synccommon.OperationSucceeded {
			t.Fatalf("the sync of %s ended %s: %q", name, op.Phase, op.Message)
		}
		return op
	}
	argoSays := func(status v1alpha1.SyncStatusCode, revision string) error {
		a, err := s.apps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if a.Status.Sync.Status != status || revision != "" && a.Status.Sync.Revision != revision {
			return fmt.Errorf("Argo CD: %s at %s, want %s at %s", a.Status.Sync.Status, a.Status.Sync.Revision, status, revision)
		}
		return nil
	}

	// Released: r1 synced by hand.
	syncTo(requestSync(ctx, t, s.apps, name, "", false))
	eventually(t, signalTimeout, func() error {
		if err := argoSays(v1alpha1.SyncStatusCodeSynced, ""); err != nil {
			return err
		}
		return kinds(false, false)
	})

	// A merge: r2 waits for prod's manual sync.
	dir := s.env.Dir("git")
	if err := os.WriteFile(filepath.Join(dir, "release", "config.yaml"), []byte(releaseManifests("r2")), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, dir, "commit", "-qam", "release r2")
	merged := gitIn(t, dir, "rev-parse", "HEAD")
	mergedAt := time.Now()
	s.kas.Refresh(ctx, name)
	eventually(t, signalTimeout, func() error {
		if err := argoSays(v1alpha1.SyncStatusCodeOutOfSync, merged); err != nil {
			return err
		}
		return kinds(false, true)
	})
	quiet("a merge awaiting its sync", mergedAt)

	// A hand edit of what the release does not change, while it waits.
	s.editByHand(ctx, t, name, "flags", "checkout", "off")
	took := eventually(t, signalTimeout, func() error {
		if err := kinds(true, true); err != nil {
			return err
		}
		return s.prom.ExpectValue(`count(`+drift+`)`, 1)
	})
	t.Logf("a hand edit while a release waits: CrowsnestProdDrift pending or firing %v after the edit", took.Round(time.Millisecond))

	// The release is approved and synced: both end.
	syncTo(requestSync(ctx, t, s.apps, name, "", false))
	eventually(t, signalTimeout, func() error {
		if err := argoSays(v1alpha1.SyncStatusCodeSynced, merged); err != nil {
			return err
		}
		if err := kinds(false, false); err != nil {
			return err
		}
		for _, q := range []string{drift, live} {
			if v, err := s.prom.Query(q); err != nil || len(v) != 0 {
				return fmt.Errorf("%s after the sync: %v (%v)", q, v, err)
			}
		}
		return nil
	})
	synced := time.Now()

	// A rollback to the first release, as the API server asks for it.
	a, err := s.apps.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := a.Status.History[0]
	for _, h := range a.Status.History {
		if h.ID < first.ID {
			first = h
		}
	}
	syncTo(requestRollback(ctx, t, s.apps, name, first.ID))
	eventually(t, signalTimeout, func() error {
		if err := argoSays(v1alpha1.SyncStatusCodeOutOfSync, merged); err != nil {
			return err
		}
		return kinds(false, true)
	})
	quiet("after a rollback, Git ahead of what runs", synced)
}

// editByHand sets key of the ConfigMap cm of app's namespace (named after
// the app) to value, as `kubectl edit` would, and asks Argo CD to refresh
// the app.
func (s *signalsEnv) editByHand(ctx context.Context, t *testing.T, app, cm, key, value string) {
	t.Helper()
	cms := s.kas.Kubernetes().CoreV1().ConfigMaps(app)
	eventually(t, signalTimeout, func() error {
		c, err := cms.Get(ctx, cm, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c.Data[key] = value
		_, err = cms.Update(ctx, c, metav1.UpdateOptions{})
		return err
	})
	s.kas.Refresh(ctx, app)
}

// requestRollback asks Argo CD to roll the Application name back to its
// history entry id, as its API server does for `argocd app rollback`: a
// sync to that entry's revisions and sources.
func requestRollback(ctx context.Context, t *testing.T, apps appclient.ApplicationInterface, name string, id int64) time.Time {
	t.Helper()
	return setOperation(ctx, t, apps, name, func(a *v1alpha1.Application) (*v1alpha1.Operation, error) {
		for _, h := range a.Status.History {
			if h.ID == id {
				return &v1alpha1.Operation{
					Sync: &v1alpha1.SyncOperation{
						Revision: h.Revision, Revisions: h.Revisions,
						SyncStrategy: &v1alpha1.SyncStrategy{Apply: &v1alpha1.SyncStrategyApply{}},
						Source:       &h.Source, Sources: h.Sources,
					},
					InitiatedBy: v1alpha1.OperationInitiator{Username: argoCDUser},
				}, nil
			}
		}
		return nil, fmt.Errorf("no history entry %d", id)
	})
}

// oneAlertPerIncident: the Alertmanager that both paths page (crowsnest
// directly, with --alertmanager.external-label, and Prometheus configured
// as the Prometheus Operator configures it) holds one alert per alert name
// for app name, once both have sent theirs: the labels are the same.
func (s *signalsEnv) oneAlertPerIncident(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	eventually(t, signalTimeout, func() error {
		pm, err := s.prom.Scrape()
		if err != nil {
			return err
		}
		if sent, err := pm.Value("prometheus_notifications_sent_total", "alertmanager", s.amBoth.URL+"/api/v2/alerts"); err != nil || sent < 1 {
			return fmt.Errorf("Prometheus has sent %v alerts to %s (%v)", sent, s.amBoth.URL, err)
		}
		if queued, err := pm.Value("prometheus_notifications_queue_length"); err != nil || queued != 0 {
			return fmt.Errorf("Prometheus has %v alerts queued (%v)", queued, err)
		}
		cm, err := s.cn.Scrape()
		if err != nil {
			return err
		}
		if sent, err := cm.Value("crowsnest_alerts_sent_total", "alertmanager", s.amBoth.URL); err != nil || sent < 1 {
			return fmt.Errorf("crowsnest has paged %s %v times (%v)", s.amBoth.URL, sent, err)
		}
		return nil
	})
	// Both have sent; give Alertmanager a moment to take the last post.
	time.Sleep(time.Second)
	alerts, err := s.amBoth.FindAlerts(ctx, map[string]string{"name": name})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, a := range alerts {
		per[a["alertname"]]++
		if a["prometheus"] != operatorPrometheus {
			t.Errorf("an alert without the Prometheus Operator's external label: %v", a)
		}
	}
	if per["CrowsnestProdSyncFailed"] == 0 {
		t.Errorf("Alertmanager holds no CrowsnestProdSyncFailed for %s: %v", name, alerts)
	}
	for alertname, n := range per {
		if n != 1 {
			t.Errorf("Alertmanager holds %d %s alerts for %s, want 1: %v", n, alertname, name, alerts)
		}
	}
	t.Logf("one incident, one alert: Alertmanager holds %v for %s", per, name)
}
