package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeSamples parses the daemon's /metrics into its samples.
func (d *running) scrapeSamples(t *testing.T) model.Vector {
	t.Helper()
	code, body := d.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var out model.Vector
	for _, mf := range mfs {
		s, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, mf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s...)
	}
	return out
}

// appSeries are the per-app series of a scrape (those naming an app:
// namespace and name labels), each with its value.
func appSeries(v model.Vector) map[string]float64 {
	out := map[string]float64{}
	for _, s := range v {
		if s.Metric["namespace"] != "" && s.Metric["name"] != "" && strings.HasPrefix(string(s.Metric[model.MetricNameLabel]), "crowsnest_app_") {
			out[s.Metric.String()] = float64(s.Value)
		}
	}
	return out
}

// traceIDs are the ids of the sync traces the demo printed.
func (d *running) traceIDs() map[string]bool {
	out := map[string]bool{}
	b, _ := os.ReadFile(d.tracesFile) // none yet: no traces
	for _, l := range strings.Split(string(b), "\n") {
		var s struct {
			Name        string
			SpanContext struct{ TraceID string }
		}
		if json.Unmarshal([]byte(l), &s) == nil && strings.HasPrefix(s.Name, "sync ") {
			out[s.SpanContext.TraceID] = true
		}
	}
	return out
}

// Two shards of the demo serve disjoint sets of apps whose union is the
// unsharded demo's series, print disjoint traces whose union is its
// traces, and label the aggregated histograms with their shard.
func TestShardedDemoSplitsAppsSeriesAndTraces(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // export traces within 0.1 s
	whole := startDemo(t)
	shards := []*running{startDemo(t, "--shard=0", "--total-shards=2"), startDemo(t, "--shard=1", "--total-shards=2")}
	time.Sleep(2 * time.Second) // the last traces' export

	want := appSeries(whole.scrapeSamples(t))
	union := map[string]float64{}
	apps := make([]map[string]bool, len(shards))
	for i, d := range shards {
		samples := d.scrapeSamples(t)
		apps[i] = map[string]bool{}
		for k, v := range appSeries(samples) {
			if _, dup := union[k]; dup {
				t.Errorf("%s served by both shards", k)
			}
			union[k] = v
		}
		for _, s := range samples {
			if s.Metric["namespace"] != "" && s.Metric["name"] != "" {
				apps[i][string(s.Metric["namespace"]+"/"+s.Metric["name"])] = true
			}
		}
		var info, aggregated, unlabelled int
		for _, s := range samples {
			switch name := string(s.Metric[model.MetricNameLabel]); {
			case name == "crowsnest_shard_info":
				info++
				if s.Metric["shard"] != model.LabelValue(fmt.Sprint(i)) || s.Metric["total_shards"] != "2" || s.Value != 1 {
					t.Errorf("shard %d: %v", i, s)
				}
			case strings.HasPrefix(name, "crowsnest_sync_duration_seconds") || strings.HasPrefix(name, "crowsnest_sync_wave_duration_seconds"):
				if s.Metric["shard"] == model.LabelValue(fmt.Sprint(i)) {
					aggregated++
				} else {
					unlabelled++
				}
			}
		}
		if info != 1 || aggregated == 0 || unlabelled != 0 {
			t.Errorf("shard %d: %d crowsnest_shard_info, %d duration samples with its shard label and %d without, want 1, some and none", i, info, aggregated, unlabelled)
		}
	}
	for a := range apps[0] {
		if apps[1][a] {
			t.Errorf("app %s in both shards", a)
		}
	}
	if len(apps[0]) == 0 || len(apps[1]) == 0 {
		t.Errorf("apps per shard: %d and %d, want some in each", len(apps[0]), len(apps[1]))
	}
	if !maps.Equal(union, want) {
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if v, ok := union[k]; !ok || v != want[k] {
				t.Errorf("unsharded %s = %v; shards: %v (served: %v)", k, want[k], v, ok)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(union)) {
			if _, ok := want[k]; !ok {
				t.Errorf("only the shards serve %s", k)
			}
		}
	}
	t.Logf("%d per-app series; apps per shard: %d and %d", len(want), len(apps[0]), len(apps[1]))

	// Each operation's trace is printed by its app's shard only.
	wantTraces := whole.traceIDs()
	gotTraces := map[string]bool{}
	for i, d := range shards {
		for id := range d.traceIDs() {
			if gotTraces[id] {
				t.Errorf("trace %s printed by shard %d too", id, i)
			}
			gotTraces[id] = true
		}
	}
	if len(wantTraces) == 0 || !maps.Equal(gotTraces, wantTraces) {
		t.Errorf("traces of the shards: %d, unsharded: %d, want the same ids", len(gotTraces), len(wantTraces))
	}
}
