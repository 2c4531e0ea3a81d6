//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
)

// TestImage builds the container image as a release does (hack/image.sh:
// the static binary built outside the image, the CA bundle, the
// Dockerfile's FROM scratch stage, no registry) and runs it with podman the
// way the chart's pod runs it: read-only root file system, UID 65532, no
// capabilities, no privilege escalation. Against the e2e's kube-apiserver
// with Argo CD's CRDs and Applications, it must become ready and serve the
// apps' series; the image's user, labels and size are checked too.
func TestImage(t *testing.T) {
	env := NewEnv(t)
	kas := env.StartKubeAPIServer(env.StartEtcd())
	kas.InstallArgoCDCRDs()
	kas.CreateNamespace(argoCDNamespace)
	apps := kas.Apps(argoCDNamespace)
	for _, name := range []string{"image-dev", "image-prod"} {
		apps.Create(apps.New(name, v1alpha1.SyncStatusCodeSynced, health.HealthStatusHealthy))
	}

	tag := "localhost/crowsnest:e2e-" + rand.String(8)
	start := time.Now()
	out, err := command(bin.repoRoot, filepath.Join(bin.repoRoot, "hack", "image.sh"), tag)
	if err != nil {
		t.Fatalf("build the image: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = command("", "podman", "rmi", "-f", tag) })
	t.Logf("%s, built in %v", strings.TrimSpace(out), time.Since(start).Round(time.Second))

	var img []struct {
		Size   int64
		Config struct {
			User         string
			Entrypoint   []string
			ExposedPorts map[string]any
			Labels       map[string]string
		}
	}
	inspect, err := command("", "podman", "image", "inspect", tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(inspect), &img); err != nil || len(img) != 1 {
		t.Fatalf("podman image inspect: %v: %s", err, inspect)
	}
	cfg := img[0].Config
	if cfg.User != "65532:65532" || strings.Join(cfg.Entrypoint, " ") != "/usr/bin/crowsnest" || cfg.ExposedPorts["9829/tcp"] == nil {
		t.Errorf("image config: user %q, entrypoint %v, ports %v", cfg.User, cfg.Entrypoint, cfg.ExposedPorts)
	}
	for _, k := range []string{"title", "source", "licenses", "version", "revision", "created"} {
		if cfg.Labels["org.opencontainers.image."+k] == "" {
			t.Errorf("no OCI label org.opencontainers.image.%s: %v", k, cfg.Labels)
		}
	}
	if cfg.Labels["org.opencontainers.image.licenses"] != "Apache-2.0" {
		t.Errorf("licence label %q", cfg.Labels["org.opencontainers.image.licenses"])
	}
	t.Logf("image size %d MB", img[0].Size/1_000_000)

	// The kubeconfig (a token, self-contained) mounted read-only, as a
	// Secret would be.
	kubeconfig := filepath.Join(env.Dir("image"), "kubeconfig")
	b, err := os.ReadFile(kas.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kubeconfig, b, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", env.Port())
	name := "crowsnest-e2e-" + rand.String(8)
	p := env.NewProcess("crowsnest-image", "podman", "--runtime", "runc", "run", "--rm", "--name", name,
		"--network", "host", "--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--user", "65532:65532", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"-v", kubeconfig+":/etc/crowsnest/kubeconfig:ro", tag,
		"--kubeconfig=/etc/crowsnest/kubeconfig", "--web.listen-address="+addr)
	secrets.AddFile(p.LogPath, "crowsnest image", true)
	t.Cleanup(func() { _, _ = command("", "podman", "rm", "-f", name) })
	cn := &Crowsnest{Process: p, URL: "http://" + addr, client: &http.Client{Timeout: 5 * time.Second}}
	p.beforeStop = func() { env.saveMetrics(cn) }
	p.Start()
	took := eventually(t, 2*time.Minute, func() error {
		if err := cn.ExpectStatus("/readyz", http.StatusOK); err != nil {
			return err
		}
		for _, app := range []string{"image-dev", "image-prod"} {
			if err := cn.ExpectSample(1, "crowsnest_app_sync_status", "name", app, "status", "Synced"); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("the image's crowsnest ready and serving both apps %v after podman run", took.Round(time.Millisecond))

	// The process in the container: UID 65532, no capabilities at all
	// (not even in its bounding set: --cap-drop ALL), no privilege
	// escalation.
	pidText, err := command("", "podman", "inspect", "--format", "{{.State.Pid}}", name)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(pidText))
	if err != nil {
		t.Fatalf("container pid %q: %v", pidText, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	for k, want := range map[string]string{"Uid": "65532 65532 65532 65532", "Gid": "65532 65532 65532 65532",
		"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1"} {
		if fields[k] != want {
			t.Errorf("the container's process: %s %q, want %q", k, fields[k], want)
		}
	}
	// Its root file system is read-only: nothing may be written anywhere
	// (no tmpfs either: crowsnest writes nothing but its log).
	if out, err := command("", "podman", "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name); err != nil || strings.TrimSpace(out) != "true" {
		t.Errorf("read-only root file system: %q, %v", out, err)
	}
	if err := p.Stop(); err != nil {
		t.Logf("podman run: %v", err)
	}
}
