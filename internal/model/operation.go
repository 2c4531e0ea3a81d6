package model

import (
	"strconv"
	"strings"
	"time"
)

// Operation is a finished sync operation of one Application, as the tracker
// observed it: what traces and duration histograms are made of.
type Operation struct {
	// Identity of the app.
	UID, Namespace, Name, Project, Env string
	// Revision synced to, who started the operation ("automated" or a
	// user name), its result (Succeeded, Failed, Error) and Argo CD's
	// message.
	Revision, Initiator, Result, Message string
	// Revisions are the revisions of each source of a multi-source app,
	// in the order of spec.sources; nil for a single source.
	Revisions []string
	// StartedAt and FinishedAt are Argo CD's times (whole seconds).
	// Seq tells apart operations of the app that started in the same
	// second: 0 for the first, 1 for the next...
	StartedAt, FinishedAt time.Time
	Seq                   int
	// RetryCount is how many times Argo CD retried the operation; the
	// waves are those of the last attempt.
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
	// Retries are the times crowsnest saw a new attempt begin.
	Retries []time.Time
	// TimedWaves are the operation's waves for metrics: set only when
	// crowsnest watched the operation from its start.
	TimedWaves []WaveTiming
	// Parent is the wave span of the app-of-apps operation that created
	// or changed this Application just before this operation, if any.
	Parent *Link
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

// Wave is one sync wave of an operation.
type Wave struct {
	Phase      string // PreSync, Sync, PostSync, SyncFail
	Wave       int64
	Start, End time.Time
	Resources  []Resource
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
	Phase      string // PreSync, Sync, PostSync, SyncFail
	Wave       int64
	Start, End time.Time
	Resources  int
}

// WaveLabel is the wave number as a label value.
func (w *WaveTiming) WaveLabel() string { return strconv.FormatInt(w.Wave, 10) }

// Link points at a span of another operation's trace.
type Link struct {
	TraceID, SpanID string
}
