package source

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestTrackingOwner reads objects as Argo CD v3.6.1's controller does
// (util/argo/resource_tracking.go, controller/state.go
// isSelfReferencedObj): an object no app owns in Argo CD's eyes must join
// none in crowsnest's, or its events are blamed on that app.
func TestTrackingOwner(t *testing.T) {
	mk := func(apiVersion, kind, namespace, name string, annotations, labels map[string]string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace(namespace)
		u.SetName(name)
		u.SetAnnotations(annotations)
		u.SetLabels(labels)
		return u
	}
	id := func(v string) map[string]string { return map[string]string{annotationTrackingID: v} }
	helmRelease := map[string]string{DefaultInstanceLabelKey: "web"} // a Helm chart's own label
	annotation := DefaultTracking()
	both := Tracking{Method: TrackingAnnotationAndLabel, LabelKey: DefaultInstanceLabelKey}
	label := Tracking{Method: TrackingLabel, LabelKey: DefaultInstanceLabelKey}
	withID := Tracking{Method: TrackingAnnotation, InstallationID: "hub-a"}
	for _, tc := range []struct {
		desc    string
		tr      Tracking
		u       *unstructured.Unstructured
		ns, app string
	}{
		{"annotation: the tracking id names the app", annotation,
			mk("apps/v1", "Deployment", "shop", "web", id("web:apps/Deployment:shop/web"), nil), "", "web"},
		{"annotation: an app outside Argo CD's namespace", annotation,
			mk("apps/v1", "Deployment", "shop", "web", id("team-a_web:apps/Deployment:shop/web"), nil), "team-a", "web"},
		{"annotation: a Helm release's instance label is not Argo CD's", annotation,
			mk("apps/v1", "Deployment", "shop", "web", nil, helmRelease), "", ""},
		{"annotation+label: the label is for information only", both,
			mk("apps/v1", "Deployment", "shop", "web", nil, helmRelease), "", ""},
		{"annotation+label: the annotation wins over the label", both,
			mk("apps/v1", "Deployment", "shop", "web", id("shop-web:apps/Deployment:shop/web"), helmRelease), "", "shop-web"},
		{"label: the instance label names the app", label,
			mk("apps/v1", "Deployment", "shop", "web", nil, helmRelease), "", "web"},
		{"label: a custom instance label key", Tracking{Method: TrackingLabel, LabelKey: "argocd.example.com/app"},
			mk("apps/v1", "Deployment", "shop", "web", nil, map[string]string{"argocd.example.com/app": "team-a_web", DefaultInstanceLabelKey: "other"}), "team-a", "web"},
		{"label: the tracking id is not read", label,
			mk("apps/v1", "Deployment", "shop", "web", id("web:apps/Deployment:shop/web"), nil), "", ""},
		{"a tracking id copied onto another name", annotation,
			mk("apps/v1", "Deployment", "shop", "web-copy", id("web:apps/Deployment:shop/web"), nil), "", ""},
		{"a tracking id copied onto another kind", annotation,
			mk("batch/v1", "Job", "shop", "web", id("web:apps/Deployment:shop/web"), nil), "", ""},
		{"a tracking id copied onto another group", annotation,
			mk("argoproj.io/v1alpha1", "Deployment", "shop", "web", id("web:apps/Deployment:shop/web"), nil), "", ""},
		{"a tracking id copied into another namespace", annotation,
			mk("apps/v1", "Deployment", "shop-2", "web", id("web:apps/Deployment:shop/web"), nil), "", ""},
		{"a cluster-scoped object's id carries the destination namespace", annotation,
			mk("rbac.authorization.k8s.io/v1", "ClusterRole", "", "web", id("web:rbac.authorization.k8s.io/ClusterRole:shop/web"), nil), "", "web"},
		{"a core object's id has an empty group", annotation,
			mk("v1", "Service", "shop", "web", id("web:/Service:shop/web"), nil), "", "web"},
		{"a malformed id", annotation,
			mk("apps/v1", "Deployment", "shop", "web", id("web"), nil), "", ""},
		{"an id with a version in its group part", annotation,
			mk("apps/v1", "Deployment", "shop", "web", id("web:apps/v1/Deployment:shop/web"), nil), "", ""},
		{"installation id: this installation's object", withID,
			mk("apps/v1", "Deployment", "shop", "web", map[string]string{annotationTrackingID: "web:apps/Deployment:shop/web", annotationInstallationID: "hub-a"}, nil), "", "web"},
		{"installation id: another installation's object", withID,
			mk("apps/v1", "Deployment", "shop", "web", map[string]string{annotationTrackingID: "web:apps/Deployment:shop/web", annotationInstallationID: "hub-b"}, nil), "", ""},
		{"installation id: an object of an installation without one", withID,
			mk("apps/v1", "Deployment", "shop", "web", id("web:apps/Deployment:shop/web"), nil), "", ""},
		{"no installation id here: an object of an installation with one", annotation,
			mk("apps/v1", "Deployment", "shop", "web", map[string]string{annotationTrackingID: "web:apps/Deployment:shop/web", annotationInstallationID: "hub-a"}, nil), "", ""},
	} {
		ns, app := tc.tr.Owner(tc.u)
		if ns != tc.ns || app != tc.app {
			t.Errorf("%s: owner %q/%q, want %q/%q", tc.desc, ns, app, tc.ns, tc.app)
		}
	}
}

func TestTrackingValidate(t *testing.T) {
	tr := Tracking{Method: TrackingLabel}
	if err := tr.Validate(); err != nil || tr.LabelKey != DefaultInstanceLabelKey {
		t.Errorf("label tracking: %v, label key %q", err, tr.LabelKey)
	}
	tr = Tracking{Method: "labels"}
	if err := tr.Validate(); err == nil || !strings.Contains(err.Error(), `"labels"`) || !strings.Contains(err.Error(), "--argocd.tracking-method") {
		t.Errorf("unknown method: %v", err)
	}
}
