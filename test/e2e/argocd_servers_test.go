//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// argoCDNamespace is where Argo CD keeps its configuration and Applications.
const argoCDNamespace = "argocd"

// argoCDServeTimeout bounds how long a starting Argo CD server may take to
// listen.
const argoCDServeTimeout = 60 * time.Second

// ArgoCD is a real Argo CD: Redis, the repo server, the commit server and
// the application controller (its Source Hydrator on), managing the e2e kube-apiserver as a cluster of its own.
type ArgoCD struct {
	Redis        *Process
	RepoServer   *Process
	CommitServer *Process
	Controller   *Process
	// ClusterURL is the destination server Applications use.
	ClusterURL string
	// RedisAddr and RepoServerAddr are host:port of Redis and the repo
	// server, for argocd-server.
	RedisAddr, RepoServerAddr string
	// ControllerMetrics is the URL of the application controller's
	// metrics (argocd_app_sync_total: see argoCDSyncs). They start from
	// nothing each time the controller starts.
	ControllerMetrics string
}

// StartArgoCD configures namespace argocd on k (ConfigMap, Secret, default
// AppProject, a cluster Secret for k itself) and starts Redis, the repo
// server and the application controller, with controllerArgs added to the
// controller's flags (e.g. --sync-timeout for a scenario of its own).
func (e *Env) StartArgoCD(k *KubeAPIServer, controllerArgs ...string) *ArgoCD {
	e.t.Helper()
	start := time.Now()
	a := &ArgoCD{ClusterURL: k.URL}
	k.configureArgoCD()

	redisPort := e.Port()
	a.Redis = e.NewProcess("redis", bin.redis,
		"--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	a.Redis.Start()
	waitListening(e.t, a.Redis, redisPort)
	redisAddr := fmt.Sprintf("127.0.0.1:%d", redisPort)
	a.RedisAddr = redisAddr

	repoPort := e.Port()
	a.RepoServerAddr = fmt.Sprintf("127.0.0.1:%d", repoPort)
	gpg := e.Dir("argocd-gnupg")
	a.RepoServer = e.NewProcess("argocd-repo-server", bin.argoCD("argocd-repo-server"),
		"--address", "127.0.0.1", "--port", strconv.Itoa(repoPort),
		"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(e.Port()),
		"--redis", redisAddr,
		// A file:// repo changes under the tests' hands: resolve its
		// revisions afresh each time rather than from a 3-minute cache.
		"--revision-cache-expiration", "1s",
		"--loglevel", "info")
	a.RepoServer.Env = []string{"ARGOCD_GPG_ENABLED=false", "ARGOCD_GNUPGHOME=" + gpg, "TMPDIR=" + e.Dir("argocd-repo-tmp"),
		// git-verify-wrapper.sh (see gitVerifyWrapper) is in argoCDLinks.
		"PATH=" + bin.argoCDLinks + string(os.PathListSeparator) + os.Getenv("PATH")}
	a.RepoServer.Start()
	waitListening(e.t, a.RepoServer, repoPort)

	// The commit server pushes what the controller's Source Hydrator
	// renders (v3.1+); apps without spec.sourceHydrator never use it.
	commitPort := e.Port()
	a.CommitServer = e.NewProcess("argocd-commit-server", bin.argoCD("argocd-commit-server"),
		"--address", "127.0.0.1", "--port", strconv.Itoa(commitPort),
		"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(e.Port()),
		"--loglevel", "info")
	a.CommitServer.Env = []string{"TMPDIR=" + e.Dir("argocd-commit-tmp")}
	a.CommitServer.Start()
	waitListening(e.t, a.CommitServer, commitPort)

	controllerMetricsPort := e.Port()
	a.ControllerMetrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", controllerMetricsPort)
	a.Controller = e.NewProcess("argocd-application-controller", bin.argoCD("argocd-application-controller"),
		"--kubeconfig", k.Kubeconfig, "--namespace", argoCDNamespace,
		"--repo-server", fmt.Sprintf("127.0.0.1:%d", repoPort),
		"--redis", redisAddr,
		"--metrics-port", strconv.Itoa(controllerMetricsPort),
		// Notice new commits within seconds, as a webhook would make it.
		"--app-resync", "5",
		// v3 spreads each app's resync over up to 60 s more by default
		// (v2.14: 0); a new commit would take up to a minute to sync.
		"--app-resync-jitter", "0",
		"--self-heal-timeout-seconds", "2",
		"--status-processors", "4", "--operation-processors", "4",
		"--hydrator-enabled", "--commit-server", fmt.Sprintf("127.0.0.1:%d", commitPort),
		"--loglevel", "info")
	a.Controller.Args = append(a.Controller.Args, controllerArgs...)
	a.Controller.Start()
	e.t.Logf("Argo CD started in %v", time.Since(start).Round(time.Millisecond))
	return a
}

// configureArgoCD writes what Argo CD reads from its namespace.
func (k *KubeAPIServer) configureArgoCD() {
	k.t.Helper()
	ctx := k.t.Context()
	cs := k.Kubernetes()
	if _, err := cs.CoreV1().Namespaces().Get(ctx, argoCDNamespace, metav1.GetOptions{}); err != nil {
		k.CreateNamespace(argoCDNamespace)
	}
	partOf := map[string]string{"app.kubernetes.io/part-of": "argocd"}
	mustCreate(k.t, func() error {
		_, err := cs.CoreV1().ConfigMaps(argoCDNamespace).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "argocd-cm", Labels: partOf},
			Data: map[string]string{
				// Ignore the objects the stand-in controllers would
				// otherwise create for Argo CD to track.
				"resource.exclusions": "- apiGroups: [\"\", \"discovery.k8s.io\", \"coordination.k8s.io\"]\n  kinds: [Endpoints, EndpointSlice, Lease, Event]\n  clusters: [\"*\"]\n",
			},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(k.t, func() error {
		_, err := cs.CoreV1().Secrets(argoCDNamespace).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "argocd-secret", Labels: partOf},
			StringData: map[string]string{"server.secretkey": secrets.New("argocd-server-secretkey")},
		}, metav1.CreateOptions{})
		return err
	})
	config, err := json.Marshal(map[string]any{
		"bearerToken":     k.AdminToken,
		"tlsClientConfig": map[string]any{"insecure": true},
	})
	if err != nil {
		k.t.Fatal(err)
	}
	mustCreate(k.t, func() error {
		_, err := cs.CoreV1().Secrets(argoCDNamespace).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-e2e", Labels: map[string]string{"argocd.argoproj.io/secret-type": "cluster"}},
			StringData: map[string]string{"name": "e2e", "server": k.URL, "config": string(config)},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(k.t, func() error {
		_, err := k.ArgoCD().ArgoprojV1alpha1().AppProjects(argoCDNamespace).Create(ctx, &v1alpha1.AppProject{
			ObjectMeta: metav1.ObjectMeta{Name: "default"},
			Spec: v1alpha1.AppProjectSpec{
				SourceRepos:              []string{"*"},
				Destinations:             []v1alpha1.ApplicationDestination{{Server: "*", Namespace: "*"}},
				ClusterResourceWhitelist: []v1alpha1.ClusterResourceRestrictionItem{{Group: "*", Kind: "*"}},
			},
		}, metav1.CreateOptions{})
		return err
	})
}

// Kubernetes returns a client-go clientset with the admin token.
func (k *KubeAPIServer) Kubernetes() kubernetes.Interface {
	k.t.Helper()
	cs, err := kubernetes.NewForConfig(k.RESTConfig())
	if err != nil {
		k.t.Fatalf("create Kubernetes client: %v", err)
	}
	return cs
}

func mustCreate(t *testing.T, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatalf("create Argo CD configuration: %v", err)
	}
}

// waitListening waits until something accepts connections on port, failing
// fast if p exits.
func waitListening(t *testing.T, p *Process, port int) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	eventually(t, argoCDServeTimeout, func() error {
		if err := p.checkAlive(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return fmt.Errorf("%s not listening on %s: %w", p.Name, addr, err)
		}
		c.Close()
		return nil
	})
}

// argoCD returns the path under which the argocd binary acts as name (it
// picks its role by the name it is run as), creating the link once.
func (b binaries) argoCD(name string) string {
	link := filepath.Join(b.argoCDLinks, name)
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(b.argoCDBinary, link); err != nil && !os.IsExist(err) {
			panic(fmt.Sprintf("link %s: %v", link, err))
		}
	}
	return link
}

// ApplyRoot creates the root app-of-apps Application from the fixture.
func (k *KubeAPIServer) ApplyRoot(g *GitFixture) {
	k.t.Helper()
	k.Kubectl(g.RootApplication(), "apply", "-f", "-")
}

// SyncByHand starts a sync of app as a person does in the UI or CLI: by
// setting .operation on the Application. With resources, only those are
// synced (a selective sync, which runs no hooks).
func (k *KubeAPIServer) SyncByHand(ctx context.Context, name string, resources ...v1alpha1.SyncOperationResource) {
	k.t.Helper()
	apps := k.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	eventually(k.t, 30*time.Second, func() error {
		app, err := apps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if app.Operation != nil {
			return fmt.Errorf("%s already has an operation", name)
		}
		// As `argocd app sync` does: the app's sync options go with it.
		sync := &v1alpha1.SyncOperation{Revision: app.Spec.GetSource().TargetRevision, Prune: true, Resources: resources}
		if app.Spec.SyncPolicy != nil {
			sync.SyncOptions = app.Spec.SyncPolicy.SyncOptions
		}
		app.Operation = &v1alpha1.Operation{Sync: sync, InitiatedBy: v1alpha1.OperationInitiator{Username: "e2e-approver"}}
		// As argo.SetAppOperation, behind the CLI and the UI, does.
		app.Status.OperationState = nil
		_, err = apps.Update(ctx, app, metav1.UpdateOptions{})
		return err
	})
}

// Refresh asks Argo CD to compare app with git now, as a git webhook would.
func (k *KubeAPIServer) Refresh(ctx context.Context, names ...string) {
	k.t.Helper()
	apps := k.ArgoCD().ArgoprojV1alpha1().Applications(argoCDNamespace)
	for _, name := range names {
		eventually(k.t, 30*time.Second, func() error {
			app, err := apps.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if app.Annotations == nil {
				app.Annotations = map[string]string{}
			}
			app.Annotations[v1alpha1.AnnotationKeyRefresh] = string(v1alpha1.RefreshTypeNormal)
			_, err = apps.Update(ctx, app, metav1.UpdateOptions{})
			return err
		})
	}
}
