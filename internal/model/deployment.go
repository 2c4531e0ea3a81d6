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
// terminated one is none (a person stopped it), nor is a selective sync (of
// some resources only): the full sync after it is the deployment.
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
	// Identity of the app; Dest names its destination cluster
	// (AppView.Dest).
	UID, Namespace, Name, Project, Env, Dest string
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
	// TargetSeenAt is when crowsnest first saw Argo CD compare the app
	// with what the deployment deployed (its revisions and sources): for a
	// change of the sources' settings, when the controller first saw the
	// new source. Zero when crowsnest did not see it happen (the
	// comparison was there at its first look at the app).
	TargetSeenAt time.Time
	// ChangeCommit and ChangeTime are the change CI named in the app's
	// annotations (AnnotationChangeCommit, AnnotationChangeTime), set
	// after crowsnest's first look at the app and before this deployment;
	// ChangeCommit's Revision is the commit, to be looked up in its
	// source. Nil and zero when none was named.
	ChangeCommit *DeploymentSource
	ChangeTime   time.Time
	// AwaitedSince is, for a sync a person started (prod synced by hand
	// after approval), when the app began awaiting it: the onset of
	// "awaiting sync" (its target moved away from what was last synced:
	// a merge, a changed source) that this deployment ended. Zero for
	// automated syncs and when crowsnest did not see the app await it.
	AwaitedSince time.Time
	// DrySHA is, for an app with a Source Hydrator, the dry commit the
	// deployed (hydrated) revision renders: the change it ships, whose
	// commit lead time runs from (Changed names it).
	DrySHA string
	// LeadUnknown says why the deployment can have no lead time though it
	// changed revisions (a hydrated revision whose dry commit cannot be
	// resolved): no number rather than a wrong one. Empty otherwise.
	LeadUnknown string
}

// Annotations on an Application that name the change its next deployment
// ships, for lead time where the deployed revision's commit is not the
// change: CI that runs `argocd app set -p image.tag=$SHA` (or Kargo, or a
// pipeline writing Helm values) sets them beside the change. Each value is
// used by the first successful deployment after crowsnest saw it set.
const (
	// AnnotationChangeCommit names the commit (a SHA of one of the app's
	// Git sources' repositories, looked up through argocd-server like a
	// deployed revision).
	AnnotationChangeCommit = "crowsnest.io/change-commit"
	// AnnotationChangeTime is the change's commit time, RFC 3339: for a
	// commit of a repository Argo CD does not know (the application's
	// code). It wins over AnnotationChangeCommit's looked-up date.
	AnnotationChangeTime = "crowsnest.io/change-time"
)

// Lead time origins, the lead_time_from of a deployment record: what the
// lead time runs from.
const (
	// LeadFromCommit: the deployed revision's commit (or the code commit
	// its Argocd-reference-commit-* trailers reference).
	LeadFromCommit = "commit"
	// LeadFromAnnotation: the change CI named (AnnotationChangeCommit,
	// AnnotationChangeTime).
	LeadFromAnnotation = "annotation"
	// LeadFromSourceChange: when Argo CD first compared the app with the
	// deployed sources (Deployment.TargetSeenAt), for a change of the
	// sources' settings or of a Helm chart's version, which have no
	// commit.
	LeadFromSourceChange = "source_change"
)

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
	// NoticeRecovered: the app is well again (Healthy, or Suspended when
	// that is how it is well) after a successful operation, after a failed
	// change; Onset is when the failure began and Deployment the one it
	// recovered on.
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
	// LeadTime is from the change (LeadFrom) to the deployment's finish;
	// zero when not measured.
	LeadTime time.Duration
	// LeadFrom is what LeadTime runs from (LeadFromCommit,
	// LeadFromAnnotation, LeadFromSourceChange); empty when not measured.
	LeadFrom string
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
