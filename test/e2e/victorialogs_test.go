//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/loki"
	"github.com/crowsnest/crowsnest/internal/model"
)

// VictoriaLogs is a real VictoriaLogs on a loopback port, with its data in
// a fresh directory: it takes Loki's push API (protobuf+snappy, as crowsnest
// sends, and JSON) and answers LogsQL queries. Its one port serves both.
//
// What a Loki push becomes: each stream label is a field (and the stream,
// _stream), the entry's timestamp is _time, and a line that is a JSON
// object is parsed at ingestion into one field per key (nested keys
// joined with dots, numbers and booleans as text, arrays as their JSON
// text), so no `| unpack_json` is needed; such a line has no _msg (it reads
// "missing _msg field; ..."). A key that is also a stream label (env,
// project, event in crowsnest's lines) is stored twice with the same value.
// Any other line is _msg.
type VictoriaLogs struct {
	*Process
	// URL is its base URL, http://127.0.0.1:PORT.
	URL string
	// LokiURL is what crowsnest's --loki.url takes, URL+"/insert":
	// VictoriaLogs serves Loki's push at /insert/loki/api/v1/push and
	// crowsnest appends /loki/api/v1/push.
	LokiURL string
	client  *http.Client
}

// StartVictoriaLogs starts VictoriaLogs with an empty store and waits until
// it is ready.
func (e *Env) StartVictoriaLogs() *VictoriaLogs {
	e.t.Helper()
	dir := e.Dir("victorialogs")
	port := e.Port()
	v := &VictoriaLogs{
		URL:    fmt.Sprintf("http://127.0.0.1:%d", port),
		client: &http.Client{Timeout: 10 * time.Second},
	}
	v.LokiURL = v.URL + "/insert"
	e.t.Cleanup(v.client.CloseIdleConnections)
	v.Process = e.NewProcess("victoria-logs", bin.victoriaLogs,
		fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", port),
		"-storageDataPath="+dir,
		// Its minimum: new streams are found by stream filters within
		// about 2 s instead of 5 (Query flushes anyway).
		"-inmemoryDataFlushInterval=1s")
	v.Start()
	waitHTTP200(e, v.Process, v.URL+"/insert/loki/ready")
	return v
}

// Flush makes every line pushed so far queryable at once; without it a
// pushed line takes 1 to 2 s to show.
func (v *VictoriaLogs) Flush(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.URL+"/internal/force_flush", nil)
	if err != nil {
		return fmt.Errorf("victorialogs flush: %w", err)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("victorialogs flush: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("victorialogs flush: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// Query flushes (see Flush), then runs a LogsQL query over all time and
// returns the matching entries' fields, in no particular order (end the
// query with `| sort by (_time)` for time order). Every entry has _time
// (RFC 3339), _stream and _stream_id, and _msg unless it was a JSON line;
// every value is text. An empty result is no error; a query VictoriaLogs
// cannot parse is.
//
// LogsQL for Loki's selectors: {job="crowsnest", env="prod"} is the same
// in LogsQL (stream filter; =~ and !~ match the whole value, as in Loki);
// a JSON key of the line is a field: trace_id:="abc" (exact; trace_id:abc
// matches the word abc); field regexps match substrings:
// project:~"^(a|b)$".
func (v *VictoriaLogs) Query(ctx context.Context, logsql string) ([]map[string]string, error) {
	if err := v.Flush(ctx); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.URL+"/select/logsql/query",
		strings.NewReader(url.Values{"query": {logsql}}.Encode()))
	if err != nil {
		return nil, fmt.Errorf("victorialogs query %s: %w", logsql, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("victorialogs query %s: %w", logsql, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("victorialogs query %s: %s: %s", logsql, resp.Status, strings.TrimSpace(string(body)))
	}
	// One JSON object per line.
	var entries []map[string]string
	dec := json.NewDecoder(resp.Body)
	for {
		var entry map[string]string
		err := dec.Decode(&entry)
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return nil, fmt.Errorf("victorialogs query %s: decode entry %d: %w", logsql, len(entries)+1, err)
		}
		entries = append(entries, entry)
	}
}

// realStoresTimeout bounds how long a pushed trace or line may take to be
// read back from Jaeger or VictoriaLogs.
const realStoresTimeout = 30 * time.Second

// TestRealStores checks the Jaeger and VictoriaLogs helpers: a trace
// exported with OpenTelemetry's OTLP/HTTP exporter is read back from
// Jaeger's query API, and lines pushed in crowsnest's wire format (the
// loki package's pusher: protobuf+snappy) are found by LogsQL queries
// that stand for Loki's stream selectors and JSON field filters.
func TestRealStores(t *testing.T) {
	ctx := t.Context()
	env := NewEnv(t)
	jaeger := env.StartJaeger()
	vl := env.StartVictoriaLogs()

	// A trace of two spans.
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(jaeger.OTLPEndpoint+"/v1/traces"))
	if err != nil {
		t.Fatalf("OTLP exporter: %v", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "crowsnest-e2e"), attribute.String("host.name", "e2e"))))
	tracer := tp.Tracer("e2e")
	start := time.Now()
	rootCtx, root := tracer.Start(ctx, "sync argocd/guestbook", oteltrace.WithTimestamp(start),
		oteltrace.WithAttributes(attribute.String("argocd.app", "argocd/guestbook"), attribute.Int("argocd.sync.waves", 2)))
	_, wave := tracer.Start(rootCtx, "wave 1", oteltrace.WithTimestamp(start.Add(time.Second)))
	wave.AddEvent("resource applied", oteltrace.WithTimestamp(start.Add(1500*time.Millisecond)), oteltrace.WithAttributes(attribute.String("kind", "ConfigMap")))
	wave.SetStatus(codes.Error, "wave failed")
	wave.End(oteltrace.WithTimestamp(start.Add(2 * time.Second)))
	root.End(oteltrace.WithTimestamp(start.Add(3 * time.Second)))
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("export the trace: %v", err)
	}
	traceID, rootID, waveID := root.SpanContext().TraceID().String(), root.SpanContext().SpanID().String(), wave.SpanContext().SpanID().String()
	var tr *JaegerTrace
	took := eventually(t, realStoresTimeout, func() (err error) {
		tr, err = jaeger.Trace(ctx, traceID)
		return err
	})
	t.Logf("trace %s readable from Jaeger %v after its export returned", traceID, took.Round(time.Millisecond))
	if len(tr.Spans) != 2 {
		t.Fatalf("trace %s: %d spans %+v, want 2", traceID, len(tr.Spans), tr.Spans)
	}
	r, w := tr.Spans[0], tr.Spans[1]
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"trace id", tr.TraceID, traceID},
		{"root span id", r.SpanID, rootID},
		{"root parent", r.ParentSpanID, ""},
		{"root name", r.Name, "sync argocd/guestbook"},
		{"root service", r.Service, "crowsnest-e2e"},
		{"root resource host.name", r.Resource["host.name"], "e2e"},
		{"root start", r.Start, start.Truncate(time.Microsecond)},
		{"root duration", r.Duration, 3 * time.Second},
		{"root argocd.app", r.Attrs["argocd.app"], "argocd/guestbook"},
		{"root argocd.sync.waves", r.Attrs["argocd.sync.waves"], "2"},
		{"root span.kind", r.Attrs["span.kind"], "internal"},
		{"wave span id", w.SpanID, waveID},
		{"wave parent", w.ParentSpanID, rootID},
		{"wave name", w.Name, "wave 1"},
		{"wave duration", w.Duration, time.Second},
		{"wave error", w.Attrs["error"], "true"},
		{"wave status", w.Attrs["otel.status_code"], "ERROR"},
		{"wave status message", w.Attrs["otel.status_description"], "wave failed"},
		{"wave events", len(w.Events), 1},
		{"children of root", len(tr.Children(rootID)), 1},
		{"roots", len(tr.Root()), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if len(w.Events) == 1 {
		if ev := w.Events[0]; ev.Name != "resource applied" || ev.Attrs["kind"] != "ConfigMap" || !ev.Time.Equal(start.Add(1500*time.Millisecond).Truncate(time.Microsecond)) {
			t.Errorf("wave event = %+v, want resource applied {kind: ConfigMap} at %v", ev, start.Add(1500*time.Millisecond))
		}
	}
	if _, err := jaeger.Trace(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, ErrTraceNotFound) {
		t.Errorf("an unknown trace: error %v, want ErrTraceNotFound", err)
	}

	// Two lines in crowsnest's wire format, in streams labelled as
	// crowsnest labels them.
	pusher, err := loki.NewHTTPPusher(loki.Config{URL: vl.LokiURL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	line := func(app, project, env, traceID string) loki.Stream {
		e := loki.Event{Time: now.Add(-time.Minute), Event: model.FactSyncFinished, App: app, Project: project, Env: env, TraceID: traceID,
			Fields: map[string]any{"result": "Succeeded", "duration_seconds": 3.5, "wave": 2, "resources": []string{"a", "b"}}}
		return loki.Stream{
			Labels:  map[string]string{"job": "crowsnest", "env": env, "project": project, "event": e.Event},
			Entries: []loki.Entry{{Time: now, Line: e.Line()}},
		}
	}
	pushed := time.Now()
	if err := pusher.Push(ctx, []loki.Stream{line("argocd/guestbook", "shop", "prod", traceID), line("argocd/billing", "billing", "dev", "")}); err != nil {
		t.Fatalf("push to VictoriaLogs: %v", err)
	}
	// Without the flush, the lines show within about 2 s.
	var got []map[string]string
	took = eventually(t, realStoresTimeout, func() (err error) {
		got, err = vl.Query(ctx, `{job="crowsnest", env="prod"}`)
		if err == nil && len(got) != 1 {
			err = fmt.Errorf("stream selector: %d entries %v, want 1", len(got), got)
		}
		return err
	})
	t.Logf("pushed lines queryable %v after the push (%v since the push began)", took.Round(time.Millisecond), time.Since(pushed).Round(time.Millisecond))
	want := map[string]string{
		"_stream": `{env="prod",event="sync_finished",job="crowsnest",project="shop"}`,
		"_time":   now.UTC().Format(time.RFC3339Nano),
		// The line's keys, parsed at ingestion.
		"ts": now.Add(-time.Minute).UTC().Format(time.RFC3339Nano), "event": "sync_finished", "app": "argocd/guestbook",
		"project": "shop", "env": "prod", "trace_id": traceID, "result": "Succeeded", "duration_seconds": "3.5", "wave": "2",
		"resources": `["a","b"]`, "job": "crowsnest",
	}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("field %s = %q, want %q (entry %v)", k, got[0][k], v, got[0])
		}
	}
	for _, c := range []struct {
		logsql string
		want   int
	}{
		{`trace_id:="` + traceID + `"`, 1},
		{`{job="crowsnest"} trace_id:="` + traceID[:8] + `"`, 0},
		{`{project=~"shop|billing"}`, 2},
		{`{project=~"sho|billing"}`, 1}, // a stream regexp matches the whole value
		{`project:~"sho"`, 1},           // a field regexp matches a substring
		{`{job="crowsnest"} event:=sync_finished result:=Succeeded wave:>1`, 2},
		{`{job="crowsnest"} app:="argocd/billing" | unpack_json`, 1},
	} {
		got, err := vl.Query(ctx, c.logsql)
		if err != nil {
			t.Errorf("%v", err)
		} else if len(got) != c.want {
			t.Errorf("%s: %d entries %v, want %d", c.logsql, len(got), got, c.want)
		}
	}
	if _, err := vl.Query(ctx, `bad(((`); err == nil {
		t.Errorf("a query VictoriaLogs cannot parse gave no error")
	}
}

// TestRealStoresCrowsnest runs crowsnest against the real stores: one sync
// of an Application (its status written as Argo CD's controller would)
// must reach VictoriaLogs as a sync_finished line through --loki.url, and
// Jaeger as the trace that line names through --traces.otlp.endpoint.
func TestRealStoresCrowsnest(t *testing.T) {
	ctx := t.Context()
	env := NewEnv(t)
	jaeger := env.StartJaeger()
	vl := env.StartVictoriaLogs()
	etcd := env.StartEtcd()
	kas := env.StartKubeAPIServer(etcd)
	kas.InstallArgoCDCRDs()
	kas.CreateNamespace(argoCDNamespace)
	apps := kas.Apps(argoCDNamespace)

	cn := env.NewCrowsnest(kas.Kubeconfig, "--traces.otlp.endpoint="+jaeger.OTLPEndpoint,
		"--traces.otlp.protocol=http/protobuf", "--loki.url="+vl.LokiURL)
	cn.Process.Env = append(cn.Process.Env, "OTEL_BSP_SCHEDULE_DELAY=200")
	cn.Start()

	// crowsnest counts the operations that finish after its first event
	// (earlier ones are its baseline): billing's creation is that event.
	apps.Create(apps.New("billing", v1alpha1.SyncStatusCodeOutOfSync, health.HealthStatusHealthy))
	eventually(t, settleTimeout, func() error {
		return cn.ExpectSample(1, "crowsnest_app_sync_status", "name", "billing", "status", "OutOfSync")
	})
	guestbook := apps.Create(apps.New("guestbook", v1alpha1.SyncStatusCodeOutOfSync, health.HealthStatusHealthy))
	started := time.Now().Truncate(time.Second) // Argo CD keeps whole seconds
	apps.Update("guestbook", func(app *v1alpha1.Application) {
		app.Status.OperationState = &v1alpha1.OperationState{
			Operation: v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{Revision: revision}},
			Phase:     synccommon.OperationRunning,
			StartedAt: metav1.NewTime(started),
		}
	})
	time.Sleep(time.Second)
	apps.Update("guestbook", func(app *v1alpha1.Application) {
		app.Status.OperationState = finishedSync(revision, synccommon.OperationSucceeded, started, time.Now())
		app.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced
	})
	finished := time.Now()
	traceID := model.OperationID(string(guestbook.UID), started)

	query := `{job="crowsnest", event="sync_finished"} app:="argocd/guestbook"`
	var lines []map[string]string
	took := eventually(t, realStoresTimeout, func() (err error) {
		lines, err = vl.Query(ctx, query)
		if err == nil && len(lines) != 1 {
			err = fmt.Errorf("%s: %d entries %v, want 1", query, len(lines), lines)
		}
		return err
	})
	t.Logf("crowsnest's sync_finished line in VictoriaLogs %v after the sync finished: %v", took.Round(time.Millisecond), lines[0])
	if got := lines[0]["trace_id"]; got != traceID {
		t.Errorf("sync_finished trace_id = %q, want %q", got, traceID)
	}
	var tr *JaegerTrace
	took = eventually(t, realStoresTimeout, func() (err error) {
		tr, err = jaeger.Trace(ctx, traceID)
		return err
	})
	t.Logf("crowsnest's trace %s in Jaeger %v after the sync finished (%v after the line was found)", traceID,
		time.Since(finished).Round(time.Millisecond), took.Round(time.Millisecond))
	for _, s := range tr.Spans {
		t.Logf("span %s parent %q %q service %s start %v duration %v attrs %v resource %v events %v",
			s.SpanID, s.ParentSpanID, s.Name, s.Service, s.Start.Format(time.RFC3339Nano), s.Duration, s.Attrs, s.Resource, s.Events)
	}
	roots := tr.Root()
	if len(roots) != 1 {
		t.Fatalf("trace %s: %d root spans, want 1", traceID, len(roots))
	}
	if r := roots[0]; r.Name != "sync argocd/guestbook" || r.Service != "crowsnest" || r.Attrs["argocd.sync.result"] != "Succeeded" || !r.Start.Equal(started) {
		t.Errorf("root span %q of service %q, result %q, start %v; want sync argocd/guestbook of crowsnest, Succeeded, %v",
			r.Name, r.Service, r.Attrs["argocd.sync.result"], r.Start, started)
	}
}
