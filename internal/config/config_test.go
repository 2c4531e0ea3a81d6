package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

const seedConfig = `
default_env: other
environments:
  - env: prod
    match:
      labels:
        env: prod
  - env: prod
    match:
      project: payments
      destination_server: https://prod.example.com
  - env: stage
    match:
      destination_namespace: shop-stage
  - env: dev
    match:
      name: '.*-dev'
`

func app(name, project, ns, server string, labels map[string]string) *v1alpha1.Application {
	return &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "argocd", Labels: labels},
		Spec: v1alpha1.ApplicationSpec{
			Project:     project,
			Destination: v1alpha1.ApplicationDestination{Namespace: ns, Server: server},
		},
	}
}

func TestEnvRulesFirstMatchWins(t *testing.T) {
	c, err := Parse([]byte(seedConfig))
	if err != nil {
		t.Fatal(err)
	}
	named := app("x", "", "", "", nil)
	named.Spec.Destination = v1alpha1.ApplicationDestination{Name: "prod-cluster"}
	for _, tc := range []struct {
		desc string
		app  *v1alpha1.Application
		want string
	}{
		{"label", app("web-dev", "shop", "shop-stage", "", map[string]string{"env": "prod"}), "prod"},
		{"label value must match", app("api", "shop", "", "", map[string]string{"env": "production"}), "other"},
		{"project and server both", app("pay", "payments", "", "https://prod.example.com", nil), "prod"},
		{"project without server", app("pay", "payments", "", "https://stage.example.com", nil), "other"},
		{"destination namespace", app("web-dev", "shop", "shop-stage", "", nil), "stage"},
		{"name regex", app("web-dev", "shop", "shop", "", nil), "dev"},
		{"name regex is anchored", app("web-dev-old", "shop", "shop", "", nil), "other"},
		{"no match", app("web", "shop", "shop", "", nil), "other"},
		{"cluster by name", named, "other"},
	} {
		if got := c.Env(tc.app); got != tc.want {
			t.Errorf("%s: Env(%s) = %q, want %q", tc.desc, tc.app.Name, got, tc.want)
		}
	}
}

func TestDestinationServerFallsBackToClusterName(t *testing.T) {
	c, err := Parse([]byte("environments:\n  - env: prod\n    match:\n      destination_server: prod-cluster\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := app("x", "", "", "", nil)
	a.Spec.Destination.Name = "prod-cluster"
	if got := c.Env(a); got != "prod" {
		t.Errorf("Env = %q, want prod", got)
	}
}

func TestEmptyConfigIsDefault(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n"} {
		c, err := Parse([]byte(doc))
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		if got := c.Env(app("a", "p", "n", "s", nil)); got != DefaultEnv {
			t.Errorf("Env = %q, want %q", got, DefaultEnv)
		}
	}
}

// Errors must say where: the file (from Load), the line and the field.
// The environments that page: prod by default, the configured expression
// otherwise.
func TestProdEnvironments(t *testing.T) {
	c, err := Parse([]byte("environments: []\n"))
	if err != nil || c.Prod() != "prod" {
		t.Errorf("default: %q (%v), want prod", c.Prod(), err)
	}
	c, err = Parse([]byte("prod_environments: production|prod-.*\n"))
	if err != nil || c.Prod() != "production|prod-.*" {
		t.Errorf("configured: %q (%v)", c.Prod(), err)
	}
}

func TestLoadErrorsNameFileLineAndField(t *testing.T) {
	for _, tc := range []struct {
		desc, doc string
		want      []string
	}{
		{
			desc: "bad YAML",
			doc:  "environments:\n  - env: prod\n    match:\n\t  project: x\n",
			want: []string{"line 4"},
		},
		{
			desc: "unknown field",
			doc:  "environments:\n  - env: prod\n    match:\n      projekt: payments\n",
			want: []string{"line 4", "projekt"},
		},
		{
			desc: "bad regex",
			doc:  "environments:\n  - env: dev\n    match:\n      name: '*-dev'\n",
			want: []string{"line 4", "field name", "*-dev"},
		},
		{
			desc: "empty env",
			doc:  "environments:\n  - match:\n      project: x\n  - env: ''\n    match:\n      project: y\n",
			want: []string{"line 2", "environments[0].env"},
		},
		{
			desc: "wrong type",
			doc:  "environments:\n  - env: prod\n    match:\n      labels: [a, b]\n",
			want: []string{"line 4"},
		},
		{
			desc: "empty default",
			doc:  "default_env: ''\n",
			want: []string{"line 1", "default_env"},
		},
		{
			desc: "bad prod environments",
			doc:  "environments:\n  - env: prod\n    match: {project: x}\nprod_environments: 'prod|(eu'\n",
			want: []string{"line 4", "prod_environments", "prod|(eu"},
		},
	} {
		path := filepath.Join(t.TempDir(), "crowsnest.yaml")
		if err := os.WriteFile(path, []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil {
			t.Errorf("%s: Load succeeded, want an error", tc.desc)
			continue
		}
		for _, w := range append([]string{path}, tc.want...) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.desc, err, w)
			}
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Errorf("Load of a missing file: err = %v, want one naming the file", err)
	}
}
