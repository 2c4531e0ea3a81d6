package tracker

import (
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// snapshot is an app whose operation is in phase with the given results
// (phase, kind, name), in the given attempt.
func snapshot(phase synccommon.OperationPhase, retry int64, results ...[3]string) *v1alpha1.Application {
	a := newApp(func(a *v1alpha1.Application) {
		a.Status.Resources = []v1alpha1.ResourceStatus{
			{Kind: "ConfigMap", Name: "cm"}, // wave 0: Argo CD omits it
			{Group: "apps", Kind: "Deployment", Name: "web", SyncWave: 2},
		}
	})
	op := &v1alpha1.OperationState{Phase: phase, StartedAt: metav1.NewTime(t0), RetryCount: retry, SyncResult: &v1alpha1.SyncOperationResult{}}
	if phase.Completed() {
		op.FinishedAt = mtime(at(20 * time.Second))
	}
	for _, r := range results {
		group := ""
		if r[1] == "Deployment" {
			group = "apps"
		}
		op.SyncResult.Resources = append(op.SyncResult.Resources, &v1alpha1.ResourceResult{SyncPhase: synccommon.SyncPhase(r[0]), Group: group, Kind: r[1], Name: r[2]})
	}
	a.Status.OperationState = op
	return a
}

type step struct {
	at  time.Duration
	app *v1alpha1.Application
}

func timeWaves(steps ...step) []model.WaveTiming {
	st := &appState{}
	var out []model.WaveTiming
	for _, s := range steps {
		st.app = s.app
		if op := s.app.Status.OperationState; op != nil {
			st.identify(op)
		}
		if st.observeWaves(at(s.at), DefaultWaveDelay, nil).finished {
			out = st.waves.timedWaves()
		}
	}
	return out
}

func TestWaves(t *testing.T) {
	hook := [3]string{"PreSync", "Job", "migrate"}
	cm := [3]string{"Sync", "ConfigMap", "cm"}
	deploy := [3]string{"Sync", "Deployment", "web"}
	running, done := synccommon.OperationRunning, synccommon.OperationSucceeded
	for _, tc := range []struct {
		desc  string
		steps []step
		want  []string // phase/wave=duration
	}{
		{
			desc:  "hook, then two waves, watched from the start",
			steps: []step{{0, snapshot(running, 0)}, {time.Second, snapshot(running, 0, hook)}, {4 * time.Second, snapshot(running, 0, hook, cm)}, {7 * time.Second, snapshot(running, 0, hook, cm, deploy)}, {8 * time.Second, snapshot(done, 0, hook, cm, deploy)}},
			// Argo CD writes a wave's results 2 s after applying it,
			// but not after the last wave.
			want: []string{"PreSync/0=2s", "Sync/0=5s", "Sync/2=1s"},
		},
		{
			desc:  "first seen with results in it: not timed",
			steps: []step{{0, snapshot(running, 0, hook)}, {4 * time.Second, snapshot(running, 0, hook, cm)}, {8 * time.Second, snapshot(done, 0, hook, cm)}},
		},
		{
			desc:  "first seen finished: not timed",
			steps: []step{{8 * time.Second, snapshot(done, 0, hook, cm)}},
		},
		{
			desc:  "a retry starts the waves over",
			steps: []step{{0, snapshot(running, 0)}, {time.Second, snapshot(running, 0, hook)}, {5 * time.Second, snapshot(running, 1)}, {6 * time.Second, snapshot(running, 1, hook)}, {8 * time.Second, snapshot(running, 1, hook, cm)}, {9 * time.Second, snapshot(done, 1, hook, cm)}},
			// crowsnest missed the first attempt's end: its waves are
			// not observed; the new attempt began when seen at 5 s.
			want: []string{"1:PreSync/0=3s", "1:Sync/0=1s"},
		},
	} {
		var got []string
		for _, w := range timeWaves(tc.steps...) {
			g := w.Phase + "/" + w.WaveLabel() + "=" + w.End.Sub(w.Start).String()
			if w.Attempt > 0 || len(tc.want) > 0 && strings.HasPrefix(tc.want[0], "0:") {
				g = strconv.FormatInt(w.Attempt, 10) + ":" + g
			}
			got = append(got, g)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: waves %v, want %v", tc.desc, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: waves %v, want %v", tc.desc, got, tc.want)
				break
			}
		}
	}
}

// The tracker exposes the last timed operation's waves per app and
// observes them in the wave histogram.
func TestWaveMetrics(t *testing.T) {
	tr, s, reg := newTrackerWithRegistry(false)
	hook := [3]string{"PreSync", "Job", "migrate"}
	cm := [3]string{"Sync", "ConfigMap", "cm"}
	deploy := [3]string{"Sync", "Deployment", "web"}
	for _, st := range []step{
		{0, snapshot(synccommon.OperationRunning, 0)},
		{time.Second, snapshot(synccommon.OperationRunning, 0, hook)},
		{4 * time.Second, snapshot(synccommon.OperationRunning, 0, hook, cm)},
		{7 * time.Second, snapshot(synccommon.OperationRunning, 0, hook, cm, deploy)},
		{8 * time.Second, snapshot(synccommon.OperationSucceeded, 0, hook, cm, deploy)},
	} {
		tr.Handle(model.Event{Type: model.Modified, Time: at(st.at), App: st.app})
	}
	for _, w := range []struct {
		phase, wave string
		seconds     float64
	}{{"PreSync", "0", 2}, {"Sync", "0", 5}, {"Sync", "2", 1}} {
		if v, ok := value(t, s, "crowsnest_app_last_sync_wave_duration_seconds", "name", "web", "phase", w.phase, "wave", w.wave); !ok || v != w.seconds {
			t.Errorf("last wave %s/%s = %v (present %v), want %v", w.phase, w.wave, v, ok, w.seconds)
		}
		if n, sum := histogram(t, reg, "crowsnest_sync_wave_duration_seconds", "phase", w.phase, "wave", w.wave); n != 1 || sum != w.seconds {
			t.Errorf("wave histogram %s/%s: count %d sum %v, want 1 and %v", w.phase, w.wave, n, sum, w.seconds)
		}
	}
}
