package model

import (
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
)

// Key returns the key of the Application namespace/name, as the tracker and
// every subscriber index apps.
func Key(namespace, name string) string { return namespace + "/" + name }

// AppStatus is an Application's state as alerts judge it.
type AppStatus struct {
	Namespace, Name, Project, Env string
	SyncStatus, Health            string
	Phase                         string // the last operation's phase; "" if none
	AutoSync                      bool
}

// Operation results counted per app, in a fixed order so every result's
// series exists from the start and increase() sees the first failure.
const (
	ResultSucceeded = 0
	ResultFailed    = 1
	ResultError     = 2
	NumResults      = 3
)

// Results returns the counted results, indexed as ResultSucceeded etc.
func Results() [NumResults]synccommon.OperationPhase {
	return [NumResults]synccommon.OperationPhase{synccommon.OperationSucceeded, synccommon.OperationFailed, synccommon.OperationError}
}

// ResultIndex returns the index of phase in Results, or -1.
func ResultIndex(phase synccommon.OperationPhase) int {
	for i, r := range Results() {
		if r == phase {
			return i
		}
	}
	return -1
}

// PolicyResult is one policy of an app's environment checked on the app.
type PolicyResult struct {
	Policy   string // auto_sync, self_heal, prune, images_by_digest
	Violated bool
}

// Promotion places an app in a promotion group: the group's name and the
// order of environments changes move through.
type Promotion struct {
	Group string
	Order []string
}

// AppView is an Application together with what the tracker derived for it:
// everything one app's series and alerts are computed from. The tracker
// publishes a new view on every change; a published view, and everything
// it points to, is never modified again.
type AppView struct {
	App        *v1alpha1.Application
	Env        string
	DriftSince time.Time          // zero while not drifted
	Syncs      [NumResults]uint64 // finished operations by result, see Results
	// LastWaves are the waves of the last operation timed to its end.
	LastWaves []WaveTiming
	Policies  []PolicyResult
	// Promotion is the app's promotion group; nil when in none.
	Promotion *Promotion
	// Workloads are the app's workloads, sorted by kind, namespace, name.
	Workloads []Workload
}

// Key returns the app's key.
func (v *AppView) Key() string { return Key(v.App.Namespace, v.App.Name) }

// Status returns the app's state as alerts judge it.
func (v *AppView) Status() AppStatus {
	a := v.App
	s := AppStatus{
		Namespace: a.Namespace, Name: a.Name, Project: a.Spec.Project, Env: v.Env,
		SyncStatus: string(a.Status.Sync.Status), Health: string(a.Status.Health.Status),
		AutoSync: a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.Automated != nil,
	}
	if op := a.Status.OperationState; op != nil {
		s.Phase = string(op.Phase)
	}
	return s
}
