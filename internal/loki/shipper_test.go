package loki

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crowsnest/crowsnest/internal/lokitest"
	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/queue/queuetest"
)

// start serves a lokitest receiver and returns it with a config pointing at
// it, tuned for fast tests.
func start(t *testing.T) (*lokitest.Receiver, Config) {
	t.Helper()
	rcv := &lokitest.Receiver{}
	url, stop, err := rcv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.BatchWait = 20 * time.Millisecond
	cfg.MinBackoff = 20 * time.Millisecond
	cfg.MaxBackoff = 80 * time.Millisecond
	cfg.MaxRetries = 3
	cfg.Timeout = 2 * time.Second
	return rcv, cfg
}

// newShipper returns a running shipper, its registry, and what stops it
// and waits for its flush.
func newShipper(t *testing.T, cfg Config) (*Shipper, *prometheus.Registry, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg, run(t, s)
}

// run starts s's worker; the func returned stops it and waits for its
// flush (also at the test's end).
func run(t *testing.T, s *Shipper) func() { return queuetest.Start(t, s.Run) }

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dropped(s *Shipper, reason string) int {
	return int(testutil.ToFloat64(s.dropped.WithLabelValues(reason)))
}

func sent(s *Shipper) int { return int(testutil.ToFloat64(s.sent)) }

func ev(i int) Event {
	return Event{
		Time:    time.Date(2025, 1, 2, 3, 4, 5, i, time.UTC),
		Event:   model.FactSyncFinished,
		App:     "argocd/app",
		Project: "payments",
		Env:     "dev",
		Fields:  map[string]any{"i": i},
	}
}

// sendAll sends events from a goroutine and fails the test if Send does not
// return within d in total: Send must never block.
func sendAll(t *testing.T, s *Shipper, n int, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			s.Send(ev(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%d Sends did not return within %s: Send blocks", n, d)
	}
}

func TestDeliversLabelsLinesTenant(t *testing.T) {
	rcv, cfg := start(t)
	cfg.Tenant = "team-a"
	cfg.Job = "crowsnest-test"
	s, reg, stop := newShipper(t, cfg)

	at := time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.UTC)
	before := time.Now()
	s.Send(Event{
		Time: at, Event: model.FactSyncFinished, App: "argocd/shop", Project: "payments", Env: "prod", DestCluster: "prod-eu",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Fields:  map[string]any{"result": "Succeeded", "duration_seconds": 12.5, "revision": "abc123", "ts": "collides"},
	})
	// An app of the same name in another cluster: its own stream.
	s.Send(Event{Time: at.Add(time.Second), Event: model.FactDriftBegan, App: "argocd/shop", Project: "payments", Env: "prod", DestCluster: "prod-us"})

	after := time.Now()
	got, err := rcv.WaitEntries(ctxT(t, 5*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}
	byEvent := map[string]lokitest.Entry{}
	for _, e := range got {
		byEvent[e.Labels["event"]] = e
		if e.Tenant != "team-a" {
			t.Errorf("tenant header = %q, want team-a", e.Tenant)
		}
	}
	sf, ok := byEvent[model.FactSyncFinished]
	if !ok {
		t.Fatalf("no sync_finished entry in %+v", got)
	}
	wantLabels := map[string]string{"job": "crowsnest-test", "env": "prod", "project": "payments", "dest_cluster": "prod-eu", "event": model.FactSyncFinished}
	if fmt.Sprint(sf.Labels) != fmt.Sprint(wantLabels) {
		t.Errorf("labels = %v, want %v", sf.Labels, wantLabels)
	}
	// The entry is stamped when sent; the fact's time is the line's ts.
	if sf.Time.Before(before) || sf.Time.After(after) {
		t.Errorf("entry time = %s, want when sent, within [%s, %s]", sf.Time, before, after)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(sf.Line), &line); err != nil {
		t.Fatalf("line %q is not JSON: %v", sf.Line, err)
	}
	want := map[string]any{
		"ts": "2025-06-07T08:09:10.123456789Z", "event": model.FactSyncFinished, "app": "argocd/shop", "project": "payments",
		"env": "prod", "dest_cluster": "prod-eu", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "result": "Succeeded",
		"duration_seconds": 12.5, "revision": "abc123", "field_ts": "collides",
	}
	if fmt.Sprint(line) != fmt.Sprint(want) {
		t.Errorf("line = %v\nwant   %v", line, want)
	}
	if !strings.HasPrefix(sf.Line, `{"ts":"2025-06-07T08:09:10.123456789Z","event":"sync_finished"`) {
		t.Errorf("line does not start with the fixed keys: %s", sf.Line)
	}
	db := byEvent[model.FactDriftBegan]
	if db.Labels["event"] != model.FactDriftBegan || db.Labels["dest_cluster"] != "prod-us" || !strings.Contains(db.Line, `"trace_id":""`) {
		t.Errorf("drift entry = %+v", db)
	}
	for _, r := range rcv.Requests() {
		if r.ContentType != "application/x-protobuf" {
			t.Errorf("content type = %q", r.ContentType)
		}
	}
	stop()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP crowsnest_events_sent_total Event lines Loki accepted.
# TYPE crowsnest_events_sent_total counter
crowsnest_events_sent_total 2
`), "crowsnest_events_sent_total"); err != nil {
		t.Error(err)
	}
}

func TestBasicAuth(t *testing.T) {
	rcv, cfg := start(t)
	cfg.Username, cfg.Password = "u", "p"
	s, _, _ := newShipper(t, cfg)
	s.Send(ev(1))
	if _, err := rcv.WaitEntries(ctxT(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if a := rcv.Requests()[0].Authorization; a != "Basic dTpw" {
		t.Errorf("Authorization = %q", a)
	}
}

func TestRetries429ThenSucceeds(t *testing.T) {
	rcv, cfg := start(t)
	rcv.FailNext(2, 429)
	s, _, stop := newShipper(t, cfg)
	sendAll(t, s, 5, 5*time.Second)

	got, err := rcv.WaitEntries(ctxT(t, 10*time.Second), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Errorf("got %d entries, want 5 (no duplicates, nothing lost)", len(got))
	}
	reqs := rcv.Requests()
	if len(reqs) != 3 || reqs[0].Status != 429 || reqs[1].Status != 429 || reqs[2].Status != 204 {
		t.Fatalf("requests = %+v, want 429, 429, 204", reqs)
	}
	// Backoff: each retry waits at least MinBackoff, the second at least
	// twice that (jitter is within [min, 2*min) then [2*min, 4*min)).
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < cfg.MinBackoff {
		t.Errorf("first retry after %s, want >= %s", gap, cfg.MinBackoff)
	}
	if gap := reqs[2].Time.Sub(reqs[1].Time); gap < 2*cfg.MinBackoff {
		t.Errorf("second retry after %s, want >= %s", gap, 2*cfg.MinBackoff)
	}
	stop()
	if sent(s) != 5 || dropped(s, ReasonPushFailed) != 0 {
		t.Errorf("sent=%d push_failed=%d, want 5 and 0", sent(s), dropped(s, ReasonPushFailed))
	}
}

func TestNoRetryOn400(t *testing.T) {
	rcv, cfg := start(t)
	rcv.FailNext(1, 400)
	s, _, stop := newShipper(t, cfg)
	s.Send(ev(1))
	stop()
	if n := len(rcv.Requests()); n != 1 {
		t.Errorf("%d requests, want 1: a 400 is not retried", n)
	}
	// Without Loki's count of what it ignored, the whole batch is rejected.
	if dropped(s, "rejected") != 1 || dropped(s, ReasonPushFailed) != 0 {
		t.Errorf("rejected = %d, push_failed = %d, want 1 and 0", dropped(s, "rejected"), dropped(s, ReasonPushFailed))
	}
}

func TestServerErrorForeverDropsBatch(t *testing.T) {
	rcv, cfg := start(t)
	rcv.FailNext(-1, 500)
	cfg.MinBackoff, cfg.MaxBackoff = 5*time.Millisecond, 10*time.Millisecond
	s, _, stop := newShipper(t, cfg)
	sendAll(t, s, 7, 5*time.Second)
	stop()
	if n := len(rcv.Requests()); n != cfg.MaxRetries+1 {
		t.Errorf("%d requests, want %d (1 + MaxRetries)", n, cfg.MaxRetries+1)
	}
	if dropped(s, ReasonPushFailed) != 7 || sent(s) != 0 || len(rcv.Entries()) != 0 {
		t.Errorf("push_failed=%d sent=%d entries=%d, want 7, 0, 0", dropped(s, ReasonPushFailed), sent(s), len(rcv.Entries()))
	}
	// Send still returns at once after the failures.
	sendAll(t, s, 1000, 5*time.Second)
	if dropped(s, ReasonShutdown) != 1000 {
		t.Errorf("sends after the stop: shutdown drops = %d, want 1000", dropped(s, ReasonShutdown))
	}
}

func TestHangingReceiverNeverBlocksSend(t *testing.T) {
	rcv, cfg := start(t)
	rcv.Hang()
	cfg.BufferSize = 100
	cfg.BatchSize = 10
	cfg.Timeout = 100 * time.Millisecond
	cfg.MaxRetries = 1
	cfg.MinBackoff, cfg.MaxBackoff = 5*time.Millisecond, 10*time.Millisecond
	s, _, stop := newShipper(t, cfg)

	// The first batch goes out and hangs.
	s.Send(ev(-1))
	if _, err := rcv.WaitRequests(ctxT(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	const n = 100000
	sendAll(t, s, n, 20*time.Second)
	if dropped(s, ReasonQueueFull) == 0 {
		t.Error("no queue_full drops while Loki hangs")
	}
	// Push timeouts end up as push_failed.
	deadline := time.Now().Add(10 * time.Second)
	for dropped(s, ReasonPushFailed) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("hung pushes never counted as push_failed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Stop while Loki still hangs: the rest of the buffer times out too.
	stop()

	// Every event is accounted for, exactly once, and none was delivered.
	total := n + 1
	full, failed, shut := dropped(s, ReasonQueueFull), dropped(s, ReasonPushFailed), dropped(s, ReasonShutdown)
	if full+failed+shut != total || sent(s) != 0 || len(rcv.Entries()) != 0 {
		t.Errorf("sent=%d entries=%d queue_full=%d push_failed=%d shutdown=%d, want drops summing to %d, nothing sent",
			sent(s), len(rcv.Entries()), full, failed, shut, total)
	}
	// The buffer stayed bounded: what got past Send fits in the buffer plus
	// the batches the receiver saw.
	accepted := total - full
	reqs := len(rcv.Requests()) + rcv.Hung()
	if limit := cfg.BufferSize + cfg.BatchSize*(reqs+1); accepted > limit {
		t.Errorf("%d events accepted, more than buffer+batches allow (%d)", accepted, limit)
	}
	if failed != accepted {
		t.Errorf("push_failed = %d, want every accepted event (%d)", failed, accepted)
	}
}

func TestCloseFlushes(t *testing.T) {
	rcv, cfg := start(t)
	cfg.BatchWait = time.Hour
	s, _, stop := newShipper(t, cfg)
	sendAll(t, s, 2500, 5*time.Second)
	stop()
	if n := len(rcv.Entries()); n != 2500 {
		t.Errorf("%d entries after the stop, want 2500", n)
	}
	if n := len(rcv.Requests()); n != 3 {
		t.Errorf("%d requests, want 3 (batches of %d)", n, cfg.BatchSize)
	}
}

func TestCloseGivesUpAtDeadline(t *testing.T) {
	rcv, cfg := start(t)
	rcv.Hang()
	cfg.Timeout = time.Minute
	cfg.FlushTimeout = 200 * time.Millisecond
	s, _, stop := newShipper(t, cfg)
	sendAll(t, s, 10, 5*time.Second)
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the shipper did not stop after its flush timeout")
	}
	if dropped(s, ReasonShutdown) != 10 {
		t.Errorf("shutdown drops = %d, want 10", dropped(s, ReasonShutdown))
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"ok", Config{URL: "http://loki:3100"}, nil},
		{"no url", Config{}, []string{"--loki.url"}},
		{"bad url", Config{URL: "loki:3100"}, []string{"--loki.url"}},
		{"negatives", Config{URL: "http://l", BufferSize: -1, BatchWait: -time.Second, MaxRetries: -1},
			[]string{"--loki.buffer-size", "--loki.batch-wait", "--loki.max-retries"}},
		{"backoff order", Config{URL: "http://l", MinBackoff: time.Minute, MaxBackoff: time.Second}, []string{"--loki.max-backoff"}},
		{"password alone", Config{URL: "http://l", Password: "x"}, []string{"--loki.password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want errors naming %v", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

func TestMetricsRegisteredTwiceFails(t *testing.T) {
	_, cfg := start(t)
	reg := prometheus.NewRegistry()
	s, err := New(cfg, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = s
	if _, err := New(cfg, reg, nil); err == nil {
		t.Error("second New on the same registry succeeded")
	}
}

// fakePusher answers each push with the next of its errors (nil once they
// run out) and records each attempt's deadline budget.
type fakePusher struct {
	mu      sync.Mutex
	errs    []error
	budgets []time.Duration
}

func (f *fakePusher) Push(ctx context.Context, _ []Stream) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	budget := time.Duration(-1)
	if d, ok := ctx.Deadline(); ok {
		budget = time.Until(d)
	}
	f.budgets = append(f.budgets, budget)
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

func (f *fakePusher) attempts() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.budgets...)
}

func fastConfig() Config {
	cfg := DefaultConfig()
	cfg.BatchWait = 10 * time.Millisecond
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 4*time.Millisecond
	cfg.MaxRetries = 3
	cfg.Timeout = 3 * time.Second
	return cfg
}

// Network errors (anything not an HTTP answer) and 5xx are retried; each
// attempt gets its own Timeout.
func TestRetriesNetworkErrorsEachAttemptBounded(t *testing.T) {
	f := &fakePusher{errs: []error{
		errors.New("dial tcp: connection refused"),
		fmt.Errorf("pushing to loki: %w", &StatusError{Code: 503}),
	}}
	cfg := fastConfig()
	s, err := NewWithPusher(cfg, f, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	s.Send(ev(1))
	stop()
	budgets := f.attempts()
	if len(budgets) != 3 || sent(s) != 1 || dropped(s, ReasonPushFailed) != 0 {
		t.Fatalf("%d attempts, sent=%d push_failed=%d; want 3 attempts, 1 sent, 0 dropped", len(budgets), sent(s), dropped(s, ReasonPushFailed))
	}
	for i, b := range budgets {
		if b <= 0 || b > cfg.Timeout {
			t.Errorf("attempt %d had %s left, want a deadline of at most Timeout %s, renewed per attempt", i+1, b, cfg.Timeout)
		}
	}
}

// A non-retryable answer ends the batch at once, even with retries left.
func TestPermanentErrorNotRetried(t *testing.T) {
	f := &fakePusher{errs: []error{fmt.Errorf("pushing to loki: %w", &StatusError{Code: 413})}}
	s, err := NewWithPusher(fastConfig(), f, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	sendAll(t, s, 3, 5*time.Second)
	stop()
	if n := len(f.attempts()); n != 1 || dropped(s, ReasonPushFailed) != 3 || sent(s) != 0 {
		t.Errorf("%d attempts, push_failed=%d, sent=%d; want 1, 3, 0", n, dropped(s, ReasonPushFailed), sent(s))
	}
}

// MaxRetries 0 disables retries: one attempt per batch.
func TestMaxRetriesZero(t *testing.T) {
	rcv, cfg := start(t)
	rcv.FailNext(-1, 500)
	cfg.MaxRetries = 0
	s, _, stop := newShipper(t, cfg)
	s.Send(ev(1))
	stop()
	if n := len(rcv.Requests()); n != 1 || dropped(s, ReasonPushFailed) != 1 {
		t.Errorf("%d requests, push_failed=%d; want 1 and 1", n, dropped(s, ReasonPushFailed))
	}
}

// gathered returns the value of the unlabelled counter name in reg, 0 when
// reg has none.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// Facts carry Argo CD's times, hours old after a restart: Loki would
// refuse entries stamped with them. Entries are stamped when crowsnest
// observed the fact (Send), and the line's ts keeps the fact's time.
func TestEntriesStampedWhenObserved(t *testing.T) {
	rcv, cfg := start(t)
	s, _, _ := newShipper(t, cfg)
	startedAt := time.Now().Add(-6 * time.Hour).Truncate(time.Second).UTC()
	before := time.Now()
	s.Send(Event{Time: startedAt, Event: model.FactSyncStarted, App: "argocd/shop", Env: "prod"})
	s.Send(Event{Event: model.FactDriftBegan, App: "argocd/shop", Env: "prod"}) // no time: when sent
	after := time.Now()
	got, err := rcv.WaitEntries(ctxT(t, 5*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if e.Time.Before(before) || e.Time.After(after) {
			t.Errorf("%s: entry stamped %s, want when sent, within [%s, %s]", e.Labels["event"], e.Time, before, after)
		}
		var line struct{ TS time.Time }
		if err := json.Unmarshal([]byte(e.Line), &line); err != nil {
			t.Fatalf("line %s: %v", e.Line, err)
		}
		want := startedAt
		if e.Labels["event"] == model.FactDriftBegan {
			want = e.Time // the zero time means when sent
		}
		if !line.TS.Equal(want) {
			t.Errorf("%s: line ts %s, want the fact's time %s", e.Labels["event"], line.TS, want)
		}
	}
}

// A line longer than the limit (64 KiB by default) has its largest field
// cut to fit, marked, still valid JSON, and is counted.
func TestLongLinesCutToSize(t *testing.T) {
	rcv, cfg := start(t)
	s, reg, _ := newShipper(t, cfg)
	const limit = 64 << 10
	// "<" is 6 bytes in JSON (\u003c), "é" 2: the cut must count encoded bytes.
	message := strings.Repeat("<é", 100<<10)
	s.Send(Event{Event: model.FactSyncFinished, App: "argocd/shop", Env: "prod",
		Fields: map[string]any{"message": message, "result": "Failed", "revision": "abc123"}})
	s.Send(ev(1))
	got, err := rcv.WaitEntries(ctxT(t, 5*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}
	var long string
	for _, e := range got {
		if strings.Contains(e.Line, `"result":"Failed"`) {
			long = e.Line
		} else if strings.Contains(e.Line, `"truncated"`) {
			t.Errorf("a short line was marked truncated: %s", e.Line)
		}
	}
	if len(long) > limit || len(long) < limit-16 {
		t.Fatalf("long line is %d bytes, want at most %d and close to it", len(long), limit)
	}
	var line struct {
		Message, Result, Revision string
		Truncated                 []string
	}
	if err := json.Unmarshal([]byte(long), &line); err != nil {
		t.Fatalf("cut line is not JSON: %v", err)
	}
	kept, ok := strings.CutSuffix(line.Message, "…")
	if !ok || !strings.HasPrefix(message, kept) || len(kept) < 10<<10 {
		t.Errorf("message cut to %d bytes, want a long beginning of the message followed by …", len(line.Message))
	}
	if fmt.Sprint(line.Truncated) != "[message]" || line.Result != "Failed" || line.Revision != "abc123" {
		t.Errorf("truncated %v, result %q, revision %q: want [message] and the other fields whole", line.Truncated, line.Result, line.Revision)
	}
	if n := gathered(t, reg, "crowsnest_events_truncated_total"); n != 1 {
		t.Errorf("crowsnest_events_truncated_total = %v, want 1", n)
	}
}

// Loki answers 400 when it refuses some entries of a push, though it
// stored the others, and says how many it ignored: only those are
// rejected. Without that count the whole batch is.
func TestPartialRejectionCountsPerEntry(t *testing.T) {
	stream := `{env="dev", event="sync_finished", job="crowsnest", project="payments"}`
	var loki3, loki2, distributor strings.Builder
	for i := range 10 { // Loki lists at most 10 (max_returned_errors), then the total
		fmt.Fprintf(&loki3, "entry with timestamp %s ignored, reason: 'entry too far behind, entry timestamp is: 2025-01-02T03:04:05Z, oldest acceptable timestamp is: 2025-01-02T04:00:00Z',\n",
			time.Date(2025, 1, 2, 3, 4, 5, i, time.UTC))
	}
	fmt.Fprintf(&loki3, "user 'fake', total ignored: 12 out of 20 for stream: %s", stream)
	for i := range 3 {
		fmt.Fprintf(&loki2, "entry with timestamp %s ignored, reason: 'entry out of order' for stream: %s,\n", time.Date(2025, 1, 2, 3, 4, 5, i, time.UTC), stream)
	}
	loki2.WriteString("total ignored: 3 out of 20")
	fmt.Fprintf(&distributor, "entry for stream '%s' has timestamp too old: 2025-01-02T03:04:05Z, oldest acceptable timestamp is: 2025-01-09T03:04:05Z", stream)
	for _, tc := range []struct {
		name           string
		body           string
		sent, rejected int
	}{
		{"loki 3 ingester, longer than 1 KiB", loki3.String(), 8, 12},
		{"loki 2 ingester", loki2.String(), 17, 3},
		{"distributor validation, no count", distributor.String(), 0, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			requests := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				requests++
				mu.Unlock()
				http.Error(w, tc.body, http.StatusBadRequest)
			}))
			defer srv.Close()
			cfg := fastConfig()
			cfg.URL = srv.URL
			cfg.BatchWait = time.Hour // one batch, pushed by the flush
			s, err := New(cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			stop := run(t, s)
			sendAll(t, s, 20, 5*time.Second)
			stop()
			mu.Lock()
			defer mu.Unlock()
			if requests != 1 {
				t.Errorf("%d requests, want 1: a 400 is not retried", requests)
			}
			if sent(s) != tc.sent || dropped(s, "rejected") != tc.rejected || dropped(s, ReasonPushFailed) != 0 {
				t.Errorf("sent=%d rejected=%d push_failed=%d, want %d, %d, 0",
					sent(s), dropped(s, "rejected"), dropped(s, ReasonPushFailed), tc.sent, tc.rejected)
			}
		})
	}
}
