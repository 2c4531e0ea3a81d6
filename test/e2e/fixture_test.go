//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The deployment fixture is modelled on the seed's deployment model: a root
// Application (app-of-apps) whose children are synced in waves 0–4
// (namespaces and CRDs → infrastructure → observability → backend →
// frontend). Every child has resources in several waves of its own, and
// backend and frontend have PreSync/PostSync hook Jobs. dev and stage
// auto-sync with self-heal and prune; prod syncs by hand.

// fixtureApp is one child Application of the root app.
type fixtureApp struct {
	env       string
	component string
	wave      int
}

// name is the Application's name, e.g. "dev-backend".
func (a fixtureApp) name() string { return a.env + "-" + a.component }

// namespace is where the app's resources go, e.g. "shop-dev".
func (a fixtureApp) namespace() string { return "shop-" + a.env }

// autoSync tells whether the app syncs by itself; prod waits for a person.
func (a fixtureApp) autoSync() bool { return a.env != "prod" }

// fixtureApps are the root app's children.
var fixtureApps = []fixtureApp{
	{"dev", "namespaces", 0},
	{"dev", "infrastructure", 1},
	{"dev", "observability", 2},
	{"dev", "backend", 3},
	{"dev", "frontend", 4},
	{"stage", "backend", 3},
	{"stage", "frontend", 4},
	{"prod", "backend", 3},
}

// componentManifests are the manifests of each component, by file name;
// %[1]s is the namespace. Waves inside a component are its own.
var componentManifests = map[string]map[string]string{
	"namespaces": {
		"namespaces.yaml": `apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
  annotations:
    argocd.argoproj.io/sync-wave: "0"
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.e2e.crowsnest.dev
  annotations:
    argocd.argoproj.io/sync-wave: "1"
spec:
  group: e2e.crowsnest.dev
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`,
	},
	"infrastructure": {
		"postgres.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: postgres-config
  annotations:
    argocd.argoproj.io/sync-wave: "0"
data:
  max_connections: "100"
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: postgres
  annotations:
    argocd.argoproj.io/sync-wave: "1"
spec:
  replicas: 1
  serviceName: postgres
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres}}
    spec:
      containers: [{name: postgres, image: "postgres:16"}]
---
apiVersion: v1
kind: Service
metadata:
  name: postgres
  annotations:
    argocd.argoproj.io/sync-wave: "2"
spec:
  selector: {app: postgres}
  ports: [{port: 5432}]
`,
	},
	"observability": {
		"prometheus.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: prometheus-config
  annotations:
    argocd.argoproj.io/sync-wave: "0"
data:
  prometheus.yml: "scrape_configs: []"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: prometheus
  annotations:
    argocd.argoproj.io/sync-wave: "1"
spec:
  replicas: 1
  selector: {matchLabels: {app: prometheus}}
  template:
    metadata: {labels: {app: prometheus}}
    spec:
      containers: [{name: prometheus, image: "prom/prometheus:v3.0.0"}]
`,
	},
	"backend": {
		"migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: backend-migrate
  annotations:
    argocd.argoproj.io/hook: PreSync
    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation
    e2e.crowsnest.dev/job-result: "{{JOB_RESULT}}"
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "registry.example.com/shop/backend:1.0", command: ["migrate"]}]
`,
		"backend.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: backend-config
  annotations:
    argocd.argoproj.io/sync-wave: "0"
data:
  release: "{{RELEASE}}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
  annotations:
    argocd.argoproj.io/sync-wave: "1"
spec:
  replicas: 2
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      containers: [{name: api, image: "registry.example.com/shop/backend:1.0"}]
---
apiVersion: v1
kind: Service
metadata:
  name: backend
  annotations:
    argocd.argoproj.io/sync-wave: "2"
spec:
  selector: {app: backend}
  ports: [{port: 8080}]
`,
	},
	"frontend": {
		"frontend.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: frontend-config
  annotations:
    argocd.argoproj.io/sync-wave: "0"
data:
  release: "{{RELEASE}}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
  annotations:
    argocd.argoproj.io/sync-wave: "1"
spec:
  replicas: 2
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend}}
    spec:
      containers: [{name: web, image: "registry.example.com/shop/frontend:1.0"}]
---
apiVersion: v1
kind: Service
metadata:
  name: frontend
  annotations:
    argocd.argoproj.io/sync-wave: "1"
spec:
  selector: {app: frontend}
  ports: [{port: 80}]
`,
		"smoke.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: frontend-smoke
  annotations:
    argocd.argoproj.io/hook: PostSync
    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: smoke, image: "registry.example.com/shop/smoke:1.0"}]
`,
	},
}

// GitFixture is a file:// git repository holding the deployment fixture.
type GitFixture struct {
	t   *testing.T
	dir string
	// Release is written into the backend and frontend ConfigMaps; changing
	// it and committing makes the auto-syncing apps sync again.
	Release string
	// FailMigration makes dev-backend's PreSync migration Job fail.
	FailMigration bool
	destServer    string
}

// NewGitFixture writes the fixture for apps deploying to destServer (the
// cluster URL Argo CD knows the e2e kube-apiserver by) and commits it.
func NewGitFixture(t *testing.T, dir, destServer string) *GitFixture {
	t.Helper()
	g := &GitFixture{t: t, dir: dir, Release: "r1", destServer: destServer}
	g.git("init", "-q", "-b", "main")
	g.git("config", "user.email", "e2e@crowsnest.invalid")
	g.git("config", "user.name", "crowsnest e2e")
	g.Commit("initial deployment")
	return g
}

// URL is the repository URL for Argo CD.
func (g *GitFixture) URL() string { return "file://" + g.dir }

// Commit rewrites the manifests from the fixture's fields and commits them.
func (g *GitFixture) Commit(message string) {
	g.t.Helper()
	if err := os.RemoveAll(filepath.Join(g.dir, "envs")); err != nil {
		g.t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(g.dir, "root")); err != nil {
		g.t.Fatal(err)
	}
	for _, a := range fixtureApps {
		jobResult := "Succeeded"
		if g.FailMigration && a.env == "dev" {
			jobResult = "Failed"
		}
		for file, manifest := range componentManifests[a.component] {
			text := strings.NewReplacer("{{RELEASE}}", g.Release, "{{JOB_RESULT}}", jobResult).Replace(manifest)
			if strings.Contains(text, "%[1]s") {
				text = fmt.Sprintf(text, a.namespace())
			}
			g.write(filepath.Join("envs", a.env, a.component, file), text)
		}
		g.write(filepath.Join("root", a.name()+".yaml"), g.childApplication(a))
	}
	g.git("add", "-A")
	g.git("commit", "-q", "--allow-empty", "-m", message)
}

// childApplication is the Application manifest of a child of the root app.
func (g *GitFixture) childApplication(a fixtureApp) string {
	policy := `
  syncPolicy:
    syncOptions: [CreateNamespace=true]`
	if a.autoSync() {
		// One retry, soon: a failing hook fails the operation within
		// seconds instead of after Argo CD's default five retries.
		policy = `
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
    retry:
      limit: 1
      backoff: {duration: 2s, factor: 2, maxDuration: 10s}`
	}
	return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %[1]s
  namespace: argocd
  labels:
    env: %[2]s
    component: %[3]s
  annotations:
    argocd.argoproj.io/sync-wave: "%[4]d"
spec:
  project: default
  source:
    repoURL: %[5]s
    targetRevision: main
    path: envs/%[2]s/%[3]s
  destination:
    server: %[6]s
    namespace: %[7]s%[8]s
`, a.name(), a.env, a.component, a.wave, g.URL(), g.destServer, a.namespace(), policy)
}

// RootApplication is the app-of-apps Application manifest.
func (g *GitFixture) RootApplication() string {
	return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: root
  namespace: argocd
  labels:
    env: mgmt
spec:
  project: default
  source:
    repoURL: %[1]s
    targetRevision: main
    path: root
  destination:
    server: %[2]s
    namespace: argocd
  syncPolicy:
    automated: {prune: true, selfHeal: true}
`, g.URL(), g.destServer)
}

func (g *GitFixture) write(rel, content string) {
	g.t.Helper()
	path := filepath.Join(g.dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		g.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

func (g *GitFixture) git(args ...string) string {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = g.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Head returns the commit main points at.
func (g *GitFixture) Head() string { return g.git("rev-parse", "HEAD") }
