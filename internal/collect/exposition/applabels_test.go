package exposition

import (
	"bytes"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// crowsnest_app_labels carries the allowlisted Application labels, named as
// kube-state-metrics names them, one series per app (an app without them
// has the series without the labels); without an allowlist the family is
// not there at all.
func TestAppLabels(t *testing.T) {
	view := func(name string, labels map[string]string) *model.AppView {
		return &model.AppView{Env: "prod", App: &v1alpha1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "argocd", Labels: labels},
			Spec:       v1alpha1.ApplicationSpec{Project: "shop"},
		}}
	}
	scrape := func(s *Store) string {
		t.Helper()
		var b bytes.Buffer
		if _, err := s.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, "crowsnest_app_labels") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	s := NewStore(false)
	s.ExposeAppLabels([]string{"team", "app.kubernetes.io/part-of"})
	s.SetApp(view("web", map[string]string{"team": "payments", "app.kubernetes.io/part-of": "shop", "other": "x"}))
	s.SetApp(view("api", nil))
	// In the order the apps were set.
	want := `crowsnest_app_labels{namespace="argocd",name="web",project="shop",env="prod",label_team="payments",label_app_kubernetes_io_part_of="shop"} 1
crowsnest_app_labels{namespace="argocd",name="api",project="shop",env="prod"} 1`
	if got := scrape(s); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	plain := NewStore(false)
	plain.ExposeAppLabels(nil)
	plain.SetApp(view("web", map[string]string{"team": "payments"}))
	if got := scrape(plain); got != "" {
		t.Errorf("without an allowlist: %s", got)
	}
}
