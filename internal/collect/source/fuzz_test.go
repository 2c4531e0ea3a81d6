package source

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/collect/tracker"
	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/model"
)

// FuzzReplay replays any bytes as a recording into a tracker wired to the
// outputs /metrics is made of, as cmd/exporter wires them. Nothing may
// panic; every line is either delivered or logged as skipped with the file
// name and its own line number; and the store then renders.
func FuzzReplay(f *testing.F) {
	conf, err := config.Parse(nil) // the default environments, policies and promotion
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.jsonl"
		logs := &logRecords{}
		reg := prometheus.NewRegistry()
		store := exposition.NewStore(true)
		tr := tracker.New(conf, tracker.Subscribers{
			Views:      []tracker.ViewSubscriber{store, exposition.NewPromotion(nil)},
			Operations: []tracker.OperationSubscriber{exposition.NewDurations(reg), store},
		}, promslog.NewNopLogger())
		sink := &countingSink{tr: tr}
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		src := NewReplaySource(name, open, 0, NewSourceMetrics(prometheus.NewRegistry()), slog.New(logs.handler()))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- src.Run(ctx, sink) }()
		select {
		case <-src.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("replay did not finish")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}

		// Which lines are good is decided here independently, to check
		// the line numbers the source logs.
		lines := bytes.SplitAfter(data, []byte("\n"))
		var good int
		bad := map[int64]bool{}
		for i, l := range lines {
			if len(bytes.TrimSpace(l)) == 0 {
				continue
			}
			var e recordLine
			if json.Unmarshal(l, &e) == nil && countSet(e.App != nil, e.Project != nil, e.Workload != nil) == 1 && validType(e.Type) {
				good++
			} else {
				bad[int64(i+1)] = true
			}
		}
		if sink.events != good {
			t.Errorf("delivered %d events, want %d: one per good line", sink.events, good)
		}
		logged := map[int64]bool{}
		for _, r := range logs.get() {
			if r.Level < slog.LevelWarn {
				continue
			}
			if r.attrs["file"] != name {
				t.Errorf("log %q names file %v, want %s", r.Message, r.attrs["file"], name)
			}
			line, ok := r.attrs["line"].(int64)
			if !ok || !bad[line] {
				t.Errorf("log %q names line %v, which is not a bad line (bad: %v)", r.Message, r.attrs["line"], bad)
			}
			logged[line] = true
		}
		for line := range bad {
			if !logged[line] {
				t.Errorf("bad line %d not logged", line)
			}
		}
		if _, err := store.WriteTo(io.Discard); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Gather(); err != nil {
			t.Errorf("gather the duration histograms: %v", err)
		}
	})
}

// countingSink hands events to the tracker and counts them.
type countingSink struct {
	tr     *tracker.Tracker
	events int // only Run's goroutine writes, before Done is closed
}

func (s *countingSink) Handle(e model.Event) {
	s.events++
	s.tr.Handle(e)
}

func (s *countingSink) HandleProject(e model.ProjectEvent) {
	s.events++
	s.tr.HandleProject(e)
}

func (s *countingSink) HandleWorkload(e model.WorkloadEvent) {
	s.events++
	s.tr.HandleWorkload(e)
}

// countSet counts the true ones.
func countSet(set ...bool) int {
	n := 0
	for _, b := range set {
		if b {
			n++
		}
	}
	return n
}

// logRecords keeps every record logged through its handlers.
type logRecords struct {
	mu      sync.Mutex
	records []logRecord
}

// logRecord is a record with its attributes (those of With included),
// resolved to their values.
type logRecord struct {
	slog.Record
	attrs map[string]any
}

func (l *logRecords) handler() slog.Handler { return &logHandler{logs: l} }

func (l *logRecords) get() []logRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logRecord(nil), l.records...)
}

// logHandler is a slog.Handler writing to logs.
type logHandler struct {
	logs *logRecords
	with []slog.Attr
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]any{}
	for _, a := range h.with {
		attrs[a.Key] = a.Value.Resolve().Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Resolve().Any()
		return true
	})
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	h.logs.records = append(h.logs.records, logRecord{Record: r, attrs: attrs})
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{logs: h.logs, with: append(append([]slog.Attr(nil), h.with...), attrs...)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }
