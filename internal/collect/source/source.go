package source

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Source produces Application events.
type Source interface {
	// Run delivers events to sink until ctx is done. It returns an error
	// only if it cannot start; a source that loses its server keeps
	// retrying and reports it through Ready and crowsnest_source_up.
	Run(ctx context.Context, sink Sink) error
	// Ready reports whether the source has delivered its initial state and
	// is currently connected.
	Ready() bool
}

// SourceMetrics are the daemon's own metrics about its sources.
type SourceMetrics struct {
	up             *prometheus.GaugeVec
	events         *prometheus.CounterVec
	lastEvent      *prometheus.GaugeVec
	reconciles     *prometheus.CounterVec
	reconciledApps *prometheus.CounterVec
}

// Actions of a reconcile on an app, the action label of
// crowsnest_source_reconciled_apps_total.
const (
	reconciledDeleted = "deleted"
	reconciledChanged = "changed"
)

// NewSourceMetrics creates the source metrics and registers them with reg.
func NewSourceMetrics(reg prometheus.Registerer) *SourceMetrics {
	m := &SourceMetrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crowsnest_source_up",
			Help: "Whether the source's last request to its server succeeded (1) or failed (0).",
		}, []string{"source"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_source_events_total",
			Help: "Application events received from the source, by event type.",
		}, []string{"source", "type"}),
		lastEvent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crowsnest_source_last_event_timestamp_seconds",
			Help: "Unix time at which the source last received an Application event.",
		}, []string{"source"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_source_reconciles_total",
			Help: "Full lists of Applications the source reconciled its delivered state with, by reason (reconnect: after each connect; resync: periodic).",
		}, []string{"source", "reason"}),
		reconciledApps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_source_reconciled_apps_total",
			Help: "Applications a reconcile found deleted or changed that the source's watch had not delivered, by action.",
		}, []string{"source", "action"}),
	}
	reg.MustRegister(m.up, m.events, m.lastEvent, m.reconciles, m.reconciledApps)
	return m
}

// register creates the series of source so they exist before its first
// event.
func (m *SourceMetrics) register(source string) {
	m.up.WithLabelValues(source).Set(0)
	for _, t := range model.EventTypes() {
		m.events.WithLabelValues(source, strings.ToLower(string(t)))
	}
}

// registerReconciles creates the reconcile series of a source that
// reconciles, for reasons, so they exist at 0.
func (m *SourceMetrics) registerReconciles(source string, reasons []string) {
	for _, r := range reasons {
		m.reconciles.WithLabelValues(source, r)
	}
	for _, a := range []string{reconciledDeleted, reconciledChanged} {
		m.reconciledApps.WithLabelValues(source, a)
	}
}

func (m *SourceMetrics) reconciled(source, reason string) {
	m.reconciles.WithLabelValues(source, reason).Inc()
}

func (m *SourceMetrics) reconciledApp(source, action string) {
	m.reconciledApps.WithLabelValues(source, action).Inc()
}

func (m *SourceMetrics) setUp(source string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(source).Set(v)
}

func (m *SourceMetrics) event(source string, t model.EventType, at time.Time) {
	m.events.WithLabelValues(source, strings.ToLower(string(t))).Inc()
	m.lastEvent.WithLabelValues(source).Set(float64(at.UnixNano()) / 1e9)
}

// counting wraps sink so every event it passes is counted for source.
func (m *SourceMetrics) counting(source string, sink Sink) Sink {
	return SinkFunc(func(e model.Event) {
		m.event(source, e.Type, time.Now())
		sink.Handle(e)
	})
}
