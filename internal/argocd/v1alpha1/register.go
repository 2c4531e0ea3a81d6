package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SchemeGroupVersion is argoproj.io/v1alpha1.
var SchemeGroupVersion = schema.GroupVersion{Group: "argoproj.io", Version: "v1alpha1"}

// AddToScheme registers Application, AppProject, ApplicationSet and their lists (and the
// meta types list and watch options need) in scheme.
func AddToScheme(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion, &Application{}, &ApplicationList{}, &AppProject{}, &AppProjectList{}, &ApplicationSet{}, &ApplicationSetList{})
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
