package tracker

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// project returns the AppProject "shop" with the given sync windows.
func project(windows ...*v1alpha1.InlineSyncWindow) *v1alpha1.AppProject {
	return &v1alpha1.AppProject{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "argocd"}, Spec: v1alpha1.AppProjectSpec{SyncWindows: windows}}
}

// Always open for an hour from every minute: active whenever the test runs.
func window(kind string, namespaces ...string) *v1alpha1.InlineSyncWindow {
	return &v1alpha1.InlineSyncWindow{Kind: kind, Schedule: "* * * * *", Duration: "1h", Namespaces: namespaces}
}

// A deny window of the app's project holds it; an allow window, a window
// for other namespaces, or none does not; the hold follows the project.
func TestSyncWindowHolds(t *testing.T) {
	tr, views := newViewTracker()
	held := func() bool {
		t.Helper()
		v := views.last("web")
		if v == nil {
			t.Fatal("no view of web")
		}
		return v.HeldByWindow
	}
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp()})
	if held() {
		t.Fatal("held without any project")
	}
	for _, c := range []struct {
		desc string
		p    *v1alpha1.AppProject
		want bool
	}{
		{"deny window on the app's namespace", project(window("deny", "web")), true},
		{"deny window on other namespaces", project(window("deny", "other-*")), false},
		{"allow window open now", project(window("allow", "web")), false},
		{"deny and allow both open", project(window("deny", "w*"), window("allow", "web")), true},
		{"no windows", project(), false},
	} {
		tr.HandleProject(model.ProjectEvent{Type: model.Modified, Project: c.p})
		if got := held(); got != c.want {
			t.Errorf("%s: held %v, want %v", c.desc, got, c.want)
		}
	}
	tr.HandleProject(model.ProjectEvent{Type: model.Modified, Project: project(window("deny", "web"))})
	tr.HandleProject(model.ProjectEvent{Type: model.Deleted, Project: project()})
	if held() {
		t.Error("still held after the project was deleted")
	}
	// An app that arrives in a project with a deny window is held at once.
	tr.HandleProject(model.ProjectEvent{Type: model.Added, Project: project(window("deny", "*"))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Second), App: newApp()})
	tr.Tick()
	if !held() {
		t.Error("not held by a deny window on every namespace")
	}
}

// An app is held as Argo CD would judge its next sync: one without
// auto-sync by the rule for manual syncs, which a window with manualSync:
// true lets through; one with auto-sync by the rule for automatic syncs,
// which no window lets through. Turning auto-sync on or off re-judges it.
func TestSyncWindowHoldsTheAppsNextSync(t *testing.T) {
	manualOK := func(w *v1alpha1.InlineSyncWindow) *v1alpha1.InlineSyncWindow {
		w.ManualSync = true
		return w
	}
	// closedAllow is an allow window open for one minute every hour, half
	// an hour from now: closed, exactly, in the test's synctest bubble,
	// whose clock stands still (Argo CD judges windows by time.Now).
	closedAllow := func() *v1alpha1.InlineSyncWindow {
		w := window("allow", "web")
		w.Schedule, w.Duration = fmt.Sprintf("%d * * * *", (time.Now().Minute()+30)%60), "1m"
		return w
	}
	deny := func() *v1alpha1.InlineSyncWindow { return window("deny", "web") }
	autoSync := func(a *v1alpha1.Application) {
		a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{}}
	}
	for _, c := range []struct {
		desc   string
		window func() *v1alpha1.InlineSyncWindow
		manual bool // the window has manualSync: true
		auto   bool
		want   bool
	}{
		{"manual app, deny window", deny, false, false, true},
		{"manual app, deny window with manualSync", deny, true, false, false},
		{"auto-sync app, deny window with manualSync", deny, true, true, true},
		{"manual app, outside an allow window", closedAllow, false, false, true},
		{"manual app, outside an allow window with manualSync", closedAllow, true, false, false},
		{"auto-sync app, outside an allow window with manualSync", closedAllow, true, true, true},
	} {
		t.Run(c.desc, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := c.window()
				if c.manual {
					w = manualOK(w)
				}
				tr, views := newViewTracker()
				tr.HandleProject(model.ProjectEvent{Type: model.Added, Project: project(w)})
				app := newApp()
				if c.auto {
					app = newApp(autoSync)
				}
				tr.Handle(model.Event{Type: model.Added, Time: t0, App: app})
				if v := views.last("web"); v == nil || v.HeldByWindow != c.want {
					t.Errorf("held %v, want %v", v != nil && v.HeldByWindow, c.want)
				}
				// Auto-sync flipped: the other rule judges it.
				flipped := newApp(autoSync)
				if c.auto {
					flipped = newApp()
				}
				tr.Handle(model.Event{Type: model.Modified, Time: at(time.Second), App: flipped})
				manualRule := c.want
				if c.manual {
					manualRule = !c.want
				}
				if v := views.last("web"); v == nil || v.HeldByWindow != manualRule {
					t.Errorf("auto-sync %v: held %v, want %v", !c.auto, v != nil && v.HeldByWindow, manualRule)
				}
			})
		})
	}
}
