package exposition

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
)

// WaveDelay exposes the tracker's check of the configured wave delay
// against the gaps it observed between sync waves, as last published.
type WaveDelay struct {
	mu    sync.Mutex
	check model.WaveDelayCheck

	configured, min, mismatch *prometheus.Desc
}

// NewWaveDelay returns the check's exposition before any publication.
func NewWaveDelay() *WaveDelay {
	return &WaveDelay{
		configured: prometheus.NewDesc("crowsnest_sync_wave_delay_seconds",
			"The delay Argo CD waits after each sync wave but the last, as configured (--argocd.sync-wave-delay); crowsnest dates wave starts back by it.", nil, nil),
		min: prometheus.NewDesc("crowsnest_sync_wave_gap_min_seconds",
			"Shortest of the last 64 observed gaps between the first results of two consecutive sync waves where Argo CD waited its wave delay: no shorter than Argo CD's real delay. Absent until one was observed.", nil, nil),
		mismatch: prometheus.NewDesc("crowsnest_sync_wave_delay_mismatch",
			"1 when the observed gaps between sync waves disagree with --argocd.sync-wave-delay: the shortest of at least 3 is more than 0.5s shorter, or the shortest of 64 more than 3s longer.", nil, nil),
	}
}

// WaveDelay keeps the latest check.
func (w *WaveDelay) WaveDelay(c model.WaveDelayCheck) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.check = c
}

// Describe implements prometheus.Collector.
func (w *WaveDelay) Describe(ch chan<- *prometheus.Desc) {
	ch <- w.configured
	ch <- w.min
	ch <- w.mismatch
}

// Collect implements prometheus.Collector.
func (w *WaveDelay) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	c := w.check
	w.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(w.configured, prometheus.GaugeValue, c.Configured.Seconds())
	if c.Gaps > 0 {
		ch <- prometheus.MustNewConstMetric(w.min, prometheus.GaugeValue, c.ShortestGap.Seconds())
	}
	mismatch := 0.0
	if c.Mismatch {
		mismatch = 1
	}
	ch <- prometheus.MustNewConstMetric(w.mismatch, prometheus.GaugeValue, mismatch)
}
