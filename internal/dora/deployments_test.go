package dora

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/queue"
)

var (
	deployedLabels = map[string]string{"project": "shop", "env": "prod", "until": "deployed"}
	healthyLabels  = map[string]string{"project": "shop", "env": "prod", "until": "healthy"}
)

func TestLeadTimeObservedWithExemplar(t *testing.T) {
	client := newFakeClient()
	date := t0.Add(-3*time.Hour - 17*time.Minute)
	client.set("abc", &model.Commit{SHA: "abc", RepoURL: "https://git.example.com/shop.git", Author: "Ann <ann@example.com>", Date: date, Subject: "Fix checkout"})
	f := newFixture(t, Config{}, client)
	dep := deployment("cart", model.DeploymentSucceeded, "trace-1", gitSource(0, "abc"))

	f.d.handle(context.Background(), deployed(dep))

	s, ok := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", deployedLabels)
	if !ok || s.count != 1 || s.sum != (3*time.Hour+17*time.Minute).Seconds() {
		t.Fatalf("lead time until deployed = %+v (found %v), want one observation of 11820s", s, ok)
	}
	if !slices.Equal(s.exemplars, []string{"trace-1"}) {
		t.Errorf("exemplars = %v, want [trace-1]", s.exemplars)
	}
	if got := f.lookups(LookupFetched); got != 1 {
		t.Errorf("fetched lookups = %v, want 1", got)
	}
	if client.apps[0] != "argocd/cart" {
		t.Errorf("client asked for app %s, want argocd/cart", client.apps[0])
	}
	facts, records := f.out.snapshot()
	if len(records) != 1 || records[0].Deployment != dep || records[0].Commit == nil || records[0].Commit.Author != "Ann <ann@example.com>" ||
		records[0].LeadTime != 3*time.Hour+17*time.Minute {
		t.Fatalf("records = %+v, want one with the commit and its lead time", records)
	}
	if len(facts) != 1 {
		t.Fatalf("got %d facts, want 1", len(facts))
	}
	fc := facts[0]
	if fc.Name != model.FactDeploymentFinished || fc.App != "argocd/cart" || fc.Project != "shop" || fc.Env != "prod" || fc.Dest != "prod-eu" ||
		fc.TraceID != "trace-1" || !fc.Time.Equal(t0) {
		t.Errorf("fact = %+v", fc)
	}
	want := []any{
		"result", "succeeded", "revision", "abc", "previous_revision", "prev", "initiator", "automated",
		"author", "Ann <ann@example.com>", "commit_sha", "abc", "commit_repo", "https://git.example.com/shop.git", "commit_time", "2026-03-04T08:43:00Z",
		"commit_subject", "Fix checkout", "commit_referenced", false, "lead_time_seconds", 11820.0, "lead_time_from", "commit",
	}
	if !reflect.DeepEqual(fc.Attrs, want) {
		t.Errorf("fact attrs =\n%v\nwant\n%v", fc.Attrs, want)
	}
}

func TestOldestOfChangedSources(t *testing.T) {
	client := newFakeClient()
	client.set("new", &model.Commit{SHA: "new", Date: t0.Add(-time.Hour)})
	client.set("old", &model.Commit{SHA: "old", Date: t0.Add(-5 * time.Hour)})
	f := newFixture(t, Config{}, client)
	helm := model.DeploymentSource{Index: 2, RepoURL: "https://charts.example.com", Chart: "redis", Revision: "1.2.3"}
	dep := deployment("cart", model.DeploymentSucceeded, "trace-1", gitSource(0, "new"), gitSource(1, "old"), helm)

	f.d.handle(context.Background(), deployed(dep))

	if s, _ := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", deployedLabels); s.sum != (5 * time.Hour).Seconds() {
		t.Errorf("lead time = %vs, want 18000s (the oldest changed source)", s.sum)
	}
	_, records := f.out.snapshot()
	if c := records[0].Commit; c == nil || c.SHA != "old" {
		t.Errorf("record commit = %+v, want old", c)
	}
	if got := f.lookups(LookupUnsupported); got != 1 {
		t.Errorf("unsupported lookups = %v, want 1 (the helm source)", got)
	}
	if client.callsFor("1.2.3") != 0 {
		t.Error("the client was asked for a helm chart")
	}
}

func TestHelmOnlyHasNoCommit(t *testing.T) {
	client := newFakeClient()
	f := newFixture(t, Config{}, client)
	dep := deployment("redis", model.DeploymentSucceeded, "trace-1",
		model.DeploymentSource{RepoURL: "oci://registry.example.com/charts", Chart: "redis", Revision: "1.2.3"})

	f.d.handle(context.Background(), deployed(dep))

	if client.callCount() != 0 || f.lookups(LookupUnsupported) != 1 {
		t.Errorf("calls = %d, unsupported = %v; want 0 and 1", client.callCount(), f.lookups(LookupUnsupported))
	}
	if _, ok := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", deployedLabels); ok {
		t.Error("lead time observed without a commit")
	}
	facts, records := f.out.snapshot()
	if len(records) != 1 || records[0].Commit != nil || records[0].LeadTime != 0 {
		t.Errorf("records = %+v, want one without commit", records)
	}
	want := []any{"result", "succeeded", "revision", "1.2.3", "previous_revision", "prev", "initiator", "automated"}
	if !reflect.DeepEqual(facts[0].Attrs, want) {
		t.Errorf("fact attrs = %v, want %v", facts[0].Attrs, want)
	}
}

// A deployment of new source settings on the same revision (Image
// Updater, `argocd app set -p`) changed no source's revision: no commit to
// look up, no lead time, and its record says what changed.
func TestSourceOnlyDeploymentRecord(t *testing.T) {
	client := newFakeClient()
	f := newFixture(t, Config{}, client)
	dep := deployment("web", model.DeploymentSucceeded, "trace-1")
	dep.SourceChanged = true

	f.d.handle(context.Background(), deployed(dep))

	if client.callCount() != 0 {
		t.Errorf("%d commit lookups, want none", client.callCount())
	}
	if _, ok := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", deployedLabels); ok {
		t.Error("lead time observed without a changed revision")
	}
	facts, _ := f.out.snapshot()
	if len(facts) != 1 || !slices.Contains(facts[0].Attrs, any("source_changed")) {
		t.Errorf("facts %+v, want one with source_changed", facts)
	}
}

// leadFrom returns the lead time and its origin in the one record out.
func (f *fixture) leadFrom(t *testing.T) (time.Duration, string, *model.Commit) {
	t.Helper()
	facts, records := f.out.snapshot()
	if len(records) != 1 || len(facts) != 1 {
		t.Fatalf("%d records, %d facts; want one each", len(records), len(facts))
	}
	r := records[0]
	if r.LeadFrom != "" && !slices.Contains(facts[0].Attrs, any(r.LeadFrom)) {
		t.Errorf("fact %v does not say lead_time_from %s", facts[0].Attrs, r.LeadFrom)
	}
	return r.LeadTime, r.LeadFrom, r.Commit
}

// The lead time of a change without a commit of its own: from the change
// CI named (its time as given, or its commit's date looked up), else, for
// new source settings or a new chart version, from when Argo CD first
// compared the app with them; a named commit that cannot be looked up gives
// no lead time rather than another.
func TestLeadTimeOfNamedAndSourceChanges(t *testing.T) {
	seen := t0.Add(-20 * time.Minute)
	chart := model.DeploymentSource{RepoURL: "https://charts.example.com", Chart: "redis", Revision: "1.2.4"}
	client := newFakeClient()
	client.set("c0ffee", &model.Commit{SHA: "c0ffee", RepoURL: "https://git.example.com/shop.git", Date: t0.Add(-2 * time.Hour), Author: "Ann"})
	client.set("abc", &model.Commit{SHA: "abc", Date: t0.Add(-3 * time.Hour)})
	for _, c := range []struct {
		name     string
		client   MetadataClient
		dep      func() *model.Deployment
		lead     time.Duration
		from     string
		wantSHA  string
		observed bool
	}{
		{"source settings, first compared 20 min before", client, func() *model.Deployment {
			d := deployment("web", model.DeploymentSucceeded, "t")
			d.SourceChanged, d.TargetSeenAt = true, seen
			return d
		}, 20 * time.Minute, model.LeadFromSourceChange, "", true},
		{"source settings, without an API server", nil, func() *model.Deployment {
			d := deployment("web", model.DeploymentSucceeded, "t")
			d.SourceChanged, d.TargetSeenAt = true, seen
			return d
		}, 20 * time.Minute, model.LeadFromSourceChange, "", true},
		{"a new chart version", client, func() *model.Deployment {
			d := deployment("redis", model.DeploymentSucceeded, "t", chart)
			d.TargetSeenAt = seen
			return d
		}, 20 * time.Minute, model.LeadFromSourceChange, "", true},
		{"a new git revision: its commit, not the comparison", client, func() *model.Deployment {
			d := deployment("web", model.DeploymentSucceeded, "t", gitSource(0, "abc"))
			d.TargetSeenAt = seen
			return d
		}, 3 * time.Hour, model.LeadFromCommit, "abc", true},
		{"a named commit, looked up", client, func() *model.Deployment {
			d := deployment("web", model.DeploymentSucceeded, "t")
			d.SourceChanged, d.TargetSeenAt = true, seen
			s := gitSource(0, "c0ffee")
			d.ChangeCommit = &s
			return d
		}, 2 * time.Hour, model.LeadFromAnnotation, "c0ffee", true},
		{"a named commit and time: the time as given", client, func() *model.Deployment {
			d := deployment("web", model.DeploymentSucceeded, "t", gitSource(0, "abc"))
			s := gitSource(0, "c0ffee")
			d.ChangeCommit, d.ChangeTime = &s, t0.Add(-5*time.Hour)
			return d
		}, 5 * time.Hour, model.LeadFromAnnotation, "c0ffee", true},
		{"a named commit unknown to Argo CD: no lead time", client, func() *model.Deployment {
			d := deployment("web", model.DeploymentSucceeded, "t")
			d.SourceChanged, d.TargetSeenAt = true, seen
			s := gitSource(0, "deadbeef")
			d.ChangeCommit = &s
			return d
		}, 0, "", "", false},
		{"source settings, the comparison not seen", client, func() *model.Deployment {
			d := deployment("web", model.DeploymentSucceeded, "t")
			d.SourceChanged = true
			return d
		}, 0, "", "", false},
		{"a rollback", client, func() *model.Deployment {
			d := deployment("web", model.DeploymentRolledBack, "t")
			d.SourceChanged, d.TargetSeenAt, d.ChangeTime = true, seen, seen
			return d
		}, 0, "", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Config{}, c.client)
			f.d.handle(context.Background(), deployed(c.dep()))
			lead, from, commit := f.leadFrom(t)
			if lead != c.lead || from != c.from {
				t.Errorf("lead time %v from %q, want %v from %q", lead, from, c.lead, c.from)
			}
			sha := ""
			if commit != nil {
				sha = commit.SHA
			}
			if sha != c.wantSHA {
				t.Errorf("commit %+v, want SHA %q", commit, c.wantSHA)
			}
			s, ok := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", deployedLabels)
			if ok != c.observed || ok && s.sum != c.lead.Seconds() {
				t.Errorf("lead time histogram %+v (found %v), want %v observed: %v", s, ok, c.lead, c.observed)
			}
		})
	}
}

func TestFailedDeploymentHasNoLeadTime(t *testing.T) {
	client := newFakeClient()
	client.set("abc", &model.Commit{SHA: "abc", Author: "Ann", Date: t0.Add(-time.Hour)})
	f := newFixture(t, Config{}, client)
	dep := deployment("cart", model.DeploymentFailed, "trace-1", gitSource(0, "abc"))

	f.d.handle(context.Background(), deployed(dep))
	f.d.handle(context.Background(), &model.DeploymentNotice{Kind: model.NoticeHealthy, Time: t0.Add(time.Minute), Deployment: dep})

	if _, ok := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", deployedLabels); ok {
		t.Error("lead time until deployed observed for a failed deployment")
	}
	if _, ok := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", healthyLabels); ok {
		t.Error("lead time until healthy observed for a failed deployment")
	}
	facts, records := f.out.snapshot()
	if records[0].Commit == nil || records[0].Commit.Author != "Ann" || records[0].LeadTime != 0 {
		t.Errorf("record = %+v, want the commit (who broke it) and no lead time", records[0])
	}
	if slices.Contains(facts[0].Attrs, any("lead_time_seconds")) || !slices.Contains(facts[0].Attrs, any("author")) {
		t.Errorf("fact attrs = %v, want an author and no lead_time_seconds", facts[0].Attrs)
	}
}

func TestCommitAfterFinishHasNoLeadTime(t *testing.T) {
	client := newFakeClient()
	client.set("abc", &model.Commit{SHA: "abc", Date: t0.Add(time.Hour)})
	f := newFixture(t, Config{}, client)
	f.d.handle(context.Background(), deployed(deployment("cart", model.DeploymentSucceeded, "trace-1", gitSource(0, "abc"))))
	if _, ok := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", deployedLabels); ok {
		t.Error("a negative lead time was observed")
	}
}

// A rollback deploys an old commit: its age is no lead time.
func TestRollbackHasNoLeadTime(t *testing.T) {
	client := newFakeClient()
	client.set("abc", &model.Commit{SHA: "abc", Date: t0.Add(-48 * time.Hour)})
	f := newFixture(t, Config{}, client)
	dep := deployment("cart", model.DeploymentRolledBack, "trace-1", gitSource(0, "abc"))
	f.d.handle(context.Background(), deployed(dep))
	f.d.handle(context.Background(), &model.DeploymentNotice{Kind: model.NoticeHealthy, Time: t0.Add(time.Minute), Deployment: dep})
	for _, labels := range []map[string]string{deployedLabels, healthyLabels} {
		if _, ok := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", labels); ok {
			t.Errorf("a rollback observed a lead time %v", labels)
		}
	}
}

func TestHealthyObservation(t *testing.T) {
	client := newFakeClient()
	date := t0.Add(-2 * time.Hour)
	client.set("abc", &model.Commit{SHA: "abc", Date: date})
	f := newFixture(t, Config{}, client)
	dep := deployment("cart", model.DeploymentSucceeded, "trace-1", gitSource(0, "abc"))
	ctx := context.Background()

	f.d.handle(ctx, deployed(dep))
	other := *dep
	other.TraceID = "trace-0" // an older deployment's
	f.d.handle(ctx, &model.DeploymentNotice{Kind: model.NoticeHealthy, Time: t0.Add(time.Minute), Deployment: &other})
	if _, ok := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", healthyLabels); ok {
		t.Fatal("healthy of another deployment observed")
	}
	f.d.handle(ctx, &model.DeploymentNotice{Kind: model.NoticeHealthy, Time: t0.Add(90 * time.Second), Deployment: dep})
	f.d.handle(ctx, &model.DeploymentNotice{Kind: model.NoticeHealthy, Time: t0.Add(time.Hour), Deployment: dep})

	s, ok := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", healthyLabels)
	if !ok || s.count != 1 || s.sum != (2*time.Hour+90*time.Second).Seconds() || !slices.Equal(s.exemplars, []string{"trace-1"}) {
		t.Errorf("lead time until healthy = %+v, want one observation of 7290s with exemplar trace-1", s)
	}
}

func TestRecoveryObservation(t *testing.T) {
	f := newFixture(t, Config{}, nil) // recovery needs no commit metadata
	dep := deployment("cart", model.DeploymentSucceeded, "trace-fix", gitSource(0, "abc"))
	f.d.handle(context.Background(), &model.DeploymentNotice{
		Kind: model.NoticeRecovered, Time: t0.Add(47 * time.Minute), Onset: t0.Add(-13 * time.Minute), Deployment: dep,
	})
	s, ok := histogram(t, f.reg, "crowsnest_deployment_recovery_seconds", map[string]string{"project": "shop", "env": "prod"})
	if !ok || s.count != 1 || s.sum != 3600 || !slices.Equal(s.exemplars, []string{"trace-fix"}) {
		t.Errorf("recovery = %+v (found %v), want one observation of 3600s with exemplar trace-fix", s, ok)
	}
}

func TestWithoutClient(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	f.d.handle(context.Background(), deployed(deployment("cart", model.DeploymentSucceeded, "trace-1", gitSource(0, "abc"))))
	_, records := f.out.snapshot()
	if len(records) != 1 || records[0].Commit != nil {
		t.Errorf("records = %+v, want one without commit", records)
	}
	for _, r := range []string{LookupCached, LookupFetched, LookupFailed, LookupUnsupported} {
		if f.lookups(r) != 0 {
			t.Errorf("lookups{result=%s} = %v without a client, want 0", r, f.lookups(r))
		}
	}
	f.d.SetApp(view("cart", "abc"))
	f.d.SetApp(view("cart", "def"))
	if len(f.d.prefetches) != 0 {
		t.Error("prefetch queued without a client")
	}
}

func TestQueueFullDropsWithoutBlocking(t *testing.T) {
	client := newFakeClient()
	f := newFixture(t, Config{QueueSize: 2}, client)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			f.d.Deployment(deployed(deployment("app"+string(rune('a'+i)), model.DeploymentSucceeded, "t", gitSource(0, "r"))))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Deployment blocked on a full queue")
	}
	if got := testutil.ToFloat64(f.d.metrics.dropped.WithLabelValues(queue.ReasonQueueFull)); got != 3 {
		t.Errorf("dropped = %v, want 3", got)
	}
	f.run(t)
	f.out.waitRecords(t, 2)
	_, records := f.out.snapshot()
	if len(records) != 2 || records[0].Deployment.Name != "appa" || records[1].Deployment.Name != "appb" {
		t.Errorf("handled %d records, want appa then appb", len(records))
	}
}

func TestHangingClientIsBounded(t *testing.T) {
	client := newFakeClient()
	client.hang["stuck"] = true
	client.set("fine", &model.Commit{SHA: "fine", Date: t0.Add(-time.Hour)})
	f := newFixture(t, Config{FetchTimeout: 50 * time.Millisecond, FailedTTL: time.Minute}, client)
	now := t0
	f.d.now = func() time.Time { return now }
	f.run(t)

	start := time.Now()
	f.d.Deployment(deployed(deployment("a", model.DeploymentSucceeded, "t1", gitSource(0, "stuck"))))
	f.d.Deployment(deployed(deployment("b", model.DeploymentSucceeded, "t2", gitSource(0, "fine"))))
	f.out.waitRecords(t, 2)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("two deployments took %v with a 50ms fetch timeout", took)
	}
	if f.lookups(LookupFailed) != 1 || f.lookups(LookupFetched) != 1 {
		t.Errorf("failed = %v, fetched = %v; want 1 and 1", f.lookups(LookupFailed), f.lookups(LookupFetched))
	}
	_, records := f.out.snapshot()
	if records[0].Commit != nil || records[1].Commit == nil {
		t.Errorf("records' commits = %v, %v; want nil, then the fine one", records[0].Commit, records[1].Commit)
	}

	// Within FailedTTL the failure is remembered: no new fetch.
	f.d.Deployment(deployed(deployment("a", model.DeploymentSucceeded, "t3", gitSource(0, "stuck"))))
	f.out.waitRecords(t, 1)
	if client.callsFor("stuck") != 1 || f.lookups(LookupFailed) != 2 {
		t.Errorf("calls = %d, failed = %v; want 1 and 2 (remembered)", client.callsFor("stuck"), f.lookups(LookupFailed))
	}
	// After it, fetched again; the failure is not warned about twice.
	now = now.Add(2 * time.Minute)
	f.d.Deployment(deployed(deployment("a", model.DeploymentSucceeded, "t4", gitSource(0, "stuck"))))
	f.out.waitRecords(t, 1)
	if client.callsFor("stuck") != 2 {
		t.Errorf("calls = %d after the failure expired, want 2", client.callsFor("stuck"))
	}
	if n := f.logs.Count("level=WARN msg=\"looking up commit metadata failed"); n != 1 {
		t.Errorf("warned %d times, want once", n)
	}
	if n := f.logs.Count("level=DEBUG msg=\"looking up commit metadata failed"); n != 1 {
		t.Errorf("logged the repeated failure at debug %d times, want once", n)
	}
}

func TestFailedFetchIsLoggedAndCounted(t *testing.T) {
	client := newFakeClient()
	client.fail["abc"] = errors.New("rpc error: code = PermissionDenied")
	f := newFixture(t, Config{}, client)
	f.d.handle(context.Background(), deployed(deployment("cart", model.DeploymentSucceeded, "t", gitSource(0, "abc"))))
	if f.lookups(LookupFailed) != 1 || f.logs.Count("PermissionDenied") != 1 || f.logs.Count("repo=https://git.example.com/shop.git revision=abc") != 1 {
		t.Errorf("failed = %v, logs:\n%s", f.lookups(LookupFailed), f.logs.String())
	}
}

func TestCacheIsBoundedLRU(t *testing.T) {
	client := newFakeClient()
	for _, r := range []string{"a", "b", "c"} {
		client.set(r, &model.Commit{SHA: r, Date: t0.Add(-time.Hour)})
	}
	f := newFixture(t, Config{CacheSize: 2}, client)
	for _, r := range []string{"a", "b", "a", "c", "a", "b"} {
		f.d.lookup(context.Background(), "argocd", "cart", gitSource(0, r))
	}
	// a, b fetched; a cached; c fetched, evicting b (a was used later);
	// a cached; b fetched again, evicting c.
	if f.lookups(LookupCached) != 2 || f.lookups(LookupFetched) != 4 {
		t.Errorf("cached = %v, fetched = %v; want 2 and 4", f.lookups(LookupCached), f.lookups(LookupFetched))
	}
	if client.callsFor("a") != 1 || client.callsFor("b") != 2 || client.callsFor("c") != 1 {
		t.Errorf("calls a, b, c = %d, %d, %d; want 1, 2, 1", client.callsFor("a"), client.callsFor("b"), client.callsFor("c"))
	}
	if n := f.d.cache.len(); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
}

// recordingSubscriber records finished operations.
type recordingSubscriber struct{ ops []*model.Operation }

func (r *recordingSubscriber) Finished(op *model.Operation) { r.ops = append(r.ops, op) }

func TestOperationsDecoratorCopies(t *testing.T) {
	client := newFakeClient()
	commit := &model.Commit{SHA: "abc", Author: "Ann", Date: t0.Add(-time.Hour)}
	client.set("abc", commit)
	f := newFixture(t, Config{}, client)
	next := &recordingSubscriber{}
	ops := f.d.Operations(next)

	dep := deployment("cart", model.DeploymentSucceeded, "trace-1", gitSource(0, "abc"))
	op := &model.Operation{UID: "uid-cart", Name: "cart", Revision: "abc", Result: "Succeeded", Deployment: dep}
	plain := &model.Operation{UID: "uid-cart", Name: "cart", Revision: "abc", Result: "Succeeded"}

	ops.Finished(op) // not cached yet: as is, and no fetch
	if next.ops[0] != op || op.Commit != nil || client.callCount() != 0 {
		t.Fatalf("uncached: got %p (op %p), commit %v, %d calls; want op as is, no fetch", next.ops[0], op, op.Commit, client.callCount())
	}

	f.d.lookup(context.Background(), "argocd", "cart", gitSource(0, "abc"))
	ops.Finished(op)
	ops.Finished(plain)
	got := next.ops[1]
	if got == op || got.Commit != commit {
		t.Fatalf("cached: got %p with commit %v, want a copy with the commit", got, got.Commit)
	}
	if op.Commit != nil {
		t.Error("the published operation was modified")
	}
	cp := *got
	cp.Commit = nil
	if !reflect.DeepEqual(&cp, op) {
		t.Error("the copy differs from the operation in more than its commit")
	}
	if next.ops[2] != plain {
		t.Error("an operation that is no deployment was not passed as is")
	}
}

// view returns a view of the single-source app argocd/name comparing to
// revision, or of a multi-source app with revisions.
func view(name string, revisions ...string) *model.AppView {
	app := &v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "argocd", Name: name}}
	if len(revisions) == 1 {
		app.Spec.Source = &v1alpha1.ApplicationSource{RepoURL: "https://git.example.com/shop.git"}
		app.Status.Sync.Revision = revisions[0]
	} else {
		for i := range revisions {
			src := v1alpha1.ApplicationSource{RepoURL: "https://git.example.com/shop.git"}
			if i == 2 {
				src = v1alpha1.ApplicationSource{RepoURL: "https://charts.example.com", Chart: "redis"}
			}
			app.Spec.Sources = append(app.Spec.Sources, src)
		}
		app.Status.Sync.Revisions = revisions
	}
	return &model.AppView{App: app, Env: "prod"}
}

// queued drains the prefetch queue.
func queued(d *Deployments) []prefetch {
	var ps []prefetch
	for {
		select {
		case p := <-d.prefetches:
			ps = append(ps, p)
		default:
			return ps
		}
	}
}

func TestPrefetchOnRevisionChangeOnly(t *testing.T) {
	f := newFixture(t, Config{}, newFakeClient())
	d := f.d

	d.SetApp(view("cart", "a1"))
	d.SetApp(view("cart", "a1"))
	if ps := queued(d); len(ps) != 0 {
		t.Fatalf("prefetched %v on the first view and an unchanged one", ps)
	}
	d.SetApp(view("cart", "a2"))
	want := []prefetch{{namespace: "argocd", name: "cart", src: gitSource(0, "a2")}}
	if ps := queued(d); !reflect.DeepEqual(ps, want) {
		t.Errorf("after a change prefetched %v, want %v", ps, want)
	}

	d.SetApp(view("multi", "m0", "m1", "1.0.0"))
	d.SetApp(view("multi", "m0", "m1b", "2.0.0")) // source 2 is a helm chart
	want = []prefetch{{namespace: "argocd", name: "multi", src: gitSource(1, "m1b")}}
	if ps := queued(d); !reflect.DeepEqual(ps, want) {
		t.Errorf("multi-source change prefetched %v, want %v", ps, want)
	}

	d.DeleteApp("argocd/cart")
	d.SetApp(view("cart", "a3")) // seen anew
	if ps := queued(d); len(ps) != 0 {
		t.Errorf("prefetched %v on the first view after a delete", ps)
	}
}

func TestPrefetchFillsTheCache(t *testing.T) {
	client := newFakeClient()
	client.set("a2", &model.Commit{SHA: "a2", Date: t0.Add(-time.Hour)})
	f := newFixture(t, Config{}, client)
	f.run(t)
	f.d.SetApp(view("cart", "a1"))
	f.d.SetApp(view("cart", "a2"))
	deadline := time.Now().Add(10 * time.Second)
	for f.d.cache.commit(cacheKey{"https://git.example.com/shop.git", "a2"}) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the prefetch did not fill the cache")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.d.Deployment(deployed(deployment("cart", model.DeploymentSucceeded, "t", gitSource(0, "a2"))))
	f.out.waitRecords(t, 1)
	if client.callsFor("a2") != 1 || f.lookups(LookupCached) != 1 || f.lookups(LookupFetched) != 1 {
		t.Errorf("calls = %d, cached = %v, fetched = %v; want 1, 1, 1", client.callsFor("a2"), f.lookups(LookupCached), f.lookups(LookupFetched))
	}
}

func TestRegistersOnRegisterer(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	n, err := testutil.GatherAndCount(f.reg, "crowsnest_commit_metadata_lookups_total", "crowsnest_deployment_notices_dropped_total")
	if err != nil || n != 6 {
		t.Errorf("gathered %d series (%v), want 4 lookup results and the drop counter's 2 reasons", n, err)
	}
	if _, err := New(Config{}, nil, Outputs{}, f.reg, nil); err == nil {
		t.Error("registering twice on one registry did not fail")
	}
}

// A release a person synced after it awaited approval observes its wait,
// with the deployment's trace as exemplar, and says it on its event.
func TestReleaseWaitObserved(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	dep := deployment("web", model.DeploymentSucceeded, "trace-1", gitSource(0, "abc"))
	dep.AwaitedSince = dep.StartedAt.Add(-2 * time.Hour)
	f.d.handle(context.Background(), deployed(dep))
	s, ok := histogram(t, f.reg, "crowsnest_release_wait_seconds", map[string]string{"project": "shop", "env": "prod"})
	if !ok || s.count != 1 || s.sum != 7200 || !slices.Equal(s.exemplars, []string{"trace-1"}) {
		t.Fatalf("release wait %+v (found %v), want one observation of 7200s with exemplar trace-1", s, ok)
	}
	facts, _ := f.out.snapshot()
	if len(facts) != 1 || !slices.Contains(facts[0].Attrs, any("release_wait_seconds")) {
		t.Errorf("facts %+v, want release_wait_seconds on the event", facts)
	}
}

// A deployment whose change cannot be resolved (a hydrated revision's dry
// commit) has no lead time, even with a commit at hand for its revision
// (the hydrator's own, dated at hydration), and its event says why.
func TestLeadTimeUnknownIsSaid(t *testing.T) {
	client := newFakeClient()
	client.set("hyd", &model.Commit{SHA: "hyd", Date: t0.Add(-3 * time.Second)})
	f := newFixture(t, Config{}, client)
	dep := deployment("web", model.DeploymentSucceeded, "trace-1", gitSource(0, "hyd"))
	dep.DrySHA, dep.LeadUnknown = "dry", "the dry commit is in another repository than the one the app syncs from"
	f.d.handle(context.Background(), deployed(dep))
	if _, ok := histogram(t, f.reg, "crowsnest_change_lead_time_seconds", deployedLabels); ok {
		t.Error("lead time observed though its change is unknown")
	}
	facts, _ := f.out.snapshot()
	if len(facts) != 1 || !slices.Contains(facts[0].Attrs, any("lead_time_unknown")) || !slices.Contains(facts[0].Attrs, any("dry")) {
		t.Errorf("facts %+v, want dry_sha and lead_time_unknown", facts)
	}
}
