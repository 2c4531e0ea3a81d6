package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/crowsnest/crowsnest/internal/daemon"
	"github.com/crowsnest/crowsnest/internal/demo"
	"github.com/crowsnest/crowsnest/internal/logtest"
	"github.com/crowsnest/crowsnest/internal/lokitest"
	"github.com/crowsnest/crowsnest/internal/otlptest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// running is the command, run in the background until the test ends.
type running struct {
	addr       string
	tracesFile string // where a demo writes its traces (startDemo)
	stdout     *logtest.Buffer
	stderr     *logtest.Buffer
	cancel     context.CancelFunc
	done       chan int
}

func startDaemon(t *testing.T, args ...string) *running {
	t.Helper()
	d := &running{stdout: &logtest.Buffer{}, stderr: &logtest.Buffer{}, done: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	// Port 0: the kernel picks a free port for the daemon itself, so no
	// other process can take it between a probe and the daemon's listen.
	go func() {
		d.done <- run(ctx, append([]string{"--web.listen-address=127.0.0.1:0"}, args...), d.stdout, d.stderr)
	}()
	d.addr = listeningOn(t, d)
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.done:
		case <-time.After(15 * time.Second):
			t.Error("daemon did not stop within 15 s")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.stderr.String())
		}
	})
	return d
}

// listeningOn waits for the daemon's "Listening on" log line and returns
// the address it names.
func listeningOn(t *testing.T, d *running) string {
	t.Helper()
	re := regexp.MustCompile(`msg="Listening on" address=(127\.0\.0\.1:[0-9]+)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(d.stderr.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-d.done:
			d.done <- code
			return "127.0.0.1:1" // exited; the test's own checks say why
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("the daemon did not listen within 30 s:\n%s", d.stderr.String())
	return ""
}

func (d *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (d *running) eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *running) families(t *testing.T) map[string]int {
	t.Helper()
	code, body := d.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]int{}
	for name, mf := range mfs {
		out[name] = len(mf.GetMetric())
	}
	return out
}

// recordingEvents counts the events in the embedded demo recording.
// recordingEvents counts the demo recording's Application events (its
// AppProject lines, "project" in place of "object", are not source events).
func recordingEvents() int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(demo.Recording()))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"object":`) {
			n++
		}
	}
	return n
}

// startDemo runs --demo without waiting and returns once the whole
// recording has been replayed.
func startDemo(t *testing.T, args ...string) *running {
	t.Helper()
	// Each demo its own traces file, not the shared default in /tmp.
	traces := filepath.Join(t.TempDir(), "traces.jsonl")
	d := startDaemon(t, append([]string{"--demo", "--replay.speed=0", "--traces.file=" + traces}, args...)...)
	d.tracesFile = traces
	want := recordingEvents()
	d.eventually(t, "the demo replay to finish", func() error {
		code, body := d.get(t, "/metrics")
		if code != http.StatusOK {
			return fmt.Errorf("/metrics %d", code)
		}
		total := 0
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "crowsnest_source_events_total{") {
				var v int
				fmt.Sscan(l[strings.LastIndex(l, " ")+1:], &v)
				total += v
			}
		}
		if total != want {
			return fmt.Errorf("%d of %d events replayed", total, want)
		}
		return nil
	})
	return d
}

// The README's first command: every state metric for the demo apps.
func TestDemoServesEveryStateMetric(t *testing.T) {
	d := startDemo(t)
	if code, body := d.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if code, _ := d.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	fams := d.families(t)
	for _, name := range []string{
		"crowsnest_app_info", "crowsnest_app_sync_status", "crowsnest_app_health_status",
		"crowsnest_app_operation_phase", "crowsnest_app_out_of_sync_resources",
		"crowsnest_app_drift_since_timestamp_seconds", "crowsnest_app_conditions",
		"crowsnest_app_last_sync_finished_timestamp_seconds", "crowsnest_app_last_successful_sync_timestamp_seconds",
		"crowsnest_app_syncs_total", "crowsnest_build_info", "crowsnest_source_up",
		"crowsnest_source_events_total", "crowsnest_source_last_event_timestamp_seconds",
	} {
		if fams[name] == 0 {
			t.Errorf("demo /metrics has no %s series", name)
		}
	}
	if code, body := d.get(t, "/"); code != http.StatusOK || !strings.Contains(body, "/metrics") {
		t.Errorf("landing page: %d, links to /metrics: %v", code, strings.Contains(body, "/metrics"))
	}
}

// readmeMetrics returns the metric names in the README's metrics table.
// readmeMetrics returns the metrics of README's table, each with whether
// its row says it may be without series in the demo: the Kubernetes
// source's (checked by the end-to-end run) and those present only while an
// app is in some state (pending, deleting).
func readmeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `(crowsnest_[a-z_]+)`( \\([^)]*\\))? \\|")
	names := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if m := row.FindStringSubmatch(l); m != nil {
			names[m[1]] = strings.Contains(m[2], "source") || strings.Contains(l, "present only while") || strings.Contains(l, "present only once")
		}
	}
	return names
}

// TestReadmeMetricsTableMatchesExposition: README's table lists exactly the
// families /metrics declares, and every one not marked conditional has
// series in the demo.
func TestReadmeMetricsTableMatchesExposition(t *testing.T) {
	d := startDemo(t)
	fams := d.families(t) // families with series (the parser drops empty ones)
	_, body := d.get(t, "/metrics")
	var exposed, documented []string
	for _, m := range regexp.MustCompile(`(?m)^# HELP (crowsnest_[a-z_]+) `).FindAllStringSubmatch(body, -1) {
		exposed = append(exposed, m[1])
	}
	readme := readmeMetrics(t)
	declared := map[string]bool{}
	for _, name := range exposed {
		declared[name] = true
	}
	for name, conditional := range readme {
		if !conditional || declared[name] {
			// Rows of one source's metrics (marked so) may be missing
			// from the demo's replay; the end-to-end run checks them.
			documented = append(documented, name)
		}
		if fams[name] == 0 && !conditional {
			t.Errorf("%s has no series in the demo and its README row does not say when it has", name)
		}
	}
	sort.Strings(exposed)
	sort.Strings(documented)
	if strings.Join(exposed, "\n") != strings.Join(documented, "\n") {
		t.Errorf("README metrics table and /metrics differ\nexposed:    %v\ndocumented: %v", exposed, documented)
	}
}

func TestBadConfigExitsNonZeroNamingFileLineAndField(t *testing.T) {
	for _, tc := range []struct {
		desc, doc string
		want      []string
	}{
		{"bad YAML", "environments:\n  - env: prod\n    match:\n\t  project: x\n", []string{"line 4"}},
		{"unknown field", "environments:\n  - env: prod\n    match:\n      projekt: x\n", []string{"line 4", "projekt"}},
		{"bad regex", "environments:\n  - env: dev\n    match:\n      name: '(dev'\n", []string{"line 4", "name", "(dev"}},
		{"an env twice in the promotion order", "promotion:\n  order:\n    - dev\n    - prod\n    - dev\n", []string{"line 5", "promotion.order[2]", "is already in the order"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "crowsnest.yml")
			if err := os.WriteFile(path, []byte(tc.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			// The daemon at start, and crowsnest check-config before it.
			for _, args := range [][]string{
				{"--demo", "--config.file=" + path, "--web.listen-address=" + freeAddr(t)},
				{"check-config", path},
			} {
				var stderr logtest.Buffer
				code := run(context.Background(), args, io.Discard, &stderr)
				if code != 1 {
					t.Fatalf("%s: exit code %d for a bad config, want 1", args[0], code)
				}
				for _, w := range append([]string{path}, tc.want...) {
					if !strings.Contains(stderr.String(), w) {
						t.Errorf("%s: stderr does not mention %q:\n%s", args[0], w, stderr.String())
					}
				}
			}
		})
	}
}

// check-config says what a valid file makes of the fleet, exits 0, and
// judges each file of several on its own.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	for path, doc := range map[string]string{
		good: "prod_environments: 'prod|prod-.*'\nenvironments:\n  - env: prod\n    match: {labels: {env: prod}}\n",
		bad:  "default_env: ''\n",
	} {
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"check-config", good}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d for a valid file: %s", code, stderr.String())
	}
	if want := good + `: valid: 1 environment rules, default env "unknown", paging environments "prod|prod-.*", 3 policies (the default ones), promotion dev > stage > prod (the default)`; strings.TrimSpace(stdout.String()) != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"check-config", good, bad}, &stdout, &stderr); code != 1 {
		t.Errorf("exit code %d for a valid and an invalid file, want 1", code)
	}
	if !strings.Contains(stdout.String(), good+": valid") || !strings.Contains(stderr.String(), bad+": line 1: field default_env: must not be empty") {
		t.Errorf("stdout %q stderr %q: want the valid file reported valid and the other's line and field", stdout.String(), stderr.String())
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"check-config", filepath.Join(dir, "missing.yml")}, io.Discard, &stderr); code == 0 || !strings.Contains(stderr.String(), "missing.yml") {
		t.Errorf("exit code %d for a missing file, stderr %q", code, stderr.String())
	}
}

func TestBadFlagsExitNonZero(t *testing.T) {
	for _, args := range [][]string{
		{"--source=replay"}, // no --replay.file
		{"--source=replay", "--replay.file=/nonexistent/rec.jsonl"},
		{"--source=carrier-pigeon"},
		{"--source=argocd-api"}, // no --argocd.server or token
		{"--source=argocd-api", "--argocd.server=127.0.0.1:1", "--argocd.token-file=/nonexistent/token"},
	} {
		if code := run(context.Background(), append(args, "--web.listen-address="+freeAddr(t)), io.Discard, io.Discard); code == 0 {
			t.Errorf("run(%v) exited 0", args)
		}
	}
	// Bad outputs name the flag or variable.
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--alertmanager.url=alertmanager:9093"}, want: "--alertmanager.url"},
		{args: []string{"--web.telemetry-path=/healthz"}, want: "--web.telemetry-path"},
		{args: []string{"--web.telemetry-path=metrics"}, want: "--web.telemetry-path"},
		{args: []string{"--alertmanager.evaluation-interval=0s"}, want: "--alertmanager.evaluation-interval"},
		{args: []string{"--web.write-timeout=-1s"}, want: "--web.write-timeout"},
		{args: []string{"--replay.speed=-2"}, want: "--replay.speed"},
		{args: []string{"--deployments.failure-window=0s"}, want: "--deployments.failure-window"},
		{args: []string{"--cloudevents.url=receiver:8080"}, want: "--cloudevents.url"},
		{args: []string{"--traces.otlp.endpoint=tempo:4317"}, want: "--traces.otlp.endpoint"},
		{args: []string{"--loki.url=http://loki:3100", "--loki.max-line-bytes=100"}, want: "--loki.max-line-bytes"},
		{args: []string{"--total-shards=0"}, want: "--total-shards: must be at least 1"},
		{args: []string{"--shard=2", "--total-shards=2"}, want: "--shard: must be less than --total-shards (2), got 2"},
		{args: []string{"--shard=-1", "--total-shards=2"}, want: "--shard: must not be negative"},
		{args: []string{"--shard=", "--total-shards=2"}, want: `is not a number (in the chart`},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, want: "OTEL_TRACES_EXPORTER"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		var stderr logtest.Buffer
		code := run(context.Background(), append([]string{"--demo", "--web.listen-address=" + freeAddr(t)}, tc.args...), io.Discard, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run(%v, env %v) = %d, stderr %q: want 1 and a message naming %s", tc.args, tc.env, code, stderr.String(), tc.want)
		}
		for k := range tc.env {
			os.Unsetenv(k)
		}
	}
}

func TestConfigReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crowsnest.yml")
	write := func(doc string) {
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("default_env: before\n")
	// Without --web.enable-lifecycle, /-/reload refuses (403) and changes nothing.
	closed := startDemo(t, "--config.file="+path)
	if resp, err := http.Post("http://"+closed.addr+"/-/reload", "", nil); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("/-/reload without --web.enable-lifecycle: %v, %v; want 403", resp, err)
	}
	d := startDemo(t, "--config.file="+path, "--web.enable-lifecycle")
	hasEnv := func(env string) bool {
		_, body := d.get(t, "/metrics")
		return strings.Contains(body, `name="prod-backend",project="default",env="`+env+`"`)
	}
	if !hasEnv("before") {
		t.Fatal("prod-backend not in env before")
	}
	write("environments:\n  - env: prod\n    match:\n      name: 'prod-.*'\n")
	resp, err := http.Post("http://"+d.addr+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !hasEnv("prod") {
		t.Errorf("after a good reload: status %d, prod-backend in prod: %v", resp.StatusCode, hasEnv("prod"))
	}
	write("environments: [\n")
	resp, err = http.Post("http://"+d.addr+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !hasEnv("prod") {
		t.Errorf("after a bad reload: status %d (want 500), still in prod: %v", resp.StatusCode, hasEnv("prod"))
	}
	_, body := d.get(t, "/metrics")
	if !strings.Contains(body, "crowsnest_config_last_reload_successful 0") {
		t.Error("crowsnest_config_last_reload_successful is not 0 after a bad reload")
	}
}

func TestShutdownOnCancel(t *testing.T) {
	d := startDemo(t)
	start := time.Now()
	d.cancel()
	select {
	case code := <-d.done:
		d.done <- code // for the cleanup
		if code != 0 {
			t.Errorf("exit code %d after a clean shutdown", code)
		}
	case <-time.After(daemon.ShutdownTimeout + 2*time.Second):
		t.Fatalf("no shutdown within %v", daemon.ShutdownTimeout)
	}
	t.Logf("shut down in %v", time.Since(start))
}

// The demo prints its traces to standard output: the root app-of-apps
// sync with its five waves, nested root > phase > wave.
func TestDemoWritesTraces(t *testing.T) {
	d := startDemo(t)
	type span struct {
		Name        string
		SpanContext struct{ TraceID, SpanID string }
		Parent      struct{ SpanID string }
	}
	var root span
	var spans []span
	d.eventually(t, "the root sync's spans in the traces file", func() error {
		spans = nil
		b, err := os.ReadFile(d.tracesFile)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			var s span
			if json.Unmarshal([]byte(l), &s) == nil && s.Name != "" {
				spans = append(spans, s)
				if s.Name == "sync argocd/root" {
					root = s
				}
			}
		}
		if root.Name == "" {
			return fmt.Errorf("%d spans, none is the root sync", len(spans))
		}
		return nil
	})
	var phase span
	waves := 0
	for _, s := range spans {
		if s.SpanContext.TraceID != root.SpanContext.TraceID {
			continue
		}
		switch {
		case s.Name == "Sync" && s.Parent.SpanID == root.SpanContext.SpanID:
			phase = s
		case strings.HasPrefix(s.Name, "wave "):
			waves++
		}
	}
	if phase.Name == "" || waves != 5 {
		t.Errorf("root trace has phase span %v and %d wave spans, want a Sync span under the root and 5 waves", phase.Name != "", waves)
	}
	// The terminal shows crowsnest's log, and says where the traces are:
	// no span on standard output.
	if out := d.stdout.String(); strings.Contains(out, `"SpanContext"`) {
		t.Errorf("spans on standard output:\n%.500s", out)
	}
	if log := d.stderr.String(); !strings.Contains(log, `msg="where to look" metrics=http://127.0.0.1:0/metrics traces=`+d.tracesFile) {
		t.Errorf("the log does not say where to look (/metrics, the traces in %s):\n%.2000s", d.tracesFile, log)
	}
	for _, s := range spans {
		if s.SpanContext.TraceID == root.SpanContext.TraceID && strings.HasPrefix(s.Name, "wave ") && s.Parent.SpanID != phase.SpanContext.SpanID {
			t.Errorf("%s: parent %s, want the Sync phase span %s", s.Name, s.Parent.SpanID, phase.SpanContext.SpanID)
		}
	}
}

// A collector that accepts connections and never answers changes nothing
// for the tracker and /metrics: the demo replays to the same state as with
// tracing off, /metrics answers throughout, and the dropped spans are
// counted.
func TestBlackholedCollectorLeavesMetricsAlone(t *testing.T) {
	t.Setenv("OTEL_BSP_EXPORT_TIMEOUT", "1000")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	endpoint, stop, err := otlptest.Blackhole()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	stateLines := func(d *running) []string {
		_, body := d.get(t, "/metrics")
		var out []string
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "crowsnest_app_") || strings.HasPrefix(l, "crowsnest_sync_duration_seconds_count") {
				out = append(out, l)
			}
		}
		sort.Strings(out)
		return out
	}
	off := startDemo(t, "--traces.exporter=none")
	want := stateLines(off)
	for _, proto := range []string{"grpc", "http/protobuf"} {
		d := startDemo(t, "--traces.otlp.endpoint="+endpoint, "--traces.otlp.protocol="+proto)
		if got := stateLines(d); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: state with a hung collector differs from tracing off:\n%s", proto, strings.Join(got, "\n"))
		}
		d.eventually(t, "dropped spans counted", func() error {
			if fams := d.families(t); fams["crowsnest_spans_dropped_total"] == 0 {
				return fmt.Errorf("no crowsnest_spans_dropped_total")
			}
			_, body := d.get(t, "/metrics")
			if !strings.Contains(body, `crowsnest_spans_dropped_total{reason="export_failed"} `) || strings.Contains(body, `crowsnest_spans_dropped_total{reason="export_failed"} 0`) {
				return fmt.Errorf("no export failures counted yet")
			}
			if !strings.Contains(body, "crowsnest_spans_exported_total 0") {
				return fmt.Errorf("spans exported to a blackhole")
			}
			return nil
		})
	}
}

// The demo's facts reach Loki's push protocol with low-cardinality stream
// labels and the trace id in the line, through 429 answers; a Loki that
// hangs changes nothing for /metrics and costs dropped, counted events.
func TestLokiEvents(t *testing.T) {
	var r lokitest.Receiver
	url, stop, err := r.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	r.FailNext(2, http.StatusTooManyRequests)
	d := startDemo(t, "--traces.exporter=none", "--loki.url="+url, "--loki.tenant=platform")
	var root lokitest.Entry
	d.eventually(t, "root's sync_finished in Loki", func() error {
		for _, e := range r.Entries() {
			if e.Labels["event"] == "sync_finished" && strings.Contains(e.Line, `"app":"argocd/root"`) {
				root = e
				return nil
			}
		}
		return fmt.Errorf("%d entries, no sync_finished of root", len(r.Entries()))
	})
	if want := map[string]string{"job": "crowsnest", "env": "mgmt", "project": "default", "dest_cluster": "in-cluster", "event": "sync_finished"}; fmt.Sprint(root.Labels) != fmt.Sprint(want) || root.Tenant != "platform" {
		t.Errorf("stream %v tenant %q, want %v and platform", root.Labels, root.Tenant, want)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(root.Line), &line); err != nil || len(fmt.Sprint(line["trace_id"])) != 32 || line["result"] != "Succeeded" {
		t.Errorf("line %s (%v): want JSON with a 32-digit trace_id and result Succeeded", root.Line, err)
	}
	statuses := map[int]int{}
	for _, q := range r.Requests() {
		statuses[q.Status]++
	}
	if statuses[http.StatusTooManyRequests] != 2 || statuses[http.StatusNoContent]+statuses[http.StatusOK] == 0 {
		t.Errorf("push answers %v, want two 429s then success", statuses)
	}
	// Every fact crowsnest logged reached Loki once, despite the 429s.
	logged := strings.Count(d.stderr.String(), " event=")
	d.eventually(t, "every fact in Loki", func() error {
		if n := len(r.Entries()); n != logged {
			return fmt.Errorf("%d entries in Loki, %d facts logged", n, logged)
		}
		return nil
	})

	var hung lokitest.Receiver
	hungURL, stopHung, err := hung.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stopHung()
	hung.Hang()
	defer hung.Release()
	h := startDemo(t, "--traces.exporter=none", "--loki.url="+hungURL, "--loki.buffer-size=5", "--loki.timeout=300ms", "--loki.max-retries=0")
	if code, _ := h.get(t, "/metrics"); code != http.StatusOK {
		t.Fatalf("/metrics = %d with a hung Loki", code)
	}
	h.eventually(t, "dropped events counted", func() error {
		_, body := h.get(t, "/metrics")
		for _, reason := range []string{"queue_full", "push_failed"} {
			if !regexp.MustCompile(`crowsnest_events_dropped_total\{reason="` + reason + `"\} [1-9]`).MatchString(body) {
				return fmt.Errorf("no %s drops counted yet", reason)
			}
		}
		return nil
	})
}

// TestLokiCredentialsNeverLogged: secrets in --loki.url and in the
// credential files reach Loki and no log line.
func TestLokiCredentialsNeverLogged(t *testing.T) {
	var r lokitest.Receiver
	lokiURL, stop, err := r.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	const urlSecret, fileSecret = "url-pa55word-xyz", "file-pa55word-xyz"
	withUser := strings.Replace(lokiURL, "://", "://crowsnest:"+urlSecret+"@", 1)
	d := startDemo(t, "--traces.exporter=none", "--loki.url="+withUser, "--log.level=debug")
	d.eventually(t, "an entry in Loki", func() error {
		if len(r.Entries()) == 0 {
			return errors.New("none yet")
		}
		return nil
	})
	if got := r.Requests()[0].Authorization; got == "" {
		t.Error("the URL's user information did not reach Loki as basic auth")
	}

	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var r2 lokitest.Receiver
	lokiURL2, stop2, err := r2.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	f := startDemo(t, "--traces.exporter=none", "--loki.url="+lokiURL2, "--loki.username=crowsnest", "--loki.password-file="+pw, "--log.level=debug")
	f.eventually(t, "an entry in Loki", func() error {
		if len(r2.Entries()) == 0 {
			return errors.New("none yet")
		}
		return nil
	})
	if got, want := r2.Requests()[0].Authorization, "Basic "+base64.StdEncoding.EncodeToString([]byte("crowsnest:"+fileSecret)); got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
	for name, log := range map[string]string{"url": d.stderr.String(), "file": f.stderr.String()} {
		if !strings.Contains(log, "pushing events to Loki") {
			t.Errorf("%s: no start-up line about Loki in the log", name)
		}
		for _, secret := range []string{urlSecret, fileSecret} {
			if strings.Contains(log, secret) {
				t.Errorf("%s: the log holds the secret %q:\n%s", name, secret, log)
			}
		}
	}

	// A bad URL's error names the flag, not the secret.
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--demo", "--web.listen-address=" + freeAddr(t), "--loki.url=ftp://u:" + urlSecret + "@loki:3100"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "--loki.url") || strings.Contains(stderr.String(), urlSecret) {
		t.Errorf("exit %d, stderr %q: want non-zero, naming --loki.url, without the secret", code, stderr.String())
	}
	// A password file without a user is refused.
	stderr.Reset()
	code = run(context.Background(), []string{"--demo", "--web.listen-address=" + freeAddr(t), "--loki.url=" + lokiURL2, "--loki.password-file=" + pw}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "--loki.password-file") {
		t.Errorf("exit %d, stderr %q: want non-zero naming --loki.password-file", code, stderr.String())
	}
}

// TestNoGoroutineLeftAfterShutdown runs the daemon with every output on
// (traces over OTLP, Loki, direct paging, the demo source, HTTP), stops it
// as SIGTERM does, and checks that every goroutine it started was joined.
func TestNoGoroutineLeftAfterShutdown(t *testing.T) {
	var loki lokitest.Receiver
	lokiURL, stopLoki, err := loki.Start()
	if err != nil {
		t.Fatal(err)
	}
	otlp := &otlptest.Receiver{}
	otlpURL, stopOTLP, err := otlp.ServeHTTPOn()
	if err != nil {
		t.Fatal(err)
	}
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	// The test's own servers and the runtime's goroutines are not the
	// daemon's; http.DefaultTransport's idle connections close with the
	// servers.
	ignore := goleak.IgnoreCurrent()

	d := &running{stdout: &logtest.Buffer{}, stderr: &logtest.Buffer{}, done: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		d.done <- run(ctx, []string{"--demo", "--web.listen-address=127.0.0.1:0", "--replay.speed=0",
			"--traces.otlp.endpoint=" + otlpURL, "--loki.url=" + lokiURL, "--alertmanager.url=" + am.URL}, d.stdout, d.stderr)
	}()
	addr := listeningOn(t, d)
	stderr, done := d.stderr, d.done
	deadline := time.Now().Add(30 * time.Second)
	for len(loki.Entries()) == 0 || len(otlp.Spans()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no events in Loki or spans in the collector within 30 s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cancel() // what SIGTERM does through signal.NotifyContext
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d:\n%s", code, stderr.String())
		}
	case <-time.After(daemon.ShutdownTimeout + 5*time.Second):
		t.Fatal("no shutdown")
	}
	stopLoki()
	stopOTLP()
	am.Close()
	http.DefaultClient.CloseIdleConnections()
	if err := goleak.Find(ignore); err != nil {
		t.Errorf("goroutines left after shutdown: %v", err)
	}
}

// The demo recording ends showing what issue 12's signals look like: a
// terminated sync, one waiting for a controller, a prod app a deny window
// holds, and a hook's wave read from its Job (recorded workloads).
func TestDemoShowsTheSignals(t *testing.T) {
	d := startDemo(t)
	d.eventually(t, "the signals in the demo", func() error {
		_, body := d.get(t, "/metrics")
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			return err
		}
		has := func(name string, value float64, labels map[string]string) bool {
			for _, m := range mfs[name].GetMetric() {
				match := m.GetGauge().GetValue() == value
				for k, v := range labels {
					found := false
					for _, l := range m.GetLabel() {
						if l.GetName() == k && l.GetValue() == v {
							found = true
						}
					}
					match = match && found
				}
				if match {
					return true
				}
			}
			return false
		}
		for _, c := range []struct {
			name   string
			labels map[string]string
		}{
			{"crowsnest_app_operation_phase", map[string]string{"phase": "Terminated"}},
			{"crowsnest_app_operation_phase", map[string]string{"phase": "Pending"}},
			{"crowsnest_app_sync_window_held", nil},
			{"crowsnest_app_workload_job_status", map[string]string{"status": "Complete"}},
		} {
			if !has(c.name, 1, c.labels) {
				return fmt.Errorf("no %s%v at 1", c.name, c.labels)
			}
		}
		hookWave := false
		for _, m := range mfs["crowsnest_app_last_sync_wave_duration_seconds"].GetMetric() {
			var phase, wave string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "phase":
					phase = l.GetValue()
				case "wave":
					wave = l.GetValue()
				}
			}
			hookWave = hookWave || phase == "PreSync" && wave != "unknown"
		}
		if !hookWave {
			return fmt.Errorf("no PreSync wave with a known number: the recorded hook Jobs gave none")
		}
		return nil
	})
}

// TestHelpListsTheDaemonFlags: a bare --help shows the daemon's own flags,
// as a Prometheus exporter's does, and names the record command; record
// --help still shows record's.
func TestHelpListsTheDaemonFlags(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"serve", "--help"}} {
		var out strings.Builder
		if code := run(context.Background(), args, &out, io.Discard); code != 0 {
			t.Fatalf("run(%v) = %d, want 0", args, code)
		}
		for _, want := range []string{"--web.listen-address", "--web.config.file", "--config.file", "--source", "--argocd.server",
			"--loki.url", "--alertmanager.url", "--leader-elect", "--shard", "--total-shards", "--traces.exporter", "--cloudevents.url", "--log.level", "record --help"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("run(%v) does not show %s:\n%s", args, want, out.String())
			}
		}
	}
	var out strings.Builder
	if code := run(context.Background(), []string{"record", "--help"}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "--out") {
		t.Errorf("record --help = %d:\n%s\nwant 0 and --out", code, out.String())
	}
}
