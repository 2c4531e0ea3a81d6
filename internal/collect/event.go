// Package collect turns Argo CD Application snapshots into crowsnest's
// state: sources (a Kubernetes watch, a replayed recording) produce events,
// the Tracker keeps per-app state from them, and the Store holds each app's
// metric series pre-rendered so that a scrape only copies bytes.
package collect

import (
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
)

// EventType says what happened to an Application.
type EventType string

// The event types, spelt as in the Kubernetes watch API so recordings read
// like watch streams.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is one observation of an Application by a source.
type Event struct {
	// Type is what happened.
	Type EventType `json:"type"`
	// Time is when the source saw it: the wall clock for live sources, the
	// recorded time for a replay. Derived timestamps (drift began) use it.
	Time time.Time `json:"time"`
	// App is the Application as observed; for Deleted, its last known state.
	App *v1alpha1.Application `json:"object"`
}

// Sink consumes events. Sources call Handle from their own goroutines, so
// implementations must be safe for concurrent use and return quickly.
type Sink interface {
	Handle(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Handle calls f(e).
func (f SinkFunc) Handle(e Event) { f(e) }
