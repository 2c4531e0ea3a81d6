package exposition

import (
	"strconv"

	"github.com/crowsnest/crowsnest/internal/model"
)

const (
	appHistogramName = "crowsnest_app_sync_duration_seconds"
	appHistogramHelp = "Duration of the Application's finished sync operations, by result."
)

// syncDurationBuckets span a ConfigMap-only sync (a second or two) to a
// long rollout with hooks (an hour).
func syncDurationBuckets() []float64 {
	return []float64{1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600}
}

// waveDurationBuckets: Argo CD waits 2 s between waves, hooks and rollouts
// take minutes.
func waveDurationBuckets() []float64 {
	return []float64{0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800}
}

// appHistograms is one app's duration histogram per result, rendered into
// the Store with the app's other series: an env change re-renders it
// under the new labels, and a deleted app's series go with the app.
type appHistograms struct {
	byResult [model.NumResults]*histogram
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	count  uint64
	sum    float64
}

func (h *appHistograms) observe(result string, seconds float64) {
	i := model.ResultIndex(result)
	if i < 0 {
		return
	}
	bh := h.byResult[i]
	if bh == nil {
		bh = &histogram{counts: make([]uint64, len(syncDurationBuckets()))}
		h.byResult[i] = bh
	}
	for j, le := range syncDurationBuckets() {
		if seconds <= le {
			bh.counts[j]++
			break
		}
	}
	bh.count++
	bh.sum += seconds
}

// render emits the _bucket, _sum and _count samples of every result seen.
func (h *appHistograms) render(emit func(name string, value float64, labels ...string)) {
	buckets := syncDurationBuckets()
	for i, r := range model.Results() {
		bh := h.byResult[i]
		if bh == nil {
			continue
		}
		var cum uint64
		for j, le := range buckets {
			cum += bh.counts[j]
			emit(appHistogramName+"_bucket", float64(cum), "result", r, "le", strconv.FormatFloat(le, 'g', -1, 64))
		}
		emit(appHistogramName+"_bucket", float64(bh.count), "result", r, "le", "+Inf")
		emit(appHistogramName+"_sum", bh.sum, "result", r)
		emit(appHistogramName+"_count", float64(bh.count), "result", r)
	}
}
