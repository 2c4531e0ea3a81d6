package source

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/redact"
)

// replaySourceName is the value of the source label for a replay.
const replaySourceName = "replay"

// maxRecordLine bounds one recorded event; an Application with a huge
// resource list is a few MiB at most.
const maxRecordLine = 64 << 20

// Recorder is a Sink that writes each event as one JSON line, the format
// ReplaySource reads.
type Recorder struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

// NewRecorder returns a recorder writing to w.
func NewRecorder(w io.Writer) *Recorder {
	return &Recorder{w: bufio.NewWriter(w)}
}

// Handle writes e. Managed fields and the last-applied annotation are
// dropped (large, unread, and the annotation repeats the spec), and
// credentials in repository URLs are stripped: a recording is shared.
func (r *Recorder) Handle(e model.Event) {
	if e.App != nil {
		app := e.App.DeepCopy()
		trimMeta(&app.ObjectMeta)
		app.Status.UnpackResources()
		if app.Spec.Source != nil {
			app.Spec.Source.RepoURL = redact.URL(app.Spec.Source.RepoURL)
		}
		for i := range app.Spec.Sources {
			app.Spec.Sources[i].RepoURL = redact.URL(app.Spec.Sources[i].RepoURL)
		}
		e.App = app
	}
	r.write(recordLine{Type: e.Type, Time: e.Time, App: e.App})
}

// write appends one line to the recording.
func (r *Recorder) write(l recordLine) {
	line, err := json.Marshal(l)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if err != nil {
		r.err = fmt.Errorf("encode event: %w", err)
		return
	}
	if _, err := r.w.Write(append(line, '\n')); err != nil {
		r.err = fmt.Errorf("write event: %w", err)
		return
	}
	// Flush per event so a recording cut short by a signal is whole.
	if err := r.w.Flush(); err != nil {
		r.err = fmt.Errorf("write event: %w", err)
	}
}

// HandleProject writes an AppProject event as a line with "project" in
// place of "object": their sync windows decide which apps are held.
func (r *Recorder) HandleProject(e model.ProjectEvent) {
	if e.Project == nil {
		return
	}
	p := e.Project.DeepCopy()
	trimMeta(&p.ObjectMeta)
	r.write(recordLine{Type: e.Type, Time: time.Now(), Project: p})
}

// HandleApplicationSet writes an ApplicationSet event as a line with
// "applicationSet": its RollingSync says where its apps are.
func (r *Recorder) HandleApplicationSet(e model.ApplicationSetEvent) {
	if e.ApplicationSet == nil {
		return
	}
	a := e.ApplicationSet.DeepCopy()
	trimMeta(&a.ObjectMeta)
	r.write(recordLine{Type: e.Type, Time: time.Now(), ApplicationSet: a})
}

// HandleWorkload writes a workload event as a line with "workload": what
// crowsnest kept of it (model.Workload, no credentials), so a replay
// knows the workloads and the waves of hook Jobs.
func (r *Recorder) HandleWorkload(e model.WorkloadEvent) {
	if e.Workload.App == "" {
		return // no Application's: crowsnest would drop it too
	}
	w := e.Workload
	r.write(recordLine{Type: e.Type, Time: e.Time, Workload: &w})
}

// recordLine is one line of a recording: an Application event (object),
// an AppProject event (project), an ApplicationSet event (applicationSet)
// or a workload event (workload).
type recordLine struct {
	Type           model.EventType          `json:"type"`
	Time           time.Time                `json:"time"`
	App            *v1alpha1.Application    `json:"object,omitempty"`
	Project        *v1alpha1.AppProject     `json:"project,omitempty"`
	ApplicationSet *v1alpha1.ApplicationSet `json:"applicationSet,omitempty"`
	Workload       *model.Workload          `json:"workload,omitempty"`
}

// kinds counts the kinds of object the line holds: one is right.
func (l *recordLine) kinds() int {
	n := 0
	for _, set := range []bool{l.App != nil, l.Project != nil, l.ApplicationSet != nil, l.Workload != nil} {
		if set {
			n++
		}
	}
	return n
}

// Err returns the first write error, after which the recorder stops.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// ReplaySource feeds a recording back through the pipeline, keeping the
// recorded gaps between events divided by a speed factor.
type ReplaySource struct {
	name    string // for error messages: the file name
	open    func() (io.ReadCloser, error)
	speed   float64
	metrics *SourceMetrics
	logger  *slog.Logger

	ready atomic.Bool
	done  chan struct{}
}

// NewReplaySource returns a source replaying what open returns; name names
// it in errors. A speed of 2 replays twice as fast as recorded; 0 or less
// replays without waiting.
func NewReplaySource(name string, open func() (io.ReadCloser, error), speed float64, metrics *SourceMetrics, logger *slog.Logger) *ReplaySource {
	metrics.register(replaySourceName)
	return &ReplaySource{name: name, open: open, speed: speed, metrics: metrics, logger: logger.With("component", "replay-source"), done: make(chan struct{})}
}

// Done is closed when the whole recording has been delivered.
func (s *ReplaySource) Done() <-chan struct{} { return s.done }

// Ready reports whether the first instant of the recording, the state the
// recorder saw when it started, has been delivered.
func (s *ReplaySource) Ready() bool { return s.ready.Load() }

// Run replays the recording, then keeps the state it built until ctx is
// done. A line that does not parse is logged with its position and skipped.
// AppProject lines go to sink when it is a ProjectSink too,
// ApplicationSet lines when it is an ApplicationSetSink, workload lines
// when it is a WorkloadSink.
func (s *ReplaySource) Run(ctx context.Context, sink Sink) error {
	projects, _ := sink.(ProjectSink)
	appsets, _ := sink.(ApplicationSetSink)
	workloads, _ := sink.(WorkloadSink)
	rc, err := s.open()
	if err != nil {
		return fmt.Errorf("open recording %s: %w", s.name, err)
	}
	defer rc.Close()
	s.metrics.setUp(replaySourceName, true)
	sink = s.metrics.counting(replaySourceName, sink)

	r := bufio.NewReaderSize(rc, 1<<20)
	var prev time.Time
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errLineTooLong) {
			s.logger.Warn("skipping bad recording line", "file", s.name, "line", lineNo, "err", err)
			continue
		}
		if err != nil {
			s.logger.Error("read recording", "file", s.name, "line", lineNo, "err", err)
			break
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e recordLine
		if err := json.Unmarshal(line, &e); err != nil || e.kinds() != 1 || !validType(e.Type) {
			if err == nil {
				err = fmt.Errorf("want an object with type ADDED, MODIFIED or DELETED and one of an Application in object, an AppProject in project, an ApplicationSet in applicationSet or a workload in workload")
			}
			s.logger.Warn("skipping bad recording line", "file", s.name, "line", lineNo, "err", err)
			continue
		}
		if !prev.IsZero() && e.Time.After(prev) {
			// The recorder's first instant is its initial list: once time
			// moves on, that state is complete.
			s.ready.Store(true)
			if s.speed > 0 {
				if !sleep(ctx, time.Duration(float64(e.Time.Sub(prev))/s.speed)) {
					return nil
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		prev = e.Time
		switch {
		case e.App != nil:
			sink.Handle(model.Event{Type: e.Type, Time: e.Time, App: e.App})
		case e.Project != nil && projects != nil:
			projects.HandleProject(model.ProjectEvent{Type: e.Type, Project: e.Project})
		case e.ApplicationSet != nil && appsets != nil:
			appsets.HandleApplicationSet(model.ApplicationSetEvent{Type: e.Type, ApplicationSet: e.ApplicationSet})
		case e.Workload != nil && workloads != nil:
			workloads.HandleWorkload(model.WorkloadEvent{Type: e.Type, Time: e.Time, Workload: *e.Workload})
		}
	}
	s.ready.Store(true)
	close(s.done)
	s.logger.Info("replay finished; serving its final state", "file", s.name)
	<-ctx.Done()
	return nil
}

// errLineTooLong reports a recording line over maxRecordLine; the reader
// has skipped past it.
var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxRecordLine)

// readLine reads one line of any length up to maxRecordLine.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			line = append(line, chunk...)
			if len(line) > maxRecordLine {
				tooLong, line = true, nil
			}
		}
		if tooLong && (err == nil || errors.Is(err, io.EOF)) {
			return nil, errLineTooLong
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		case err != nil:
			return nil, err
		}
		return line, nil
	}
}

func validType(t model.EventType) bool {
	return t == model.Added || t == model.Modified || t == model.Deleted
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
