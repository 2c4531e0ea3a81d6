package collect

import (
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/trace"
)

// syncDurationBuckets span a ConfigMap-only sync (a second or two) to a
// long rollout with hooks (an hour).
var syncDurationBuckets = []float64{1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600}

// SyncMetrics are the histograms of finished operations. Unlike the per-app
// series they are aggregated (by project, env and result), few, and kept in
// the daemon's own registry. An app label on a histogram multiplies its
// series by the number of apps, so per-app histograms are opt-in.
type SyncMetrics struct {
	duration     *prometheus.HistogramVec
	waveDuration *prometheus.HistogramVec
	perApp       *prometheus.HistogramVec // nil unless asked for
}

// waveDurationBuckets: Argo CD waits 2 s between waves, hooks and rollouts
// take minutes.
var waveDurationBuckets = []float64{0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800}

// NewSyncMetrics creates the histograms and registers them with reg; perApp
// adds crowsnest_app_sync_duration_seconds.
func NewSyncMetrics(reg prometheus.Registerer, perApp bool) *SyncMetrics {
	m := &SyncMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crowsnest_sync_duration_seconds",
			Help:    "Duration of finished sync operations, from Argo CD's startedAt to finishedAt, by project, env and result.",
			Buckets: syncDurationBuckets,
		}, []string{"project", "env", "result"}),
	}
	m.waveDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "crowsnest_sync_wave_duration_seconds",
		Help:    "Duration of sync waves, as crowsnest observed them (Argo CD records none), by project, env, sync phase and wave.",
		Buckets: waveDurationBuckets,
	}, []string{"project", "env", "phase", "wave"})
	reg.MustRegister(m.duration, m.waveDuration)
	if perApp {
		m.perApp = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crowsnest_app_sync_duration_seconds",
			Help:    "Duration of the Application's finished sync operations, by result.",
			Buckets: syncDurationBuckets,
		}, []string{"namespace", "name", "project", "env", "result"})
		reg.MustRegister(m.perApp)
	}
	return m
}

// observe records one finished operation of app that started at started,
// with the operation's trace id as exemplar: from a slow bucket in Grafana
// straight to the trace (exemplars are served in the OpenMetrics format).
func (m *SyncMetrics) observe(app *v1alpha1.Application, env, result string, started time.Time, d time.Duration) {
	s := max(d, 0).Seconds()
	exemplar := prometheus.Labels{"trace_id": trace.OperationID(string(app.UID), started)}
	m.duration.WithLabelValues(app.Spec.Project, env, result).(prometheus.ExemplarObserver).ObserveWithExemplar(s, exemplar)
	if m.perApp != nil {
		m.perApp.WithLabelValues(app.Namespace, app.Name, app.Spec.Project, env, result).(prometheus.ExemplarObserver).ObserveWithExemplar(s, exemplar)
	}
}

// observeWaves records the waves of one finished operation of app.
func (m *SyncMetrics) observeWaves(app *v1alpha1.Application, env string, waves []waveTiming) {
	for _, w := range waves {
		m.waveDuration.WithLabelValues(app.Spec.Project, env, w.phase, w.waveLabel()).Observe(max(w.end.Sub(w.start), 0).Seconds())
	}
}

// forget drops a deleted app's per-app histogram series.
func (m *SyncMetrics) forget(app *v1alpha1.Application) {
	if m.perApp != nil {
		m.perApp.DeletePartialMatch(prometheus.Labels{"namespace": app.Namespace, "name": app.Name})
	}
}
