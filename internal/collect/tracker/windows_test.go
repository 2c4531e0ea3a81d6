package tracker

import (
	"fmt"
	"testing"
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
	tr, s := newTestTracker()
	held := func() float64 {
		t.Helper()
		v, ok := value(t, s, "crowsnest_app_sync_window_held", "name", "web")
		if !ok {
			t.Fatal("no crowsnest_app_sync_window_held series")
		}
		return v
	}
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp()})
	if held() != 0 {
		t.Fatal("held without any project")
	}
	for _, c := range []struct {
		desc string
		p    *v1alpha1.AppProject
		want float64
	}{
		{"deny window on the app's namespace", project(window("deny", "web")), 1},
		{"deny window on other namespaces", project(window("deny", "other-*")), 0},
		{"allow window open now", project(window("allow", "web")), 0},
		{"deny and allow both open", project(window("deny", "w*"), window("allow", "web")), 1},
		{"no windows", project(), 0},
	} {
		tr.HandleProject(model.ProjectEvent{Type: model.Modified, Project: c.p})
		if got := held(); got != c.want {
			t.Errorf("%s: held %v, want %v", c.desc, got, c.want)
		}
	}
	tr.HandleProject(model.ProjectEvent{Type: model.Modified, Project: project(window("deny", "web"))})
	tr.HandleProject(model.ProjectEvent{Type: model.Deleted, Project: project()})
	if held() != 0 {
		t.Error("still held after the project was deleted")
	}
	// An app that arrives in a project with a deny window is held at once.
	tr.HandleProject(model.ProjectEvent{Type: model.Added, Project: project(window("deny", "*"))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Second), App: newApp()})
	tr.Tick()
	if held() != 1 {
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
	closedAllow := func() *v1alpha1.InlineSyncWindow {
		// An allow window open for one minute every hour, half an hour
		// from now: closed while the test runs.
		w := window("allow", "web")
		w.Schedule, w.Duration = fmt.Sprintf("%d * * * *", (time.Now().Minute()+30)%60), "1m"
		return w
	}
	autoSync := func(a *v1alpha1.Application) {
		a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{}}
	}
	for _, c := range []struct {
		desc   string
		window *v1alpha1.InlineSyncWindow
		auto   bool
		want   float64
	}{
		{"manual app, deny window", window("deny", "web"), false, 1},
		{"manual app, deny window with manualSync", manualOK(window("deny", "web")), false, 0},
		{"auto-sync app, deny window with manualSync", manualOK(window("deny", "web")), true, 1},
		{"manual app, outside an allow window", closedAllow(), false, 1},
		{"manual app, outside an allow window with manualSync", manualOK(closedAllow()), false, 0},
		{"auto-sync app, outside an allow window with manualSync", manualOK(closedAllow()), true, 1},
	} {
		t.Run(c.desc, func(t *testing.T) {
			tr, s := newTestTracker()
			tr.HandleProject(model.ProjectEvent{Type: model.Added, Project: project(c.window)})
			app := newApp()
			if c.auto {
				app = newApp(autoSync)
			}
			tr.Handle(model.Event{Type: model.Added, Time: t0, App: app})
			if v, _ := value(t, s, "crowsnest_app_sync_window_held", "name", "web"); v != c.want {
				t.Errorf("held %v, want %v", v, c.want)
			}
			// Auto-sync flipped: the other rule judges it.
			flipped := newApp(autoSync)
			if c.auto {
				flipped = newApp()
			}
			tr.Handle(model.Event{Type: model.Modified, Time: at(time.Second), App: flipped})
			manualRule := c.want
			if c.window.ManualSync {
				manualRule = 1 - c.want
			}
			if v, _ := value(t, s, "crowsnest_app_sync_window_held", "name", "web"); v != manualRule {
				t.Errorf("auto-sync %v: held %v, want %v", !c.auto, v, manualRule)
			}
		})
	}
}
