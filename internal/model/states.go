package model

// The state sets crowsnest exposes: one 0/1 series per value, so alerts keep
// their series when the state changes. Metrics and direct paging judge the
// same values: a sync status or health outside its set (including the empty
// string Argo CD leaves before its first comparison) counts as "Unknown".

// SyncStatuses are the sync statuses crowsnest exposes.
func SyncStatuses() []string { return []string{"Synced", "OutOfSync", "Unknown"} }

// HealthStatuses are the health statuses crowsnest exposes.
func HealthStatuses() []string {
	return []string{"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
}

// Operation phases crowsnest adds to Argo CD's.
const (
	// PhasePending: an operation was asked for (.operation set by the CLI,
	// the UI or auto-sync) and no controller has started it.
	PhasePending = "Pending"
	// PhaseTerminated: a person ended the operation with terminate-op.
	// One the controller's sync timeout ended shows as Failed.
	PhaseTerminated = "Terminated"
)

// OperationPhases are the operation phases crowsnest exposes. A phase
// crowsnest does not know sets every series to 0: no alert on "Failed"
// fires for a phase that may mean anything.
func OperationPhases() []string {
	return []string{PhasePending, "Running", "Terminating", "Succeeded", "Failed", "Error", PhaseTerminated}
}

// ExposedSync returns status as crowsnest exposes it: itself when in
// SyncStatuses, else "Unknown".
func ExposedSync(status string) string { return inSet(status, SyncStatuses(), "Unknown") }

// ExposedHealth returns status as crowsnest exposes it: itself when in
// HealthStatuses, else "Unknown".
func ExposedHealth(status string) string { return inSet(status, HealthStatuses(), "Unknown") }

func inSet(v string, set []string, fallback string) string {
	for _, s := range set {
		if s == v {
			return v
		}
	}
	return fallback
}
