package model

import (
	"strings"
	"time"
)

// Operation is a finished sync operation of one Application, as the tracker
// observed it: what traces and duration histograms are made of.
type Operation struct {
	// Identity of the app; Dest names its destination cluster
	// (AppView.Dest).
	UID, Namespace, Name, Project, Env, Dest string
	// Revision synced to, who started the operation ("automated" or a
	// user name), its result (Succeeded, Failed, Error) and Argo CD's
	// message.
	Revision, Initiator, Result, Message string
	// Revisions are the revisions of each source of a multi-source app,
	// in the order of spec.sources; nil for a single source.
	Revisions []string
	// DrySHA is, for an app with a Source Hydrator, the dry commit that
	// the synced (hydrated) revision renders: set when the revision is
	// the hydrator's last hydrated SHA, empty otherwise.
	DrySHA string
	// StartedAt and FinishedAt are Argo CD's times (whole seconds).
	// Seq tells apart operations of the app that started in the same
	// second: 0 for the first, 1 for the next...
	StartedAt, FinishedAt time.Time
	Seq                   int
	// RetryCount is how many times Argo CD retried the operation.
	RetryCount int64
	// Partial marks an operation crowsnest did not watch from its start
	// (it started before crowsnest did, or finished between two
	// observations): its waves are missing or incomplete.
	Partial bool
	// Waves timed by crowsnest, in the order they ran, each ending where
	// the next begins.
	Waves []Wave
	// Resources are results whose wave crowsnest could not time; they
	// become events on the root span.
	Resources []Resource
	// Attempts are the operation's runs as crowsnest saw them, in order,
	// when Argo CD retried it (nil otherwise): attempt 0 is the first
	// run. The gap between one attempt's end and the next one's start is
	// the retry backoff.
	Attempts []Attempt
	// Blocked are the spans of time a sync window held the running
	// operation ("Sync operation blocked by sync window"); BlockedFor is
	// their sum, which is not sync time.
	Blocked    []Interval
	BlockedFor time.Duration
	// TimedWaves are the operation's waves for metrics: set only when
	// crowsnest watched the operation from its start.
	TimedWaves []WaveTiming
	// Parent is the wave span of the app-of-apps operation that created
	// or changed this Application just before this operation, if any.
	Parent *Link
	// Deployment is set when the operation is a deployment (see
	// Deployment): it changed the revisions the app runs.
	Deployment *Deployment
	// Commit is the deployed commit's metadata, when crowsnest had it at
	// hand as the operation finished; nil otherwise.
	Commit *Commit
	// PredictedFinish is the finish crowsnest predicted from the app's
	// past waves when it first saw the operation run; zero when it had no
	// history to predict from.
	PredictedFinish time.Time
}

// RevisionText is the revision for one-line displays: Revision, else the
// sources' revisions joined with commas.
func (o *Operation) RevisionText() string { return JoinRevisions(o.Revision, o.Revisions) }

// JoinRevisions is revision, else revisions (a multi-source app's, one per
// source) joined with commas.
func JoinRevisions(revision string, revisions []string) string {
	if revision != "" || len(revisions) == 0 {
		return revision
	}
	return strings.Join(revisions, ",")
}

// TraceID is the operation's trace id.
func (o *Operation) TraceID() string { return OperationSeqID(o.UID, o.StartedAt, o.Seq) }

// Duration is how long the operation synced: Argo CD's startedAt to
// finishedAt, less the time a sync window held it.
func (o *Operation) Duration() time.Duration {
	return max(o.FinishedAt.Sub(o.StartedAt)-o.BlockedFor, 0)
}

// Attempt is one run of a retried operation.
type Attempt struct {
	// N is the attempt's number: Argo CD's retryCount while it ran.
	N          int64
	Start, End time.Time
}

// Interval is a span of time.
type Interval struct {
	Start, End time.Time
}

// Wave is one sync wave of an operation.
type Wave struct {
	// Attempt is the attempt of a retried operation the wave ran in.
	Attempt    int64
	Phase      string // PreSync, Sync, PostSync, SyncFail
	Wave       int64  // UnknownWave when crowsnest cannot tell
	Start, End time.Time
	// Blocked is how much of the wave's time a sync window held the
	// operation.
	Blocked   time.Duration
	Resources []Resource
}

// Resource is the result of syncing one resource, first seen at Seen.
type Resource struct {
	Group, Kind, Namespace, Name string
	// Status is Synced, SyncFailed, Pruned, PruneSkipped; HookPhase and
	// HookType are set for hooks.
	Status, HookPhase, HookType, Message string
	Seen                                 time.Time
}

// WaveTiming is one wave of an operation as crowsnest observed it, for
// metrics: only operations watched from their start have them.
type WaveTiming struct {
	Attempt    int64  // the attempt of a retried operation it ran in
	Phase      string // PreSync, Sync, PostSync, SyncFail
	Wave       int64  // UnknownWave when crowsnest cannot tell
	Start, End time.Time
	Blocked    time.Duration // held by a sync window
	Resources  int
}

// WaveLabel is the wave number as a label value, or "unknown".
func (w *WaveTiming) WaveLabel() string { return WaveLabel(w.Wave) }

// Duration is the wave's time, less the time a sync window held it.
func (w *WaveTiming) Duration() time.Duration { return max(w.End.Sub(w.Start)-w.Blocked, 0) }

// Link points at a span of another operation's trace.
type Link struct {
	TraceID, SpanID string
}
