package rules

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
)

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func newTestPager(t *testing.T, urls []string, apps *[]AppState) *Pager {
	t.Helper()
	p, err := NewPager(PagerConfig{URLs: urls, Interval: time.Second, Resend: time.Minute, Timeout: time.Second, ForScale: 1},
		Alerts(), func() []AppState { return *apps }, prometheus.NewRegistry(), promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPagerFiresResolvesAndResends(t *testing.T) {
	apps := []AppState{
		{Namespace: "argocd", Name: "prod-backend", Project: "default", Env: "prod", SyncStatus: "Synced", Health: "Healthy", Phase: "Failed"},
		{Namespace: "argocd", Name: "dev-backend", Project: "default", Env: "dev", SyncStatus: "OutOfSync", Health: "Healthy", Phase: "Succeeded", AutoSync: true},
	}
	p := newTestPager(t, nil, &apps)
	// A failed sync fires at once, critical in prod; dev drift is pending
	// (15 m for DriftNotHealed) and never a ProdDrift.
	got := p.Evaluate(t0)
	if len(got) != 1 || got[0].Labels["alertname"] != "CrowsnestSyncFailed" || got[0].Labels["severity"] != "critical" ||
		got[0].Labels["name"] != "prod-backend" || got[0].Labels["env"] != "prod" || got[0].Labels["project"] != "default" {
		t.Fatalf("first evaluation posted %v, want the prod sync failure, critical", got)
	}
	// Exactly the labels of the rule's alert, so Alertmanager deduplicates.
	if want := map[string]string{"alertname": "CrowsnestSyncFailed", "severity": "critical", "namespace": "argocd", "name": "prod-backend", "project": "default", "env": "prod"}; fmt.Sprint(map[string]string(got[0].Labels)) != fmt.Sprint(want) {
		t.Errorf("labels %v, want exactly %v", got[0].Labels, want)
	}
	if d := got[0].Annotations["description"]; d == "" || d != Expand(Alerts()[0].Description, got[0].Labels) {
		t.Errorf("description %q", d)
	}
	if got := p.Evaluate(t0.Add(time.Second)); len(got) != 0 {
		t.Errorf("nothing changed, posted %v", got)
	}
	// 15 minutes later the dev drift fires too; everything firing is sent.
	got = p.Evaluate(t0.Add(15 * time.Minute))
	names := map[string]bool{}
	for _, a := range got {
		names[a.Labels["alertname"]+"/"+a.Labels["name"]] = true
		if time.Time(a.EndsAt).Before(t0.Add(17 * time.Minute)) {
			t.Errorf("%v: endsAt %v, want resends ahead", a.Labels, a.EndsAt)
		}
	}
	if len(got) != 2 || !names["CrowsnestDriftNotHealed/dev-backend"] || !names["CrowsnestSyncFailed/prod-backend"] {
		t.Errorf("posted %v, want the drift and the failure", names)
	}
	// The prod sync succeeds: resolved by endsAt now.
	apps[0].Phase = "Succeeded"
	now := t0.Add(15*time.Minute + time.Second)
	got = p.Evaluate(now)
	resolved := false
	for _, a := range got {
		if a.Labels["alertname"] == "CrowsnestSyncFailed" {
			resolved = time.Time(a.EndsAt).Equal(now)
		}
	}
	if !resolved {
		t.Errorf("posted %v, want the sync failure resolved at %v", got, now)
	}
	// Resend after a minute.
	if got := p.Evaluate(now.Add(time.Minute)); len(got) != 1 || got[0].Labels["alertname"] != "CrowsnestDriftNotHealed" {
		t.Errorf("resend posted %v, want the drift again", got)
	}
}

// An Alertmanager that hangs costs the pager its timeout and a count,
// nothing more.
func TestPagerCountsFailedPosts(t *testing.T) {
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer hang.Close()
	defer close(stop)
	apps := []AppState{{Namespace: "argocd", Name: "prod-backend", Env: "prod", Phase: "Failed"}}
	p := newTestPager(t, []string{hang.URL}, &apps)
	done := make(chan struct{})
	go func() {
		p.post(context.Background(), p.Evaluate(t0))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("post did not give up within its 1 s timeout")
	}
	if got := testutil.ToFloat64(p.failed.WithLabelValues(hang.URL)); got != 1 {
		t.Errorf("alerts_failed_total = %v, want 1", got)
	}
}

func TestPagerRejectsBadURL(t *testing.T) {
	var apps []AppState
	if _, err := NewPager(PagerConfig{URLs: []string{"alertmanager:9093"}}, Alerts(), func() []AppState { return apps }, prometheus.NewRegistry(), promslog.NewNopLogger()); err == nil {
		t.Error("a URL without scheme was accepted")
	}
}
