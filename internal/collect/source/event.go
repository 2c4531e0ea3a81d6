// Package source holds where crowsnest's observations come from: the
// Kubernetes watch of Applications, the Argo CD API, a replayed recording
// (and the recorder that makes one), and the watch of the workloads apps
// deploy. Each delivers events to the tracker through a small sink
// interface and reports its own health as metrics.
package source

import "github.com/crowsnest/crowsnest/internal/model"

// Sink consumes Application events. Sources call Handle from their own
// goroutines, so implementations must be safe for concurrent use and
// return quickly.
type Sink interface {
	Handle(model.Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(model.Event)

// Handle calls f(e).
func (f SinkFunc) Handle(e model.Event) { f(e) }

// WorkloadSink consumes workload events, like Sink.
type WorkloadSink interface {
	HandleWorkload(model.WorkloadEvent)
}
