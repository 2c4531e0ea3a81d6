// Package v1alpha1 holds the parts of Argo CD's Application and AppProject
// (argoproj.io/v1alpha1) that crowsnest reads, with the Go names and JSON
// names of Argo CD's own pkg/apis/application/v1alpha1.
//
// Why not import Argo CD's package: it imports Argo CD's util tree (git,
// helm, OCI, RBAC, workload identity), gitops-engine and through them
// kubectl, kustomize, go-git, the Azure SDK and redis: 1,330 packages, three
// quarters of crowsnest's build and of its binary. The types here decode the
// same JSON (the API server's and argocd-server's), and every field they do
// not declare is skipped while decoding: it is never allocated, which is
// most of a real Application (managed fields, the last-applied annotation,
// Helm values, compared-to sources, resource health, history sources).
//
// A field a new feature reads must be added here, with Argo CD's JSON name.
// TestDecodesArgoCDJSON decodes Argo CD's own types, marshalled, into these
// and checks every field declared here survives.
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/crowsnest/crowsnest/internal/argocd/health"
	"github.com/crowsnest/crowsnest/internal/argocd/synccommon"
)

// Application is an Argo CD Application.
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ApplicationSpec   `json:"spec"`
	Status            ApplicationStatus `json:"status,omitempty"`
	Operation         *Operation        `json:"operation,omitempty"`
}

// ApplicationList is a list of Applications.
type ApplicationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`
	Items           []Application `json:"items"`
}

// ApplicationWatchEvent is one event of argocd-server's watch stream.
type ApplicationWatchEvent struct {
	Type        watch.EventType `json:"type"`
	Application Application     `json:"application"`
}

// ApplicationSpec is what the app deploys, where, and how it syncs.
type ApplicationSpec struct {
	Source         *ApplicationSource     `json:"source,omitempty"`
	Destination    ApplicationDestination `json:"destination"`
	Project        string                 `json:"project"`
	SyncPolicy     *SyncPolicy            `json:"syncPolicy,omitempty"`
	Sources        ApplicationSources     `json:"sources,omitempty"`
	SourceHydrator *SourceHydrator        `json:"sourceHydrator,omitempty"`
}

// ApplicationSource is where a source's manifests come from (how they are
// rendered — Helm values, Kustomize, plugins — is not kept).
type ApplicationSource struct {
	RepoURL        string `json:"repoURL"`
	Path           string `json:"path,omitempty"`
	TargetRevision string `json:"targetRevision,omitempty"`
	Chart          string `json:"chart,omitempty"`
	Ref            string `json:"ref,omitempty"`
	Name           string `json:"name,omitempty"`
}

// ApplicationSources is a multi-source app's list of sources.
type ApplicationSources []ApplicationSource

// SourceHydrator is the app's Source Hydrator configuration.
type SourceHydrator struct {
	DrySource  DrySource  `json:"drySource"`
	SyncSource SyncSource `json:"syncSource"`
	HydrateTo  *HydrateTo `json:"hydrateTo,omitempty"`
}

// DrySource is where the hydrator reads the dry manifests.
type DrySource struct {
	RepoURL        string `json:"repoURL"`
	TargetRevision string `json:"targetRevision"`
	Path           string `json:"path"`
}

// SyncSource is where the hydrator writes and the app syncs from.
type SyncSource struct {
	TargetBranch string `json:"targetBranch"`
	Path         string `json:"path"`
	RepoURL      string `json:"repoURL,omitempty"`
}

// HydrateTo is the branch the hydrator pushes to before a promotion.
type HydrateTo struct {
	TargetBranch string `json:"targetBranch"`
}

// GetSyncSource returns the source the app syncs from, as Argo CD does.
func (s SourceHydrator) GetSyncSource() ApplicationSource {
	repoURL := s.SyncSource.RepoURL
	if repoURL == "" {
		repoURL = s.DrySource.RepoURL
	}
	return ApplicationSource{RepoURL: repoURL, Path: s.SyncSource.Path, TargetRevision: s.SyncSource.TargetBranch}
}

// GetSource returns the app's source, the first one of a multi-source app,
// or the hydrator's sync source, as Argo CD does.
func (spec *ApplicationSpec) GetSource() ApplicationSource {
	if spec.SourceHydrator != nil {
		return spec.SourceHydrator.GetSyncSource()
	}
	if spec.HasMultipleSources() {
		return spec.Sources[0]
	}
	if spec.Source != nil {
		return *spec.Source
	}
	return ApplicationSource{}
}

// GetSources returns the app's sources, as Argo CD does.
func (spec *ApplicationSpec) GetSources() ApplicationSources {
	if spec.SourceHydrator != nil {
		return ApplicationSources{spec.SourceHydrator.GetSyncSource()}
	}
	if spec.HasMultipleSources() {
		return spec.Sources
	}
	if spec.Source != nil {
		return ApplicationSources{*spec.Source}
	}
	return ApplicationSources{}
}

// HasMultipleSources reports whether the app uses spec.sources.
func (spec *ApplicationSpec) HasMultipleSources() bool {
	return spec.SourceHydrator == nil && len(spec.Sources) > 0
}

// ApplicationDestination is the cluster and namespace the app deploys to.
type ApplicationDestination struct {
	Server    string `json:"server,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// SyncPolicy is how the app syncs.
type SyncPolicy struct {
	Automated   *SyncPolicyAutomated `json:"automated,omitempty"`
	SyncOptions SyncOptions          `json:"syncOptions,omitempty"`
}

// IsAutomatedSyncEnabled reports whether automated sync is on, as Argo CD
// decides it (automated set and enabled not false).
func (p *SyncPolicy) IsAutomatedSyncEnabled() bool {
	if p == nil || p.Automated == nil {
		return false
	}
	return p.Automated.Enabled == nil || *p.Automated.Enabled
}

// SyncPolicyAutomated is the automated sync's settings.
type SyncPolicyAutomated struct {
	Prune      *bool `json:"prune,omitempty"`
	SelfHeal   *bool `json:"selfHeal,omitempty"`
	AllowEmpty *bool `json:"allowEmpty,omitempty"`
	Enabled    *bool `json:"enabled,omitempty"`
}

// GetPrune reports whether automated sync prunes (false when unset).
func (a *SyncPolicyAutomated) GetPrune() bool {
	return a != nil && a.Prune != nil && *a.Prune
}

// GetSelfHeal reports whether automated sync self-heals (false when unset).
func (a *SyncPolicyAutomated) GetSelfHeal() bool {
	return a != nil && a.SelfHeal != nil && *a.SelfHeal
}

// SyncOptions are sync options, "Name=value".
type SyncOptions []string

// HasOption reports whether option is set.
func (o SyncOptions) HasOption(option string) bool {
	for _, i := range o {
		if option == i {
			return true
		}
	}
	return false
}

// ApplicationStatus is what Argo CD's controller reports of the app.
type ApplicationStatus struct {
	Resources      []ResourceStatus       `json:"resources,omitempty"`
	Sync           SyncStatus             `json:"sync,omitempty"`
	Health         AppHealthStatus        `json:"health,omitempty"`
	History        RevisionHistories      `json:"history,omitempty"`
	Conditions     []ApplicationCondition `json:"conditions,omitempty"`
	ReconciledAt   *metav1.Time           `json:"reconciledAt,omitempty"`
	OperationState *OperationState        `json:"operationState,omitempty"`
	Summary        ApplicationSummary     `json:"summary,omitempty"`
	SourceHydrator SourceHydratorStatus   `json:"sourceHydrator,omitempty"`
}

// SyncStatusCode is an app's or a resource's sync status.
type SyncStatusCode string

// The sync status codes.
const (
	SyncStatusCodeUnknown   SyncStatusCode = "Unknown"
	SyncStatusCodeSynced    SyncStatusCode = "Synced"
	SyncStatusCodeOutOfSync SyncStatusCode = "OutOfSync"
)

// SyncStatus is the app's comparison with its target.
type SyncStatus struct {
	Status    SyncStatusCode `json:"status"`
	Revision  string         `json:"revision,omitempty"`
	Revisions []string       `json:"revisions,omitempty"`
}

// AppHealthStatus is the app's health.
type AppHealthStatus struct {
	Status  health.HealthStatusCode `json:"status,omitempty"`
	Message string                  `json:"message,omitempty"`
}

// HealthStatus is a resource's health.
type HealthStatus struct {
	Status  health.HealthStatusCode `json:"status,omitempty"`
	Message string                  `json:"message,omitempty"`
}

// ResourceStatus is one managed resource's sync status and wave (its
// health is not kept).
type ResourceStatus struct {
	Group           string         `json:"group,omitempty"`
	Version         string         `json:"version,omitempty"`
	Kind            string         `json:"kind,omitempty"`
	Namespace       string         `json:"namespace,omitempty"`
	Name            string         `json:"name,omitempty"`
	Status          SyncStatusCode `json:"status,omitempty"`
	Hook            bool           `json:"hook,omitempty"`
	RequiresPruning bool           `json:"requiresPruning,omitempty"`
	SyncWave        int64          `json:"syncWave,omitempty"`
}

// RevisionHistories is the app's sync history, oldest first.
type RevisionHistories []RevisionHistory

// RevisionHistory is one deployment of the history (its sources are not
// kept; their revisions are).
type RevisionHistory struct {
	Revision        string             `json:"revision,omitempty"`
	DeployedAt      metav1.Time        `json:"deployedAt"`
	ID              int64              `json:"id"`
	DeployStartedAt *metav1.Time       `json:"deployStartedAt,omitempty"`
	Revisions       []string           `json:"revisions,omitempty"`
	InitiatedBy     OperationInitiator `json:"initiatedBy,omitempty"`
}

// ApplicationConditionType is a condition's type.
type ApplicationConditionType = string

// The condition types crowsnest names.
const (
	ApplicationConditionComparisonError = "ComparisonError"
	ApplicationConditionSyncError       = "SyncError"
)

// ApplicationCondition is one of the app's conditions (only its type is
// kept: conditions are counted by type).
type ApplicationCondition struct {
	Type ApplicationConditionType `json:"type"`
}

// ApplicationSummary holds the app's images.
type ApplicationSummary struct {
	Images []string `json:"images,omitempty"`
}

// OperationInitiator is who started an operation.
type OperationInitiator struct {
	Username  string `json:"username,omitempty"`
	Automated bool   `json:"automated,omitempty"`
}

// Operation is a requested operation (a sync).
type Operation struct {
	Sync        *SyncOperation     `json:"sync,omitempty"`
	InitiatedBy OperationInitiator `json:"initiatedBy,omitempty"`
}

// SyncOperation is a sync's request.
type SyncOperation struct {
	Revision              string                  `json:"revision,omitempty"`
	Prune                 bool                    `json:"prune,omitempty"`
	DryRun                bool                    `json:"dryRun,omitempty"`
	Resources             []SyncOperationResource `json:"resources,omitempty"`
	Source                *ApplicationSource      `json:"source,omitempty"`
	Manifests             []string                `json:"manifests,omitempty"`
	SyncOptions           SyncOptions             `json:"syncOptions,omitempty"`
	Sources               ApplicationSources      `json:"sources,omitempty"`
	Revisions             []string                `json:"revisions,omitempty"`
	SelfHealAttemptsCount int64                   `json:"autoHealAttemptsCount,omitempty"`
}

// SyncOperationResource is a resource a selective sync selected.
type SyncOperationResource struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// OperationState is the state of the app's current or last operation.
type OperationState struct {
	Operation  Operation                 `json:"operation"`
	Phase      synccommon.OperationPhase `json:"phase"`
	Message    string                    `json:"message,omitempty"`
	SyncResult *SyncOperationResult      `json:"syncResult,omitempty"`
	StartedAt  metav1.Time               `json:"startedAt"`
	FinishedAt *metav1.Time              `json:"finishedAt,omitempty"`
	RetryCount int64                     `json:"retryCount,omitempty"`
}

// SyncOperationResult is a sync's result: its revision(s) and one result
// per resource synced.
type SyncOperationResult struct {
	Resources ResourceResults `json:"resources,omitempty"`
	Revision  string          `json:"revision"`
	Revisions []string        `json:"revisions,omitempty"`
}

// ResourceResults are a sync's resource results.
type ResourceResults []*ResourceResult

// ResourceResult is the result of syncing one resource or running a hook.
type ResourceResult struct {
	Group     string                    `json:"group"`
	Version   string                    `json:"version"`
	Kind      string                    `json:"kind"`
	Namespace string                    `json:"namespace"`
	Name      string                    `json:"name"`
	Status    synccommon.ResultCode     `json:"status,omitempty"`
	Message   string                    `json:"message,omitempty"`
	HookType  synccommon.HookType       `json:"hookType,omitempty"`
	HookPhase synccommon.OperationPhase `json:"hookPhase,omitempty"`
	SyncPhase synccommon.SyncPhase      `json:"syncPhase,omitempty"`
}

// HydrateOperationPhase is the phase of a hydration.
type HydrateOperationPhase string

// The hydration phases.
const (
	HydrateOperationPhaseUnknown   HydrateOperationPhase = "Unknown"
	HydrateOperationPhaseHydrating HydrateOperationPhase = "Hydrating"
	HydrateOperationPhaseFailed    HydrateOperationPhase = "Failed"
	HydrateOperationPhaseHydrated  HydrateOperationPhase = "Hydrated"
)

// SourceHydratorStatus is the hydrator's state of the app.
type SourceHydratorStatus struct {
	LastSuccessfulOperation *SuccessfulHydrateOperation `json:"lastSuccessfulOperation,omitempty"`
	CurrentOperation        *HydrateOperation           `json:"currentOperation,omitempty"`
}

// HydrateOperation is the current or last hydration.
type HydrateOperation struct {
	StartedAt      metav1.Time           `json:"startedAt,omitempty"`
	FinishedAt     *metav1.Time          `json:"finishedAt,omitempty"`
	Phase          HydrateOperationPhase `json:"phase"`
	Message        string                `json:"message"`
	DrySHA         string                `json:"drySHA,omitempty"`
	HydratedSHA    string                `json:"hydratedSHA,omitempty"`
	SourceHydrator SourceHydrator        `json:"sourceHydrator,omitempty"`
}

// SuccessfulHydrateOperation is the last successful hydration.
type SuccessfulHydrateOperation struct {
	DrySHA         string         `json:"drySHA,omitempty"`
	HydratedSHA    string         `json:"hydratedSHA,omitempty"`
	SourceHydrator SourceHydrator `json:"sourceHydrator,omitempty"`
}

// RevisionMetadata is a git revision's metadata, as argocd-server's
// RevisionMetadata call returns it.
type RevisionMetadata struct {
	Author     string              `json:"author,omitempty"`
	Date       *metav1.Time        `json:"date"`
	Tags       []string            `json:"tags,omitempty"`
	Message    string              `json:"message,omitempty"`
	References []RevisionReference `json:"references,omitempty"`
}

// RevisionReference is a commit a revision's trailers point at.
type RevisionReference struct {
	Commit *CommitMetadata `json:"commit,omitempty"`
}

// CommitMetadata is a referenced commit.
type CommitMetadata struct {
	Author  string `json:"author,omitempty"`
	Date    string `json:"date,omitempty"`
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body,omitempty"`
	SHA     string `json:"sha,omitempty"`
	RepoURL string `json:"repoUrl,omitempty"`
}

// OCIMetadata is an OCI artifact's metadata, as argocd-server's
// GetOCIMetadata call returns it.
type OCIMetadata struct {
	CreatedAt   string `json:"createdAt,omitempty"`
	Authors     string `json:"authors,omitempty"`
	ImageURL    string `json:"imageUrl,omitempty"`
	DocsURL     string `json:"docsUrl,omitempty"`
	SourceURL   string `json:"sourceUrl,omitempty"`
	Version     string `json:"version,omitempty"`
	Description string `json:"description,omitempty"`
}
