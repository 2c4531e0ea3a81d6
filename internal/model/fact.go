package model

import (
	"strings"
	"time"
)

// Fact names: what the tracker establishes about an app.
const (
	FactSyncRequested     = "sync_requested"
	FactSyncStarted       = "sync_started"
	FactSyncFinished      = "sync_finished"
	FactDryRunFinished    = "dry_run_finished"
	FactPhaseEntered      = "phase_entered"
	FactWaveEntered       = "wave_entered"
	FactDriftBegan        = "drift_began"
	FactDriftEnded        = "drift_ended"
	FactHealthChanged     = "health_changed"
	FactWorkloadDegraded  = "workload_degraded"
	FactWorkloadRecovered = "workload_recovered"
	// FactHydrationFinished: a Source Hydrator operation ended, Hydrated
	// or Failed.
	FactHydrationFinished = "hydration_finished"
	// FactRolloutStatusChanged: an ApplicationSet's RollingSync moved the
	// app to another status or step.
	FactRolloutStatusChanged = "rollout_status_changed"
)

// Fact is one thing the tracker established about an app, e.g. "sync
// finished" or "drift began", as logs and Loki events show it.
type Fact struct {
	// Name is one of the Fact* constants.
	Name string
	// Time is when it happened, as far as crowsnest can tell.
	Time time.Time
	// App is the app's key (namespace/name); Project and Env its labels,
	// Dest the name of its destination cluster (AppView.Dest).
	App, Project, Env, Dest string
	// TraceID is the trace of the operation the fact belongs to, if any.
	TraceID string
	// Attrs are further key/value pairs, keys strings, in a fixed order.
	Attrs []any
}

// Message is the fact's name as a log message: "sync finished".
func (f *Fact) Message() string {
	return strings.ReplaceAll(f.Name, "_", " ")
}
