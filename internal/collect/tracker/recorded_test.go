package tracker

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/collect/source"
	"github.com/crowsnest/crowsnest/internal/model"
)

// replayFile (pipeline test: tracker and exposition together, on purpose)
// feeds a recording through a fresh tracker, as fast as it can,
// and returns the store, the registry of its histograms, the last snapshot
// of every app still present, and the times of the first and last events.
// setup runs on the tracker before the first event.
func replayFile(t *testing.T, path string, ops OperationSubscriber, setup ...func(*Tracker)) (*exposition.Store, *prometheus.Registry, map[string]*v1alpha1.Application, time.Time, time.Time) {
	t.Helper()
	tr, store, reg := newTrackerWithRegistry(false)
	// As the daemon replays: the recording's workloads are those of the
	// one cluster it was recorded in (its apps deploy to that API
	// server's URL).
	tr.SetClusters(Clusters{AnyLocal: true})
	if ops != nil {
		tr.addOperationSubscriber(ops)
	}
	for _, f := range setup {
		f(tr)
	}
	open := func() (io.ReadCloser, error) { return os.Open(path) }
	src := source.NewReplaySource(path, open, 0, source.NewSourceMetrics(prometheus.NewRegistry()), promslog.NewNopLogger())
	apps := map[string]*v1alpha1.Application{}
	var first, last time.Time
	sink := &recordedSink{tr: tr, handle: func(e model.Event) {
		if first.IsZero() {
			first = e.Time
		}
		last = e.Time
		if e.Type == model.Deleted {
			delete(apps, e.App.Name)
		} else {
			apps[e.App.Name] = e.App
		}
		tr.Handle(e)
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, sink)
	select {
	case <-src.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("replay of %s did not finish", path)
	}
	return store, reg, apps, first, last
}

// recordingVersions are the Argo CD lines whose recordings the tests
// replay, each a directory of test/e2e/testdata: v3.6, what the e2e records
// now, and v2.14, kept as a regression input (its controller merged each
// operation state into the one before, leaving the last operation's fields
// in the next: see docs/design.md).
func recordingVersions() []string { return []string{"v2.14", "v3.6"} }

// recordingPath is the path of a recording of an Argo CD version.
func recordingPath(version, file string) string {
	return filepath.Join("..", "..", "..", "test", "e2e", "testdata", version, file)
}

// completedInRecording reads, per app, the operations a recording shows
// completed after its first event, from Argo CD's operation states alone:
// the starts (Unix seconds) of the successful syncs, and the number of
// failed ones (Failed or Error), each told apart by its start. It is the
// test's own reading, independent of the tracker's.
func completedInRecording(t *testing.T, path string) (succeeded map[string]map[int64]bool, failed map[string]float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	succeeded, failed = map[string]map[int64]bool{}, map[string]float64{}
	seenFailed := map[string]map[int64]bool{}
	var since time.Time
	dec := json.NewDecoder(f)
	for dec.More() {
		var e model.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if since.IsZero() {
			since = e.Time
		}
		if e.App == nil {
			continue
		}
		op := e.App.Status.OperationState
		if op == nil || !op.Phase.Completed() || op.StartedAt.Unix() < since.Unix() || op.Operation.Sync == nil || op.Operation.Sync.DryRun {
			continue
		}
		name, start := e.App.Name, op.StartedAt.Unix()
		if op.Phase.Successful() {
			if succeeded[name] == nil {
				succeeded[name] = map[int64]bool{}
			}
			succeeded[name][start] = true
		} else if !seenFailed[name][start] {
			if seenFailed[name] == nil {
				seenFailed[name] = map[int64]bool{}
			}
			seenFailed[name][start] = true
			failed[name]++
		}
	}
	return succeeded, failed
}

// recordedSink takes a recording's Application events (handle), and its
// AppProject and workload events to the tracker, as the daemon does.
type recordedSink struct {
	tr     *Tracker
	handle func(model.Event)
}

func (s *recordedSink) Handle(e model.Event)                 { s.handle(e) }
func (s *recordedSink) HandleProject(e model.ProjectEvent)   { s.tr.HandleProject(e) }
func (s *recordedSink) HandleWorkload(e model.WorkloadEvent) { s.tr.HandleWorkload(e) }

// TestRecordedArgoCDRuns replays what a real Argo CD wrote during the e2e
// scenarios and checks crowsnest's counts against Argo CD's own record:
// every successful full sync is in an app's history.
func TestRecordedArgoCDRuns(t *testing.T) {
	for _, version := range recordingVersions() {
		for _, tc := range []struct {
			file      string
			outOfSync []string
		}{
			{file: "argocd-scenarios-1-3.jsonl", outOfSync: []string{"prod-backend"}},
			{file: "argocd-scenario-4-outage.jsonl"},
		} {
			t.Run(version+"/"+tc.file, func(t *testing.T) { checkRecordedRun(t, recordingPath(version, tc.file), tc.outOfSync) })
		}
	}
}

// checkRecordedRun replays one recording and checks the counts against
// Argo CD's: every successful full sync is in the app's history; the
// selective syncs are the successful operation states whose start no
// history entry has; the failed ones are in the operation states.
func checkRecordedRun(t *testing.T, path string, outOfSync []string) {
	succeeded, failed := completedInRecording(t, path)
	store, reg, apps, since, end := replayFile(t, path, nil)
	counted := 0.0
	if len(apps) < 9 {
		t.Fatalf("recording has %d apps, want the fixture's 9", len(apps))
	}
	for name, app := range apps {
		want := 0.0
		inHistory := map[int64]bool{}
		for _, h := range app.Status.History {
			// Syncs that finished before the recording started
			// are a baseline.
			if h.DeployedAt.Unix() >= since.Unix() {
				want++
			}
			if h.DeployStartedAt != nil {
				inHistory[h.DeployStartedAt.Unix()] = true
			}
		}
		// Successful syncs the history leaves out: the selective ones
		// (and v3's self-heal syncs only what drifted).
		for start := range succeeded[name] {
			if !inHistory[start] {
				want++
			}
		}
		got, _ := value(t, store, "crowsnest_app_syncs_total", "name", name, "result", "Succeeded")
		if got != want {
			t.Errorf("%s: syncs_total{Succeeded} = %v, want %v from Argo CD's history and the selective syncs", name, got, want)
		}
		counted += got + failed[name]
		gotFailed, _ := value(t, store, "crowsnest_app_syncs_total", "name", name, "result", "Failed")
		gotErrored, _ := value(t, store, "crowsnest_app_syncs_total", "name", name, "result", "Error")
		if gotFailed+gotErrored != failed[name] {
			t.Errorf("%s: syncs_total{Failed} + {Error} = %v + %v, want the recording's %v", name, gotFailed, gotErrored, failed[name])
		}
	}
	// Every counted operation's duration is observed once, and
	// none is longer than the recording.
	n, sum := histogram(t, reg, "crowsnest_sync_duration_seconds")
	if float64(n) != counted {
		t.Errorf("crowsnest_sync_duration_seconds has %d observations, want the %v counted operations", n, counted)
	}
	if span := end.Sub(since).Seconds(); sum <= 0 || sum > counted*span {
		t.Errorf("sum of sync durations %v s is not within (0, %v × the recording's span]", sum, counted)
	}
	for _, name := range outOfSync {
		if _, ok := value(t, store, "crowsnest_app_drift_since_timestamp_seconds", "name", name); !ok {
			t.Errorf("%s: no drift_since at the end of the recording", name)
		}
	}
}

// TestRecordedWaves times the waves of every operation a real Argo CD ran
// in the recordings and checks them against what Argo CD itself says.
func TestRecordedWaves(t *testing.T) {
	for _, version := range recordingVersions() {
		t.Run(version, func(t *testing.T) { checkRecordedWaves(t, version) })
	}
}

// checkRecordedWaves is TestRecordedWaves on the recordings of version.
func checkRecordedWaves(t *testing.T, version string) {
	timed := 0
	for _, file := range []string{"argocd-scenarios-1-3.jsonl", "argocd-scenario-4-outage.jsonl"} {
		f, err := os.Open(recordingPath(version, file))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(f)
		apps := map[string]*appState{}
		// The recorded workloads: the live objects of hooks.
		workloads := map[string]*model.Workload{}
		live := func(kind, namespace, name string) (*model.Workload, bool) {
			w, ok := workloads[kind+"/"+namespace+"/"+name]
			return w, ok
		}
		for dec.More() {
			var e struct {
				model.Event
				Workload *model.Workload `json:"workload"`
			}
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if w := e.Workload; w != nil {
				if e.Type == model.Deleted {
					delete(workloads, w.Key())
				} else {
					workloads[w.Key()] = w
				}
				continue
			}
			if e.App == nil {
				continue // an AppProject
			}
			st := apps[e.App.Name]
			if st == nil {
				st = &appState{}
				apps[e.App.Name] = st
			}
			st.app = e.App
			if op := e.App.Status.OperationState; op != nil {
				st.identify(op)
			}
			if !st.observeWaves(e.Time, DefaultWaveDelay, live).finished {
				continue
			}
			waves := st.waves.timedWaves()
			if waves == nil {
				continue
			}
			timed++
			op := e.App.Status.OperationState
			argo := op.FinishedAt.Sub(op.StartedAt.Time)
			var total time.Duration
			for i, w := range waves {
				d := w.End.Sub(w.Start)
				total += d
				key := waveKey{w.Attempt, w.Phase, w.Wave}
				if d < 0 || w.Resources < 1 {
					t.Errorf("%s %s: wave %v lasted %v with %d resources", file, e.App.Name, key, d, w.Resources)
				}
				if i > 0 {
					prev := waves[i-1]
					// A retry first reports the hooks the attempt
					// before left (Argo CD finds them live), in any
					// phase: order is checked in first attempts.
					if prevKey := (waveKey{prev.Attempt, prev.Phase, prev.Wave}); !prevKey.less(key) && w.Attempt == 0 {
						t.Errorf("%s %s: wave %v began after %v", file, e.App.Name, prevKey, key)
					}
					if prev.Attempt == w.Attempt && !prev.End.Equal(w.Start) {
						t.Errorf("%s %s: waves %v/%s and %v overlap or leave a gap", file, e.App.Name, prev.Phase, prev.WaveLabel(), key)
					}
				}
			}
			// Argo CD's own times are whole seconds; crowsnest sees each
			// change a little after Argo CD makes it.
			if total > argo+2*time.Second {
				t.Errorf("%s %s: waves add up to %v, longer than the operation's %v", file, e.App.Name, total, argo)
			}
		}
		f.Close()
	}
	if timed < 10 {
		t.Errorf("timed the waves of %d operations, want the recordings' syncs (at least 10)", timed)
	}
}
