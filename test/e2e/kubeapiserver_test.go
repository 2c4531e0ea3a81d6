//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// kubeAPIServerReadyTimeout bounds kube-apiserver's start-up; it is
	// usually ready in 5 to 15 s.
	kubeAPIServerReadyTimeout = 90 * time.Second
	// kubeAPIServerStopTimeout is how long kube-apiserver may take to shut
	// down gracefully. It stops listening at once and exits in about 1 s,
	// but with a client's watch open it waits some 30 s before it closes
	// the watch and exits; the tests do not need that wait.
	kubeAPIServerStopTimeout = 5 * time.Second
	// crdServedTimeout bounds the time from applying a CRD until its
	// resource is served.
	crdServedTimeout = 30 * time.Second
	// kubectlTimeout bounds one kubectl command.
	kubectlTimeout = time.Minute
)

// argoCDCRDs are the Argo CD CRD manifests the tests apply, relative to the
// argo-cd module directory.
var argoCDCRDs = []string{
	"manifests/crds/application-crd.yaml",
	"manifests/crds/appproject-crd.yaml",
	// argocd-server and the controller of v3 watch ApplicationSets too.
	"manifests/crds/applicationset-crd.yaml",
}

// KubeAPIServer is a kube-apiserver on a loopback port, backed by an Etcd,
// with RBAC on and one admin token (group system:masters).
type KubeAPIServer struct {
	*Process
	// Port is the secure port; URL is https://127.0.0.1:Port.
	Port int
	URL  string
	// AdminToken is a bearer token in group system:masters.
	AdminToken string
	// Kubeconfig is a kubeconfig file for AdminToken that skips TLS
	// verification (the serving certificate is self-signed).
	Kubeconfig string
}

// NewKubeAPIServer prepares a kube-apiserver on a free port that stores its
// data in etcd, and writes its admin kubeconfig; Start runs it. The port is
// fixed from here on, so a kubeconfig can point at the server before it
// runs, and restarts keep it.
func (e *Env) NewKubeAPIServer(etcd *Etcd) *KubeAPIServer {
	e.t.Helper()
	name := e.instance("kube-apiserver")
	dir := e.Dir(name)
	certDir := e.Dir(name + "/certs")
	saKey := filepath.Join(dir, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		e.t.Fatalf("service account key: %v", err)
	}
	token := e.Secret("kube-admin-token")
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		e.t.Fatalf("write token file: %v", err)
	}

	port := e.Port()
	k := &KubeAPIServer{
		Port:       port,
		URL:        fmt.Sprintf("https://127.0.0.1:%d", port),
		AdminToken: token,
		Kubeconfig: filepath.Join(dir, "admin.kubeconfig"),
	}
	if err := writeKubeconfig(k.Kubeconfig, k.URL, token); err != nil {
		e.t.Fatalf("write kubeconfig: %v", err)
	}
	k.Process = e.NewProcess(name, bin.kubeAPIServer,
		"--etcd-servers="+etcd.ClientURL,
		"--cert-dir="+certDir,
		fmt.Sprintf("--secure-port=%d", port),
		"--bind-address=127.0.0.1",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saKey,
		"--service-account-signing-key-file="+saKey,
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--disable-admission-plugins=ServiceAccount",
	)
	k.StopTimeout = kubeAPIServerStopTimeout
	return k
}

// StartKubeAPIServer starts a new kube-apiserver on etcd and waits until it
// is ready.
func (e *Env) StartKubeAPIServer(etcd *Etcd) *KubeAPIServer {
	e.t.Helper()
	k := e.NewKubeAPIServer(etcd)
	k.Start()
	return k
}

// Start runs kube-apiserver and waits until its /readyz answers 200.
func (k *KubeAPIServer) Start() {
	k.t.Helper()
	k.Process.Start()
	took := k.WaitReady()
	k.t.Logf("kube-apiserver ready on %s in %v", k.URL, took.Round(time.Millisecond))
}

// WaitReady waits until /readyz answers 200 and returns how long that took.
func (k *KubeAPIServer) WaitReady() time.Duration {
	k.t.Helper()
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	defer client.CloseIdleConnections()
	return eventually(k.t, kubeAPIServerReadyTimeout, func() error {
		if err := k.checkAlive(); err != nil {
			return err
		}
		req, err := http.NewRequest(http.MethodGet, k.URL+"/readyz", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+k.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("kube-apiserver readyz: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("kube-apiserver readyz: %s: %s", resp.Status, lastLines(string(body), 5))
		}
		return nil
	})
}

// RESTConfig loads the admin kubeconfig.
func (k *KubeAPIServer) RESTConfig() *rest.Config {
	k.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		k.t.Fatalf("load %s: %v", k.Kubeconfig, err)
	}
	cfg.UserAgent = "crowsnest-e2e"
	cfg.Timeout = 30 * time.Second
	cfg.QPS, cfg.Burst = 100, 200
	return cfg
}

// ArgoCD returns a typed Argo CD client with the admin token.
func (k *KubeAPIServer) ArgoCD() versioned.Interface {
	k.t.Helper()
	c, err := versioned.NewForConfig(k.RESTConfig())
	if err != nil {
		k.t.Fatalf("create Argo CD client: %v", err)
	}
	return c
}

// Kubectl runs kubectl with the admin kubeconfig, stdin as its input, and
// returns its output; it fails the test if kubectl fails.
func (k *KubeAPIServer) Kubectl(stdin string, args ...string) string {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(k.t.Context(), kubectlTimeout)
	defer cancel()
	args = append([]string{"--kubeconfig=" + k.Kubeconfig}, args...)
	cmd := exec.CommandContext(ctx, bin.kubectl, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args[1:], " "), err, out)
	}
	return string(out)
}

// CreateNamespace creates namespace ns.
func (k *KubeAPIServer) CreateNamespace(ns string) {
	k.t.Helper()
	k.Kubectl("", "create", "namespace", ns)
}

// InstallArgoCDCRDs applies the Application, AppProject and ApplicationSet
// CRDs of the argo-cd module crowsnest is built with, and waits until all
// three resources are served (an AppProject created earlier races).
func (k *KubeAPIServer) InstallArgoCDCRDs() {
	k.t.Helper()
	start := time.Now()
	args := []string{"apply", "--server-side"}
	for _, f := range argoCDCRDs {
		args = append(args, "-f", filepath.Join(bin.argoCDModDir, f))
	}
	k.Kubectl("", args...)
	client := k.ArgoCD().ArgoprojV1alpha1()
	eventually(k.t, crdServedTimeout, func() error {
		ctx, cancel := context.WithTimeout(k.t.Context(), 5*time.Second)
		defer cancel()
		if _, err := client.Applications(metav1.NamespaceAll).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return fmt.Errorf("list Applications: %w", err)
		}
		if _, err := client.AppProjects(metav1.NamespaceAll).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return fmt.Errorf("list AppProjects: %w", err)
		}
		if _, err := client.ApplicationSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return fmt.Errorf("list ApplicationSets: %w", err)
		}
		return nil
	})
	k.t.Logf("Argo CD CRDs served in %v", time.Since(start).Round(time.Millisecond))
}

// writeRSAKey writes a new 2048-bit RSA private key in PEM to path.
func writeRSAKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate RSA key: %w", err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return os.WriteFile(path, b, 0o600)
}

// writeKubeconfig writes a kubeconfig for server and a bearer token.
func writeKubeconfig(path, server, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "admin"}
	cfg.CurrentContext = "e2e"
	return clientcmd.WriteToFile(*cfg, path)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
