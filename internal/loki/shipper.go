package loki

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/retry"
)

// Drop reasons, the values of the reason label of
// crowsnest_events_dropped_total.
const (
	// ReasonBufferFull: Send found the buffer full.
	ReasonBufferFull = "buffer_full"
	// ReasonPushFailed: the batch's push failed for good (a non-retryable
	// answer other than 400, or retries exhausted; each attempt bounded by
	// Timeout).
	ReasonPushFailed = "push_failed"
	// ReasonRejected: Loki answered 400, refusing the line itself (too
	// old, too long, a bad stream...). When the answer counts what it
	// refused ("total ignored: N out of M"), only those N lines are
	// counted so, the rest of the batch as sent; else the whole batch.
	ReasonRejected = "rejected"
	// ReasonShutdown: sent after Close, or still unsent when Close's
	// context ended.
	ReasonShutdown = "shutdown"
)

// Shipper ships events to Loki in the background. Send never blocks;
// Close flushes. It is safe for concurrent use.
type Shipper struct {
	cfg    Config
	pusher Pusher
	log    *slog.Logger

	sent      prometheus.Counter
	dropped   *prometheus.CounterVec
	truncated prometheus.Counter

	mu     sync.RWMutex // guards closed against the close of in
	closed bool
	in     chan item

	ctx    context.Context // canceled when Close gives up waiting
	cancel context.CancelFunc
	done   chan struct{}

	// Owned by the run goroutine.
	failing      bool
	failedLines  int
	failedPushes int
	rejecting    bool // Loki rejected lines since the last batch it took whole
}

type streamKey struct{ env, project, event string }

type item struct {
	key  streamKey
	time time.Time
	line string
}

// New returns a Shipper pushing to cfg.URL over HTTP, with its counters
// registered on reg (nil: not registered) and logging to logger (nil:
// discarded). Zero fields of cfg take their defaults.
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
	s := &Shipper{
		cfg:    cfg,
		pusher: p,
		log:    logger,
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crowsnest_events_sent_total",
			Help: "Event lines Loki accepted.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_events_dropped_total",
			Help: "Event lines dropped before Loki accepted them, by reason (buffer_full, push_failed, rejected, shutdown).",
		}, []string{"reason"}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crowsnest_events_truncated_total",
			Help: "Event lines longer than the line size limit, whose largest field values were cut to fit.",
		}),
		in:   make(chan item, cfg.BufferSize),
		done: make(chan struct{}),
	}
	for _, r := range []string{ReasonBufferFull, ReasonPushFailed, ReasonRejected, ReasonShutdown} {
		s.dropped.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.sent, s.dropped, s.truncated} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering events metrics: %w", err)
			}
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// Send queues e for shipping and returns at once. When the buffer is full,
// or after Close, e is dropped and counted.
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
	it := item{key: streamKey{e.Env, e.Project, e.Event}, time: now, line: line}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.dropped.WithLabelValues(ReasonShutdown).Inc()
		return
	}
	select {
	case s.in <- it:
	default:
		s.dropped.WithLabelValues(ReasonBufferFull).Inc()
	}
}

// Fact sends the tracker's fact f as an event; it implements the tracker's
// fact subscriber.
func (s *Shipper) Fact(f *model.Fact) { s.Send(FromFact(f)) }

// Close stops accepting events and pushes what is buffered, retrying as
// configured, until done or ctx ends; then in-flight pushes are abandoned
// and what is left is counted as dropped (reason shutdown). It returns
// ctx's error, wrapped, when the flush did not complete. Close may be
// called more than once.
func (s *Shipper) Close(ctx context.Context) error {
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
		return fmt.Errorf("flushing events to loki: %w", ctx.Err())
	}
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

func (s *Shipper) run() {
	defer close(s.done)
	defer s.cancel()
	var b batch
	timer := time.NewTimer(s.cfg.BatchWait)
	timer.Stop()
	flush := func() {
		timer.Stop()
		if b.lines > 0 {
			s.push(&b)
		}
		b = batch{}
	}
	for {
		select {
		case it, ok := <-s.in:
			if !ok {
				flush()
				return
			}
			if b.lines > 0 && b.bytes+len(it.line) > s.cfg.BatchBytes {
				flush()
			}
			if b.lines == 0 {
				timer.Reset(s.cfg.BatchWait)
			}
			b.add(it)
			if b.lines >= s.cfg.BatchSize || b.bytes >= s.cfg.BatchBytes {
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// push delivers one batch, retrying retryable failures with exponential
// backoff (see newBackOff), and counts its lines as sent or dropped.
func (s *Shipper) push(b *batch) {
	if s.ctx.Err() != nil {
		s.dropped.WithLabelValues(ReasonShutdown).Add(float64(b.lines))
		return
	}
	streams := make([]Stream, 0, len(b.order))
	for _, k := range b.order {
		streams = append(streams, Stream{
			Labels:  streamLabels(s.cfg.Job, Event{Env: k.env, Project: k.project, Event: k.event}),
			Entries: b.streams[k],
		})
	}
	var lastErr error // the last attempt's own error, not Retry's
	attempts := 0
	_, err := backoff.Retry(s.ctx, func() (struct{}, error) {
		attempts++
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
		err := s.pusher.Push(ctx, streams)
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
	if s.ctx.Err() != nil {
		reason = ReasonShutdown
	}
	s.failedLines += b.lines
	s.dropped.WithLabelValues(reason).Add(float64(b.lines))
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
	s.dropped.WithLabelValues(ReasonRejected).Add(float64(refused))
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
