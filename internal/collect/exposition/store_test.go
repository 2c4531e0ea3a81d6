package exposition

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/crowsnest/crowsnest/internal/argocd/health"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/collect/collecttest"
	"github.com/crowsnest/crowsnest/internal/model"
)

// at is d after t0.
func at(d time.Duration) time.Time { return t0.Add(d) }

func TestMetricsHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	self := prometheus.NewGauge(prometheus.GaugeOpts{Name: "crowsnest_test_self", Help: "A self metric."})
	reg.MustRegister(self)
	store := NewStore(false)
	store.SetApp(&model.AppView{App: webApp(), Env: "unknown"})
	h := NewMetricsHandler(reg, store, promslog.NewNopLogger())

	for _, gz := range []bool{false, true} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if gz {
			req.Header.Set("Accept-Encoding", "deflate, gzip;q=1.0")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := io.Reader(rec.Body)
		if gz {
			if rec.Header().Get("Content-Encoding") != "gzip" {
				t.Fatalf("no gzip encoding with Accept-Encoding gzip")
			}
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		text, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Errorf("Content-Type %q, want the text format 0.0.4", ct)
		}
		for _, want := range []string{
			`crowsnest_test_self 0`,
			`crowsnest_app_info{namespace="argocd",name="web",`,
		} {
			if !strings.Contains(string(text), want) {
				t.Errorf("gzip=%v: /metrics lacks %s", gz, want)
			}
		}
	}
}

// A gzip scrape is the identity scrape compressed: the store keeps its
// series compressed per family and block of apps, and compresses again
// what changed; whatever it kept or redid, Go's gzip reader (Prometheus')
// reads back exactly the identity scrape's bytes, self metrics included,
// in the text format and in OpenMetrics, and the stream is one gzip member
// (so that curl --compressed and other zlib readers read it all). Checked
// after apps were added, changed (series, operations with per-app
// histograms, workloads), deleted and added again into freed slots.
func TestMetricsHandlerGzipIsIdentity(t *testing.T) {
	store := NewStore(true)
	reg := prometheus.NewRegistry()
	durations := NewDurations(reg)
	self := prometheus.NewGauge(prometheus.GaugeOpts{Name: "crowsnest_test_self", Help: "A self metric."})
	self.Set(42)
	reg.MustRegister(self)
	h := NewMetricsHandler(reg, store, promslog.NewNopLogger())

	scrape := func(t *testing.T, accept, encoding string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if encoding != "" {
			req.Header.Set("Accept-Encoding", encoding)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	check := func(t *testing.T, stage string, wantApps int) {
		t.Helper()
		for _, format := range []struct{ name, accept string }{
			{"text", ""},
			{"OpenMetrics", "application/openmetrics-text; version=1.0.0"},
		} {
			identity := scrape(t, format.accept, "").Body.Bytes()
			if enc := scrape(t, format.accept, "gzip;q=0").Header().Get("Content-Encoding"); enc != "" {
				t.Errorf("%s, %s: Accept-Encoding gzip;q=0 got Content-Encoding %q", stage, format.name, enc)
			}
			rec := scrape(t, format.accept, "gzip")
			if enc := rec.Header().Get("Content-Encoding"); enc != "gzip" {
				t.Fatalf("%s, %s: Content-Encoding %q, want gzip", stage, format.name, enc)
			}
			body := bytes.NewReader(rec.Body.Bytes())
			zr, err := gzip.NewReader(body)
			if err != nil {
				t.Fatalf("%s, %s: %v", stage, format.name, err)
			}
			zr.Multistream(false)
			gunzipped, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("%s, %s: gunzip: %v", stage, format.name, err)
			}
			if body.Len() != 0 {
				t.Errorf("%s, %s: %d bytes after the first gzip member", stage, format.name, body.Len())
			}
			if !bytes.Equal(gunzipped, identity) {
				i := 0
				for i < min(len(gunzipped), len(identity)) && gunzipped[i] == identity[i] {
					i++
				}
				t.Fatalf("%s, %s: gunzipped scrape (%d bytes) differs from the identity scrape (%d bytes) at byte %d:\n%q\nwant\n%q",
					stage, format.name, len(gunzipped), len(identity), i,
					gunzipped[max(0, i-80):min(len(gunzipped), i+80)], identity[max(0, i-80):min(len(identity), i+80)])
			}
			text := string(identity)
			apps := strings.Count(text, "\ncrowsnest_app_info{")
			if apps != wantApps || !strings.Contains(text, "\ncrowsnest_test_self 42") {
				t.Errorf("%s, %s: %d apps' info (want %d), self metric present: %v", stage, format.name, apps, wantApps, strings.Contains(text, "\ncrowsnest_test_self 42"))
			}
			if format.name == "OpenMetrics" {
				if !strings.HasSuffix(text, "# EOF\n") || strings.Count(text, "# EOF") != 1 {
					t.Errorf("%s: OpenMetrics scrape does not end with one # EOF", stage)
				}
				continue
			}
			parser := expfmt.NewTextParser(pmodel.UTF8Validation)
			families, err := parser.TextToMetricFamilies(bytes.NewReader(gunzipped))
			if err != nil {
				t.Fatalf("%s: the gunzipped text scrape does not parse: %v", stage, err)
			}
			if n := len(families["crowsnest_app_info"].GetMetric()); n != wantApps {
				t.Errorf("%s: parsed %d crowsnest_app_info series, want %d", stage, n, wantApps)
			}
		}
	}

	// 150 apps fill 5 blocks of the store: the two changed last wait
	// for compression (a scrape compresses them), the others are kept
	// compressed.
	const apps = 150
	views := map[int]*model.AppView{}
	set := func(i int, change func(v *model.AppView)) {
		v := views[i]
		if v == nil {
			v = benchView(i)
		} else {
			c := *v
			v = &c
		}
		if change != nil {
			change(v)
		}
		views[i] = v
		store.SetApp(v)
	}
	workload := func(ready int64) func(*model.AppView) {
		return func(v *model.AppView) {
			v.Workloads = []model.Workload{{
				Kind: "Deployment", Namespace: v.App.Spec.Destination.Namespace, Name: v.App.Name, App: v.App.Name, AppNamespace: v.App.Namespace,
				Replicas: map[string]int64{"desired": 3, "ready": ready},
			}}
		}
	}
	for i := 0; i < apps; i++ {
		set(i, nil)
		if i%3 == 0 {
			set(i, workload(3))
		}
	}
	check(t, "added", apps)

	// Changes spread over every block: health, operations that finish
	// (the per-app histograms), workloads.
	for i := 0; i < apps; i += 7 {
		set(i, func(v *model.AppView) {
			v.App = v.App.DeepCopy()
			v.App.Status.Health.Status = health.HealthStatusDegraded
		})
		if i%2 == 0 {
			set(i, func(v *model.AppView) {
				v.Phase, v.Progress = "Running", &model.SyncProgress{Wave: model.UnknownWave}
			})
			op := &model.Operation{UID: string(views[i].App.UID), Namespace: "argocd", Name: views[i].App.Name, Project: views[i].App.Spec.Project, Env: views[i].Env,
				Result: model.ResultFailed, StartedAt: at(2 * time.Minute), FinishedAt: at(3 * time.Minute)}
			durations.Finished(op)
			store.Finished(op)
			set(i, func(v *model.AppView) {
				v.Phase, v.Progress = "Failed", nil
				v.LastFinished = &model.FinishedOperation{Result: model.ResultFailed, Started: op.StartedAt, Finished: op.FinishedAt}
				v.Syncs[model.ResultIndex(model.ResultFailed)]++
			})
		}
		if i%3 == 0 {
			set(i, workload(1))
		}
	}
	check(t, "changed", apps)
	var text bytes.Buffer
	if _, err := store.WriteTo(&text); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(text.String(), "crowsnest_app_sync_duration_seconds_count{"); n == 0 {
		t.Fatal("no per-app histogram: the operations did not finish")
	}

	// Deletions: every third app, and all of the first block.
	deleted := 0
	for i := 0; i < apps; i++ {
		if i%3 == 1 || i < 32 {
			store.DeleteApp(views[i].Key())
			deleted++
		}
	}
	check(t, "deleted", apps-deleted)

	// New apps take the freed slots.
	for i := apps; i < apps+60; i++ {
		set(i, nil)
	}
	check(t, "added again", apps-deleted+60)
}

// Scrapes run while apps change (run with -race): each gzip scrape decodes
// and parses whole, whichever blocks were being compressed again meanwhile.
func TestMetricsHandlerGzipWhileUpdating(t *testing.T) {
	store := NewStore(false)
	h := NewMetricsHandler(prometheus.NewRegistry(), store, promslog.NewNopLogger())
	const apps = 100
	for i := 0; i < apps; i++ {
		store.SetApp(benchView(i))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := 0; k < 300; k++ {
			v := benchView(k * 7 % apps)
			if k%2 == 0 {
				v.App.Status.Health.Status = health.HealthStatusDegraded
			}
			if k%10 == 9 {
				store.DeleteApp(v.Key())
				continue
			}
			store.SetApp(v)
		}
	}()
	for scrapes := 0; ; scrapes++ {
		select {
		case <-done:
			t.Logf("%d scrapes during the updates", scrapes)
			return
		default:
		}
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		parser := expfmt.NewTextParser(pmodel.UTF8Validation)
		if _, err := parser.TextToMetricFamilies(zr); err != nil {
			t.Fatalf("scrape %d: %v", scrapes, err)
		}
	}
}

// benchApp is the i-th app of the benchmarks' fleet.
func benchApp(i int) *v1alpha1.Application { return collecttest.BenchApp(i, t0) }

// benchView returns the view of benchApp(i) as the tracker hands it on
// after its first look at t0: its env label, its destination cluster (the
// local one's name, as for an app deployed to kubernetes.default.svc), its
// last operation finished and successful, drift since t0 if it is
// OutOfSync.
func benchView(i int) *model.AppView {
	a := benchApp(i)
	v := &model.AppView{
		App: a, Env: a.Labels["env"], Dest: "in-cluster", Phase: "Succeeded",
		Policies:       []model.PolicyResult{{Policy: "auto_sync"}, {Policy: "self_heal"}, {Policy: "prune"}},
		LastFinished:   &model.FinishedOperation{Result: model.ResultSucceeded, Started: t0.Add(-11 * time.Minute), Finished: t0.Add(-10 * time.Minute)},
		LastSuccessful: t0.Add(-10 * time.Minute),
	}
	if a.Status.Sync.Status == v1alpha1.SyncStatusCodeOutOfSync {
		v.DriftSince, v.LiveDriftSince = t0, t0
	}
	return v
}

// discard is a ResponseWriter that drops the body, so the benchmark
// measures crowsnest, not a buffer growing.
type discard struct {
	h http.Header
	n int // bytes written
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkScrape measures one /metrics request over 10,000 Applications
// with two workloads each. A scrape only copies the store's bytes: no
// tracker takes part.
func BenchmarkScrape(b *testing.B) {
	const apps = 10000
	for _, workloads := range []int{0, 2} {
		store := NewStore(false)
		for i := 0; i < apps; i++ {
			v := benchView(i)
			for _, kind := range []string{"Deployment", "StatefulSet"}[:workloads] {
				v.Workloads = append(v.Workloads, model.Workload{
					Kind: kind, Namespace: v.App.Spec.Destination.Namespace, Name: v.App.Name, App: v.App.Name, AppNamespace: v.App.Namespace,
					Replicas: map[string]int64{"desired": 3, "ready": 3, "updated": 3, "available": 3},
				})
			}
			store.SetApp(v)
		}
		h := NewMetricsHandler(prometheus.NewRegistry(), store, promslog.NewNopLogger())
		size, err := store.WriteTo(io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		for _, format := range []struct{ name, accept string }{
			{"text", ""},
			{"openmetrics", "application/openmetrics-text; version=1.0.0"},
		} {
			for _, enc := range []string{"identity", "gzip"} {
				b.Run(fmt.Sprintf("apps=%d/workloads=%d/format=%s/encoding=%s", apps, workloads*apps, format.name, enc), func(b *testing.B) {
					req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
					req.Header.Set("Accept-Encoding", enc)
					if format.accept != "" {
						req.Header.Set("Accept", format.accept)
					}
					w := &discard{h: http.Header{}}
					b.SetBytes(size) // uncompressed exposition size: MB/s reads as text rendered
					for b.Loop() {
						h.ServeHTTP(w, req)
					}
					b.ReportMetric(float64(w.n)/float64(b.N), "wire-B/scrape")
				})
			}
		}
	}
}

// Prometheus asks for OpenMetrics, the one format that carries exemplars:
// the sync duration histogram's exemplar is the operation's trace id.
func TestMetricsHandlerOpenMetrics(t *testing.T) {
	store := NewStore(false)
	reg := prometheus.NewRegistry()
	durations := NewDurations(reg)
	op := &model.Operation{UID: "uid-web", Namespace: "argocd", Name: "web", Project: "shop", Env: "unknown",
		Result: model.ResultSucceeded, StartedAt: at(10 * time.Second), FinishedAt: at(40 * time.Second)}
	view := &model.AppView{App: webApp(), Env: "unknown", Phase: "Succeeded",
		LastFinished: &model.FinishedOperation{Result: model.ResultSucceeded, Started: op.StartedAt, Finished: op.FinishedAt}}
	view.Syncs[model.ResultIndex(model.ResultSucceeded)] = 1
	store.SetApp(view)
	durations.Finished(op)
	store.Finished(op)
	h := NewMetricsHandler(reg, store, promslog.NewNopLogger())

	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	// What Prometheus 2.42 sends.
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body := rec.Body.String()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text; version=1.0.0") {
		t.Errorf("Content-Type %q, want OpenMetrics 1.0.0", ct)
	}
	traceID := model.OperationID("uid-web", at(10*time.Second))
	for _, want := range []string{
		"# TYPE crowsnest_app_syncs counter\n",
		`crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",result="Succeeded"} 1` + "\n",
		"# TYPE crowsnest_sync_duration_seconds histogram\n",
		`crowsnest_sync_duration_seconds_bucket{env="unknown",project="shop",result="Succeeded",le="30.0"} 1 # {trace_id="` + traceID + `"} 30`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("OpenMetrics exposition lacks %q", want)
		}
	}
	if strings.Count(body, "# EOF") != 1 || !strings.HasSuffix(body, "# EOF\n") {
		t.Errorf("OpenMetrics exposition must end with exactly one # EOF; it ends %q", body[max(0, len(body)-40):])
	}
	// A plain scrape keeps the text format, without exemplars.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if strings.Contains(rec.Body.String(), "# EOF") || strings.Contains(rec.Body.String(), "trace_id") {
		t.Error("the text format got OpenMetrics syntax")
	}
}

// DeleteApp drops every series of the app, and only its.
func TestDeleteAppDropsItsSeries(t *testing.T) {
	s := NewStore(true)
	web := &model.AppView{App: webApp(), Env: "unknown", Phase: "Failed", DriftSince: t0}
	web.App.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
	api := &model.AppView{App: webApp(func(a *v1alpha1.Application) { a.Name, a.UID = "api", "uid-api" }), Env: "unknown"}
	s.SetApp(web)
	s.SetApp(api)
	s.Finished(&model.Operation{UID: "uid-web", Namespace: "argocd", Name: "web", Result: model.ResultFailed, StartedAt: t0, FinishedAt: at(time.Second)})
	s.DeleteApp(web.Key())
	if s.Len() != 1 {
		t.Fatalf("store holds %d apps, want 1", s.Len())
	}
	var text bytes.Buffer
	if _, err := s.WriteTo(&text); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(text.String(), "\n") {
		if strings.Contains(line, `name="web"`) {
			t.Errorf("a series of the deleted app: %s", line)
		}
	}
	if !strings.Contains(text.String(), `crowsnest_app_info{namespace="argocd",name="api",`) {
		t.Error("the other app's series went too")
	}
}
