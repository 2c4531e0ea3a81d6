package exposition

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Durations are the histograms of finished operations and their waves.
// Unlike the per-app series they are aggregated (by project, env and
// result), few, and kept in the daemon's own registry. An app label on a
// histogram multiplies its series by the number of apps, so per-app
// histograms are opt-in (NewStore). It is an operation subscriber.
type Durations struct {
	duration     *prometheus.HistogramVec
	waveDuration *prometheus.HistogramVec
}

// NewDurations creates the histograms and registers them with reg.
func NewDurations(reg prometheus.Registerer) *Durations {
	d := &Durations{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crowsnest_sync_duration_seconds",
			Help:    "Duration of finished sync operations (not dry runs), from Argo CD's startedAt to finishedAt less the time a sync window held them, by project, env and result.",
			Buckets: syncDurationBuckets(),
		}, []string{"project", "env", "result"}),
		waveDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crowsnest_sync_wave_duration_seconds",
			Help:    "Duration of sync waves, as crowsnest observed them (Argo CD records none), each attempt of a retried operation on its own, by project, env, sync phase and wave (\"unknown\" where crowsnest cannot tell).",
			Buckets: waveDurationBuckets(),
		}, []string{"project", "env", "phase", "wave"}),
	}
	reg.MustRegister(d.duration, d.waveDuration)
	return d
}

// Finished records one finished operation, with its trace id as exemplar:
// from a slow bucket in Grafana straight to the trace (exemplars are
// served in the OpenMetrics format), and the waves crowsnest timed.
func (d *Durations) Finished(op *model.Operation) {
	s := op.Duration().Seconds()
	exemplar := prometheus.Labels{"trace_id": op.TraceID()}
	// The values go through model.LabelValue as the per-app series' do: a
	// spec.project of invalid UTF-8 would panic here, a huge one would
	// swell every scrape.
	project, env := model.LabelValue(op.Project), model.LabelValue(op.Env)
	d.duration.WithLabelValues(project, env, model.LabelValue(op.Result)).(prometheus.ExemplarObserver).ObserveWithExemplar(s, exemplar)
	for i := range op.TimedWaves {
		w := &op.TimedWaves[i]
		d.waveDuration.WithLabelValues(project, env, model.LabelValue(w.Phase), w.WaveLabel()).Observe(w.Duration().Seconds())
	}
}
