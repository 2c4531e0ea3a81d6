package model

import "time"

// A deployment is a real (not dry-run) sync operation that changed what
// runs: the revisions it synced differ from those of the app's previous
// sync, Argo CD had not shown the app Synced to them before it (drift
// repair), it is no self-heal, and it changed at least one resource (a sync
// of a new commit that left every resource unchanged is none). A successful
// deployment back to revisions the app ran before the previous one, which
// its source no longer targets, is a rollback. A failed or errored
// operation that tried to deploy new revisions is a failed deployment; a
// terminated one is none (a person stopped it).
//
// Deployment results, the values of the result label of
// crowsnest_app_deployments_total, in a fixed order.
const (
	DeploymentSucceeded  = "succeeded"
	DeploymentFailed     = "failed"
	DeploymentRolledBack = "rolled_back"
	NumDeploymentResults = 3
)

// DeploymentResults returns the deployment results in their fixed order.
func DeploymentResults() [NumDeploymentResults]string {
	return [NumDeploymentResults]string{DeploymentSucceeded, DeploymentFailed, DeploymentRolledBack}
}

// Change failure reasons, the values of the reason label of
// crowsnest_app_change_failures_total, in a fixed order: why a deployment
// counts as a failed change. Each deployment counts as failed at most once.
const (
	// FailureSyncFailed: the deployment's sync failed (Failed or Error).
	FailureSyncFailed = "sync_failed"
	// FailureDegraded: the app turned Degraded within the failure window
	// after the deployment.
	FailureDegraded = "degraded"
	// FailureRolledBack: a later rollback undid the deployment.
	FailureRolledBack = "rolled_back"
	NumFailureReasons = 3
)

// FailureReasons returns the change failure reasons in their fixed order.
func FailureReasons() [NumFailureReasons]string {
	return [NumFailureReasons]string{FailureSyncFailed, FailureDegraded, FailureRolledBack}
}

// DeploymentSource is one source of a deployed app whose revision the
// deployment changed: where commit metadata for it comes from.
type DeploymentSource struct {
	// Index is the source's index in spec.sources (0 for spec.source), as
	// Argo CD's RevisionMetadata takes it.
	Index int
	// RepoURL and Chart are the source's (Chart set: a Helm repository).
	RepoURL, Chart string
	// Revision is the revision deployed from this source.
	Revision string
}

// Deployment is one deployment of an app, as the tracker decided it.
type Deployment struct {
	UID, Namespace, Name, Project, Env string
	// Result is one of DeploymentResults.
	Result string
	// Revision (single source) or Revisions (one per source) deployed;
	// PreviousRevision(s) those of the deployment before, empty for the
	// app's first.
	Revision, PreviousRevision   string
	Revisions, PreviousRevisions []string
	// Changed are the sources whose revision the deployment changed.
	Changed []DeploymentSource
	// SourceChanged: the deployment changed the app's sources' settings
	// (Helm parameters or values, kustomize images, plugin env, directory
	// settings...), with or without new revisions; such a deployment of
	// the same revisions has no Changed source.
	SourceChanged bool
	// Initiator is who started the operation: a user or "automated".
	Initiator string
	// StartedAt and FinishedAt are the operation's (Argo CD's times).
	StartedAt, FinishedAt time.Time
	// TraceID is the operation's trace id.
	TraceID string
}

// RevisionText is the deployed revision for one-line displays.
func (d *Deployment) RevisionText() string { return JoinRevisions(d.Revision, d.Revisions) }

// Deployment notice kinds, what DeploymentNotice.Kind says happened.
const (
	// NoticeDeployed: the deployment's operation finished (any result).
	NoticeDeployed = "deployed"
	// NoticeHealthy: the app was first seen Healthy after the successful
	// deployment (or rollback).
	NoticeHealthy = "healthy"
	// NoticeChangeFailed: the deployment counts as a failed change, for
	// Reason.
	NoticeChangeFailed = "change_failed"
	// NoticeRecovered: the app is Synced and Healthy on a successful
	// deployment after a failed change; Onset is when the failure began and
	// Deployment the one it recovered on.
	NoticeRecovered = "recovered"
)

// DeploymentNotice is what the tracker tells deployment subscribers: one
// thing that happened to a deployment.
type DeploymentNotice struct {
	Kind string
	// Time is when it happened: the operation's finish for
	// NoticeDeployed, else when crowsnest saw it.
	Time       time.Time
	Deployment *Deployment
	// Reason is the FailureReasons value of a NoticeChangeFailed.
	Reason string
	// Onset is when the failure a NoticeRecovered ends began.
	Onset time.Time
}

// Commit is what Argo CD knows of the commit a deployment's revision
// points at (its RevisionMetadata), or of the code commit it references
// (Argocd-reference-commit-* trailers, Argo CD v3.1+).
type Commit struct {
	// SHA and RepoURL of the commit; the code commit's when Referenced.
	SHA, RepoURL string
	Author       string
	// Date is the commit's author date.
	Date    time.Time
	Subject string
	// Referenced: this is the code commit that the deployed revision's
	// Argocd-reference-commit-* trailers point at, not the deployed
	// revision itself.
	Referenced bool
}

// DeploymentRecord is a finished deployment with what crowsnest learned of
// its commit: one Loki event and one CloudEvent each.
type DeploymentRecord struct {
	Deployment *Deployment
	// Commit is the commit lead time is measured from; nil when unknown
	// (no Argo CD API server configured, a Helm source, a failed lookup).
	Commit *Commit
	// LeadTime is from Commit.Date to the deployment's finish; zero when
	// Commit is nil.
	LeadTime time.Duration
}

// Fact names of deployments.
const (
	// FactDeploymentFinished: one per deployment, with its commit.
	FactDeploymentFinished = "deployment_finished"
	// FactDeploymentHealthy: the app was first Healthy after a deployment.
	FactDeploymentHealthy = "deployment_healthy"
	// FactChangeFailed: a deployment counts as a failed change.
	FactChangeFailed = "change_failed"
	// FactDeploymentRecovered: the app recovered from a failed change.
	FactDeploymentRecovered = "deployment_recovered"
)
