// Package synccommon holds the sync phases, operation phases, result codes
// and hook types Argo CD writes into an Application's operation state, with
// the names and values of gitops-engine's pkg/sync/common, which crowsnest
// does not import (it drags in the Kubernetes and kubectl trees).
package synccommon

// OperationPhase is the phase of an operation (status.operationState.phase)
// or of a hook (syncResult.resources[].hookPhase).
type OperationPhase string

// The operation phases.
const (
	OperationRunning     OperationPhase = "Running"
	OperationTerminating OperationPhase = "Terminating"
	OperationFailed      OperationPhase = "Failed"
	OperationError       OperationPhase = "Error"
	OperationSucceeded   OperationPhase = "Succeeded"
)

// Completed reports whether the phase is final.
func (p OperationPhase) Completed() bool {
	return p == OperationFailed || p == OperationError || p == OperationSucceeded
}

// Running reports whether the phase is Running.
func (p OperationPhase) Running() bool { return p == OperationRunning }

// Successful reports whether the phase is Succeeded.
func (p OperationPhase) Successful() bool { return p == OperationSucceeded }

// Failed reports whether the phase is Failed or Error.
func (p OperationPhase) Failed() bool { return p == OperationFailed || p == OperationError }

// SyncPhase is the phase of a sync a resource belongs to.
type SyncPhase string

// The sync phases.
const (
	SyncPhasePreSync  = "PreSync"
	SyncPhaseSync     = "Sync"
	SyncPhasePostSync = "PostSync"
	SyncPhaseSyncFail = "SyncFail"
)

// ResultCode is the result of syncing one resource.
type ResultCode string

// The resource result codes.
const (
	ResultCodeSynced       ResultCode = "Synced"
	ResultCodeSyncFailed   ResultCode = "SyncFailed"
	ResultCodePruned       ResultCode = "Pruned"
	ResultCodePruneSkipped ResultCode = "PruneSkipped"
)

// HookType is the kind of a hook resource.
type HookType string

// The hook types.
const (
	HookTypePreSync  HookType = "PreSync"
	HookTypeSync     HookType = "Sync"
	HookTypePostSync HookType = "PostSync"
	HookTypeSkip     HookType = "Skip"
	HookTypeSyncFail HookType = "SyncFail"
)
