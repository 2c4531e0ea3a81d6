package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// FuzzLoad feeds any bytes to Load as a config file. Load must not panic;
// an error names the file, and the line of our own validation errors; a
// config it accepts keeps every promise validate makes, loads the same way
// twice and classifies apps without panicking.
func FuzzLoad(f *testing.F) {
	// Each fuzz worker runs this body once; the function below runs one
	// input at a time, so one file per worker is enough.
	path := filepath.Join(f.TempDir(), "crowsnest.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			if c != nil {
				t.Errorf("Load returned a config and the error %q", err)
			}
			if !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error %q does not start with the file name", err)
			}
			var fe *fieldError
			if errors.As(err, &fe) {
				if lines := maxLines(data); fe.line < 1 || fe.line > lines {
					t.Errorf("error %q: line %d is not a line of the file (at most %d lines)", err, fe.line, lines)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("line %d: field %s: ", fe.line, fe.field)) {
					t.Errorf("error %q does not name line and field", err)
				}
			}
			return
		}
		again, err := Parse(data)
		if err != nil {
			t.Fatalf("Load accepted the file, Parse of the same bytes failed: %v", err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("two parses of the same bytes differ:\n%#v\n%#v", c, again)
		}
		checkValid(t, c)
		for _, app := range fuzzApps() {
			env := c.Env(app)
			if env == "" {
				t.Errorf("app %s: empty env", app.Name)
			}
			c.CheckPolicies(app, env, model.AutoSyncOf(&app.Spec))
			c.PromotionOf(app)
		}
	})
}

// maxLines bounds the number of lines YAML sees in data: it breaks lines
// at CR, LF, NEL, LS and PS (CR LF counts twice here).
func maxLines(data []byte) int {
	n := 1
	for _, sep := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
		n += strings.Count(string(data), sep)
	}
	return n
}

// checkValid checks what validate promises of a config Parse accepts.
func checkValid(t *testing.T, c *Config) {
	t.Helper()
	if strings.TrimSpace(c.DefaultEnv) == "" {
		t.Errorf("accepted a blank default_env %q", c.DefaultEnv)
	}
	for i, r := range c.Environments {
		if strings.TrimSpace(r.Env) == "" {
			t.Errorf("accepted a blank environments[%d].env %q", i, r.Env)
		}
		// A literal name matches itself only, not a name holding it.
		if n := r.Match.Name; n != nil && n.Regexp != nil && regexp.QuoteMeta(n.String()) == n.String() {
			if s := n.String(); !n.MatchString(s) || n.MatchString("x"+s) || n.MatchString(s+"x") {
				t.Errorf("environments[%d].match.name %q does not match exactly itself", i, s)
			}
		}
	}
	if c.Promotion != nil {
		seen := map[string]bool{}
		for _, env := range c.Promotion.Order {
			if seen[env] {
				t.Errorf("accepted %q twice in promotion.order", env)
			}
			seen[env] = true
		}
	}
}

// fuzzApps are a few Applications to classify with a fuzzed config.
func fuzzApps() []*v1alpha1.Application {
	return []*v1alpha1.Application{
		app("prod-backend", "payments", "shop", "https://prod.example.com", map[string]string{"env": "prod", "team": "a"}),
		app("dev", "", "", "", nil),
		{
			ObjectMeta: metav1.ObjectMeta{Name: "stage-web", Labels: map[string]string{"": ""}},
			Spec: v1alpha1.ApplicationSpec{
				Destination: v1alpha1.ApplicationDestination{Name: "in-cluster"},
				SyncPolicy:  &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{SelfHeal: new(true)}},
			},
			Status: v1alpha1.ApplicationStatus{Summary: v1alpha1.ApplicationSummary{Images: []string{"web:1", "api@sha256:00"}}},
		},
	}
}
