package pager

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowsnest/crowsnest/internal/rules"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"

	"github.com/crowsnest/crowsnest/internal/model"
)

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func newTestPager(t *testing.T, urls []string, apps *[]rules.AppState) *Pager {
	t.Helper()
	p, _ := newTestPagerRegistry(t, urls, apps)
	return p
}

// newTestPagerRegistry is newTestPager, also returning the registry of the
// pager's counters.
func newTestPagerRegistry(t *testing.T, urls []string, apps *[]rules.AppState) (*Pager, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := NewPager(PagerConfig{URLs: urls, Interval: time.Second, Resend: time.Minute, Timeout: time.Second, ForScale: 1},
		rules.Alerts(), func() []rules.AppState { return *apps }, reg, promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return p, reg
}

// counterOf returns the value of the counter name{alertmanager=am} in reg,
// 0 when it has no such series.
func counterOf(t *testing.T, reg *prometheus.Registry, name, am string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "alertmanager" && l.GetValue() == am {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestPagerFiresResolvesAndResends(t *testing.T) {
	apps := []rules.AppState{
		{Namespace: "argocd", Name: "prod-backend", Project: "default", Env: "prod", SyncStatus: "Synced", Health: "Healthy", Phase: "Failed"},
		{Namespace: "argocd", Name: "dev-backend", Project: "default", Env: "dev", SyncStatus: "OutOfSync", Health: "Healthy", Phase: "Succeeded", AutoSync: true, LiveDrift: true},
	}
	p := newTestPager(t, nil, &apps)
	// A failed sync fires at once, critical in prod; dev drift is pending
	// (15 m for DriftNotHealed) and never a ProdDrift.
	got := p.Evaluate(t0)
	if len(got) != 1 || got[0].Labels["alertname"] != "CrowsnestProdSyncFailed" || got[0].Labels["severity"] != "critical" ||
		got[0].Labels["name"] != "prod-backend" || got[0].Labels["env"] != "prod" || got[0].Labels["project"] != "default" {
		t.Fatalf("first evaluation posted %v, want the prod sync failure, critical", got)
	}
	// Exactly the labels of the rule's alert, so Alertmanager deduplicates.
	if want := map[string]string{"alertname": "CrowsnestProdSyncFailed", "severity": "critical", "namespace": "argocd", "name": "prod-backend", "project": "default", "env": "prod"}; fmt.Sprint(map[string]string(got[0].Labels)) != fmt.Sprint(want) {
		t.Errorf("labels %v, want exactly %v", got[0].Labels, want)
	}
	if d := got[0].Annotations["description"]; d == "" || d != rules.Expand(rules.Alerts()[0].Description, got[0].Labels) {
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
	if len(got) != 2 || !names["CrowsnestDriftNotHealed/dev-backend"] || !names["CrowsnestProdSyncFailed/prod-backend"] {
		t.Errorf("posted %v, want the drift and the failure", names)
	}
	// The prod sync succeeds: resolved by endsAt now.
	apps[0].Phase = "Succeeded"
	now := t0.Add(15*time.Minute + time.Second)
	got = p.Evaluate(now)
	resolved := false
	for _, a := range got {
		if a.Labels["alertname"] == "CrowsnestProdSyncFailed" {
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
	apps := []rules.AppState{{Namespace: "argocd", Name: "prod-backend", Env: "prod", Phase: "Failed"}}
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
	var apps []rules.AppState
	if _, err := NewPager(PagerConfig{URLs: []string{"alertmanager:9093"}}, rules.Alerts(), func() []rules.AppState { return apps }, prometheus.NewRegistry(), promslog.NewNopLogger()); err == nil {
		t.Error("a URL without scheme was accepted")
	}
}

// The pager judges sync and health as the metrics expose them: a status
// outside its state set, or none yet (before Argo CD's first comparison),
// is Unknown, so CrowsnestAppUnknown fires on it as the PromQL rule does.
func TestPagerJudgesStatesAsExposed(t *testing.T) {
	apps := []rules.AppState{
		{Namespace: "argocd", Name: "sync-unset", Env: "dev", SyncStatus: "", Health: "Healthy", Phase: "Succeeded"},
		{Namespace: "argocd", Name: "health-unset", Env: "dev", SyncStatus: "Synced", Health: "", Phase: "Succeeded"},
		{Namespace: "argocd", Name: "sync-new", Env: "dev", SyncStatus: "Comparing", Health: "Healthy", Phase: "Succeeded"},
		{Namespace: "argocd", Name: "health-new", Env: "dev", SyncStatus: "Synced", Health: "Hibernating", Phase: "Succeeded"},
		{Namespace: "argocd", Name: "sync-unknown", Env: "dev", SyncStatus: "Unknown", Health: "Healthy", Phase: "Succeeded"},
		{Namespace: "argocd", Name: "good", Env: "dev", SyncStatus: "Synced", Health: "Healthy", Phase: "Succeeded"},
		{Namespace: "argocd", Name: "missing", Env: "dev", SyncStatus: "Synced", Health: "Missing", Phase: "Succeeded"},
	}
	p := newTestPager(t, nil, &apps)
	if got := p.Evaluate(t0); len(got) != 0 {
		t.Fatalf("posted %v at once, want everything pending", got)
	}
	firing := map[string]bool{}
	for _, a := range p.Evaluate(t0.Add(15 * time.Minute)) {
		if a.Labels["alertname"] == "CrowsnestAppUnknown" {
			firing[a.Labels["name"]] = true
		}
	}
	for _, name := range []string{"sync-unset", "health-unset", "sync-new", "health-new", "sync-unknown"} {
		if !firing[name] {
			t.Errorf("CrowsnestAppUnknown does not fire on %s", name)
		}
	}
	for _, name := range []string{"good", "missing"} {
		if firing[name] {
			t.Errorf("CrowsnestAppUnknown fires on %s", name)
		}
	}
	// The apps' states are the caller's: the pager does not rewrite them.
	if apps[0].SyncStatus != "" || apps[1].Health != "" {
		t.Errorf("Evaluate changed the apps it was given: %+v", apps[:2])
	}
}

func TestAsExposed(t *testing.T) {
	for _, tc := range []struct{ sync, health, wantSync, wantHealth string }{
		{"Synced", "Healthy", "Synced", "Healthy"},
		{"OutOfSync", "Progressing", "OutOfSync", "Progressing"},
		{"Unknown", "Degraded", "Unknown", "Degraded"},
		{"Synced", "Suspended", "Synced", "Suspended"},
		{"Synced", "Missing", "Synced", "Missing"},
		{"Synced", "Unknown", "Synced", "Unknown"},
		{"", "", "Unknown", "Unknown"},
		{"synced", "healthy", "Unknown", "Unknown"}, // case matters, as in the series' labels
		{"Comparing", "Hibernating", "Unknown", "Unknown"},
	} {
		in := rules.AppState{Namespace: "ns", Name: "app", SyncStatus: tc.sync, Health: tc.health, Phase: "Pending"}
		got := asExposed(in)
		if got.SyncStatus != tc.wantSync || got.Health != tc.wantHealth {
			t.Errorf("asExposed(sync %q, health %q) = sync %q, health %q; want %q, %q",
				tc.sync, tc.health, got.SyncStatus, got.Health, tc.wantSync, tc.wantHealth)
		}
		if got.Phase != in.Phase || got.Namespace != in.Namespace || got.Name != in.Name {
			t.Errorf("asExposed changed more than sync and health: %+v", got)
		}
	}
	// The same sets as the agreement test's model of the exposition, which
	// TestAgreementStateSetsDocumented holds to README's metric table.
	for _, a := range agreementApps() {
		if got, want := asExposed(a.state), exposedState(a.state); !reflect.DeepEqual(got, want) {
			t.Errorf("asExposed(%+v) = %+v, the agreement test exposes %+v", a.state, got, want)
		}
	}
	for _, st := range exposedSyncStatuses() {
		if got := asExposed(rules.AppState{SyncStatus: st, Health: "Healthy"}).SyncStatus; got != st {
			t.Errorf("exposed sync status %q judged as %q", st, got)
		}
	}
	for _, st := range exposedHealthStatuses() {
		if got := asExposed(rules.AppState{SyncStatus: "Synced", Health: st}).Health; got != st {
			t.Errorf("exposed health status %q judged as %q", st, got)
		}
	}
	// The phases the agreement test exposes are crowsnest's.
	if got, want := exposedPhases(), model.OperationPhases(); !slices.Equal(got, want) {
		t.Errorf("the agreement test exposes phases %v, crowsnest exposes %v", got, want)
	}
}

// A terminated operation is not a failure; a requested operation nobody
// starts is stuck; an app being deleted does not page its drift, and a
// drift alert resolves when the deletion begins.
func TestPagerPendingTerminatedDeleting(t *testing.T) {
	apps := []rules.AppState{
		{Namespace: "argocd", Name: "terminated", Project: "default", Env: "prod", SyncStatus: "Synced", Health: "Healthy", Phase: "Terminated"},
		{Namespace: "argocd", Name: "pending", Project: "default", Env: "prod", SyncStatus: "Synced", Health: "Healthy", Phase: "Pending"},
		{Namespace: "argocd", Name: "drift", Project: "default", Env: "prod", SyncStatus: "OutOfSync", Health: "Healthy", Phase: "Succeeded", LiveDrift: true},
		{Namespace: "argocd", Name: "deleting", Project: "default", Env: "prod", SyncStatus: "OutOfSync", Health: "Healthy", Phase: "Succeeded", Deleting: true, LiveDrift: true},
		{Namespace: "argocd", Name: "dev-deleting", Project: "default", Env: "dev", SyncStatus: "OutOfSync", Health: "Healthy", Phase: "Succeeded", AutoSync: true, Deleting: true, LiveDrift: true},
	}
	p := newTestPager(t, nil, &apps)
	firing := func(at time.Duration) map[string]bool {
		out := map[string]bool{}
		for _, a := range p.Evaluate(t0.Add(at)) {
			if time.Time(a.EndsAt).After(t0.Add(at)) {
				out[a.Labels["alertname"]+"/"+a.Labels["name"]] = true
			}
		}
		return out
	}
	if got := firing(0); len(got) != 0 {
		t.Errorf("at once: %v firing, want nothing (a terminated operation is no failure)", got)
	}
	if got := firing(29 * time.Minute); len(got) != 1 || !got["CrowsnestProdDrift/drift"] {
		t.Errorf("at 29m: %v firing, want only the drift of the app not being deleted", got)
	}
	if got := firing(30 * time.Minute); len(got) != 2 || !got["CrowsnestProdDrift/drift"] || !got["CrowsnestSyncStuck/pending"] {
		t.Errorf("at 30m: %v firing, want the drift and the sync pending for 30 minutes", got)
	}
	// The drifted app starts being deleted: its drift alert resolves now.
	apps[2].Deleting = true
	now := t0.Add(30*time.Minute + time.Second)
	resolved := false
	for _, a := range p.Evaluate(now) {
		if a.Labels["alertname"] == "CrowsnestProdDrift" && a.Labels["name"] == "drift" {
			resolved = time.Time(a.EndsAt).Equal(now)
		}
	}
	if !resolved {
		t.Error("CrowsnestProdDrift not resolved when the app's deletion began")
	}
}

// A failing Alertmanager is retried with backoff until it accepts, within
// the timeout.
func TestPagerRetriesUntilAccepted(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		n := len(at)
		mu.Unlock()
		if n <= 2 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`"try again"`))
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer am.Close()
	apps := []rules.AppState{{Namespace: "argocd", Name: "prod-backend", Env: "prod", Phase: "Failed"}}
	p := newTestPager(t, []string{am.URL}, &apps)
	p.cfg.Timeout = 10 * time.Second // room for the waits on a loaded machine
	p.post(context.Background(), p.Evaluate(t0))
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 3 {
		t.Fatalf("%d posts, want 3 (two 500s, then accepted)", len(at))
	}
	// Backoff: 250 ms, then twice that.
	if gap := at[1].Sub(at[0]); gap < 250*time.Millisecond {
		t.Errorf("first retry after %s, want >= 250ms", gap)
	}
	if gap := at[2].Sub(at[1]); gap < 500*time.Millisecond {
		t.Errorf("second retry after %s, want >= 500ms", gap)
	}
	if sent, failed := testutil.ToFloat64(p.sent.WithLabelValues(am.URL)), testutil.ToFloat64(p.failed.WithLabelValues(am.URL)); sent != 1 || failed != 0 {
		t.Errorf("alerts_sent_total = %v, alerts_failed_total = %v, want 1 and 0", sent, failed)
	}
}

// An Alertmanager that always fails is retried until the timeout, then the
// batch is counted as failed.
func TestPagerGivesUpAtTimeout(t *testing.T) {
	var mu sync.Mutex
	posts := 0
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`"down"`))
	}))
	defer am.Close()
	apps := []rules.AppState{{Namespace: "argocd", Name: "prod-backend", Env: "prod", Phase: "Failed"}}
	p := newTestPager(t, []string{am.URL}, &apps)
	start := time.Now()
	p.post(context.Background(), p.Evaluate(t0))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("post took %s, want about its 1 s timeout", took)
	}
	mu.Lock()
	defer mu.Unlock()
	// 1 s fits the first try and the retries after 250 and 500 ms.
	if posts < 2 {
		t.Errorf("%d posts, want retries within the timeout", posts)
	}
	if got := testutil.ToFloat64(p.failed.WithLabelValues(am.URL)); got != 1 {
		t.Errorf("alerts_failed_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(p.sent.WithLabelValues(am.URL)); got != 0 {
		t.Errorf("alerts_sent_total = %v, want 0", got)
	}
}

// fakeAM is an Alertmanager answering every post with its status (200 by
// default) and keeping the alerts of each post.
type fakeAM struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	posts  [][]postedAlert
}

// postedAlert is an alert as an Alertmanager received it.
type postedAlert struct {
	Labels           map[string]string
	StartsAt, EndsAt time.Time
}

func newFakeAM(t *testing.T) *fakeAM {
	t.Helper()
	am := &fakeAM{status: http.StatusOK}
	am.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var alerts []postedAlert
		if err := json.NewDecoder(r.Body).Decode(&alerts); err != nil {
			t.Errorf("decoding a post: %v", err)
		}
		am.mu.Lock()
		am.posts = append(am.posts, alerts)
		status := am.status
		am.mu.Unlock()
		if status == http.StatusOK {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`"told to fail"`))
	}))
	t.Cleanup(am.Close)
	return am
}

func (am *fakeAM) answer(status int) {
	am.mu.Lock()
	defer am.mu.Unlock()
	am.status = status
}

// take returns the posts received since the last take.
func (am *fakeAM) take() [][]postedAlert {
	am.mu.Lock()
	defer am.mu.Unlock()
	out := am.posts
	am.posts = nil
	return out
}

// An Alertmanager's 4xx answer other than 429 rejects the alerts: one
// try, counted as rejected, not posted again at the next evaluation. 429
// and 5xx are retried within the post and counted as failed.
func TestPagerRejectionsAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusBadRequest, true}, // Alertmanager's own answer to invalid alerts
		{http.StatusNotFound, true},   // an answer the client does not model
		{http.StatusUnprocessableEntity, true},
		{http.StatusTooManyRequests, false},
		{http.StatusServiceUnavailable, false},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			am := newFakeAM(t)
			am.answer(tc.status)
			apps := []rules.AppState{{Namespace: "argocd", Name: "prod-backend", Env: "prod", Phase: "Failed"}}
			p, reg := newTestPagerRegistry(t, []string{am.URL}, &apps)
			p.cfg.Timeout = 600 * time.Millisecond // room for a retry after 250 ms
			p.post(context.Background(), p.Evaluate(t0))
			posts := len(am.take())
			rejected, failed := counterOf(t, reg, "crowsnest_alerts_rejected_total", am.URL), counterOf(t, reg, "crowsnest_alerts_failed_total", am.URL)
			if tc.permanent {
				if posts != 1 || rejected != 1 || failed != 0 {
					t.Fatalf("%d posts, alerts_rejected_total %v, alerts_failed_total %v; want 1 post, the alert rejected", posts, rejected, failed)
				}
				p.post(context.Background(), p.Evaluate(t0.Add(time.Second)))
				if n := len(am.take()); n != 0 {
					t.Errorf("a rejected alert was posted again at the next evaluation (%d posts)", n)
				}
				return
			}
			if posts < 2 || rejected != 0 || failed != 1 {
				t.Errorf("%d posts, alerts_rejected_total %v, alerts_failed_total %v; want retries, the alert failed", posts, rejected, failed)
			}
		})
	}
}

// A firing alert whose post failed is posted again at the next
// evaluation, to the Alertmanager that missed it only.
func TestPagerRetriesFailedPageAtNextEvaluation(t *testing.T) {
	up, down := newFakeAM(t), newFakeAM(t)
	down.answer(http.StatusInternalServerError)
	apps := []rules.AppState{{Namespace: "argocd", Name: "prod-backend", Env: "prod", Phase: "Failed"}}
	p := newTestPager(t, []string{up.URL, down.URL}, &apps)
	p.cfg.Timeout = 300 * time.Millisecond
	p.post(context.Background(), p.Evaluate(t0))
	if len(up.take()) != 1 || len(down.take()) == 0 {
		t.Fatal("the first page did not reach both Alertmanagers")
	}
	down.answer(http.StatusOK)
	p.post(context.Background(), p.Evaluate(t0.Add(time.Second)))
	if posts := up.take(); len(posts) != 0 {
		t.Errorf("the Alertmanager that took the page got %d posts more, want none before the resend", len(posts))
	}
	posts := down.take()
	if len(posts) != 1 || len(posts[0]) != 1 || posts[0][0].Labels["alertname"] != "CrowsnestProdSyncFailed" || !posts[0][0].EndsAt.After(t0.Add(time.Second)) {
		t.Fatalf("the Alertmanager that missed the page got %v at the next evaluation, want the firing sync failure", posts)
	}
	p.post(context.Background(), p.Evaluate(t0.Add(2*time.Second)))
	if n := len(up.take()) + len(down.take()); n != 0 {
		t.Errorf("%d posts once delivered everywhere, want none before the resend", n)
	}
}

// A resolve whose post failed is posted again at each evaluation until it
// is delivered, or dropped when its alert fires again.
func TestPagerRetriesFailedResolve(t *testing.T) {
	am := newFakeAM(t)
	apps := []rules.AppState{{Namespace: "argocd", Name: "prod-backend", Env: "prod", Phase: "Failed"}}
	p := newTestPager(t, []string{am.URL}, &apps)
	p.cfg.Timeout = 300 * time.Millisecond
	p.post(context.Background(), p.Evaluate(t0))
	am.take()

	am.answer(http.StatusServiceUnavailable)
	apps[0].Phase = "Succeeded"
	resolvedAt := t0.Add(time.Second)
	p.post(context.Background(), p.Evaluate(resolvedAt))
	p.post(context.Background(), p.Evaluate(t0.Add(2*time.Second)))
	if n := len(am.take()); n < 2 {
		t.Fatalf("%d posts while the Alertmanager fails, want the resolve tried at each evaluation", n)
	}
	am.answer(http.StatusOK)
	p.post(context.Background(), p.Evaluate(t0.Add(3*time.Second)))
	posts := am.take()
	if len(posts) != 1 || len(posts[0]) != 1 || !posts[0][0].EndsAt.Equal(resolvedAt) || !posts[0][0].StartsAt.Equal(t0) {
		t.Fatalf("posted %v once the Alertmanager recovered, want the resolve with endsAt %v", posts, resolvedAt)
	}
	p.post(context.Background(), p.Evaluate(t0.Add(4*time.Second)))
	if n := len(am.take()); n != 0 {
		t.Errorf("%d posts after the resolve was delivered, want none", n)
	}

	// Fire, fail to resolve, fire again: the stale resolve is dropped.
	apps[0].Phase = "Failed"
	p.post(context.Background(), p.Evaluate(t0.Add(5*time.Second)))
	am.answer(http.StatusInternalServerError)
	apps[0].Phase = "Succeeded"
	p.post(context.Background(), p.Evaluate(t0.Add(6*time.Second)))
	apps[0].Phase = "Failed"
	am.answer(http.StatusOK)
	am.take()
	refired := t0.Add(7 * time.Second)
	p.post(context.Background(), p.Evaluate(refired))
	posts = am.take()
	if len(posts) != 1 || len(posts[0]) != 1 || !posts[0][0].StartsAt.Equal(refired) || !posts[0][0].EndsAt.After(refired) {
		t.Fatalf("posted %v when the alert fired again, want only the new firing alert", posts)
	}
}

// User information in --alertmanager.url is sent as basic auth, and never
// shown: not in the target label, not in the error about a bad URL.
func TestPagerBasicAuthFromURL(t *testing.T) {
	got := make(chan string, 4)
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, ok := r.BasicAuth()
		got <- fmt.Sprintf("%v %s:%s", ok, user, pw)
	}))
	defer am.Close()
	withAuth := strings.Replace(am.URL, "://", "://pager:s3cret-pw@", 1)
	apps := []rules.AppState{{Namespace: "argocd", Name: "prod-backend", Env: "prod", Phase: "Failed"}}
	p := newTestPager(t, []string{withAuth}, &apps)
	p.post(context.Background(), p.Evaluate(t0))
	if a := <-got; a != "true pager:s3cret-pw" {
		t.Errorf("Alertmanager got basic auth %q, want pager:s3cret-pw", a)
	}
	if got := testutil.ToFloat64(p.sent.WithLabelValues(am.URL)); got != 1 {
		t.Errorf("alerts_sent_total{alertmanager=<redacted URL>} = %v, want 1", got)
	}
	// A token as the user name alone is shown nowhere either.
	tokenOnly := strings.Replace(am.URL, "://", "://t0ken-as-user@", 1)
	q := newTestPager(t, []string{tokenOnly}, &apps)
	if got := q.targets[0].url; strings.Contains(got, "t0ken") {
		t.Errorf("target shown as %q, want it without the user name", got)
	}
	for _, bad := range []string{"pager:s3cret-pw@alertmanager:9093", "ftp://pager:s3cret-pw@alertmanager:9093"} {
		_, err := NewPager(PagerConfig{URLs: []string{bad}}, rules.Alerts(), func() []rules.AppState { return nil }, prometheus.NewRegistry(), promslog.NewNopLogger())
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("bad URL: error %v, want one without the password", err)
		}
	}
}

// The pager's alerts carry the configured external labels and runbook base, as Prometheus'
// rule alerts carry its external labels, so Alertmanager holds one alert
// for both paths; an external label never replaces one of the alert's own,
// as in Prometheus. A bad label name is an error that names the flag.
func TestPagerExternalLabels(t *testing.T) {
	apps := []rules.AppState{{Namespace: "argocd", Name: "web", Project: "shop", Env: "prod", SyncStatus: "Synced", Health: "Healthy", Phase: "Failed"}}
	external := map[string]string{"prometheus": "monitoring/kube-prometheus-stack-prometheus", "cluster": "eu-1", "env": "not-this"}
	p, err := NewPager(PagerConfig{Interval: time.Second, Resend: time.Minute, Timeout: time.Second, ForScale: 1, ExternalLabels: external,
		RunbookURL: "https://wiki.example.com/crowsnest"},
		rules.Alerts(), func() []rules.AppState { return apps }, prometheus.NewRegistry(), promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	posted := p.Evaluate(t0)
	if len(posted) != 1 {
		t.Fatalf("posted %d alerts, want the failed sync's", len(posted))
	}
	l := posted[0].Labels
	want := map[string]string{"alertname": "CrowsnestProdSyncFailed", "severity": "critical", "namespace": "argocd", "name": "web", "project": "shop", "env": "prod",
		"prometheus": "monitoring/kube-prometheus-stack-prometheus", "cluster": "eu-1"}
	if !maps.Equal(map[string]string(l), want) {
		t.Errorf("labels %v, want %v", l, want)
	}
	if got := posted[0].Annotations["runbook_url"]; got != "https://wiki.example.com/crowsnest#crowsnestprodsyncfailed" {
		t.Errorf("runbook_url %q, want the configured base's", got)
	}
	for _, bad := range []map[string]string{{"0cluster": "x"}, {"__name__": "x"}, {"cluster": ""}} {
		_, err := NewPager(PagerConfig{Interval: time.Second, Resend: time.Minute, Timeout: time.Second, ForScale: 1, ExternalLabels: bad},
			rules.Alerts(), func() []rules.AppState { return apps }, prometheus.NewRegistry(), promslog.NewNopLogger())
		if err == nil || !strings.Contains(err.Error(), "--alertmanager.external-label") {
			t.Errorf("external labels %v: error %v, want one naming --alertmanager.external-label", bad, err)
		}
	}
}

// With prod_environments a regular expression, the pager pages the envs it
// matches, as the rules rendered for it match them (env=~, anchored): prod
// itself is then an env like any other.
func TestPagerProdEnvironments(t *testing.T) {
	apps := []rules.AppState{
		{Namespace: "argocd", Name: "eu", Project: "shop", Env: "prod-eu", SyncStatus: "Synced", Health: "Healthy", Phase: "Failed"},
		{Namespace: "argocd", Name: "main", Project: "shop", Env: "production", SyncStatus: "Synced", Health: "Healthy", Phase: "Failed"},
		{Namespace: "argocd", Name: "old", Project: "shop", Env: "prod", SyncStatus: "Synced", Health: "Healthy", Phase: "Failed"},
		{Namespace: "argocd", Name: "pre", Project: "shop", Env: "preproduction", SyncStatus: "Synced", Health: "Healthy", Phase: "Failed"},
	}
	p, err := NewPager(PagerConfig{Interval: time.Second, Resend: time.Minute, Timeout: time.Second, ForScale: 1, ProdEnvironments: "production|prod-.*"},
		rules.Alerts(), func() []rules.AppState { return apps }, prometheus.NewRegistry(), promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range p.Evaluate(t0) {
		got[a.Labels["name"]] = a.Labels["alertname"] + "/" + a.Labels["severity"]
	}
	want := map[string]string{"eu": "CrowsnestProdSyncFailed/critical", "main": "CrowsnestProdSyncFailed/critical",
		"old": "CrowsnestSyncFailed/warning", "pre": "CrowsnestSyncFailed/warning"}
	if !maps.Equal(got, want) {
		t.Errorf("pages %v, want %v", got, want)
	}
	for _, r := range rules.RulesFor(rules.Alerts(), 1, "production|prod-.*", rules.Links{}) {
		switch r.Alert {
		case "CrowsnestProdSyncFailed":
			if !strings.Contains(r.Expr, `env=~"production|prod-.*"`) {
				t.Errorf("%s: %s", r.Alert, r.Expr)
			}
		case "CrowsnestSyncFailed":
			if !strings.Contains(r.Expr, `env!~"production|prod-.*"`) {
				t.Errorf("%s: %s", r.Alert, r.Expr)
			}
		}
	}
	// A reloaded configuration names other envs: they page from then on.
	if err := p.SetProdEnvironments("pre.*"); err != nil {
		t.Fatal(err)
	}
	firing := map[string]bool{}
	for _, a := range p.Evaluate(t0.Add(time.Minute)) {
		if time.Time(a.EndsAt).After(t0.Add(time.Minute)) {
			firing[a.Labels["alertname"]+"/"+a.Labels["name"]] = true
		}
	}
	if !firing["CrowsnestProdSyncFailed/pre"] || firing["CrowsnestSyncFailed/pre"] {
		t.Errorf("after the reload: firing %v, want CrowsnestProdSyncFailed for pre, not CrowsnestSyncFailed", firing)
	}
	if err := p.SetProdEnvironments("prod|(eu"); err == nil {
		t.Error("an invalid reloaded prod_environments was accepted")
	}
	if _, err := NewPager(PagerConfig{ProdEnvironments: "prod|(eu"}, rules.Alerts(), func() []rules.AppState { return nil }, prometheus.NewRegistry(), promslog.NewNopLogger()); err == nil {
		t.Error("an invalid prod_environments was accepted")
	}
}

// With an allowlist of Application labels, every page carries those the
// app has, named label_<name>, as the rule alerts joined with
// crowsnest_app_labels do; without one, none.
func TestPagerAppLabels(t *testing.T) {
	apps := []rules.AppState{{Namespace: "argocd", Name: "web", Project: "shop", Env: "dev", SyncStatus: "Synced", Health: "Healthy", Phase: "Failed",
		Labels: map[string]string{"team": "payments", "app.kubernetes.io/part-of": "shop", "other": "x"}}}
	for _, tc := range []struct {
		allow []string
		want  map[string]string
	}{
		{[]string{"team", "app.kubernetes.io/part-of", "missing"}, map[string]string{"label_team": "payments", "label_app_kubernetes_io_part_of": "shop"}},
		{nil, map[string]string{}},
	} {
		p, err := NewPager(PagerConfig{Interval: time.Second, Resend: time.Minute, Timeout: time.Second, ForScale: 1, AppLabels: tc.allow},
			rules.Alerts(), func() []rules.AppState { return apps }, prometheus.NewRegistry(), promslog.NewNopLogger())
		if err != nil {
			t.Fatal(err)
		}
		posted := p.Evaluate(t0)
		if len(posted) != 1 {
			t.Fatalf("posted %d alerts, want 1", len(posted))
		}
		got := map[string]string{}
		for k, v := range posted[0].Labels {
			if strings.HasPrefix(k, "label_") {
				got[k] = v
			}
		}
		if !maps.Equal(got, tc.want) {
			t.Errorf("allowlist %v: labels %v, want %v", tc.allow, got, tc.want)
		}
	}
}

// The daemon's pages carry the same links as the rules' alerts (the
// promtool cases check those against DashboardURL and AppURL).
func TestPagerLinks(t *testing.T) {
	apps := []rules.AppState{{Namespace: "argocd", Name: "prod-backend", Project: "shop", Env: "prod", SyncStatus: "Synced", Health: "Healthy", Phase: "Failed"}}
	for _, c := range []struct {
		links             rules.Links
		dashboard, argocd string
	}{
		{rules.Links{ArgoCD: "https://argocd.example.com", Grafana: "https://grafana.example.com/grafana"}, "https://grafana.example.com/grafana/d/crowsnest-app/crowsnest-app?var-app=prod-backend&var-namespace=argocd&var-cluster=&var-env=prod&var-project=shop", "https://argocd.example.com/applications/argocd/prod-backend"},
		{rules.Links{}, "/d/crowsnest-app/crowsnest-app?var-app=prod-backend&var-namespace=argocd&var-cluster=&var-env=prod&var-project=shop", ""},
	} {
		p, err := NewPager(PagerConfig{Interval: time.Second, Resend: time.Minute, Timeout: time.Second, ForScale: 1, Links: c.links},
			rules.Alerts(), func() []rules.AppState { return apps }, prometheus.NewRegistry(), promslog.NewNopLogger())
		if err != nil {
			t.Fatal(err)
		}
		got := p.Evaluate(t0)
		if len(got) != 1 {
			t.Fatalf("posted %v, want the sync failure", got)
		}
		if d, a := got[0].Annotations["dashboard_url"], got[0].Annotations["argocd_url"]; d != c.dashboard || a != c.argocd {
			t.Errorf("links %+v: dashboard_url %q, argocd_url %q; want %q, %q", c.links, d, a, c.dashboard, c.argocd)
		}
	}
}
