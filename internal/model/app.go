package model

import (
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

// Key returns the key of the Application namespace/name, as the tracker and
// every subscriber index apps.
func Key(namespace, name string) string { return namespace + "/" + name }

// AppStatus is an Application's state as alerts judge it.
type AppStatus struct {
	Namespace, Name, Project, Env string
	Dest                          string // the destination cluster's name, AppView.Dest
	SyncStatus, Health            string
	// Phase is the exposed phase of the app's operation: Pending (asked
	// for, not started), Running, Terminating, Succeeded, Failed, Error,
	// Terminated (ended by a person's terminate-op; one the controller's
	// sync timeout ended is Failed); "" if none.
	// A dry run leaves the phase of the last real operation.
	Phase    string
	AutoSync bool
	// Deleting is set while the Application has a deletionTimestamp.
	Deleting bool
	// Retries is the running operation's retry count; 0 when none runs.
	Retries int64
	// Labels are the Application's labels (never modified).
	Labels map[string]string
	// LiveDrift is set while the live state differs from what was last
	// synced; AwaitingSync while the target moved from it and the app
	// waits for a sync (see AppView).
	LiveDrift, AwaitingSync bool
	// HeldByWindow is set while a sync window of the app's project denies
	// the app's next sync (a change freeze): an automatic one if the app
	// auto-syncs, a manual one otherwise.
	HeldByWindow bool
	// HeldByRollout is set while an ApplicationSet's RollingSync holds
	// the app's sync back: its step is not reached (Waiting) or its sync
	// is about to be asked for (Pending).
	HeldByRollout bool
}

// Operation results counted per app, in a fixed order so every result's
// series exists from the start and increase() sees the first failure.
// Terminated is an operation a person ended with terminate-op (Argo CD writes
// it as Failed, "Operation terminated"). One the controller's sync timeout
// ended is Failed: a failure that pages and fails a deployment.
const (
	ResultSucceeded  = "Succeeded"
	ResultFailed     = "Failed"
	ResultError      = "Error"
	ResultTerminated = "Terminated"
	NumResults       = 4
)

// Results returns the counted results, in their fixed order.
func Results() [NumResults]string {
	return [NumResults]string{ResultSucceeded, ResultFailed, ResultError, ResultTerminated}
}

// ResultIndex returns the index of result in Results, or -1.
func ResultIndex(result string) int {
	for i, r := range Results() {
		if r == result {
			return i
		}
	}
	return -1
}

// FinishedOperation is an operation's outcome as the "last sync" gauges
// show it.
type FinishedOperation struct {
	Result            string // one of Results
	Started, Finished time.Time
	// Blocked is how long a sync window held it while it ran.
	Blocked time.Duration
}

// Duration is how long the operation synced: startedAt to finishedAt, less
// the time a sync window held it.
func (o *FinishedOperation) Duration() time.Duration {
	return max(o.Finished.Sub(o.Started)-o.Blocked, 0)
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
	App *v1alpha1.Application
	Env string
	// Dest is the name of the cluster the app deploys to: the
	// destination's name, or the name crowsnest knows for its server
	// (in-cluster for the one it runs in, a spoke's), or else the server
	// URL. It is the dest_cluster label of the app's series.
	Dest       string
	DriftSince time.Time // zero while not drifted
	// LiveDriftSince is when the live state began to differ from what was
	// last synced (a hand edit); AwaitingSyncSince when the target moved
	// from what was last synced (a merge, a changed source, Git ahead of
	// a rollback) with the app OutOfSync. Each is zero while it does not
	// hold; both may hold at once.
	LiveDriftSince, AwaitingSyncSince time.Time
	Syncs                             [NumResults]uint64 // finished operations by result, see Results
	// LastWaves are the waves of the last operation timed to its end.
	LastWaves []WaveTiming
	Policies  []PolicyResult
	// Promotion is the app's promotion group; nil when in none.
	Promotion *Promotion
	// Workloads are the app's workloads, sorted by kind, namespace, name.
	Workloads []Workload
	// Phase is the exposed phase of the app's operation (see AppStatus).
	Phase string
	// PendingSince is when crowsnest first saw the requested operation
	// waiting for a controller; zero unless Phase is Pending.
	PendingSince time.Time
	// LastFinished is the last real (not dry-run) operation seen
	// finished; it stays while the next one runs. Nil if none.
	LastFinished *FinishedOperation
	// DryRuns counts the dry runs crowsnest saw finish.
	DryRuns uint64
	// SelfHeals counts the self-heal syncs crowsnest saw finish: automated
	// syncs Argo CD started to repair drift of revisions it had synced.
	SelfHeals uint64
	// Retries is the running operation's retry count (Argo CD's
	// operationState.retryCount); 0 unless Phase is Running.
	Retries int64
	// HeldByWindow: a sync window of the app's project denies the app's
	// next sync now (see AppStatus).
	HeldByWindow bool
	// Hydration is the app's Source Hydrator state; nil without one.
	Hydration *Hydration
	// Rollout is where an ApplicationSet's RollingSync has the app; nil
	// unless one syncs it.
	Rollout *Rollout
	// LastSuccessful is when the last successful sync (not a dry run)
	// finished: the newest of the sync history and the successful
	// operation states seen. Zero if none.
	LastSuccessful time.Time
	// Deployments counts the app's deployments by result (see
	// DeploymentResults); ChangeFailures its failed changes by reason
	// (see FailureReasons).
	Deployments    [NumDeploymentResults]uint64
	ChangeFailures [NumFailureReasons]uint64
	// LastDeployment is when the last successful deployment or rollback
	// crowsnest saw finished; zero if none.
	LastDeployment time.Time
	// Progress is where the running operation is; nil when none runs.
	Progress *SyncProgress
}

// SyncProgress is where a running sync operation is, and when it is
// expected to finish.
type SyncProgress struct {
	// Phase and Wave are those of the wave running now; Phase is empty
	// before the first wave was seen.
	Phase string
	Wave  int64
	// RemainingWaves are the waves expected after the current one, and
	// ExpectedFinish when the operation is expected to finish, from the
	// durations of the app's last successful syncs' waves (the median of
	// each); zero when the app has no such sync yet.
	RemainingWaves int
	ExpectedFinish time.Time
}

// Key returns the app's key.
func (v *AppView) Key() string { return Key(v.App.Namespace, v.App.Name) }

// Status returns the app's state as alerts judge it.
func (v *AppView) Status() AppStatus {
	a := v.App
	s := AppStatus{
		Namespace: a.Namespace, Name: a.Name, Project: a.Spec.Project, Env: v.Env, Dest: v.Dest,
		SyncStatus: string(a.Status.Sync.Status), Health: string(a.Status.Health.Status),
		AutoSync: v.AutoSync().Enabled,
	}
	s.Phase = v.Phase
	s.Retries = v.Retries
	s.Labels = a.Labels
	s.Deleting = a.DeletionTimestamp != nil
	s.HeldByWindow = v.HeldByWindow
	s.HeldByRollout = v.Rollout.Holds()
	if a.Status.Sync.Status == v1alpha1.SyncStatusCodeOutOfSync {
		s.LiveDrift, s.AwaitingSync = !v.LiveDriftSince.IsZero(), !v.AwaitingSyncSince.IsZero()
	}
	return s
}

// AppLabelName is the series label of the Application label key in
// crowsnest_app_labels and in alerts: label_ and the key with every
// character other than a letter, digit or _ replaced by _, as
// kube-state-metrics names the labels of its *_labels series.
func AppLabelName(key string) string {
	b := []byte("label_" + key)
	for i := len("label_"); i < len(b); i++ {
		c := b[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// AppLabelNames is AppLabelName of each key.
func AppLabelNames(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = AppLabelName(k)
	}
	return out
}

// AutoSync is the app's automated sync policy (SyncPolicyOf).
func (v *AppView) AutoSync() AutoSyncPolicy { return SyncPolicyOf(&v.App.Spec, v.Rollout) }

// SyncPolicyOf is the automated sync policy of an app of spec: that of its
// spec, or, for an app an ApplicationSet's RollingSync syncs (rollout not
// nil), RollingSyncPolicy.
func SyncPolicyOf(spec *v1alpha1.ApplicationSpec, rollout *Rollout) AutoSyncPolicy {
	if rollout != nil {
		return RollingSyncPolicy(spec)
	}
	return AutoSyncOf(spec)
}

// Rollout is where an ApplicationSet's RollingSync has an app, as the
// ApplicationSet's status.applicationStatus says.
type Rollout struct {
	// ApplicationSet is the name of the ApplicationSet (in the app's
	// namespace).
	ApplicationSet string
	// Step is the app's 1-based step ("0": no step selects it, and the
	// rollout never syncs it); Status is Waiting, Pending, Progressing or
	// Healthy (RolloutStatuses).
	Step, Status string
	// Since is when Status last changed.
	Since time.Time
}

// RolloutStatuses are the statuses of an app in a RollingSync, in the
// order the ApplicationSet controller moves it through them.
func RolloutStatuses() [4]string {
	return [4]string{"Waiting", "Pending", "Progressing", "Healthy"}
}

// Holds reports whether the rollout holds the app's sync back: Waiting for
// its step, or Pending its sync. False for nil.
func (r *Rollout) Holds() bool {
	return r != nil && (r.Status == "Waiting" || r.Status == "Pending")
}

// AutoSyncPolicy is an app's automated sync policy as the controller reads it.
type AutoSyncPolicy struct {
	// Enabled: the controller syncs the app on its own. False without
	// spec.syncPolicy.automated, and with automated.enabled: false (Argo CD
	// v3.1+: the block is kept but turned off).
	Enabled bool
	// SelfHeal and Prune are the automated block's options; false when
	// Enabled is false, since the controller then applies neither.
	SelfHeal, Prune bool
}

// RollingSyncPolicy is the sync policy of an app an ApplicationSet's
// RollingSync syncs. The ApplicationSet controller turns the app's own
// auto-sync off (it writes automated.enabled: false) and syncs the app
// itself when its step comes, as an automated operation (sync windows
// judge it as automatic), pruning as the automated block says: the app is
// auto-synced. SelfHeal and Prune are the block's options, what the
// ApplicationSet's template asks for. (Argo CD v3.6.1's RollingSync syncs
// on a new revision or spec only: drift of a Healthy app stays until the
// next change, which CrowsnestDriftNotHealed reports.)
func RollingSyncPolicy(spec *v1alpha1.ApplicationSpec) AutoSyncPolicy {
	out := AutoSyncPolicy{Enabled: true}
	if p := spec.SyncPolicy; p != nil && p.Automated != nil {
		out.SelfHeal, out.Prune = p.Automated.GetSelfHeal(), p.Automated.GetPrune()
	}
	return out
}

// AutoSyncOf reads spec's automated sync policy the way Argo CD's
// controller does (SyncPolicy.IsAutomatedSyncEnabled).
func AutoSyncOf(spec *v1alpha1.ApplicationSpec) AutoSyncPolicy {
	p := spec.SyncPolicy
	if p == nil || !p.IsAutomatedSyncEnabled() {
		return AutoSyncPolicy{}
	}
	return AutoSyncPolicy{Enabled: true, SelfHeal: p.Automated.GetSelfHeal(), Prune: p.Automated.GetPrune()}
}

// ApplicationSetRollout is where an ApplicationSet's RollingSync is: the
// tracker publishes one on every change of the ApplicationSet's status.
type ApplicationSetRollout struct {
	Namespace, Name string
	// Steps is how many steps the RollingSync has; Current the lowest
	// step with an app not Healthy, 0 when the rollout is complete.
	Steps, Current int
	// Apps counts the apps per step ("0": no step selects them) and
	// status, in the order of RolloutStatuses. Steps 1..Steps are always
	// present.
	Apps map[string][4]int
}

// Key returns the ApplicationSet's key, namespace/name.
func (r *ApplicationSetRollout) Key() string { return Key(r.Namespace, r.Name) }

// RolloutStepTiming is one round of a RollingSync step, timed once every
// app of the step is Healthy: how long its apps waited for it (zero with
// Waited false when none was seen Waiting) and how long it ran.
type RolloutStepTiming struct {
	Namespace, ApplicationSet, Step string
	Wait, Duration                  time.Duration
	Waited                          bool
}

// WaveDelayCheck is how the gaps observed between sync waves compare with
// the wave delay crowsnest was told (--argocd.sync-wave-delay).
type WaveDelayCheck struct {
	// Configured is the delay crowsnest assumes; ShortestGap the shortest
	// of the last Gaps observed gaps (Gaps 0: none yet).
	Configured, ShortestGap time.Duration
	Gaps                    int
	// Mismatch: the gaps disagree with Configured.
	Mismatch bool
}
