package tracker

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/model"
)

// parseStore returns the store's exposition parsed by the Prometheus text
// parser, which also checks that it is well-formed.
func parseStore(t *testing.T, s *exposition.Store) map[string]*dto.MetricFamily {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(pmodel.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return mfs
}

// value returns the value of the series of metric with the given labels
// (a subset match), and whether it exists.
func value(t *testing.T, s *exposition.Store, metric string, labels ...string) (float64, bool) {
	t.Helper()
	mfs := parseStore(t, s)
	found, v := 0, 0.0
	for _, m := range mfs[metric].GetMetric() {
		if labelsMatch(m, labels) {
			found++
			v = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if found > 1 {
		t.Fatalf("%s%v matches %d series", metric, labels, found)
	}
	return v, found == 1
}

// syncsOf returns the count of web's operations that finished with result,
// from the last view of it handed on.
func syncsOf(t *testing.T, views *viewsSeen, result string) float64 {
	t.Helper()
	v := views.last("web")
	if v == nil {
		t.Fatal("no view of web")
	}
	return float64(v.Syncs[model.ResultIndex(result)])
}

// syncs returns crowsnest_app_syncs_total of web for result in the store.
func syncs(t *testing.T, s *exposition.Store, result string) float64 {
	t.Helper()
	v, ok := value(t, s, "crowsnest_app_syncs_total", "name", "web", "result", result)
	if !ok {
		t.Fatalf("no syncs_total series for result %s", result)
	}
	return v
}

// operation sets the app's operation state.
func operation(phase synccommon.OperationPhase, started time.Time, finished *time.Time) func(*v1alpha1.Application) {
	return func(a *v1alpha1.Application) {
		a.Status.OperationState = &v1alpha1.OperationState{Phase: phase, StartedAt: metav1.NewTime(started)}
		if finished != nil {
			a.Status.OperationState.FinishedAt = mtime(*finished)
		}
	}
}

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr(t time.Time) *time.Time { return &t }

func history(startFinish ...time.Time) func(*v1alpha1.Application) {
	return func(a *v1alpha1.Application) {
		a.Status.History = nil
		for i := 0; i+1 < len(startFinish); i += 2 {
			a.Status.History = append(a.Status.History, v1alpha1.RevisionHistory{
				ID: int64(i / 2), DeployStartedAt: mtime(startFinish[i]), DeployedAt: metav1.NewTime(startFinish[i+1]),
			})
		}
	}
}

func TestOperationCountedOnceAcrossResyncsAndRelists(t *testing.T) {
	tr, views := newViewTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp()})
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Second), App: newApp(operation(synccommon.OperationRunning, at(time.Second), nil))})
	done := newApp(operation(synccommon.OperationSucceeded, at(time.Second), ptr(at(30*time.Second))), history(at(time.Second), at(30*time.Second)))
	for i := 0; i < 3; i++ { // the informer re-delivers the same object after a relist
		tr.Handle(model.Event{Type: model.Modified, Time: at(time.Minute), App: done})
	}
	// A relist delivers it as an add again after an API server outage.
	tr.Handle(model.Event{Type: model.Added, Time: at(2 * time.Minute), App: done.DeepCopy()})
	if got := syncsOf(t, views, "Succeeded"); got != 1 {
		t.Errorf("syncs_total{Succeeded} = %v, want 1", got)
	}
	if got := syncsOf(t, views, "Failed"); got != 0 {
		t.Errorf("syncs_total{Failed} = %v, want 0", got)
	}
}

func TestOperationsFinishedBeforeStartAreBaseline(t *testing.T) {
	tr, views := newViewTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(
		operation(synccommon.OperationFailed, at(-time.Hour), ptr(at(-59*time.Minute))),
		history(at(-2*time.Hour), at(-2*time.Hour+time.Minute)),
	)})
	if got := syncsOf(t, views, "Failed") + syncsOf(t, views, "Succeeded"); got != 0 {
		t.Fatalf("operations finished before crowsnest started were counted: %v", got)
	}
	// The next operation is new: counted, though crowsnest never saw it running.
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Minute), App: newApp(
		operation(synccommon.OperationError, at(10*time.Second), ptr(at(20*time.Second))),
		history(at(-2*time.Hour), at(-2*time.Hour+time.Minute)),
	)})
	if got := syncsOf(t, views, "Error"); got != 1 {
		t.Errorf("syncs_total{Error} = %v, want 1", got)
	}
}

// An operation seen running is counted when it finishes even if its
// finishedAt, in whole seconds, precedes the first event.
func TestOperationSeenRunningIsCounted(t *testing.T) {
	tr, views := newViewTracker()
	start := t0.Add(500 * time.Millisecond)
	tr.Handle(model.Event{Type: model.Added, Time: start, App: newApp(operation(synccommon.OperationRunning, at(-time.Minute), nil))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Second), App: newApp(operation(synccommon.OperationFailed, at(-time.Minute), ptr(at(-time.Second))))})
	if got := syncsOf(t, views, "Failed"); got != 1 {
		t.Errorf("syncs_total{Failed} = %v, want 1", got)
	}
}

// Two syncs while the watch was down: the first is visible only in the
// history, the second in the operation state. Both count, once.
func TestMissedSuccessfulSyncRecoveredFromHistory(t *testing.T) {
	tr, views := newViewTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp()})
	after := newApp(
		operation(synccommon.OperationFailed, at(3*time.Minute), ptr(at(4*time.Minute))),
		history(at(time.Minute), at(2*time.Minute)),
	)
	tr.Handle(model.Event{Type: model.Modified, Time: at(5 * time.Minute), App: after})
	tr.Handle(model.Event{Type: model.Modified, Time: at(6 * time.Minute), App: after})
	if got := syncsOf(t, views, "Succeeded"); got != 1 {
		t.Errorf("syncs_total{Succeeded} = %v, want 1", got)
	}
	if got := syncsOf(t, views, "Failed"); got != 1 {
		t.Errorf("syncs_total{Failed} = %v, want 1", got)
	}
}

// Argo CD writes the history entry before it marks the operation Succeeded;
// seeing both must count one sync.
func TestHistoryBeforeOperationStateCountsOnce(t *testing.T) {
	tr, views := newViewTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(operation(synccommon.OperationRunning, at(time.Second), nil))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(20 * time.Second), App: newApp(
		operation(synccommon.OperationRunning, at(time.Second), nil), history(at(time.Second), at(19*time.Second)))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(21 * time.Second), App: newApp(
		operation(synccommon.OperationSucceeded, at(time.Second), ptr(at(20*time.Second))), history(at(time.Second), at(19*time.Second)))})
	if got := syncsOf(t, views, "Succeeded"); got != 1 {
		t.Errorf("syncs_total{Succeeded} = %v, want 1", got)
	}
}

func TestSeenOperationsStayBounded(t *testing.T) {
	tr, views := newViewTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp()})
	const n = 200
	for i := 1; i <= n; i++ {
		start := at(time.Duration(i) * time.Minute)
		var hist []time.Time
		for j := max(1, i-9); j <= i; j++ { // Argo CD keeps 10 history entries
			hist = append(hist, at(time.Duration(j)*time.Minute), at(time.Duration(j)*time.Minute+30*time.Second))
		}
		tr.Handle(model.Event{Type: model.Modified, Time: start.Add(time.Minute), App: newApp(
			operation(synccommon.OperationSucceeded, start, ptr(start.Add(30*time.Second))), history(hist...))})
	}
	if got := syncsOf(t, views, "Succeeded"); got != n {
		t.Errorf("syncs_total{Succeeded} = %v, want %d", got, n)
	}
	if got := len(tr.apps["argocd/web"].seen); got > 10 {
		t.Errorf("tracker remembers %d operations, want at most the 10 still visible", got)
	}
}

func TestRecreatedAppStartsAfresh(t *testing.T) {
	tr, views := newViewTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp()})
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Minute), App: newApp(operation(synccommon.OperationFailed, at(10*time.Second), ptr(at(20*time.Second))))})
	if got := syncsOf(t, views, "Failed"); got != 1 {
		t.Fatalf("syncs_total{Failed} = %v, want 1", got)
	}
	// model.Deleted and re-created under the same name while the watch was down:
	// the relist shows a new UID.
	again := newApp(func(a *v1alpha1.Application) { a.UID = "uid-web-2" })
	tr.Handle(model.Event{Type: model.Modified, Time: at(2 * time.Minute), App: again})
	if got := syncsOf(t, views, "Failed"); got != 0 {
		t.Errorf("syncs_total{Failed} of the new app = %v, want 0", got)
	}
}

// A deleted app is handed on as deleted, once, and the other app stays
// (the exposition's TestDeleteAppDropsItsSeries drops its series).
func TestDeletedAppIsHandedOn(t *testing.T) {
	tr, views := newViewTracker()
	keep := newApp(func(a *v1alpha1.Application) { a.Name, a.UID = "api", "uid-api" })
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp()})
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: keep})
	before := len(views.all())
	tr.Handle(model.Event{Type: model.Deleted, Time: at(time.Second), App: newApp()})
	if got := views.deleted.all(); len(got) != 1 || got[0] != "argocd/web" {
		t.Fatalf("deleted %v, want [argocd/web]", got)
	}
	if n := len(views.all()); n != before {
		t.Errorf("%d views handed on with the delete", n-before)
	}
	if views.last("api") == nil {
		t.Error("no view of the other app")
	}
}

// The drift clock starts when the app turns OutOfSync and stops when it is
// Synced again; Unknown (a failed comparison) keeps it (the exposition
// shows it only while OutOfSync: TestAppDriftSinceTimestampSeconds).
func TestDriftSince(t *testing.T) {
	tr, views := newViewTracker()
	withSync := func(status v1alpha1.SyncStatusCode) *v1alpha1.Application {
		return newApp(func(a *v1alpha1.Application) { a.Status.Sync.Status = status })
	}
	steps := []struct {
		at     time.Duration
		status v1alpha1.SyncStatusCode
		want   time.Duration // -1: none
	}{
		{0, v1alpha1.SyncStatusCodeSynced, -1},
		{time.Minute, v1alpha1.SyncStatusCodeOutOfSync, time.Minute},
		{2 * time.Minute, v1alpha1.SyncStatusCodeOutOfSync, time.Minute},
		{3 * time.Minute, v1alpha1.SyncStatusCodeUnknown, time.Minute}, // not exposed, but remembered
		{4 * time.Minute, v1alpha1.SyncStatusCodeOutOfSync, time.Minute},
		{5 * time.Minute, v1alpha1.SyncStatusCodeSynced, -1},
		{6 * time.Minute, v1alpha1.SyncStatusCodeOutOfSync, 6 * time.Minute},
	}
	for _, st := range steps {
		tr.Handle(model.Event{Type: model.Modified, Time: at(st.at), App: withSync(st.status)})
		v := views.last("web")
		if v == nil || v.App.Status.Sync.Status != st.status {
			t.Fatalf("at +%v: no view of web %s", st.at, st.status)
		}
		want := time.Time{}
		if st.want >= 0 {
			want = at(st.want)
		}
		if !v.DriftSince.Equal(want) {
			t.Errorf("at +%v (%s): drift since %v, want %v", st.at, st.status, v.DriftSince, want)
		}
	}
}

func TestSetClassifierRerendersEveryApp(t *testing.T) {
	tr, views := newViewTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp()})
	if v := views.last("web"); v == nil || v.Env != "unknown" {
		t.Fatal("app not in env unknown before the reload")
	}
	n := len(views.all())
	tr.SetClassifier(constEnv("prod"))
	if v := views.last("web"); len(views.all()) != n+1 || v.Env != "prod" {
		t.Error("app not handed on in env prod after the reload")
	}
}

type constEnv string

func (c constEnv) Env(*v1alpha1.Application) string { return string(c) }

// histogram returns the sample count and sum of the series of name in reg
// whose labels include the given pairs.
func histogram(t *testing.T, reg *prometheus.Registry, name string, labels ...string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			count += m.GetHistogram().GetSampleCount()
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return count, sum
}

func TestSyncDurationsObservedOncePerCountedOperation(t *testing.T) {
	tr, s, reg := newTrackerWithRegistry(true)
	// A baseline operation is not observed.
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(
		func(a *v1alpha1.Application) { a.Labels = map[string]string{"env": "prod"} },
		operation(synccommon.OperationSucceeded, at(-time.Hour), ptr(at(-time.Hour+time.Minute))))})
	if n, _ := histogram(t, reg, "crowsnest_sync_duration_seconds"); n != 0 {
		t.Fatalf("baseline operation observed: count %d", n)
	}
	// One that failed after 42 s, seen three times, is observed once.
	failed := newApp(
		func(a *v1alpha1.Application) { a.Labels = map[string]string{"env": "prod"} },
		operation(synccommon.OperationFailed, at(time.Minute), ptr(at(time.Minute+42*time.Second))))
	for i := 0; i < 3; i++ {
		tr.Handle(model.Event{Type: model.Modified, Time: at(2 * time.Minute), App: failed})
	}
	n, sum := histogram(t, reg, "crowsnest_sync_duration_seconds", "project", "shop", "env", "prod", "result", "Failed")
	if n != 1 || sum != 42 {
		t.Errorf("crowsnest_sync_duration_seconds{Failed}: count %d sum %v, want 1 and 42", n, sum)
	}
	if n, sum := storeHistogram(t, s, "crowsnest_app_sync_duration_seconds", "name", "web", "env", "prod", "result", "Failed"); n != 1 || sum != 42 {
		t.Errorf("per-app histogram count %d sum %v, want 1 and 42", n, sum)
	}
	// A reload that moves the app to another env moves its histogram.
	tr.SetClassifier(constEnv("stage"))
	if n, _ := storeHistogram(t, s, "crowsnest_app_sync_duration_seconds", "name", "web", "env", "stage", "result", "Failed"); n != 1 {
		t.Errorf("per-app histogram under the new env: count %d, want 1", n)
	}
	if n, _ := storeHistogram(t, s, "crowsnest_app_sync_duration_seconds", "name", "web", "env", "prod"); n != 0 {
		t.Errorf("per-app histogram still has %d samples under the old env", n)
	}
	if v, _ := value(t, s, "crowsnest_app_last_sync_duration_seconds", "name", "web"); v != 42 {
		t.Errorf("crowsnest_app_last_sync_duration_seconds = %v, want 42", v)
	}
	// The per-app histogram goes with the app; the aggregate stays.
	tr.Handle(model.Event{Type: model.Deleted, Time: at(3 * time.Minute), App: failed})
	if n, _ := storeHistogram(t, s, "crowsnest_app_sync_duration_seconds", "name", "web"); n != 0 {
		t.Errorf("per-app histogram of a deleted app still has %d samples", n)
	}
	if n, _ := histogram(t, reg, "crowsnest_sync_duration_seconds"); n != 1 {
		t.Errorf("aggregate histogram count %d after the delete, want 1", n)
	}
}

// Each fact reaches the fact subscribers once, in order, with the app's
// identity; syncs carry the trace id, and sync_finished its result and
// duration. (Each becomes one structured log line in the daemon's fact
// logger, which writes these fields.)
func TestFactsAreHandedOn(t *testing.T) {
	facts := &factRecorder{}
	tr := New(envByLabel{}, Subscribers{Facts: []FactSubscriber{facts}}, promslog.NewNopLogger())
	healthy := func(a *v1alpha1.Application) { a.Status.Health.Status = "Healthy" }
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(healthy)})
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Second), App: newApp(healthy, operation(synccommon.OperationRunning, at(time.Second), nil))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(2 * time.Second), App: newApp(healthy, operation(synccommon.OperationRunning, at(time.Second), nil))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(9 * time.Second), App: newApp(operation(synccommon.OperationFailed, at(time.Second), ptr(at(8*time.Second))),
		func(a *v1alpha1.Application) { a.Status.Sync.Status, a.Status.Health.Status = "OutOfSync", "Degraded" })})
	tr.Handle(model.Event{Type: model.Modified, Time: at(20 * time.Second), App: newApp(operation(synccommon.OperationFailed, at(time.Second), ptr(at(8*time.Second))),
		func(a *v1alpha1.Application) { a.Status.Sync.Status, a.Status.Health.Status = "Synced", "Degraded" })})

	events := facts.all()
	want := []string{"sync_started", "drift_began", "health_changed", "sync_finished", "drift_ended"}
	var got []string
	for _, e := range events {
		got = append(got, e.Name)
		if e.App != "argocd/web" || e.Project != "shop" || e.Env != "unknown" {
			t.Errorf("fact %+v lacks the app's identity", *e)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("facts %v, want %v (each once, in order)", got, want)
	}
	id := model.OperationID("uid-web", at(time.Second))
	for _, e := range events {
		if strings.HasPrefix(e.Name, "sync_") && e.TraceID != id {
			t.Errorf("%s has trace_id %v, want %s", e.Name, e.TraceID, id)
		}
	}
	attrs := map[string]any{}
	for i := 0; i+1 < len(events[3].Attrs); i += 2 {
		attrs[fmt.Sprint(events[3].Attrs[i])] = events[3].Attrs[i+1]
	}
	if attrs["result"] != "Failed" || attrs["duration_seconds"] != 7.0 {
		t.Errorf("sync_finished attrs %v, want result Failed after 7 s", events[3].Attrs)
	}
}

// labelsMatch reports whether m has every label name/value pair of labels.
func labelsMatch(m *dto.Metric, labels []string) bool {
	have := map[string]string{}
	for _, lp := range m.GetLabel() {
		have[lp.GetName()] = lp.GetValue()
	}
	for i := 0; i+1 < len(labels); i += 2 {
		if have[labels[i]] != labels[i+1] {
			return false
		}
	}
	return true
}
