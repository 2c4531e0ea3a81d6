package cdevents

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/queue/queuetest"
)

// TestMain checks that every test leaves no goroutine behind: the sink
// owns its worker and Close ends it. Goroutines started by imported
// packages at init (a cache janitor) are not the sink's.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

// request is one POST a receiver got.
type request struct {
	method string
	header http.Header
	body   []byte
}

// receiver is a CloudEvents receiver: it records each request and answers
// the statuses of answers in turn, then 202. With a gate, each request
// waits for it to open (or for the client to give up) first.
type receiver struct {
	mu      sync.Mutex
	reqs    []request
	answers []answer

	gate     chan struct{}
	openOnce sync.Once
	arrived  chan struct{} // a value per request
}

type answer struct {
	code       int
	retryAfter string
}

// start serves rcv and returns its URL; the server stops (the gate opened
// first) when the test ends.
func (rcv *receiver) start(t *testing.T) string {
	t.Helper()
	rcv.arrived = make(chan struct{}, 1<<10)
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	t.Cleanup(rcv.open) // runs before srv.Close
	return srv.URL
}

func (rcv *receiver) open() {
	if rcv.gate != nil {
		rcv.openOnce.Do(func() { close(rcv.gate) })
	}
}

func (rcv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rcv.mu.Lock()
	rcv.reqs = append(rcv.reqs, request{method: r.Method, header: r.Header.Clone(), body: body})
	a := answer{code: http.StatusAccepted}
	if len(rcv.answers) > 0 {
		a, rcv.answers = rcv.answers[0], rcv.answers[1:]
	}
	rcv.mu.Unlock()
	select {
	case rcv.arrived <- struct{}{}:
	default:
	}
	if rcv.gate != nil {
		select {
		case <-rcv.gate:
		case <-r.Context().Done():
			return
		}
	}
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.WriteHeader(a.code)
}

func (rcv *receiver) requests() []request {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return append([]request(nil), rcv.reqs...)
}

// waitArrivals waits for n requests to arrive.
func (rcv *receiver) waitArrivals(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-rcv.arrived:
		case <-timeout:
			t.Fatalf("%d requests did not arrive", n)
		}
	}
}

// fast is a config for tests: short waits, a few retries.
func fast(url string) Config {
	return Config{
		URL:        url,
		Source:     "https://crowsnest.test/prod",
		BufferSize: 100,
		Timeout:    5 * time.Second,
		MaxRetries: 3,
		MinBackoff: time.Millisecond,
		MaxBackoff: 2 * time.Millisecond,
	}
}

// newSink returns a running sink and what stops it and waits for its
// flush (also at the test's end).
func newSink(t *testing.T, cfg Config, logger *slog.Logger) (*Sink, func()) {
	t.Helper()
	s, err := New(cfg, prometheus.NewRegistry(), logger)
	if err != nil {
		t.Fatal(err)
	}
	return s, queuetest.Start(t, s.Run)
}

// counts are a sink's counters.
type counts struct{ sent, bufferFull, pushFailed, rejected, shutdown int }

func countsOf(s *Sink) counts {
	d := func(r string) int { return int(testutil.ToFloat64(s.dropped.WithLabelValues(r))) }
	return counts{
		sent:       int(testutil.ToFloat64(s.sent)),
		bufferFull: d(ReasonQueueFull),
		pushFailed: d(ReasonPushFailed),
		rejected:   d(ReasonRejected),
		shutdown:   d(ReasonShutdown),
	}
}

// sendAll sends the records from a goroutine and fails the test if the
// Sends do not return within d in total: Send must never block.
func sendAll(t *testing.T, s *Sink, d time.Duration, recs ...*model.DeploymentRecord) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, r := range recs {
			s.Send(r)
		}
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%d Sends did not return within %s: Send blocks", len(recs), d)
	}
}

var (
	started  = time.Date(2026, 11, 30, 8, 59, 0, 0, time.UTC)
	finished = time.Date(2026, 11, 30, 9, 0, 0, 500_000_000, time.UTC)
)

// deployed is a succeeded single-source deployment with its commit.
func deployed(i int) *model.DeploymentRecord {
	return &model.DeploymentRecord{
		Deployment: &model.Deployment{
			UID: "uid-1", Namespace: "argocd", Name: "web", Project: "shop", Env: "prod", Dest: "prod-eu",
			Result:   model.DeploymentSucceeded,
			Revision: "b2c3d4e", PreviousRevision: "a1b2c3d",
			Initiator: "alice", StartedAt: started, FinishedAt: finished,
			TraceID: "0af7651916cd43dd8448eb211c80319" + strconv.Itoa(i%10),
		},
		Commit: &model.Commit{
			SHA: "9f8e7d6", RepoURL: "https://git.example.com/shop/web.git", Author: "Alice <alice@example.com>",
			Date: time.Date(2026, 11, 30, 7, 0, 0, 0, time.FixedZone("CET", 3600)), Subject: "Faster checkout",
			Referenced: true,
		},
		LeadTime: 3*time.Hour + 500*time.Millisecond,
	}
}

// rolledBack is a rollback of a multi-source app, its commit unknown.
func rolledBack() *model.DeploymentRecord {
	return &model.DeploymentRecord{Deployment: &model.Deployment{
		UID: "uid-2", Namespace: "team-a", Name: "api", Project: "core", Env: "staging",
		Result:    model.DeploymentRolledBack,
		Revisions: []string{"aaa111", "1.2.3+build.4"}, PreviousRevisions: []string{"bbb222", "1.3.0"},
		Initiator: "automated", StartedAt: started, FinishedAt: finished,
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}}
}

func failed() *model.DeploymentRecord {
	r := deployed(9)
	r.Deployment.Result = model.DeploymentFailed
	return r
}

const wantDeployed = `{
  "specversion": "1.0",
  "id": "0af7651916cd43dd8448eb211c803190-dev.cdevents.service.deployed.0.2.0",
  "source": "https://crowsnest.test/prod",
  "type": "dev.cdevents.service.deployed.0.2.0",
  "subject": "argocd/web",
  "time": "2026-11-30T09:00:00.5Z",
  "datacontenttype": "application/json",
  "data": {
    "context": {
      "version": "0.4.1",
      "id": "0af7651916cd43dd8448eb211c803190-dev.cdevents.service.deployed.0.2.0",
      "source": "https://crowsnest.test/prod",
      "type": "dev.cdevents.service.deployed.0.2.0",
      "timestamp": "2026-11-30T09:00:00.5Z"
    },
    "subject": {
      "id": "argocd/web",
      "source": "https://crowsnest.test/prod",
      "type": "service",
      "content": {
        "environment": {"id": "prod", "source": "https://crowsnest.test/prod"},
        "artifactId": "pkg:generic/argocd/web@b2c3d4e"
      }
    },
    "customDataContentType": "application/json",
    "customData": {
      "project": "shop",
      "env": "prod",
      "dest_cluster": "prod-eu",
      "result": "succeeded",
      "revision": "b2c3d4e",
      "previous_revision": "a1b2c3d",
      "initiator": "alice",
      "started_at": "2026-11-30T08:59:00Z",
      "trace_id": "0af7651916cd43dd8448eb211c803190",
      "author": "Alice <alice@example.com>",
      "commit_sha": "9f8e7d6",
      "commit_repo": "https://git.example.com/shop/web.git",
      "commit_time": "2026-11-30T06:00:00Z",
      "commit_subject": "Faster checkout",
      "commit_referenced": true,
      "lead_time_seconds": 10800.5
    }
  }
}`

const wantRolledBack = `{
  "specversion": "1.0",
  "id": "4bf92f3577b34da6a3ce929d0e0e4736-dev.cdevents.service.rolledback.0.2.0",
  "source": "https://crowsnest.test/prod",
  "type": "dev.cdevents.service.rolledback.0.2.0",
  "subject": "team-a/api",
  "time": "2026-11-30T09:00:00.5Z",
  "datacontenttype": "application/json",
  "data": {
    "context": {
      "version": "0.4.1",
      "id": "4bf92f3577b34da6a3ce929d0e0e4736-dev.cdevents.service.rolledback.0.2.0",
      "source": "https://crowsnest.test/prod",
      "type": "dev.cdevents.service.rolledback.0.2.0",
      "timestamp": "2026-11-30T09:00:00.5Z"
    },
    "subject": {
      "id": "team-a/api",
      "source": "https://crowsnest.test/prod",
      "type": "service",
      "content": {
        "environment": {"id": "staging", "source": "https://crowsnest.test/prod"},
        "artifactId": "pkg:generic/team-a/api@aaa111%2C1.2.3%2Bbuild.4"
      }
    },
    "customDataContentType": "application/json",
    "customData": {
      "project": "core",
      "env": "staging",
      "result": "rolled_back",
      "revisions": ["aaa111", "1.2.3+build.4"],
      "previous_revisions": ["bbb222", "1.3.0"],
      "initiator": "automated",
      "started_at": "2026-11-30T08:59:00Z",
      "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"
    }
  }
}`

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body is not one JSON object: %v\n%s", err, b)
	}
	if dec.More() {
		t.Fatalf("body holds more than one JSON value:\n%s", b)
	}
	return m
}

// Both event types carry every field, in the CloudEvents envelope and
// the CDEvent, and the customData; the request is structured mode with
// the configured headers.
func TestEventsOfBothTypes(t *testing.T) {
	rcv := &receiver{}
	cfg := fast(rcv.start(t))
	cfg.Headers = map[string]string{"Authorization": "Bearer t0ken", "X-Team": "platform"}
	s, stop := newSink(t, cfg, nil)
	sendAll(t, s, 5*time.Second, deployed(0), rolledBack())
	stop()

	reqs := rcv.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, want := range []string{wantDeployed, wantRolledBack} {
		r := reqs[i]
		if got := decode(t, r.body); !reflect.DeepEqual(got, decode(t, []byte(want))) {
			gotJSON, _ := json.MarshalIndent(got, "", "  ")
			t.Errorf("event %d:\n%s\nwant:\n%s", i, gotJSON, want)
		}
		if r.method != http.MethodPost {
			t.Errorf("method %s, want POST", r.method)
		}
		for k, want := range map[string]string{
			"Content-Type": "application/cloudevents+json", "Authorization": "Bearer t0ken", "X-Team": "platform",
		} {
			if got := r.header.Get(k); got != want {
				t.Errorf("event %d: %s %q, want %q", i, k, got, want)
			}
		}
		// Structured mode: no binary-mode ce-* headers.
		for k := range r.header {
			if strings.HasPrefix(strings.ToLower(k), "ce-") {
				t.Errorf("event %d: binary-mode header %s in structured mode", i, k)
			}
		}
	}
	if c := countsOf(s); c != (counts{sent: 2}) {
		t.Errorf("counters %+v, want 2 sent", c)
	}
}

// The wire form decodes back into the exported types unchanged.
func TestEventRoundTrip(t *testing.T) {
	for _, r := range []*model.DeploymentRecord{deployed(0), rolledBack()} {
		ev, ok := NewEvent(r, "/crowsnest")
		if !ok {
			t.Fatal("no event")
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var back CloudEvent
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&back, ev) {
			t.Errorf("round trip changed the event:\n%+v\nwant\n%+v", back, ev)
		}
	}
}

// A failed deployment deployed nothing: no event, no counter. Neither do
// records without a deployment.
func TestFailedDeploymentSendsNothing(t *testing.T) {
	rcv := &receiver{}
	s, stop := newSink(t, fast(rcv.start(t)), nil)
	sendAll(t, s, 5*time.Second, failed(), nil, &model.DeploymentRecord{}, deployed(1))
	stop()
	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1: the succeeded deployment's alone", len(reqs))
	}
	if got := decode(t, reqs[0].body)["id"]; got != "0af7651916cd43dd8448eb211c803191-"+TypeServiceDeployed {
		t.Errorf("sent %v, want the succeeded deployment's event", got)
	}
	if c := countsOf(s); c != (counts{sent: 1}) {
		t.Errorf("counters %+v, want 1 sent and no drops", c)
	}
	if _, ok := NewEvent(failed(), "/crowsnest"); ok {
		t.Error("NewEvent made an event of a failed deployment")
	}
}

// Each record is one POST carrying one event.
func TestOnePostPerRecord(t *testing.T) {
	rcv := &receiver{}
	s, stop := newSink(t, fast(rcv.start(t)), nil)
	var recs []*model.DeploymentRecord
	want := map[string]bool{}
	for i := range 10 {
		recs = append(recs, deployed(i))
		want["0af7651916cd43dd8448eb211c80319"+strconv.Itoa(i)+"-"+TypeServiceDeployed] = true
	}
	sendAll(t, s, 5*time.Second, recs...)
	stop()
	reqs := rcv.requests()
	if len(reqs) != len(recs) {
		t.Fatalf("%d requests for %d records", len(reqs), len(recs))
	}
	for _, r := range reqs {
		id, _ := decode(t, r.body)["id"].(string)
		if !want[id] {
			t.Errorf("unexpected or repeated event %q", id)
		}
		delete(want, id)
	}
	if c := countsOf(s); c != (counts{sent: 10}) {
		t.Errorf("counters %+v, want 10 sent", c)
	}
}

// A receiver that hangs forever: Send returns at once every time, the
// queue fills and drops are counted, and the worker stops within its
// flush timeout, counting what it could not post.
func TestHangingReceiverNeverBlocks(t *testing.T) {
	rcv := &receiver{gate: make(chan struct{})}
	cfg := fast(rcv.start(t))
	cfg.BufferSize = 4
	cfg.Timeout = time.Hour
	cfg.FlushTimeout = 100 * time.Millisecond
	s, stop := newSink(t, cfg, nil)

	s.Send(deployed(0))
	rcv.waitArrivals(t, 1) // the worker holds it, the buffer is empty
	var more []*model.DeploymentRecord
	for i := range 1000 {
		more = append(more, deployed(i))
	}
	sendAll(t, s, 5*time.Second, more...)
	if c := countsOf(s); c != (counts{bufferFull: 1000 - cfg.BufferSize}) {
		t.Errorf("counters %+v, want %d queue_full: the buffer holds %d", c, 1000-cfg.BufferSize, cfg.BufferSize)
	}

	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the sink did not stop after its flush timeout")
	}
	sendAll(t, s, time.Second, deployed(1)) // after the stop
	want := counts{bufferFull: 1000 - cfg.BufferSize, shutdown: 1 + cfg.BufferSize + 1}
	if c := countsOf(s); c != want {
		t.Errorf("counters %+v, want %+v: the one in flight, the buffered ones and the one after Close as shutdown", c, want)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// Each attempt is bounded by Timeout; a receiver that never answers costs
// MaxRetries+1 attempts, then the event is dropped as push_failed.
func TestAttemptTimeoutRetriedThenDropped(t *testing.T) {
	rcv := &receiver{gate: make(chan struct{})}
	cfg := fast(rcv.start(t))
	cfg.Timeout = 20 * time.Millisecond
	cfg.MaxRetries = 2
	s, stop := newSink(t, cfg, nil)
	s.Send(deployed(0))
	stop()
	if n := len(rcv.requests()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if c := countsOf(s); c != (counts{pushFailed: 1}) {
		t.Errorf("counters %+v, want 1 push_failed", c)
	}
}

// 500, then 429 asking for an hour, then success: retried within the
// backoff bounds and delivered once, the same event each time.
func TestRetriesThenDelivers(t *testing.T) {
	rcv := &receiver{answers: []answer{{code: 500}, {code: 429, retryAfter: "3600"}}}
	s, stop := newSink(t, fast(rcv.start(t)), nil)
	s.Send(deployed(0))
	stop() // within 10s: the Retry-After is capped at MaxBackoff
	reqs := rcv.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 (two retries)", len(reqs))
	}
	for _, r := range reqs[1:] {
		if !bytes.Equal(r.body, reqs[0].body) {
			t.Errorf("a retry sent another body:\n%s\nwant\n%s", r.body, reqs[0].body)
		}
	}
	if c := countsOf(s); c != (counts{sent: 1}) {
		t.Errorf("counters %+v, want 1 sent", c)
	}
}

// 4xx other than 429 is not retried: the event is dropped as rejected,
// and the next one goes out.
func TestRejectedNotRetried(t *testing.T) {
	for _, code := range []int{400, 401, 404, 413} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			rcv := &receiver{answers: []answer{{code: code}}}
			s, stop := newSink(t, fast(rcv.start(t)), nil)
			sendAll(t, s, time.Second, deployed(0), deployed(1))
			stop()
			if n := len(rcv.requests()); n != 2 {
				t.Errorf("%d requests, want 2: no retry of the rejected one", n)
			}
			if c := countsOf(s); c != (counts{sent: 1, rejected: 1}) {
				t.Errorf("counters %+v, want 1 rejected and 1 sent", c)
			}
		})
	}
}

// logRecorder keeps log records.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// text returns the records at level or above, one line each.
func (h *logRecorder) text(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		if r.Level < level {
			continue
		}
		var b strings.Builder
		b.WriteString(r.Level.String() + " " + r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.String())
			return true
		})
		out = append(out, b.String())
	}
	return out
}

// A failing receiver is logged once per failure streak, with the URL's
// credentials redacted, and its recovery once; exhausted retries count
// push_failed.
func TestFailureStreakLoggedOnce(t *testing.T) {
	var answers []answer
	for range 3 * 3 { // three events, three attempts each
		answers = append(answers, answer{code: 503})
	}
	rcv := &receiver{answers: answers}
	url := rcv.start(t)
	cfg := fast(strings.Replace(url, "http://", "http://bot:s3cret@", 1))
	cfg.MaxRetries = 2
	logs := &logRecorder{}
	s, stop := newSink(t, cfg, slog.New(logs))
	sendAll(t, s, time.Second, deployed(0), deployed(1), deployed(2), deployed(3))
	stop()

	if n := len(rcv.requests()); n != 10 {
		t.Errorf("%d requests, want 10: 3 attempts of 3 events, then 1", n)
	}
	if c := countsOf(s); c != (counts{sent: 1, pushFailed: 3}) {
		t.Errorf("counters %+v, want 3 push_failed and 1 sent", c)
	}
	lines := logs.text(slog.LevelInfo)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "WARN posting CloudEvents failing") ||
		!strings.HasPrefix(lines[1], "INFO posting CloudEvents recovered") {
		t.Errorf("logs:\n%s\nwant one warning and one recovery", strings.Join(lines, "\n"))
	}
	all := strings.Join(logs.text(slog.LevelDebug), "\n")
	if strings.Contains(all, "s3cret") || strings.Contains(all, "bot") {
		t.Errorf("credentials logged:\n%s", all)
	}
	if !strings.Contains(all, "url="+url) {
		t.Errorf("logs lack the redacted URL %s:\n%s", url, all)
	}
}

// Transport errors are retried and end as push_failed; the error logged
// carries no credentials.
func TestTransportErrorDropped(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	cfg := fast(strings.Replace(url, "http://", "http://bot:s3cret@", 1))
	logs := &logRecorder{}
	s, stop := newSink(t, cfg, slog.New(logs))
	s.Send(deployed(0))
	stop()
	if c := countsOf(s); c != (counts{pushFailed: 1}) {
		t.Errorf("counters %+v, want 1 push_failed", c)
	}
	all := strings.Join(logs.text(slog.LevelDebug), "\n")
	if !strings.Contains(all, "WARN posting CloudEvents failing") {
		t.Errorf("no warning:\n%s", all)
	}
	if strings.Contains(all, "s3cret") || strings.Contains(all, "bot") {
		t.Errorf("credentials logged:\n%s", all)
	}
}

// A stop posts what is queued before the worker returns.
func TestCloseFlushes(t *testing.T) {
	rcv := &receiver{gate: make(chan struct{})}
	s, stop := newSink(t, fast(rcv.start(t)), nil)
	s.Send(deployed(0))
	rcv.waitArrivals(t, 1) // in flight, held
	var recs []*model.DeploymentRecord
	for i := 1; i < 50; i++ {
		recs = append(recs, deployed(i))
	}
	sendAll(t, s, time.Second, recs...)

	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	// Let the receiver answer once the stop has begun: the 49 are still
	// queued.
	for deadline := time.Now().Add(10 * time.Second); !s.q.Stopped(); {
		if time.Now().After(deadline) {
			t.Fatal("the stop did not begin")
		}
		time.Sleep(time.Millisecond)
	}
	rcv.open()
	<-stopped
	if n := len(rcv.requests()); n != 50 {
		t.Errorf("%d requests after the stop, want 50", n)
	}
	if c := countsOf(s); c != (counts{sent: 50}) {
		t.Errorf("counters %+v, want 50 sent", c)
	}
}

// Both counters exist from the start, every drop reason's series at 0.
func TestMetricsFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Config{URL: "http://receiver.invalid"}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = s
	want := `
# HELP crowsnest_cloudevents_dropped_total CloudEvents of deployments dropped before the receiver accepted them, by reason (queue_full, push_failed, rejected, shutdown).
# TYPE crowsnest_cloudevents_dropped_total counter
crowsnest_cloudevents_dropped_total{reason="queue_full"} 0
crowsnest_cloudevents_dropped_total{reason="push_failed"} 0
crowsnest_cloudevents_dropped_total{reason="rejected"} 0
crowsnest_cloudevents_dropped_total{reason="shutdown"} 0
# HELP crowsnest_cloudevents_sent_total CloudEvents of deployments the receiver accepted (answered 2xx).
# TYPE crowsnest_cloudevents_sent_total counter
crowsnest_cloudevents_sent_total 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if _, err := New(Config{URL: "http://receiver.invalid"}, reg, nil); err == nil {
		t.Error("a second sink registered the same metrics")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error; "" for none
	}{
		{"ok", Config{URL: "https://events.example.com/ingest"}, ""},
		{"defaults only need a URL", Config{URL: "http://broker.knative-eventing.svc/default/default", MaxRetries: -1}, ""},
		{"no URL", Config{}, "--cloudevents.url: required"},
		{"no scheme", Config{URL: "receiver:8080"}, "--cloudevents.url"},
		{"not http", Config{URL: "ftp://receiver"}, "--cloudevents.url"},
		{"no host", Config{URL: "http://"}, "--cloudevents.url"},
		{"unparsable", Config{URL: "http://bot:s3cret@host:port"}, "--cloudevents.url"},
		{"source", Config{URL: "http://r", Source: "%zz"}, "--cloudevents.source"},
		{"buffer", Config{URL: "http://r", BufferSize: -1}, "--cloudevents.buffer-size"},
		{"timeout", Config{URL: "http://r", Timeout: -time.Second}, "--cloudevents.timeout"},
		{"backoffs", Config{URL: "http://r", MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "--cloudevents.max-backoff"},
		{"header name", Config{URL: "http://r", Headers: map[string]string{"Bad Name": "x"}}, "--cloudevents.header"},
		{"content type", Config{URL: "http://r", Headers: map[string]string{"content-type": "application/json"}}, "--cloudevents.header: Content-Type"},
		{"header value", Config{URL: "http://r", Headers: map[string]string{"Authorization": "Bearer s3cret\r\nX: y"}}, "--cloudevents.header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("secret in the error: %v", err)
			}
			if _, err := New(tc.cfg, nil, nil); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
}

func TestArtifactID(t *testing.T) {
	for _, tc := range []struct {
		d    model.Deployment
		want string
	}{
		{model.Deployment{Namespace: "argocd", Name: "web", Revision: "b2c3d4e"}, "pkg:generic/argocd/web@b2c3d4e"},
		{model.Deployment{Namespace: "argocd", Name: "chart", Revision: "1.2.3+build.4"}, "pkg:generic/argocd/chart@1.2.3%2Bbuild.4"},
		{model.Deployment{Namespace: "argocd", Name: "oci", Revision: "sha256:0b31"}, "pkg:generic/argocd/oci@sha256%3A0b31"},
		{model.Deployment{Namespace: "argocd", Name: "multi", Revisions: []string{"a", "b"}}, "pkg:generic/argocd/multi@a%2Cb"},
		{model.Deployment{Name: "x@y/z", Revision: "feature/é"}, "pkg:generic/x%40y%2Fz@feature%2F%C3%A9"},
		{model.Deployment{Namespace: "argocd", Name: "new"}, "pkg:generic/argocd/new"},
	} {
		if got := ArtifactID(&tc.d); got != tc.want {
			t.Errorf("ArtifactID(%s/%s@%s) = %q, want %q", tc.d.Namespace, tc.d.Name, tc.d.RevisionText(), got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	lo, hi := time.Second, time.Minute
	for v, want := range map[string]time.Duration{
		"":                              0,
		"soon":                          0,
		"-5":                            0,
		"0":                             lo,
		"10":                            10 * time.Second,
		"3600":                          hi,
		"Mon, 30 Nov 2026 09:00:20 GMT": 20 * time.Second,
		"Mon, 30 Nov 2026 08:00:00 GMT": lo,
	} {
		if got := retryAfter(v, now, lo, hi); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}
