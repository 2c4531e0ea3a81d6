package source

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// collector is a Sink that keeps what it gets.
type collector struct {
	mu     sync.Mutex
	events []model.Event
}

func (c *collector) Handle(e model.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *collector) get() []model.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]model.Event(nil), c.events...)
}

func replayOf(data string, speed float64) (*ReplaySource, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }
	return NewReplaySource("test.jsonl", open, speed, NewSourceMetrics(reg), promslog.NewNopLogger()), reg
}

func record(t *testing.T, events ...model.Event) string {
	t.Helper()
	var buf bytes.Buffer
	rec := NewRecorder(&buf)
	for _, e := range events {
		rec.Handle(e)
	}
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestRecordThenReplay(t *testing.T) {
	withOp := newApp(func(a *v1alpha1.Application) {
		a.Status.OperationState = &v1alpha1.OperationState{Phase: "Running", StartedAt: metav1.NewTime(t0.Add(time.Second))}
	})
	withOp.ManagedFields = nil
	in := []model.Event{
		{Type: model.Added, Time: t0, App: newApp()},
		{Type: model.Modified, Time: at(time.Second), App: withOp},
		{Type: model.Deleted, Time: at(2 * time.Second), App: newApp()},
	}
	src, reg := replayOf(record(t, in...), 0)
	var got collector
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx, &got) }()
	select {
	case <-src.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("replay did not finish")
	}
	out := got.get()
	if len(out) != len(in) {
		t.Fatalf("replayed %d events, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].Type != in[i].Type || !out[i].Time.Equal(in[i].Time) || out[i].App.Name != in[i].App.Name {
			t.Errorf("event %d: got %s %v %s, want %s %v %s", i, out[i].Type, out[i].Time, out[i].App.Name, in[i].Type, in[i].Time, in[i].App.Name)
		}
	}
	if op := out[1].App.Status.OperationState; op == nil || op.Phase != "Running" || !op.StartedAt.Equal(&withOp.Status.OperationState.StartedAt) {
		t.Errorf("operation state did not survive the round trip: %+v", op)
	}
	if !src.Ready() {
		t.Error("not ready after the whole recording")
	}
	// After the end it keeps serving: Run returns only when told to.
	select {
	case err := <-errc:
		t.Fatalf("Run returned at the end of the recording: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := gathered(t, reg, "crowsnest_source_events_total", "type", "modified"); got != 1 {
		t.Errorf("crowsnest_source_events_total{type=modified} = %v, want 1", got)
	}
}

// gathered returns the value of the series of name in reg whose label
// matches, or fails the test.
func gathered(t *testing.T, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

func TestReplaySkipsBadLines(t *testing.T) {
	good := record(t, model.Event{Type: model.Added, Time: t0, App: newApp()})
	data := "not json\n" + `{"type":"ADDED","time":"2026-11-26T09:00:00Z"}` + "\n" +
		`{"type":"BOOKMARK","time":"2026-11-26T09:00:00Z","object":{}}` + "\n\n" + good
	src, _ := replayOf(data, 0)
	var got collector
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, &got)
	select {
	case <-src.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("replay did not finish")
	}
	if out := got.get(); len(out) != 1 || out[0].App.Name != "web" {
		t.Errorf("replayed %d events, want only the one good line", len(out))
	}
}

// The recorder's first instant is the initial list: ready once it is
// delivered, while later events still wait their turn.
func TestReplayReadyAfterInitialState(t *testing.T) {
	data := record(t,
		model.Event{Type: model.Added, Time: t0, App: newApp()},
		model.Event{Type: model.Added, Time: t0, App: newApp(func(a *v1alpha1.Application) { a.Name = "api" })},
		model.Event{Type: model.Modified, Time: at(time.Hour), App: newApp()},
	)
	src, _ := replayOf(data, 1)
	var got collector
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx, &got); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for !src.Ready() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !src.Ready() {
		t.Fatal("not ready after the initial state")
	}
	if n := len(got.get()); n != 2 {
		t.Errorf("delivered %d events before the hour-long gap, want 2", n)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel while waiting")
	}
}

func TestReplayTimingFollowsSpeed(t *testing.T) {
	data := record(t,
		model.Event{Type: model.Added, Time: t0, App: newApp()},
		model.Event{Type: model.Modified, Time: at(2 * time.Second), App: newApp()},
	)
	src, _ := replayOf(data, 10) // 2 s recorded → 200 ms replayed
	var got collector
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	go src.Run(ctx, &got)
	<-src.Done()
	// A lower bound only: it fails if the gap is not kept at all.
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("replay took %v, want at least the 200 ms gap", el)
	}
}

// A recording is shared: no credentials, no last-applied copy of the spec.
func TestRecorderStripsSecrets(t *testing.T) {
	app := newApp(func(a *v1alpha1.Application) {
		a.Spec.Source.RepoURL = "https://bot:ghp_s3cr3t@git.example.com/deploy.git"
		a.Spec.Sources = v1alpha1.ApplicationSources{{RepoURL: "https://u:pa/ss@charts.example.com/c.git"}}
		a.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"spec":{"source":{"repoURL":"https://bot:ghp_s3cr3t@git.example.com/deploy.git"}}}`, "keep": "me"}
	})
	var buf bytes.Buffer
	rec := NewRecorder(&buf)
	rec.Handle(model.Event{Type: model.Added, Time: t0, App: app})
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"ghp_s3cr3t", "pa/ss", "last-applied"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("recording holds %q: %s", secret, buf.String())
		}
	}
	if !strings.Contains(buf.String(), `"keep":"me"`) || app.Spec.Source.RepoURL != "https://bot:ghp_s3cr3t@git.example.com/deploy.git" {
		t.Error("the recorder dropped other annotations or changed the watched object")
	}
}

// fullCollector is a collector that takes AppProject and workload events
// too.
type fullCollector struct {
	collector
	projects  []model.ProjectEvent
	workloads []model.WorkloadEvent
}

func (c *fullCollector) HandleProject(e model.ProjectEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.projects = append(c.projects, e)
}

func (c *fullCollector) HandleWorkload(e model.WorkloadEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.workloads = append(c.workloads, e)
}

// AppProjects and workloads recorded next to the Applications replay to a
// sink that takes them, in their place in the recording: the project with
// its sync window, the workload with what the tracker reads of it (a hook
// Job's wave).
func TestRecordAndReplayProjectsAndWorkloads(t *testing.T) {
	var buf bytes.Buffer
	rec := NewRecorder(&buf)
	rec.Handle(model.Event{Type: model.Added, Time: t0, App: newApp()})
	rec.HandleProject(model.ProjectEvent{Type: model.Added, Project: &v1alpha1.AppProject{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "argocd"},
		Spec:       v1alpha1.AppProjectSpec{SyncWindows: v1alpha1.SyncWindows{{Kind: "deny", Schedule: "* * * * *", Duration: "1h"}}},
	}})
	job := model.Workload{App: "web", Kind: "Job", Namespace: "shop", Name: "migrate", JobStatus: "Running", SyncWave: -2}
	rec.HandleWorkload(model.WorkloadEvent{Type: model.Added, Time: t0.Add(time.Second), Workload: job})
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	src, _ := replayOf(buf.String(), 0)
	var got fullCollector
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, &got)
	<-src.Done()
	got.mu.Lock()
	defer got.mu.Unlock()
	if len(got.events) != 1 || len(got.projects) != 1 || got.projects[0].Project.Name != "shop" || len(got.projects[0].Project.Spec.SyncWindows) != 1 {
		t.Errorf("replayed %d app and %d project events (%+v), want one each with the window", len(got.events), len(got.projects), got.projects)
	}
	if len(got.workloads) != 1 || !reflect.DeepEqual(got.workloads[0].Workload, job) || !got.workloads[0].Time.Equal(t0.Add(time.Second)) {
		t.Errorf("replayed %d workload events (%+v), want the Job as recorded", len(got.workloads), got.workloads)
	}
}
