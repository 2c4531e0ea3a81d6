package model

import (
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

// EventType says what happened to an object.
type EventType string

// The event types, spelt as in the Kubernetes watch API so recordings read
// like watch streams.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// EventTypes lists every event type, in a fixed order.
func EventTypes() []EventType { return []EventType{Added, Modified, Deleted} }

// Event is one observation of an Application by a source.
type Event struct {
	// Type is what happened.
	Type EventType `json:"type"`
	// Time is when the source saw it: the wall clock for live sources, the
	// recorded time for a replay. Derived timestamps (drift began) use it.
	Time time.Time `json:"time"`
	// App is the Application as observed; for Deleted, its last known
	// state. Receivers must not modify it.
	App *v1alpha1.Application `json:"object"`
}

// WorkloadEvent is one observation of a workload by a source.
type WorkloadEvent struct {
	Type EventType
	// Time is when the source saw it.
	Time time.Time
	// Workload is what crowsnest keeps of the object; for Deleted, only
	// its identity (Kind, Namespace, Name) is needed.
	Workload Workload
}

// ProjectEvent is one observation of an AppProject by a source: its sync
// windows decide when its apps may sync.
type ProjectEvent struct {
	Type EventType
	// Project is the AppProject as observed; for Deleted, its last known
	// state. Receivers must not modify it.
	Project *v1alpha1.AppProject
}

// ApplicationSetEvent is one observation of an ApplicationSet by a source:
// its RollingSync strategy and status say which Applications it syncs step
// by step, and where each is.
type ApplicationSetEvent struct {
	Type EventType
	// ApplicationSet is the ApplicationSet as observed; for Deleted, its
	// last known state. Receivers must not modify it.
	ApplicationSet *v1alpha1.ApplicationSet
}
