package tracker

import "github.com/prometheus/client_golang/prometheus"

// waveDelayCollector exports how the gaps observed between sync waves
// compare with the wave delay crowsnest was told (--argocd.sync-wave-delay).
type waveDelayCollector struct {
	t                         *Tracker
	configured, min, mismatch *prometheus.Desc
}

// WaveDelayCollector returns the collector of the tracker's wave delay
// check, for the daemon's own registry.
func (t *Tracker) WaveDelayCollector() prometheus.Collector {
	return &waveDelayCollector{
		t: t,
		configured: prometheus.NewDesc("crowsnest_sync_wave_delay_seconds",
			"The delay Argo CD waits after each sync wave but the last, as configured (--argocd.sync-wave-delay); crowsnest dates wave starts back by it.", nil, nil),
		min: prometheus.NewDesc("crowsnest_sync_wave_gap_min_seconds",
			"Shortest of the last 64 observed gaps between the first results of two consecutive sync waves where Argo CD waited its wave delay: no shorter than Argo CD's real delay. Absent until one was observed.", nil, nil),
		mismatch: prometheus.NewDesc("crowsnest_sync_wave_delay_mismatch",
			"1 when the observed gaps between sync waves disagree with --argocd.sync-wave-delay: the shortest of at least 3 is more than 0.5s shorter, or the shortest of 64 more than 3s longer.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *waveDelayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.configured
	ch <- c.min
	ch <- c.mismatch
}

// Collect implements prometheus.Collector.
func (c *waveDelayCollector) Collect(ch chan<- prometheus.Metric) {
	c.t.mu.Lock()
	delay, g := c.t.waveDelay, c.t.gaps
	n := len(g.last)
	c.t.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.configured, prometheus.GaugeValue, delay.Seconds())
	if n > 0 {
		ch <- prometheus.MustNewConstMetric(c.min, prometheus.GaugeValue, g.min.Seconds())
	}
	mismatch := 0.0
	if g.mismatch {
		mismatch = 1
	}
	ch <- prometheus.MustNewConstMetric(c.mismatch, prometheus.GaugeValue, mismatch)
}
