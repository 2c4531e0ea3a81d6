// Package queue is the one delivery queue of crowsnest's outputs: the Loki
// shipper, the CloudEvents sink, the trace emitter and the deployment
// worker each put one in front of their worker, as the OpenTelemetry batch
// span processor and Prometheus' notifier do.
//
// A Queue is bounded and Send never blocks: the tracker, which calls it
// under no deadline of its own, must never wait on a slow Loki or
// collector. What does not fit is dropped and counted in the output's
// crowsnest_<output>_dropped_total{reason}, under the reasons every queue
// shares (queue_full, shutdown) and the output's own (push_failed,
// rejected...), which its worker counts through Drop. Leadership gates
// Send: a replica that does not lead sends nothing (and drops nothing).
//
// Run is the worker's loop, an actor of the daemon's run group: it hands
// batches to the Worker until its context ends, then stops taking items
// and flushes what is queued within FlushTimeout; what is left then is
// dropped, reason shutdown. It returns once the flush is done.
package queue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The drop reasons every queue counts.
const (
	// ReasonQueueFull: Send found the queue full.
	ReasonQueueFull = "queue_full"
	// ReasonShutdown: sent after the queue stopped taking items, or still
	// queued when the flush ran out of time.
	ReasonShutdown = "shutdown"
)

// NewDropCounter returns the drop counter of an output,
// crowsnest_<output>_dropped_total{reason}, with help, and each reason of
// the queue's and the output's own (reasons) initialised at 0, so a rate
// over it has a series before the first drop. The caller registers it.
func NewDropCounter(output, help string, reasons ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crowsnest_" + output + "_dropped_total",
		Help: help,
	}, []string{"reason"})
	for _, r := range append([]string{ReasonQueueFull, ReasonShutdown}, reasons...) {
		c.WithLabelValues(r)
	}
	return c
}

// Config configures a Queue.
type Config[T any] struct {
	// Size is how many items wait at most (at least 1).
	Size int
	// Dropped counts drops by reason (NewDropCounter).
	Dropped *prometheus.CounterVec
	// Weight is what one item counts for in Dropped (a trace's spans);
	// nil: 1.
	Weight func(T) int
	// MaxItems is the most items of one batch; 0: 1.
	MaxItems int
	// MaxBytes, with Bytes, closes a batch once its items' bytes reach
	// it; 0: no limit.
	MaxBytes int
	Bytes    func(T) int
	// Wait is how long a batch may wait to fill before it is delivered
	// (with MaxItems > 1).
	Wait time.Duration
	// Gate reports whether this replica sends (leads); nil: always.
	Gate func() bool
	// FlushTimeout bounds the flush once Run's context ends.
	FlushTimeout time.Duration
}

// Worker delivers batches.
type Worker[T any] interface {
	// Deliver hands batch on, retrying as it sees fit until ctx ends (the
	// flush ran out of time), and counts what it fails to deliver with
	// Drop.
	Deliver(ctx context.Context, batch []T)
}

// Flusher is a Worker that holds items of its own beyond the queue (the
// OpenTelemetry batch span processor): Flush is called once after the
// last batch, within the flush's deadline.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Queue is a bounded, non-blocking queue in front of one worker. Its
// methods are safe for concurrent use.
type Queue[T any] struct {
	cfg Config[T]

	mu     sync.RWMutex // guards closed against the close of ch
	closed bool
	ch     chan T
	// full counts the drops of a full queue: its label looked up once,
	// not on every drop of a backlog.
	full prometheus.Counter
}

// New returns a queue configured by cfg.
func New[T any](cfg Config[T]) (*Queue[T], error) {
	if cfg.Size < 1 {
		return nil, fmt.Errorf("queue size %d: must be at least 1", cfg.Size)
	}
	if cfg.Dropped == nil {
		return nil, fmt.Errorf("queue without a drop counter")
	}
	cfg.MaxItems = max(cfg.MaxItems, 1)
	return &Queue[T]{cfg: cfg, ch: make(chan T, cfg.Size), full: cfg.Dropped.WithLabelValues(ReasonQueueFull)}, nil
}

// Send queues v and returns at once: nothing while this replica does not
// lead; a drop, counted, when the queue is full or has stopped taking
// items.
func (q *Queue[T]) Send(v T) {
	if q.cfg.Gate != nil && !q.cfg.Gate() {
		return
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.Drop(ReasonShutdown, v)
		return
	}
	select {
	case q.ch <- v:
	default:
		n := 1
		if q.cfg.Weight != nil {
			n = q.cfg.Weight(v)
		}
		if n > 0 {
			q.full.Add(float64(n))
		}
	}
}

// Drop counts items as dropped for reason.
func (q *Queue[T]) Drop(reason string, items ...T) {
	n := len(items)
	if q.cfg.Weight != nil {
		n = 0
		for _, v := range items {
			n += q.cfg.Weight(v)
		}
	}
	q.DropN(reason, n)
}

// DropN counts n units (lines, spans...) as dropped for reason: for what
// a worker loses after the queue, counted in the units its items weigh.
func (q *Queue[T]) DropN(reason string, n int) {
	if n > 0 {
		q.cfg.Dropped.WithLabelValues(reason).Add(float64(n))
	}
}

// Stopped reports whether the queue stopped taking items: Run's context
// ended and the flush began.
func (q *Queue[T]) Stopped() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.closed
}

// Len is how many items wait.
func (q *Queue[T]) Len() int { return len(q.ch) }

// close stops taking items; the loop drains what is queued.
func (q *Queue[T]) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}

// Run hands the queued items to w in batches until ctx ends, then flushes:
// it stops taking items and delivers what is queued within FlushTimeout,
// after which w's context ends and what is left is dropped (reason
// shutdown). It returns nil once the flush is done. Run must be called
// once.
func (q *Queue[T]) Run(ctx context.Context, w Worker[T]) error {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var deadline *time.Timer // set before ch is closed, so before the loop ends
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		deadline = time.AfterFunc(q.cfg.FlushTimeout, cancel)
		q.mu.Unlock()
		q.close()
	})
	defer func() {
		stop()
		q.mu.Lock()
		if deadline != nil {
			deadline.Stop()
		}
		q.mu.Unlock()
	}()
	q.loop(work, w)
	if f, ok := w.(Flusher); ok {
		_ = f.Flush(work) // the flusher reports its own failures
	}
	return nil
}

// loop batches the items until ch is closed and drained.
func (q *Queue[T]) loop(work context.Context, w Worker[T]) {
	var batch []T
	bytes := 0
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	deliver := func() {
		timer.Stop()
		if len(batch) > 0 {
			if work.Err() != nil {
				q.Drop(ReasonShutdown, batch...)
			} else {
				w.Deliver(work, batch)
			}
		}
		batch, bytes = nil, 0
	}
	for {
		select {
		case v, ok := <-q.ch:
			if !ok {
				deliver()
				return
			}
			n := 0
			if q.cfg.Bytes != nil {
				n = q.cfg.Bytes(v)
			}
			if len(batch) > 0 && q.cfg.MaxBytes > 0 && bytes+n > q.cfg.MaxBytes {
				deliver()
			}
			if len(batch) == 0 && q.cfg.MaxItems > 1 {
				timer.Reset(q.cfg.Wait)
			}
			batch, bytes = append(batch, v), bytes+n
			if len(batch) >= q.cfg.MaxItems || (q.cfg.MaxBytes > 0 && bytes >= q.cfg.MaxBytes) {
				deliver()
			}
		case <-timer.C:
			deliver()
		}
	}
}
