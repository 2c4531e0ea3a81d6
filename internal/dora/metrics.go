package dora

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/queue"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Results of a commit metadata lookup, the values of the result label of
// crowsnest_commit_metadata_lookups_total.
const (
	// LookupCached: the cache had the commit.
	LookupCached = "cached"
	// LookupFetched: argocd-server gave it.
	LookupFetched = "fetched"
	// LookupFailed: the fetch failed or timed out, or a failure of the
	// same revision less than Config.FailedTTL ago is remembered.
	LookupFailed = "failed"
	// LookupUnsupported: the source has no commit Argo CD can tell of (a
	// Helm chart, an OCI artifact without a creation date).
	LookupUnsupported = "unsupported"
)

// Values of the until label of crowsnest_change_lead_time_seconds.
const (
	untilDeployed = "deployed"
	untilHealthy  = "healthy"
)

// metrics are the aggregated deployment series: few (by project and env),
// kept in the daemon's own registry like the sync duration histograms.
type metrics struct {
	leadTime    *prometheus.HistogramVec
	recovery    *prometheus.HistogramVec
	releaseWait *prometheus.HistogramVec
	lookups     *prometheus.CounterVec
	dropped     *prometheus.CounterVec // the notice queue's
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		leadTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crowsnest_change_lead_time_seconds",
			Help:    "Change lead time of deployments that did not fail: from the change (the author date of the commit deployed, or of the code commit it references with Argocd-reference-commit-* trailers, the oldest of the sources it changed; the change CI named in the crowsnest.io/change-commit or change-time annotation; for new source settings or a chart version, when Argo CD first compared the app with them) until the deployment finished (until=\"deployed\") or the app was first Healthy after it (until=\"healthy\"), by project and env: per env, the lead time of each stage.",
			Buckets: leadTimeBuckets(),
		}, []string{"project", "env", "until"}),
		recovery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crowsnest_deployment_recovery_seconds",
			Help:    "Time to recover from a failed change: from the failure's onset until the app was well again (Healthy, or Suspended when that is how it is well) after a successful sync, by project and env.",
			Buckets: recoveryBuckets(),
		}, []string{"project", "env"}),
		releaseWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crowsnest_release_wait_seconds",
			Help:    "How long a release waited for the sync a person started (prod synced by hand after approval): from the onset of awaiting sync (a merge, a changed source) to the start of the sync that deployed it, by project and env.",
			Buckets: leadTimeBuckets(),
		}, []string{"project", "env"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_commit_metadata_lookups_total",
			Help: "Lookups of the commit metadata of a deployed or prefetched revision, by result (cached, fetched, failed, unsupported).",
		}, []string{"result"}),
		dropped: queue.NewDropCounter("deployment_notices", "Deployment notices dropped, by reason: queue_full (the deployment worker fell behind) or shutdown (still queued when the flush at shutdown ran out of time): their lead time, recovery time or record is lost."),
	}
	for _, r := range []string{LookupCached, LookupFetched, LookupFailed, LookupUnsupported} {
		m.lookups.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.leadTime, m.recovery, m.releaseWait, m.lookups, m.dropped} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering deployment metrics: %w", err)
			}
		}
	}
	return m, nil
}

// leadTimeBuckets go from a minute to a month, with bounds at DORA's
// lead time bands (an hour, a day, a week, a month).
func leadTimeBuckets() []float64 {
	return seconds(time.Minute, 5*time.Minute, 15*time.Minute, 30*time.Minute, time.Hour,
		3*time.Hour, 8*time.Hour, 24*time.Hour, 2*24*time.Hour, 7*24*time.Hour, 14*24*time.Hour, 30*24*time.Hour)
}

// recoveryBuckets go from 30 seconds to a week, with bounds at DORA's
// recovery bands (an hour, a day, a week).
func recoveryBuckets() []float64 {
	return seconds(30*time.Second, time.Minute, 5*time.Minute, 10*time.Minute, 30*time.Minute, time.Hour,
		3*time.Hour, 8*time.Hour, 24*time.Hour, 2*24*time.Hour, 7*24*time.Hour)
}

func seconds(ds ...time.Duration) []float64 {
	s := make([]float64, len(ds))
	for i, d := range ds {
		s[i] = d.Seconds()
	}
	return s
}

// observe records d on h's series for labels, with the trace id as
// exemplar when there is one: from a bucket in Grafana to the deployment's
// trace.
func observe(h *prometheus.HistogramVec, d time.Duration, traceID string, labels ...string) {
	for i := range labels {
		labels[i] = model.LabelValue(labels[i])
	}
	o := h.WithLabelValues(labels...)
	if traceID == "" {
		o.Observe(d.Seconds())
		return
	}
	o.(prometheus.ExemplarObserver).ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": traceID})
}
