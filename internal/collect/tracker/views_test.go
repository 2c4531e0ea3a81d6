package tracker

import (
	"reflect"
	"testing"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/collect/collecttest"
	"github.com/crowsnest/crowsnest/internal/model"
)

// decided is what the tracker decided in v: the view without its
// Application, empty lists as nil.
func decided(v *model.AppView) model.AppView {
	d := *v
	d.App = nil
	if len(d.LastWaves) == 0 {
		d.LastWaves = nil
	}
	if len(d.Policies) == 0 {
		d.Policies = nil
	}
	if len(d.Workloads) == 0 {
		d.Workloads = nil
	}
	return d
}

// checkView compares the view the tracker handed on with want, and its
// Application with the one handled.
func checkView(t *testing.T, got *model.AppView, app *v1alpha1.Application, want *model.AppView) {
	t.Helper()
	if got == nil {
		t.Fatal("no view handed on")
	}
	if !reflect.DeepEqual(got.App, app) {
		t.Errorf("the view's Application is not the one handled:\n got %+v\nwant %+v", got.App, app)
	}
	if g, w := decided(got), decided(want); !reflect.DeepEqual(g, w) {
		t.Errorf("view differs\n got: %+v\n  last finished %+v, progress %+v\nwant: %+v\n  last finished %+v, progress %+v",
			g, g.LastFinished, g.Progress, w, w.LastFinished, w.Progress)
	}
}

// TestFamilyViews feeds one Application to a fresh tracker and checks the
// view it hands on, whole: collecttest.FamilyCases, whose views the
// exposition's family tests render.
func TestFamilyViews(t *testing.T) {
	for _, tc := range collecttest.FamilyCases(t0) {
		t.Run(tc.Name, func(t *testing.T) {
			tr, views := newViewTracker()
			tr.Handle(model.Event{Type: model.Added, Time: t0, App: tc.View.App})
			if n := len(views.all()); n != 1 {
				t.Errorf("%d views handed on, want 1", n)
			}
			checkView(t, views.last("web"), tc.View.App, tc.View)
		})
	}
}

// Policies of the app's env: prod syncs by hand and pins images by digest,
// dev auto-syncs with self-heal and prune. The view carries each policy
// checked, and the auto-sync policy crowsnest_app_info shows (the
// exposition's TestPolicyViolations renders both).
func TestPolicyViolations(t *testing.T) {
	tr, views := newViewTracker()
	prod := newApp(func(a *v1alpha1.Application) {
		a.Name, a.UID, a.Labels = "prod-api", "uid-prod", map[string]string{"env": "prod"}
		a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{}}
		a.Status.Summary.Images = []string{"registry/api@sha256:0123", "registry/sidecar:1.2"}
	})
	dev := newApp(func(a *v1alpha1.Application) {
		a.Name, a.UID, a.Labels = "dev-api", "uid-dev", map[string]string{"env": "dev"}
		a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{SelfHeal: new(true)}}
	})
	// Argo CD v3.1+: automated.enabled: false keeps the block but turns
	// auto-sync off, self-heal and prune with it.
	paused := newApp(func(a *v1alpha1.Application) {
		a.Name, a.UID, a.Labels = "prod-paused", "uid-paused", map[string]string{"env": "prod"}
		a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{Enabled: new(false), SelfHeal: new(true), Prune: new(true)}}
	})
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: prod})
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: dev})
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: paused})
	for _, c := range []struct {
		app      *v1alpha1.Application
		policies []model.PolicyResult // prod has no prune policy: no result for it
		auto     model.AutoSyncPolicy
	}{
		{prod, []model.PolicyResult{{Policy: "auto_sync", Violated: true}, {Policy: "images_by_digest", Violated: true}}, model.AutoSyncPolicy{Enabled: true}},
		{paused, []model.PolicyResult{{Policy: "auto_sync"}, {Policy: "images_by_digest"}}, model.AutoSyncPolicy{}},
		{dev, []model.PolicyResult{{Policy: "auto_sync"}, {Policy: "self_heal"}, {Policy: "prune", Violated: true}}, model.AutoSyncPolicy{Enabled: true, SelfHeal: true}},
	} {
		v := views.last(c.app.Name)
		if v == nil {
			t.Fatalf("no view of %s", c.app.Name)
		}
		if !reflect.DeepEqual(v.Policies, c.policies) {
			t.Errorf("%s: policies %+v, want %+v", c.app.Name, v.Policies, c.policies)
		}
		if got := v.AutoSync(); got != c.auto {
			t.Errorf("%s: auto-sync %+v, want %+v", c.app.Name, got, c.auto)
		}
	}
}
