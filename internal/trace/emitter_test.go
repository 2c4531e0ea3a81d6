package trace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/otlptest"
	"github.com/crowsnest/crowsnest/internal/queue/queuetest"
)

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// sampleOperation: a PreSync hook, two Sync waves (one failed), linked to
// the wave of an app-of-apps operation, retried once (crowsnest saw only
// the last attempt).
func sampleOperation() *model.Operation {
	return &model.Operation{
		UID: "uid-1", Namespace: "argocd", Name: "dev-backend", Project: "platform", Env: "dev", Dest: "prod-eu",
		Revision: "abc123", Initiator: "automated", Result: "Failed", Message: "one or more objects failed to apply",
		StartedAt: t0, FinishedAt: at(9 * time.Second), RetryCount: 1,
		Waves: []model.Wave{
			{Phase: "PreSync", Wave: 0, Start: at(time.Second), End: at(4 * time.Second), Resources: []model.Resource{
				{Group: "batch", Kind: "Job", Namespace: "backend", Name: "migrate", Status: "Synced", HookPhase: "Succeeded", HookType: "PreSync", Seen: at(time.Second)},
			}},
			{Phase: "Sync", Wave: 1, Start: at(4 * time.Second), End: at(7 * time.Second), Resources: []model.Resource{
				{Kind: "ConfigMap", Namespace: "backend", Name: "cfg", Status: "Synced", Message: "configmap/cfg created", Seen: at(4 * time.Second)},
			}},
			{Phase: "Sync", Wave: 2, Start: at(7 * time.Second), End: at(9500 * time.Millisecond), Resources: []model.Resource{
				{Group: "apps", Kind: "Deployment", Namespace: "backend", Name: "api", Status: "SyncFailed", Message: "admission webhook denied", Seen: at(8 * time.Second)},
			}},
		},
		Parent: &model.Link{TraceID: model.OperationID("root-uid", t0.Add(-5*time.Second)), SpanID: model.SpanID(model.OperationID("root-uid", t0.Add(-5*time.Second)), model.WavePath("Sync", 3))},
	}
}

// newEmitter returns a running emitter, its metrics, and what stops it
// and waits for its flush (also at the test's end).
func newEmitter(t *testing.T, c Config) (*Emitter, *Metrics, func()) {
	t.Helper()
	c, err := ResolveConfig(c, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry())
	e, err := NewEmitter(c, m, promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return e, m, queuetest.Start(t, e.Run)
}

func TestTraceOverOTLP(t *testing.T) {
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			var r otlptest.Receiver
			serve := r.ServeHTTPOn
			if proto == ProtocolGRPC {
				serve = r.ServeGRPC
			}
			endpoint, stop, err := serve()
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			e, m, stopEmitter := newEmitter(t, Config{Exporter: ExporterOTLP, Endpoint: endpoint, Protocol: proto, Version: "test"})
			op := sampleOperation()
			e.Finished(op)
			stopEmitter()
			checkSampleTrace(t, r.Spans(), op)
			if got := testutil.ToFloat64(m.exported); got != 6 {
				t.Errorf("spans_exported_total = %v, want 6", got)
			}
		})
	}
}

func checkSampleTrace(t *testing.T, spans []otlptest.Span, op *model.Operation) {
	t.Helper()
	traceID := op.TraceID()
	byName := map[string]otlptest.Span{}
	for _, s := range spans {
		if s.TraceID != traceID {
			t.Errorf("span %q in trace %s, want %s", s.Name, s.TraceID, traceID)
		}
		byName[s.Name] = s
	}
	if len(spans) != 6 || len(byName) != 6 {
		t.Fatalf("got %d spans (%d names), want root, 2 phases and 3 waves", len(spans), len(byName))
	}
	root := byName["sync argocd/dev-backend"]
	if root.SpanID != model.SpanID(traceID, model.RootPath) || root.ParentSpanID != "" {
		t.Errorf("root span id %s parent %q, want %s and none", root.SpanID, root.ParentSpanID, model.SpanID(traceID, model.RootPath))
	}
	// The root covers Argo CD's times, stretched to the last wave crowsnest saw.
	if !root.Start.Equal(t0) || !root.End.Equal(at(9500*time.Millisecond)) {
		t.Errorf("root span [%v, %v], want [%v, %v]", root.Start, root.End, t0, at(9500*time.Millisecond))
	}
	for k, want := range map[string]string{
		AttrApp: "argocd/dev-backend", AttrProject: "platform", AttrEnv: "dev", AttrDestCluster: "prod-eu", AttrRevision: "abc123",
		AttrInitiator: "automated", AttrResult: "Failed", AttrRetryCount: "1", AttrPartial: "false",
		// OpenTelemetry's CI/CD and VCS conventions.
		"cicd.pipeline.name": "argocd/dev-backend", "cicd.pipeline.action.name": "SYNC",
		"cicd.pipeline.result": "failure", "cicd.pipeline.run.id": traceID, "vcs.ref.head.revision": "abc123",
	} {
		if got := root.Attrs[k]; got != want {
			t.Errorf("root attribute %s = %q, want %q", k, got, want)
		}
	}
	if !root.StatusError || root.Resource["service.name"] != "crowsnest" || root.Resource["service.version"] != "test" {
		t.Errorf("root status error %v, resource %v", root.StatusError, root.Resource)
	}
	if len(root.Links) != 1 || *op.Parent != (model.Link{TraceID: root.Links[0].TraceID, SpanID: root.Links[0].SpanID}) {
		t.Errorf("root links %v, want the parent wave %v", root.Links, *op.Parent)
	}
	if len(root.Events) != 0 {
		t.Errorf("root events %v, want none: every result is in a wave", root.Events)
	}
	for _, c := range []struct {
		name, parent string
		start, end   time.Duration
		events       []string
		failed       bool
	}{
		{"PreSync", "sync argocd/dev-backend", time.Second, 4 * time.Second, nil, false},
		{"Sync", "sync argocd/dev-backend", 4 * time.Second, 9500 * time.Millisecond, nil, true},
		{"wave 0", "PreSync", time.Second, 4 * time.Second, []string{"Job migrate"}, false},
		{"wave 1", "Sync", 4 * time.Second, 7 * time.Second, []string{"ConfigMap cfg"}, false},
		{"wave 2", "Sync", 7 * time.Second, 9500 * time.Millisecond, []string{"Deployment api"}, true},
	} {
		s := byName[c.name]
		if s.ParentSpanID != byName[c.parent].SpanID {
			t.Errorf("%s: parent %s, want %s", c.name, s.ParentSpanID, c.parent)
		}
		if !s.Start.Equal(at(c.start)) || !s.End.Equal(at(c.end)) {
			t.Errorf("%s: [%v, %v], want [%v, %v]", c.name, s.Start.Sub(t0), s.End.Sub(t0), c.start, c.end)
		}
		var events []string
		for _, e := range s.Events {
			events = append(events, e.Name)
		}
		if strings.Join(events, ",") != strings.Join(c.events, ",") {
			t.Errorf("%s: events %v, want %v", c.name, events, c.events)
		}
		if s.StatusError != c.failed {
			t.Errorf("%s: status error %v, want %v", c.name, s.StatusError, c.failed)
		}
	}
	ev := byName["wave 0"].Events[0].Attrs
	if ev[AttrResourceKind] != "Job" || ev[AttrResourceHookPhase] != "Succeeded" || ev[AttrResourceHookType] != "PreSync" || ev[AttrResourceStatus] != "Synced" {
		t.Errorf("hook event attributes %v", ev)
	}
	if w := byName["wave 2"].Attrs; w[AttrWave] != "2" || w[AttrPhase] != "Sync" || w[AttrResources] != "1" || w[AttrResult] != "Failed" ||
		w["cicd.pipeline.task.name"] != "Sync wave 2" || w["cicd.pipeline.task.type"] != "deploy" || w["cicd.pipeline.task.run.result"] != "failure" ||
		w["cicd.pipeline.task.run.id"] != traceID+"/"+model.AttemptWavePath(0, "Sync", 2) {
		t.Errorf("wave 2 attributes %v", w)
	}
	if w := byName["wave 1"].Attrs; w["cicd.pipeline.task.run.result"] != "success" {
		t.Errorf("wave 1 attributes %v", w)
	}
}

// An operation crowsnest did not watch whole: one root span, marked
// partial, with its resources as events.
func TestPartialOperationTrace(t *testing.T) {
	var r otlptest.Receiver
	endpoint, stop, err := r.ServeGRPC()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	e, _, stopEmitter := newEmitter(t, Config{Exporter: ExporterOTLP, Endpoint: endpoint, Protocol: ProtocolGRPC})
	op := &model.Operation{UID: "u", Namespace: "argocd", Name: "prod-backend", Result: "Succeeded", StartedAt: t0, FinishedAt: at(3 * time.Second), Partial: true,
		Resources: []model.Resource{{Kind: "ConfigMap", Name: "cfg", Status: "Synced", Seen: at(time.Hour)}}}
	e.Finished(op)
	stopEmitter()
	spans := r.Spans()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Attrs[AttrPartial] != "true" || s.StatusError || len(s.Events) != 1 || !s.Events[0].Time.Equal(at(3*time.Second)) {
		t.Errorf("partial span: attrs %v, error %v, events %v (want one, clamped to the end)", s.Attrs, s.StatusError, s.Events)
	}
}

// A collector that accepts connections and never answers: Finished never
// blocks, the queue stays bounded and dropped spans are counted.
func TestBlackholedCollectorNeverBlocks(t *testing.T) {
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "16")
			t.Setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16")
			t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "500")
			t.Setenv("OTEL_BSP_EXPORT_TIMEOUT", "1000")
			endpoint, stop, err := otlptest.Blackhole()
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			e, m, stopEmitter := newEmitter(t, Config{Exporter: ExporterOTLP, Endpoint: endpoint, Protocol: proto, QueueSize: 4, FlushTimeout: 3 * time.Second})
			const ops = 2000
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range ops {
					e.Finished(sampleOperation())
				}
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Finished blocked on a hung collector")
			}
			queued := testutil.ToFloat64(m.dropped.WithLabelValues("queue_full"))
			// At most the queue, the one being recorded and the
			// processor's queue and batch can be in flight.
			if max := float64(ops*6 - (4+1)*6 - 16 - 16 - 6); queued < max {
				t.Errorf("spans_dropped_total{queue_full} = %v, want at least %v", queued, max)
			}
			stopEmitter() // gives up with the collector still hung
			if failed := testutil.ToFloat64(m.dropped.WithLabelValues("export_failed")); failed == 0 {
				t.Errorf("spans_dropped_total{export_failed} = 0 after the export timed out")
			}
		})
	}
}

func TestResolveConfig(t *testing.T) {
	for _, c := range []struct {
		desc      string
		in        Config
		env       map[string]string
		want      Config
		wantError string
	}{
		{desc: "nothing set: off", want: Config{Exporter: ExporterNone, Protocol: ProtocolHTTP}},
		{desc: "endpoint in env: otlp", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://tempo:4318"}, want: Config{Exporter: ExporterOTLP, Protocol: ProtocolHTTP}},
		{desc: "traces protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_TRACES_EXPORTER": "otlp"}, want: Config{Exporter: ExporterOTLP, Protocol: ProtocolGRPC}},
		{desc: "console is stdout", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, want: Config{Exporter: ExporterStdout, Protocol: ProtocolHTTP}},
		{desc: "flags win over env", in: Config{Exporter: ExporterNone, Protocol: ProtocolGRPC}, env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, want: Config{Exporter: ExporterNone, Protocol: ProtocolGRPC}},
		{desc: "endpoint flag: otlp", in: Config{Endpoint: "http://tempo:4317"}, want: Config{Exporter: ExporterOTLP, Endpoint: "http://tempo:4317", Protocol: ProtocolHTTP}},
		{desc: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, wantError: "OTEL_TRACES_EXPORTER"},
		{desc: "unknown protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantError: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{desc: "bad endpoint", in: Config{Endpoint: "tempo:4317"}, wantError: "--traces.otlp.endpoint"},
		{desc: "file", in: Config{Exporter: ExporterFile, File: "/tmp/t.jsonl"}, want: Config{Exporter: ExporterFile, Protocol: ProtocolHTTP}},
		{desc: "file without a file", in: Config{Exporter: ExporterFile}, wantError: "--traces.file"},
	} {
		got, err := ResolveConfig(c.in, func(k string) string { return c.env[k] })
		if c.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantError) {
				t.Errorf("%s: error %v, want one naming %s", c.desc, err, c.wantError)
			}
			continue
		}
		resolved := func(c Config) [4]any { return [4]any{c.Exporter, c.Endpoint, c.Protocol, c.QueueSize} }
		if err != nil || resolved(got) != resolved(c.want) {
			t.Errorf("%s: got %+v, %v; want %+v", c.desc, got, err, c.want)
		}
	}
}

// partialCollector answers every OTLP export, over HTTP and gRPC, with a
// partial success refusing rejected spans with message msg.
type partialCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	rejected int64
	msg      string
}

func (c *partialCollector) response() *collectortrace.ExportTraceServiceResponse {
	return &collectortrace.ExportTraceServiceResponse{PartialSuccess: &collectortrace.ExportTracePartialSuccess{RejectedSpans: c.rejected, ErrorMessage: c.msg}}
}

// Export implements the OTLP gRPC trace service.
func (c *partialCollector) Export(context.Context, *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	return c.response(), nil
}

// ServeHTTP implements OTLP/HTTP with protobuf bodies.
func (c *partialCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	out, err := proto.Marshal(c.response())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// serve serves c over protocol on a free loopback port and returns its
// endpoint URL.
func (c *partialCollector) serve(t *testing.T, protocol string) string {
	t.Helper()
	if protocol == ProtocolHTTP {
		srv := httptest.NewServer(c)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return "http://" + l.Addr().String()
}

// A collector answering an OTLP partial success took the export but
// refused some spans: only those are dropped (reason rejected), the rest
// exported, with the real exporters and their error format.
func TestPartialSuccessCountsRejectedSpans(t *testing.T) {
	for _, protocol := range []string{ProtocolHTTP, ProtocolGRPC} {
		for _, tc := range []struct {
			name               string
			rejected           int64
			msg                string
			wantExp, wantDrops float64
		}{
			{"some refused", 2, "2 spans (of 6) older than the ingester's window (1h)", 4, 2},
			{"warning only", 0, "spans accepted; attribute values truncated", 6, 0},
			{"empty message", 1, "", 5, 1},
		} {
			t.Run(protocol+"/"+tc.name, func(t *testing.T) {
				c := &partialCollector{rejected: tc.rejected, msg: tc.msg}
				e, m, stopEmitter := newEmitter(t, Config{Exporter: ExporterOTLP, Endpoint: c.serve(t, protocol), Protocol: protocol})
				e.Finished(sampleOperation()) // 6 spans
				stopEmitter()
				exported := testutil.ToFloat64(m.exported)
				rejected := testutil.ToFloat64(m.dropped.WithLabelValues("rejected"))
				failed := testutil.ToFloat64(m.dropped.WithLabelValues("export_failed"))
				if exported != tc.wantExp || rejected != tc.wantDrops || failed != 0 {
					t.Errorf("exported %v, dropped rejected %v, export_failed %v; want %v, %v, 0", exported, rejected, failed, tc.wantExp, tc.wantDrops)
				}
			})
		}
	}
}

// rejectedSpans reads the exporters' partial success error wherever it
// sits in the error tree, and nothing else.
func TestRejectedSpans(t *testing.T) {
	partial := errors.New("OTLP partial success: bad (attribute) values (3 spans rejected)")
	for _, tc := range []struct {
		err    error
		want   int64
		wantOK bool
	}{
		{nil, 0, false},
		{errors.New("traces export: context deadline exceeded"), 0, false},
		{fmt.Errorf("traces export: %w", partial), 3, true},
		{fmt.Errorf("traces export: %w", errors.Join(partial, errors.New("closing body: boom"))), 3, true},
		{errors.Join(partial, fmt.Errorf("again: %w", errors.New("OTLP partial success: empty message (2 spans rejected)"))), 5, true},
		{errors.New("OTLP partial success: x (many spans rejected)"), 0, false},
	} {
		if got, ok := rejectedSpans(tc.err); got != tc.want || ok != tc.wantOK {
			t.Errorf("rejectedSpans(%v) = %d, %v; want %d, %v", tc.err, got, ok, tc.want, tc.wantOK)
		}
	}
}

// A deployment's root span carries its result, the revision it replaced,
// its commit and lead time, and the duration predicted when it began.
func TestDeploymentAttributes(t *testing.T) {
	var r otlptest.Receiver
	endpoint, stop, err := r.ServeGRPC()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	e, _, stopEmitter := newEmitter(t, Config{Exporter: ExporterOTLP, Endpoint: endpoint, Protocol: ProtocolGRPC})
	plain := &model.Operation{UID: "u", Namespace: "argocd", Name: "prod-web", Result: "Succeeded", StartedAt: t0, FinishedAt: at(3 * time.Second), Revision: "aaa"}
	deployed := *plain
	deployed.StartedAt, deployed.FinishedAt = at(time.Minute), at(time.Minute+40*time.Second)
	deployed.Revision = "bbb"
	deployed.PredictedFinish = at(time.Minute + 35*time.Second)
	deployed.Deployment = &model.Deployment{Result: model.DeploymentRolledBack, Revision: "bbb", PreviousRevision: "aaa"}
	deployed.Commit = &model.Commit{SHA: "c0de", RepoURL: "https://git.example.com/app.git", Author: "Alice <alice@example.com>", Date: at(-time.Hour), Referenced: true}
	e.Finished(plain)
	e.Finished(&deployed)
	stopEmitter()
	byRev := map[string]otlptest.Span{}
	for _, s := range r.Spans() {
		byRev[s.Attrs[AttrRevision]] = s
	}
	if _, ok := byRev["aaa"].Attrs[AttrDeploymentResult]; ok {
		t.Errorf("an operation that is no deployment has %s", AttrDeploymentResult)
	}
	want := map[string]string{
		AttrDeploymentResult: "rolled_back", AttrDeploymentPrevious: "aaa", AttrCommitSHA: "c0de",
		AttrCommitRepo: "https://git.example.com/app.git", AttrCommitAuthor: "Alice <alice@example.com>",
		AttrCommitTime: "2026-11-26T08:00:00Z", AttrCommitReferenced: "true", AttrLeadTime: "3700", AttrPredictedSeconds: "35",
	}
	got := byRev["bbb"].Attrs
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestPipelineResult(t *testing.T) {
	for result, want := range map[string]string{"Succeeded": "success", "Failed": "failure", "Error": "error", "Terminated": "cancellation", "Running": ""} {
		kv, ok := pipelineResult(result)
		if got := kv.Value.AsString(); got != want || ok != (want != "") {
			t.Errorf("pipelineResult(%q) = %q, %v; want %q", result, got, ok, want)
		}
	}
}
