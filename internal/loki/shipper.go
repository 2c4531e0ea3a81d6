package loki

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/queue"
	"github.com/crowsnest/crowsnest/internal/retry"
)

// Drop reasons, the values of the reason label of
// crowsnest_events_dropped_total: the queue's (queue.ReasonQueueFull,
// queue.ReasonShutdown) and the shipper's own.
const (
	// ReasonQueueFull: Send found the queue full.
	ReasonQueueFull = queue.ReasonQueueFull
	// ReasonPushFailed: the batch's push failed for good (a non-retryable
	// answer other than 400, or retries exhausted; each attempt bounded by
	// Timeout).
	ReasonPushFailed = "push_failed"
	// ReasonRejected: Loki answered 400, refusing the line itself (too
	// old, too long, a bad stream...). When the answer counts what it
	// refused ("total ignored: N out of M"), only those N lines are
	// counted so, the rest of the batch as sent; else the whole batch.
	ReasonRejected = "rejected"
	// ReasonShutdown: sent once the shipper stopped taking events, or
	// still unsent when the flush ran out of time.
	ReasonShutdown = queue.ReasonShutdown
)

// Shipper ships events to Loki: Send queues them and never blocks; Run is
// the worker that batches and pushes them (see package queue). It is safe
// for concurrent use.
type Shipper struct {
	cfg    Config
	pusher Pusher
	log    *slog.Logger
	q      *queue.Queue[item]

	sent      prometheus.Counter
	dropped   *prometheus.CounterVec // the queue's
	truncated prometheus.Counter

	// Owned by the worker.
	failing      bool
	failedLines  int
	failedPushes int
	rejecting    bool // Loki rejected lines since the last batch it took whole
}

type streamKey struct{ env, project, dest, event string }

type item struct {
	key  streamKey
	time time.Time
	line string
}

// New returns a Shipper pushing to cfg.URL over HTTP, with its counters
// registered on reg (nil: not registered) and logging to logger (nil:
// discarded). Zero fields of cfg take their defaults. Nothing is pushed
// until Run.
func New(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Shipper, error) {
	p, err := NewHTTPPusher(cfg, nil)
	if err != nil {
		return nil, err
	}
	return NewWithPusher(cfg, p, reg, logger)
}

// NewWithPusher is New with a given Pusher; cfg.URL, Tenant and credentials
// are then unused and not required.
func NewWithPusher(cfg Config, p Pusher, reg prometheus.Registerer, logger *slog.Logger) (*Shipper, error) {
	if cfg.URL == "" {
		cfg.URL = "http://pusher.invalid" // only to validate the rest
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("events config: %w", err)
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dropped := queue.NewDropCounter("events", "Event lines dropped before Loki accepted them, by reason (queue_full, push_failed, rejected, shutdown).", ReasonPushFailed, ReasonRejected)
	q, err := queue.New(queue.Config[item]{
		Size: cfg.BufferSize, Dropped: dropped,
		MaxItems: cfg.BatchSize, MaxBytes: cfg.BatchBytes, Bytes: func(it item) int { return len(it.line) }, Wait: cfg.BatchWait,
		Gate: cfg.Gate, FlushTimeout: cfg.FlushTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("events queue: %w", err)
	}
	s := &Shipper{
		cfg:     cfg,
		pusher:  p,
		log:     logger,
		q:       q,
		dropped: dropped,
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crowsnest_events_sent_total",
			Help: "Event lines Loki accepted.",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crowsnest_events_truncated_total",
			Help: "Event lines longer than the line size limit, whose largest field values were cut to fit.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.sent, dropped, s.truncated} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering events metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Send queues e for shipping and returns at once. When the queue is full,
// or once the shipper stopped, e is dropped and counted; while this
// replica does not lead (Config.Gate), it is not sent.
//
// The Loki entry is stamped with now, when crowsnest observed the fact,
// not with e.Time: facts carry Argo CD's times (an operation's startedAt,
// hours old when crowsnest restarts during it), and Loki refuses entries
// older than its reject_old_samples_max_age or too far behind its
// stream's newest. e.Time stays in the line as "ts". A line longer than
// MaxLineBytes has its largest field values cut to fit, and is counted.
func (s *Shipper) Send(e Event) {
	now := time.Now()
	if e.Time.IsZero() {
		e.Time = now
	}
	line, cut := e.line(s.cfg.MaxLineBytes)
	if len(cut) > 0 {
		s.truncated.Inc()
		s.log.Debug("cut an event line to size", "event", e.Event, "app", e.App, "fields", cut, "max_bytes", s.cfg.MaxLineBytes)
	}
	s.q.Send(item{key: streamKey{e.Env, e.Project, e.DestCluster, e.Event}, time: now, line: line})
}

// Fact sends the tracker's fact f as an event; it implements the tracker's
// fact subscriber.
func (s *Shipper) Fact(f *model.Fact) { s.Send(FromFact(f)) }

// Run is the worker: it pushes the queued events in batches, retrying as
// configured, until ctx ends, then flushes what is queued within
// FlushTimeout and returns.
func (s *Shipper) Run(ctx context.Context) error { return s.q.Run(ctx, (*worker)(s)) }

// worker is the Shipper as the queue's worker.
type worker Shipper

// Deliver pushes one batch.
func (w *worker) Deliver(ctx context.Context, items []item) {
	var b batch
	for _, it := range items {
		b.add(it)
	}
	(*Shipper)(w).push(ctx, &b)
}

// batch accumulates lines per stream.
type batch struct {
	streams map[streamKey][]Entry
	order   []streamKey
	lines   int
	bytes   int
}

func (b *batch) add(it item) {
	if b.streams == nil {
		b.streams = map[streamKey][]Entry{}
	}
	if _, ok := b.streams[it.key]; !ok {
		b.order = append(b.order, it.key)
	}
	b.streams[it.key] = append(b.streams[it.key], Entry{Time: it.time, Line: it.line})
	b.lines++
	b.bytes += len(it.line)
}

// push delivers one batch, retrying retryable failures with exponential
// backoff (see newBackOff), and counts its lines as sent or dropped.
func (s *Shipper) push(ctx context.Context, b *batch) {
	streams := make([]Stream, 0, len(b.order))
	for _, k := range b.order {
		streams = append(streams, Stream{
			Labels:  streamLabels(s.cfg.Job, Event{Env: k.env, Project: k.project, DestCluster: k.dest, Event: k.event}),
			Entries: b.streams[k],
		})
	}
	var lastErr error // the last attempt's own error, not Retry's
	attempts := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		err := s.pusher.Push(actx, streams)
		cancel()
		if err == nil {
			return struct{}{}, nil
		}
		lastErr = err
		if rejection(err) != nil {
			return struct{}{}, backoff.Permanent(err) // Loki is fine; the lines are not
		}
		s.failedPushes++
		if !s.failing {
			s.failing = true
			s.log.Warn("pushing events to loki failing; retrying with backoff, dropping batches that exhaust retries",
				"err", err, "lines", b.lines)
		}
		if !retryable(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(retry.NewBackOff(s.cfg.MinBackoff, s.cfg.MaxBackoff)),
		backoff.WithMaxTries(uint(s.cfg.MaxRetries)+1), // it counts attempts; 0 would mean forever
		backoff.WithMaxElapsedTime(0),                  // bounded by MaxRetries alone, not Retry's 15 min default
	)
	if err == nil {
		s.sent.Add(float64(b.lines))
		s.rejecting = false
		s.recovered()
		return
	}
	if se := rejection(lastErr); se != nil {
		s.rejected(b, se, lastErr)
		return
	}
	reason := ReasonPushFailed
	if ctx.Err() != nil {
		reason = ReasonShutdown
	}
	s.failedLines += b.lines
	s.q.DropN(reason, b.lines)
	s.log.Debug("dropped a batch of events", "reason", reason, "lines", b.lines, "attempts", attempts, "err", lastErr)
}

// recovered logs, once, that pushes work again after failing.
func (s *Shipper) recovered() {
	if s.failing {
		s.log.Info("pushing events to loki recovered",
			"failed_pushes", s.failedPushes, "dropped_lines", s.failedLines)
		s.failing, s.failedPushes, s.failedLines = false, 0, 0
	}
}

// rejected counts the lines of b that Loki's 400 answer se (in err)
// refused, and the rest as sent, when se counts them; else the whole
// batch. It logs a warning at the first rejection after a batch Loki took
// whole, and at debug level after that.
func (s *Shipper) rejected(b *batch, se *StatusError, err error) {
	refused := b.lines
	if se.Judged > 0 && se.Ignored <= b.lines {
		refused = se.Ignored
	}
	s.sent.Add(float64(b.lines - refused))
	s.q.DropN(ReasonRejected, refused)
	s.recovered() // Loki answered
	level := slog.LevelDebug
	if !s.rejecting {
		s.rejecting, level = true, slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "loki rejected event lines; dropping them",
		"rejected", refused, "lines", b.lines, "err", err)
}

// rejection returns err's StatusError when Loki answered 400: it judged
// (some of) the lines and refused them, which no retry changes.
func rejection(err error) *StatusError {
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusBadRequest {
		return se
	}
	return nil
}
