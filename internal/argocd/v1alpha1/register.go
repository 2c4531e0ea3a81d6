package v1alpha1

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SchemeGroupVersion is argoproj.io/v1alpha1.
var SchemeGroupVersion = schema.GroupVersion{Group: "argoproj.io", Version: "v1alpha1"}

// AddToScheme registers Application, AppProject and their lists (and the
// meta types list and watch options need) in scheme.
func AddToScheme(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion, &Application{}, &ApplicationList{}, &AppProject{}, &AppProjectList{})
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}

// deepCopy copies in into out through JSON. The objects are plain JSON
// data (no fields hidden from JSON), so the copy is exact. Copies are rare
// (client-go's object tracker in tests, a caller's own DeepCopy): a
// generated copy is not worth its code here.
func deepCopy[T any](in *T) *T {
	if in == nil {
		return nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic("deep copy: " + err.Error())
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic("deep copy: " + err.Error())
	}
	return out
}

// DeepCopy returns a copy of a.
func (a *Application) DeepCopy() *Application { return deepCopy(a) }

// DeepCopyObject implements runtime.Object.
func (a *Application) DeepCopyObject() runtime.Object { return a.DeepCopy() }

// DeepCopy returns a copy of l.
func (l *ApplicationList) DeepCopy() *ApplicationList { return deepCopy(l) }

// DeepCopyObject implements runtime.Object.
func (l *ApplicationList) DeepCopyObject() runtime.Object { return l.DeepCopy() }

// DeepCopy returns a copy of p.
func (p *AppProject) DeepCopy() *AppProject { return deepCopy(p) }

// DeepCopyObject implements runtime.Object.
func (p *AppProject) DeepCopyObject() runtime.Object { return p.DeepCopy() }

// DeepCopy returns a copy of l.
func (l *AppProjectList) DeepCopy() *AppProjectList { return deepCopy(l) }

// DeepCopyObject implements runtime.Object.
func (l *AppProjectList) DeepCopyObject() runtime.Object { return l.DeepCopy() }

// DeepCopy returns a copy of o.
func (o *OperationState) DeepCopy() *OperationState { return deepCopy(o) }
