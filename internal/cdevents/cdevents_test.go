package cdevents

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crowsnest/crowsnest/internal/model"
)

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func record(result string) *model.DeploymentRecord {
	return &model.DeploymentRecord{
		Deployment: &model.Deployment{Namespace: "argocd", Name: "prod-web", Project: "shop", Env: "prod", Result: result,
			Revision: "bbb", PreviousRevision: "aaa", Initiator: "alice", FinishedAt: t0, TraceID: "0123456789abcdef0123456789abcdef"},
		Commit:   &model.Commit{SHA: "bbb", RepoURL: "https://git.example.com/app.git", Author: "Alice <alice@example.com>", Date: t0.Add(-time.Hour)},
		LeadTime: time.Hour,
	}
}

type receiver struct {
	mu     sync.Mutex
	bodies []map[string]any
	status []int // answers in turn; then 202
	types  []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.status) > 0 {
		code := r.status[0]
		r.status = r.status[1:]
		w.WriteHeader(code)
		return
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.types = append(r.types, req.Header.Get("Content-Type"))
	r.bodies = append(r.bodies, ev)
	w.WriteHeader(http.StatusAccepted)
}

func (r *receiver) got() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.bodies...)
}

func newSink(t *testing.T, url string, cfg Config) (*Sink, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.URL = url
	s, err := New(cfg, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

func closeSink(t *testing.T, s *Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEventsOfEachResult(t *testing.T) {
	r := &receiver{}
	srv := httptest.NewServer(r)
	defer srv.Close()
	s, _ := newSink(t, srv.URL, Config{Source: "/crowsnest/test"})
	s.Send(record(model.DeploymentSucceeded))
	s.Send(record(model.DeploymentFailed)) // deployed nothing: no event
	s.Send(record(model.DeploymentRolledBack))
	closeSink(t, s)
	got := r.got()
	if len(got) != 2 {
		t.Fatalf("%d events, want 2 (none for the failed deployment)", len(got))
	}
	if r.types[0] != "application/cloudevents+json; charset=utf-8" {
		t.Errorf("content type %q, want structured mode", r.types[0])
	}
	for i, typ := range []string{TypeDeployed, TypeRolledBack} {
		ev := got[i]
		data := ev["data"].(map[string]any)
		ctx := data["context"].(map[string]any)
		subject := data["subject"].(map[string]any)
		content := subject["content"].(map[string]any)
		custom := data["customData"].(map[string]any)
		for _, c := range []struct {
			name      string
			got, want any
		}{
			{"specversion", ev["specversion"], "1.0"},
			{"type", ev["type"], typ},
			{"id", ev["id"], "0123456789abcdef0123456789abcdef-" + typ},
			{"source", ev["source"], "/crowsnest/test"},
			{"time", ev["time"], "2026-11-30T09:00:00Z"},
			{"context.type", ctx["type"], typ},
			{"context.version", ctx["version"], "0.4.1"},
			{"context.id", ctx["id"], ev["id"]},
			{"subject.id", subject["id"], "argocd/prod-web"},
			{"environment.id", content["environment"].(map[string]any)["id"], "prod"},
			{"artifactId", content["artifactId"], "pkg:generic/prod-web@bbb"},
			{"author", custom["author"], "Alice <alice@example.com>"},
			{"lead_time_seconds", custom["lead_time_seconds"], 3600.0},
			{"previous_revision", custom["previous_revision"], "aaa"},
			{"commit_time", custom["commit_time"], "2026-11-30T08:00:00Z"},
		} {
			if c.got != c.want {
				t.Errorf("event %d: %s = %v, want %v", i, c.name, c.got, c.want)
			}
		}
	}
}

// A receiver that never answers: Send returns at once every time, the
// buffer fills and drops are counted, and Close returns within its context.
func TestHangingReceiverNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s, _ := newSink(t, srv.URL, Config{BufferSize: 2, Timeout: time.Hour, MaxRetries: 1})
	start := time.Now()
	for range 10 {
		s.Send(record(model.DeploymentSucceeded))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("10 sends took %v", d)
	}
	// One is being posted, two wait, the rest were dropped.
	if got := testutil.ToFloat64(s.dropped.WithLabelValues(ReasonBufferFull)); got < 7 {
		t.Errorf("buffer_full drops %v, want at least 7", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); err == nil {
		t.Error("Close reported a flush that cannot have happened")
	}
	if got := testutil.ToFloat64(s.dropped.WithLabelValues(ReasonShutdown)); got < 2 {
		t.Errorf("shutdown drops %v, want the events still queued", got)
	}
}

func TestRetriesAndRejects(t *testing.T) {
	r := &receiver{status: []int{http.StatusServiceUnavailable, http.StatusTooManyRequests}}
	srv := httptest.NewServer(r)
	defer srv.Close()
	s, _ := newSink(t, srv.URL, Config{MaxRetries: 3})
	s.Send(record(model.DeploymentSucceeded))
	closeSink(t, s)
	if n := len(r.got()); n != 1 || testutil.ToFloat64(s.sent) != 1 {
		t.Fatalf("%d delivered, sent counter %v: want the event delivered once after two retries", n, testutil.ToFloat64(s.sent))
	}

	rejecting := &receiver{status: []int{http.StatusBadRequest}}
	srv2 := httptest.NewServer(rejecting)
	defer srv2.Close()
	s2, _ := newSink(t, srv2.URL, Config{MaxRetries: 3})
	s2.Send(record(model.DeploymentSucceeded))
	closeSink(t, s2)
	if got := testutil.ToFloat64(s2.dropped.WithLabelValues(ReasonRejected)); got != 1 || len(rejecting.got()) != 0 {
		t.Errorf("rejected drops %v, want 1 and no retry", got)
	}
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://"} {
		if _, err := New(Config{URL: u}, nil, nil); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
}
