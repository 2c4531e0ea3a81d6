package cdevents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/queue"
	"github.com/crowsnest/crowsnest/internal/redact"
	"github.com/crowsnest/crowsnest/internal/retry"
)

// Drop reasons, the values of the reason label of
// crowsnest_cloudevents_dropped_total: the queue's (queue.ReasonQueueFull,
// queue.ReasonShutdown) and the sink's own.
const (
	// ReasonQueueFull: Send found the queue full.
	ReasonQueueFull = queue.ReasonQueueFull
	// ReasonPushFailed: the POST failed for good: retries exhausted on
	// 429, 5xx or transport errors (timeouts included).
	ReasonPushFailed = "push_failed"
	// ReasonRejected: the receiver answered a non-2xx status other than
	// 429 and 5xx (400, 401, 404, 413...), which no retry changes.
	ReasonRejected = "rejected"
	// ReasonShutdown: sent once the sink stopped taking events, or still
	// unsent when the flush ran out of time.
	ReasonShutdown = queue.ReasonShutdown
)

// Reasons returns the drop reasons, in a fixed order.
func Reasons() [4]string {
	return [4]string{ReasonQueueFull, ReasonPushFailed, ReasonRejected, ReasonShutdown}
}

// Sink posts the CloudEvent of each deployment record: Send queues it and
// never blocks; Run is the worker that posts (see package queue). It is
// safe for concurrent use.
type Sink struct {
	cfg    Config
	url    string // cfg.URL redacted, for logs
	client *http.Client
	log    *slog.Logger
	q      *queue.Queue[item]

	sent    prometheus.Counter
	dropped *prometheus.CounterVec // the queue's

	// Owned by the worker.
	failing      bool // posts fail since the last accepted one
	failedPosts  int  // attempts that failed in this streak
	failedEvents int  // events dropped in this streak
	rejecting    bool // the receiver rejected events since it last accepted one
}

// item is one event, encoded, waiting to be posted.
type item struct {
	id, typ, app string
	body         []byte
}

// New returns a Sink posting to cfg.URL, its counters registered on reg
// (nil: not registered) and logging to logger (nil: discarded); nothing
// is posted until Run. Zero fields of cfg take their defaults; an invalid
// cfg is an error naming the flag at fault.
func New(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cloudevents config: %w", err)
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dropped := queue.NewDropCounter("cloudevents", "CloudEvents of deployments dropped before the receiver accepted them, by reason (queue_full, push_failed, rejected, shutdown).", ReasonPushFailed, ReasonRejected)
	q, err := queue.New(queue.Config[item]{Size: cfg.BufferSize, Dropped: dropped, Gate: cfg.Gate, FlushTimeout: cfg.FlushTimeout})
	if err != nil {
		return nil, fmt.Errorf("cloudevents queue: %w", err)
	}
	s := &Sink{
		cfg: cfg,
		url: redact.URL(cfg.URL),
		// Each attempt's deadline comes from its context.
		client:  &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		log:     logger,
		q:       q,
		dropped: dropped,
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crowsnest_cloudevents_sent_total",
			Help: "CloudEvents of deployments the receiver accepted (answered 2xx).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.sent, s.dropped} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering cloudevents metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Send queues the CloudEvent of r for posting and returns at once; it
// implements the deployment record sink. A failed deployment sends
// nothing (see the package doc). When the queue is full, or once the sink
// stopped, the event is dropped and counted; while this replica does not
// lead (Config.Gate), it is not sent. The event is encoded here, so r may
// change once Send returns.
func (s *Sink) Send(r *model.DeploymentRecord) {
	ev, ok := NewEvent(r, s.cfg.Source)
	if !ok {
		return
	}
	body, err := json.Marshal(ev)
	if err != nil { // not expected of these types
		s.log.Error("encoding a CloudEvent", "id", ev.ID, "err", err)
		s.q.DropN(ReasonRejected, 1)
		return
	}
	s.q.Send(item{id: ev.ID, typ: ev.Type, app: ev.Subject, body: body})
}

// Run is the worker: it posts the queued events one at a time, retrying as
// configured, until ctx ends, then flushes what is queued within
// FlushTimeout and returns.
func (s *Sink) Run(ctx context.Context) error { return s.q.Run(ctx, (*worker)(s)) }

// worker is the Sink as the queue's worker.
type worker Sink

// Deliver posts the batch's one event.
func (w *worker) Deliver(ctx context.Context, batch []item) {
	for _, it := range batch {
		(*Sink)(w).post(ctx, it)
	}
}

// Flush closes the idle connections once the last event is posted.
func (w *worker) Flush(context.Context) error {
	w.client.CloseIdleConnections()
	return nil
}

// post delivers one event, retrying retryable failures with exponential
// backoff, and counts it as sent or dropped.
func (s *Sink) post(ctx context.Context, it item) {
	var lastErr error // the last attempt's own error, not Retry's
	attempts := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		err := s.attempt(ctx, it.body)
		if err == nil {
			return struct{}{}, nil
		}
		lastErr = err
		var se *StatusError
		if errors.As(err, &se) && !se.Retryable() {
			return struct{}{}, backoff.Permanent(err) // the receiver is fine; the event is not
		}
		s.failedPosts++
		if !s.failing && ctx.Err() == nil {
			s.failing = true
			s.log.Warn("posting CloudEvents failing; retrying with backoff, dropping events that exhaust retries",
				"url", s.url, "err", err, "id", it.id)
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(retry.NewBackOff(s.cfg.MinBackoff, s.cfg.MaxBackoff)),
		backoff.WithMaxTries(uint(s.cfg.MaxRetries)+1), // it counts attempts; 0 would mean forever
		backoff.WithMaxElapsedTime(0),                  // bounded by MaxRetries alone
	)
	if err == nil {
		s.sent.Inc()
		s.rejecting = false
		s.recovered()
		return
	}
	var se *StatusError
	if errors.As(lastErr, &se) && !se.Retryable() {
		s.q.DropN(ReasonRejected, 1)
		s.recovered() // the receiver answered
		level := slog.LevelDebug
		if !s.rejecting {
			s.rejecting, level = true, slog.LevelWarn
		}
		s.log.Log(context.Background(), level, "the CloudEvents receiver rejected an event; dropping it",
			"url", s.url, "err", lastErr, "id", it.id, "type", it.typ, "app", it.app)
		return
	}
	reason := ReasonPushFailed
	if ctx.Err() != nil {
		reason = ReasonShutdown
	}
	s.failedEvents++
	s.q.DropN(reason, 1)
	s.log.Debug("dropped a CloudEvent", "reason", reason, "id", it.id, "attempts", attempts, "err", lastErr)
}

// recovered logs, once, that posts work again after failing.
func (s *Sink) recovered() {
	if s.failing {
		s.log.Info("posting CloudEvents recovered", "url", s.url,
			"failed_posts", s.failedPosts, "dropped_events", s.failedEvents)
		s.failing, s.failedPosts, s.failedEvents = false, 0, 0
	}
}

// attempt POSTs body once, within the configured timeout.
func (s *Sink) attempt(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building the CloudEvents request: %w", redactErr(err, s.url))
	}
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "crowsnest")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting a CloudEvent: %w", redactErr(err, s.url))
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	se := &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(msg))}
	if se.Retryable() {
		se.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now(), s.cfg.MinBackoff, s.cfg.MaxBackoff)
	}
	return fmt.Errorf("posting a CloudEvent: %w", se)
}

// redactErr replaces the URL a url.Error quotes (net/http masks a
// password but keeps a user name, often a token) with the redacted one.
func redactErr(err error, redacted string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redacted
	}
	return err
}

// StatusError is a POST answered with a status other than 2xx.
type StatusError struct {
	Code int
	// Body is the answer's text, at most its first KiB.
	Body string
	// RetryAfter is the wait the receiver asked for with Retry-After on a
	// retryable answer, within the backoff bounds; 0 when it asked none.
	RetryAfter time.Duration
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("receiver answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
}

// Retryable reports whether the POST should be retried: on 429 and 5xx.
func (e *StatusError) Retryable() bool {
	return e.Code == http.StatusTooManyRequests || e.Code >= 500
}

// As lets backoff.Retry see a Retry-After as its *backoff.RetryAfterError,
// so the next attempt waits what the receiver asked for.
func (e *StatusError) As(target any) bool {
	if p, ok := target.(**backoff.RetryAfterError); ok && e.RetryAfter > 0 {
		*p = &backoff.RetryAfterError{Duration: e.RetryAfter}
		return true
	}
	return false
}

// retryAfter parses a Retry-After value (delay seconds or an HTTP date,
// relative to now) into a wait clamped to [lo, hi]; 0 when v is empty or
// invalid.
func retryAfter(v string, now time.Time, lo, hi time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		d = time.Duration(min(secs, 1<<20)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0
	}
	return min(max(d, lo), hi)
}
