package source

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Argo CD's resource tracking methods (argocd-cm
// application.resourceTrackingMethod).
const (
	// TrackingAnnotation is Argo CD v3's default: the tracking id
	// annotation names the app, and no instance label is set.
	TrackingAnnotation = "annotation"
	// TrackingAnnotationAndLabel tracks by the annotation and sets the
	// instance label for information only.
	TrackingAnnotationAndLabel = "annotation+label"
	// TrackingLabel tracks by the instance label (Argo CD v2's default).
	TrackingLabel = "label"
	// DefaultInstanceLabelKey is argocd-cm application.instanceLabelKey's
	// default.
	DefaultInstanceLabelKey = "app.kubernetes.io/instance"
)

const (
	annotationTrackingID     = "argocd.argoproj.io/tracking-id"
	annotationInstallationID = "argocd.argoproj.io/installation-id"
)

// Tracking is how the Argo CD installation crowsnest watches tells which
// Application owns a live object, as its argocd-cm sets it:
// application.resourceTrackingMethod, application.instanceLabelKey and
// installationID. crowsnest must read objects as that controller does, or
// it blames an app for objects Argo CD does not count as the app's: under
// annotation tracking Argo CD sets no instance label, and Helm charts set
// app.kubernetes.io/instance to their release name on their own.
type Tracking struct {
	Method         string // TrackingAnnotation, TrackingAnnotationAndLabel or TrackingLabel
	LabelKey       string // the instance label; empty: DefaultInstanceLabelKey
	InstallationID string // argocd-cm installationID; empty when not set
}

// DefaultTracking is Argo CD v3's default tracking: by annotation, no
// installation id.
func DefaultTracking() Tracking {
	return Tracking{Method: TrackingAnnotation, LabelKey: DefaultInstanceLabelKey}
}

// Validate checks the method; an empty label key becomes the default.
func (t *Tracking) Validate() error {
	switch t.Method {
	case TrackingAnnotation, TrackingAnnotationAndLabel, TrackingLabel:
	default:
		return fmt.Errorf("--argocd.tracking-method: %q is not one of %s, %s, %s (argocd-cm application.resourceTrackingMethod)",
			t.Method, TrackingAnnotation, TrackingAnnotationAndLabel, TrackingLabel)
	}
	if t.LabelKey == "" {
		t.LabelKey = DefaultInstanceLabelKey
	}
	return nil
}

// Owner returns the Application that owns u as Argo CD's controller
// decides it (util/argo/resource_tracking.go GetAppName and GetAppInstance,
// controller/state.go isSelfReferencedObj, v3.6.1): under label tracking,
// the instance label's value; otherwise the tracking id annotation
// "<app>:<group>/<kind>:<namespace>/<name>", only when the object carries
// the installation id of this installation (none when it has none) and the
// id names the object itself (not an annotation copied onto another). In
// both, <app> is "<app namespace>_<app name>" for apps outside Argo CD's
// own namespace, else the app's name; app is empty when no app owns u.
func (t Tracking) Owner(u *unstructured.Unstructured) (appNamespace, app string) {
	if t.Method == TrackingLabel {
		key := t.LabelKey
		if key == "" {
			key = DefaultInstanceLabelKey
		}
		return splitInstance(u.GetLabels()[key])
	}
	annotations := u.GetAnnotations()
	if annotations[annotationInstallationID] != t.InstallationID {
		return "", ""
	}
	id, ok := parseTrackingID(annotations[annotationTrackingID])
	if !ok || !id.names(u) {
		return "", ""
	}
	return splitInstance(id.app)
}

// trackingID is a parsed tracking id annotation.
type trackingID struct{ app, group, kind, namespace, name string }

// parseTrackingID parses "<app>:<group>/<kind>:<namespace>/<name>" as
// Argo CD's ParseAppInstanceValue does.
func parseTrackingID(v string) (trackingID, bool) {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 {
		return trackingID{}, false
	}
	gk, nn := strings.Split(parts[1], "/"), strings.Split(parts[2], "/")
	if len(gk) != 2 || len(nn) != 2 {
		return trackingID{}, false
	}
	return trackingID{app: parts[0], group: gk[0], kind: gk[1], namespace: nn[0], name: nn[1]}, true
}

// names reports whether the id is u's own: Argo CD's isSelfReferencedObj.
// A cluster-scoped object's id carries the app's destination namespace.
func (id trackingID) names(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return (u.GetNamespace() == id.namespace || u.GetNamespace() == "") &&
		u.GetName() == id.name && gvk.Group == id.group && gvk.Kind == id.kind
}

// splitInstance splits Argo CD's instance name "<namespace>_<name>".
func splitInstance(instance string) (namespace, name string) {
	if ns, name, ok := strings.Cut(instance, "_"); ok && ns != "" && name != "" {
		return ns, name
	}
	return "", instance
}
