package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Drop reasons, the values of the reason label of
// crowsnest_events_dropped_total.
const (
	// ReasonBufferFull: Send found the buffer full.
	ReasonBufferFull = "buffer_full"
	// ReasonPushFailed: the batch's push failed for good (a non-retryable
	// answer, or retries exhausted; each attempt bounded by Timeout).
	ReasonPushFailed = "push_failed"
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

	sent    prometheus.Counter
	dropped *prometheus.CounterVec

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
			Help: "Event lines dropped before Loki accepted them, by reason (buffer_full, push_failed, shutdown).",
		}, []string{"reason"}),
		in:   make(chan item, cfg.BufferSize),
		done: make(chan struct{}),
	}
	for _, r := range []string{ReasonBufferFull, ReasonPushFailed, ReasonShutdown} {
		s.dropped.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.sent, s.dropped} {
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
func (s *Shipper) Send(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	it := item{key: streamKey{e.Env, e.Project, e.Event}, time: e.Time, line: e.Line()}
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
		backoff.WithBackOff(newBackOff(s.cfg.MinBackoff, s.cfg.MaxBackoff)),
		backoff.WithMaxTries(uint(s.cfg.MaxRetries)+1), // it counts attempts; 0 would mean forever
		backoff.WithMaxElapsedTime(0),                  // bounded by MaxRetries alone, not Retry's 15 min default
	)
	if err == nil {
		s.sent.Add(float64(b.lines))
		if s.failing {
			s.log.Info("pushing events to loki recovered",
				"failed_pushes", s.failedPushes, "dropped_lines", s.failedLines)
			s.failing, s.failedPushes, s.failedLines = false, 0, 0
		}
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

// backoffJitter is the spread of each wait around its interval: ±1/3 of
// 1.5·d is [d, 2d], the range loki-client-go's backoff drew from.
const backoffJitter = 1.0 / 3

// newBackOff returns the waits between push attempts: the n-th wait
// (n = 0, 1, ...) is drawn from [lo·2ⁿ, lo·2ⁿ⁺¹], and no wait is shorter
// than lo or longer than hi: the waits begin at MinBackoff and double up to
// MaxBackoff, with jitter.
func newBackOff(lo, hi time.Duration) backoff.BackOff {
	return &boundedBackOff{
		ExponentialBackOff: backoff.ExponentialBackOff{
			InitialInterval:     lo * 3 / 2,
			RandomizationFactor: backoffJitter,
			Multiplier:          2,
			MaxInterval:         hi * 3 / 4, // drawn from [hi/2, hi] once there
		},
		lo: lo,
		hi: hi,
	}
}

// boundedBackOff is an ExponentialBackOff whose waits are clamped to
// [lo, hi]: the library caps the interval, not the randomized wait, and
// does not cap the first interval.
type boundedBackOff struct {
	backoff.ExponentialBackOff
	lo, hi time.Duration
}

// NextBackOff implements backoff.BackOff.
func (b *boundedBackOff) NextBackOff() time.Duration {
	return min(max(b.ExponentialBackOff.NextBackOff(), b.lo), b.hi)
}
