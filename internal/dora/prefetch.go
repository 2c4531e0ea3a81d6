package dora

import (
	"slices"

	"github.com/crowsnest/crowsnest/internal/model"
)

// SetApp implements the tracker's view subscriber: when the revision an
// app compares to changes (a new commit is about to be synced), the
// changed sources' commits are queued for prefetching. The first view of
// an app prefetches nothing: at startup that would be one request per
// app, for revisions most of which were deployed long ago.
func (d *Deployments) SetApp(v *model.AppView) {
	if d.client == nil || v == nil || v.App == nil {
		return
	}
	app := v.App
	sources := app.Spec.GetSources()
	revisions := app.Status.Sync.Revisions
	if !app.Spec.HasMultipleSources() {
		revisions = []string{app.Status.Sync.Revision}
	}
	key := v.Key()
	d.mu.Lock()
	st := d.apps[key]
	if st == nil {
		st = &appState{}
		d.apps[key] = st
	}
	first := !st.seen
	st.seen = true
	if slices.Equal(st.revisions, revisions) {
		d.mu.Unlock()
		return
	}
	previous := st.revisions
	st.revisions = slices.Clone(revisions)
	d.mu.Unlock()
	if first {
		return
	}
	for i := range min(len(sources), len(revisions)) {
		if revisions[i] == "" || (i < len(previous) && previous[i] == revisions[i]) {
			continue
		}
		src := model.DeploymentSource{Index: i, RepoURL: sources[i].RepoURL, Chart: sources[i].Chart, Revision: revisions[i]}
		if sourceKind(src) == kindHelm {
			continue
		}
		select {
		case d.prefetches <- prefetch{namespace: app.Namespace, name: app.Name, src: src}:
		default: // fetched when deployed instead
		}
	}
}

// DeleteApp implements the tracker's view subscriber: it forgets the app.
func (d *Deployments) DeleteApp(key string) {
	d.mu.Lock()
	delete(d.apps, key)
	d.mu.Unlock()
}
