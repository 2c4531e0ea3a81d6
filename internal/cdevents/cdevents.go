// Package cdevents posts one CloudEvent per deployment to an HTTP endpoint:
// the CloudEvents v1.0 HTTP binding in structured content mode
// (Content-Type application/cloudevents+json, one event per POST), whose
// data is a CDEvents v0.4 event: dev.cdevents.service.deployed.0.2.0 for a
// succeeded deployment, dev.cdevents.service.rolledback.0.2.0 for a
// rollback. A failed deployment deployed nothing and sends no event; it is
// in the metrics and in Loki.
//
// Send never blocks: events wait in a bounded buffer, a full buffer drops
// and counts. Posts are retried with backoff on 429, 5xx and transport
// errors; another 4xx drops the event as rejected. Close flushes.
package cdevents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/redact"
)

// CDEvents types crowsnest sends.
const (
	TypeDeployed   = "dev.cdevents.service.deployed.0.2.0"
	TypeRolledBack = "dev.cdevents.service.rolledback.0.2.0"
	specVersion    = "0.4.1"
)

// Drop reasons, the values of the reason label of
// crowsnest_cloudevents_dropped_total.
const (
	ReasonBufferFull = "buffer_full"
	ReasonPushFailed = "push_failed"
	ReasonRejected   = "rejected"
	ReasonShutdown   = "shutdown"
)

// Config configures the sink. Zero fields but URL take their defaults.
type Config struct {
	// URL is the endpoint events are posted to.
	URL string
	// Source is the CloudEvents and CDEvents source URI.
	Source string
	// BufferSize bounds the events waiting to be posted.
	BufferSize int
	// Timeout bounds one POST; MaxRetries the retries of one event.
	Timeout    time.Duration
	MaxRetries int
}

// Sink posts deployment records as CloudEvents in the background. It is
// safe for concurrent use.
type Sink struct {
	cfg     Config
	client  *http.Client
	log     *slog.Logger
	sent    prometheus.Counter
	dropped *prometheus.CounterVec

	mu     sync.RWMutex // guards closed against the close of in
	closed bool
	in     chan *model.DeploymentRecord

	ctx    context.Context // canceled when Close gives up waiting
	cancel context.CancelFunc
	done   chan struct{}
}

// New validates cfg, registers the sink's counters on reg (nil: not
// registered) and starts its worker; Close stops it.
func New(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Sink, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--cloudevents.url: %q is not an http(s) URL", redact.URL(cfg.URL))
	}
	if cfg.Source == "" {
		cfg.Source = "/crowsnest"
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 1000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	} else if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 5
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, log: logger,
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "crowsnest_cloudevents_sent_total", Help: "CloudEvents of deployments the receiver accepted."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crowsnest_cloudevents_dropped_total",
			Help: "CloudEvents of deployments dropped, by reason: buffer_full (the buffer was full), push_failed (retries exhausted or a transport error for good), rejected (the receiver answered 4xx other than 429), shutdown (still queued when crowsnest stopped)."}, []string{"reason"}),
		in:   make(chan *model.DeploymentRecord, cfg.BufferSize),
		done: make(chan struct{}),
	}
	for _, r := range []string{ReasonBufferFull, ReasonPushFailed, ReasonRejected, ReasonShutdown} {
		s.dropped.WithLabelValues(r)
	}
	if reg != nil {
		if err := reg.Register(s.sent); err != nil {
			return nil, fmt.Errorf("register cloudevents metrics: %w", err)
		}
		if err := reg.Register(s.dropped); err != nil {
			return nil, fmt.Errorf("register cloudevents metrics: %w", err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// Send queues the event of r and returns at once; a failed deployment
// sends none. When the buffer is full the event is dropped and counted.
func (s *Sink) Send(r *model.DeploymentRecord) {
	if r == nil || r.Deployment == nil || r.Deployment.Result == model.DeploymentFailed {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.dropped.WithLabelValues(ReasonShutdown).Inc()
		return
	}
	select {
	case s.in <- r:
	default:
		s.dropped.WithLabelValues(ReasonBufferFull).Inc()
	}
}

// Close stops accepting events and waits for the queued ones to be posted
// until ctx ends; those left are dropped and counted.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.in)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-s.done
		return fmt.Errorf("cloudevents not flushed: %w", ctx.Err())
	}
}

// run is the worker: it posts each queued event in turn.
func (s *Sink) run() {
	defer close(s.done)
	defer s.cancel()
	failing := false
	for r := range s.in {
		if s.ctx.Err() != nil {
			s.dropped.WithLabelValues(ReasonShutdown).Inc()
			continue
		}
		err := s.post(r)
		switch {
		case err == nil:
			s.sent.Inc()
			if failing {
				s.log.Info("posting CloudEvents again", "url", redact.URL(s.cfg.URL))
				failing = false
			}
			continue
		case errors.Is(err, errRejected):
			s.dropped.WithLabelValues(ReasonRejected).Inc()
		case s.ctx.Err() != nil:
			s.dropped.WithLabelValues(ReasonShutdown).Inc()
		default:
			s.dropped.WithLabelValues(ReasonPushFailed).Inc()
		}
		if !failing {
			// Once per failure streak.
			s.log.Warn("dropped a CloudEvent of a deployment", "url", redact.URL(s.cfg.URL), "err", err)
			failing = true
		}
	}
}

var errRejected = errors.New("rejected")

// post posts r's event, retrying with backoff.
func (s *Sink) post(r *model.DeploymentRecord) error {
	body, err := json.Marshal(Event(r, s.cfg.Source))
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	wait := 500 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err = s.postOnce(body)
		if err == nil || errors.Is(err, errRejected) || attempt >= s.cfg.MaxRetries {
			return err
		}
		select {
		case <-s.ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (s *Sink) postOnce(body []byte) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusTooManyRequests || c >= 500:
		return fmt.Errorf("post: %s", resp.Status)
	default:
		return fmt.Errorf("%w: %s", errRejected, resp.Status)
	}
}

// Event returns the CloudEvent (structured mode) of r with source.
func Event(r *model.DeploymentRecord, source string) map[string]any {
	d := r.Deployment
	typ := TypeDeployed
	if d.Result == model.DeploymentRolledBack {
		typ = TypeRolledBack
	}
	// Stable per deployment and type: a retry, or another replica's copy,
	// has the same id, so the receiver can drop duplicates.
	id := d.TraceID + "-" + typ
	ts := d.FinishedAt.UTC().Format(time.RFC3339Nano)
	custom := map[string]any{
		"project": d.Project, "env": d.Env, "result": d.Result,
		"revision": d.RevisionText(), "previous_revision": model.JoinRevisions(d.PreviousRevision, d.PreviousRevisions),
		"initiator": d.Initiator, "trace_id": d.TraceID,
	}
	if c := r.Commit; c != nil {
		custom["author"] = c.Author
		custom["commit_sha"] = c.SHA
		custom["commit_repo"] = c.RepoURL
		custom["commit_time"] = c.Date.UTC().Format(time.RFC3339)
		custom["commit_referenced"] = c.Referenced
		custom["lead_time_seconds"] = r.LeadTime.Seconds()
	}
	cdevent := map[string]any{
		"context": map[string]any{"version": specVersion, "id": id, "source": source, "type": typ, "timestamp": ts},
		"subject": map[string]any{
			"id": d.Namespace + "/" + d.Name, "source": source,
			"content": map[string]any{
				"environment": map[string]any{"id": d.Env, "source": source},
				// A package URL naming the app and the revision deployed:
				// what the deployment put in the environment.
				"artifactId": "pkg:generic/" + url.PathEscape(d.Name) + "@" + url.PathEscape(d.RevisionText()),
			},
		},
		"customData":            custom,
		"customDataContentType": "application/json",
	}
	return map[string]any{
		"specversion": "1.0", "id": id, "source": source, "type": typ, "time": ts,
		"subject": d.Namespace + "/" + d.Name, "datacontenttype": "application/json", "data": cdevent,
	}
}
