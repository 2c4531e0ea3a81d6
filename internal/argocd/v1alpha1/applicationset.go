package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ApplicationSet is an Argo CD ApplicationSet, reduced to what its
// progressive sync (RollingSync) says: the strategy's steps and where each
// generated Application is in the rollout.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type ApplicationSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ApplicationSetSpec   `json:"spec"`
	Status            ApplicationSetStatus `json:"status,omitempty"`
}

// ApplicationSetList is a list of ApplicationSets.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type ApplicationSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`
	Items           []ApplicationSet `json:"items"`
}

// ApplicationSetSpec keeps the ApplicationSet's strategy only.
type ApplicationSetSpec struct {
	Strategy *ApplicationSetStrategy `json:"strategy,omitempty"`
}

// ApplicationSetStrategy is how the ApplicationSet controller updates the
// Applications it generates: AllAtOnce (the default) or RollingSync.
type ApplicationSetStrategy struct {
	Type        string                         `json:"type,omitempty"`
	RollingSync *ApplicationSetRolloutStrategy `json:"rollingSync,omitempty"`
}

// ApplicationSetRolloutStrategy is a RollingSync's steps.
type ApplicationSetRolloutStrategy struct {
	Steps []ApplicationSetRolloutStep `json:"steps,omitempty"`
}

// ApplicationSetRolloutStep is one step of a RollingSync; only how many
// there are matters here (which apps a step holds is in the status).
type ApplicationSetRolloutStep struct{}

// ApplicationSetStatus keeps where each Application is in the rollout.
type ApplicationSetStatus struct {
	ApplicationStatus []ApplicationSetApplicationStatus `json:"applicationStatus,omitempty"`
}

// ApplicationSetApplicationStatus is one Application's place in a
// RollingSync, as the ApplicationSet controller writes it.
type ApplicationSetApplicationStatus struct {
	// Application is the name of the Application (in the ApplicationSet's
	// namespace).
	Application string `json:"application"`
	// LastTransitionTime is when Status last changed.
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`
	// Status is Waiting (a new revision or spec, its step not reached),
	// Pending (its step reached, the sync asked for), Progressing (synced,
	// not Healthy yet) or Healthy.
	Status string `json:"status"`
	// Step is the 1-based step the Application is in, as a string ("0"
	// for an Application no step selects).
	Step string `json:"step"`
	// TargetRevisions are the revisions the rollout is moving it to.
	TargetRevisions []string `json:"targetRevisions,omitempty"`
}

// RollingSync reports whether the ApplicationSet rolls its Applications out
// step by step, as Argo CD's progressivesync.RollingSyncStrategyEnabled
// decides (strategy type RollingSync with at least one step). The
// controller does so only with progressive syncs enabled; without them it
// clears status.applicationStatus.
func (s *ApplicationSet) RollingSync() bool {
	st := s.Spec.Strategy
	return st != nil && st.Type == "RollingSync" && st.RollingSync != nil && len(st.RollingSync.Steps) > 0
}
