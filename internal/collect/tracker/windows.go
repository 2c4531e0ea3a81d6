package tracker

import (
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// HandleProject applies one AppProject event: its sync windows decide which
// of its apps a window holds now.
func (t *Tracker) HandleProject(e model.ProjectEvent) {
	if e.Project == nil {
		return
	}
	var out outbox
	t.mu.Lock()
	defer t.unlockAndPublish(&out)
	delete(t.badWindows, e.Project.Name) // judge the new windows afresh
	if e.Type == model.Deleted {
		delete(t.projects, e.Project.Name)
	} else {
		t.projects[e.Project.Name] = e.Project
	}
	for key, st := range t.apps {
		if st.app.Spec.Project == e.Project.Name && t.observeWindow(st) {
			out.views = append(out.views, t.view(key, st))
		}
	}
}

// Tick re-judges the sync windows of every app: they open and close on
// their schedules without any object changing. The tracker's owner calls
// it periodically.
func (t *Tracker) Tick() {
	var out outbox
	t.mu.Lock()
	defer t.unlockAndPublish(&out)
	for key, st := range t.apps {
		if t.observeWindow(st) {
			out.views = append(out.views, t.view(key, st))
		}
	}
}

// observeWindow judges whether a sync window of the app's project denies
// the app's next sync now, as Argo CD would judge it (SyncWindows.CanSync on
// the windows that match the app): an app that auto-syncs by the rule for
// automatic syncs, any other app by the rule for manual ones, which lets a
// person sync through a deny window (or outside an allow window) that has
// manualSync: true. It reports whether that changed.
func (t *Tracker) observeWindow(st *appState) bool {
	held := false
	if p := t.projects[st.app.Spec.Project]; p != nil {
		manual := !model.SyncPolicyOf(&st.app.Spec, t.rollouts.of(st.app.Namespace, st.app.Name)).Enabled
		held = t.heldByWindows(p.Spec.SyncWindows.Matches(st.app), manual, p.Name)
	}
	changed := held != st.held
	st.held = held
	return changed
}

// heldByWindows reports whether windows deny a sync now, a manual one if
// manual. Windows that do not parse hold nothing here (Argo CD rejects such
// a project); they are logged once per version of their project.
func (t *Tracker) heldByWindows(windows *v1alpha1.SyncWindows, manual bool, project string) bool {
	if !windows.HasWindows() {
		return false
	}
	can, err := windows.CanSync(manual, nil)
	if err != nil {
		if !t.badWindows[project] {
			t.badWindows[project] = true
			t.logger.Warn("sync windows of a project do not parse; they hold no app", "project", project, "err", err)
		}
		return false
	}
	return !can
}

// DefaultWindowTick is how often the owner of a tracker that watches
// AppProjects should call Tick: windows are scheduled by the minute.
const DefaultWindowTick = 15 * time.Second
