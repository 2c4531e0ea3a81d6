//go:build e2e

// Package e2e runs crowsnest end to end against real servers started on
// loopback ports: etcd and kube-apiserver, with the Argo CD CRDs applied.
// Run it with `make e2e`, which installs or builds those servers first, or,
// once they are in place, with
//
//	go test -count=1 -tags e2e ./test/e2e/...
//
// Set CROWSNEST_E2E_KEEP=1 to keep the process logs of passing tests too.
//
// Every credential the tests configure is registered with the suite; once
// every test has run, TestMain searches every process log, /metrics
// snapshot and recording of the run for them and fails the run if one
// appears in crowsnest's outputs (other programs' logs are only reported).
package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// bin holds the programs the tests run. TestMain sets it before any test
// runs; tests only read it.
var bin binaries

// secrets is the suite's registry of the credentials the tests configure
// and of the outputs (process logs, /metrics snapshots, recordings) to
// search for them. TestMain sets it before any test runs and, after the
// last, fails the run if a credential appears in crowsnest's outputs (see
// secrets_test.go). It is safe for concurrent use.
var secrets *secretRegistry

// binaries are the paths of the programs the tests run, and of the Argo CD
// module whose manifests they apply.
type binaries struct {
	crowsnest     string // built by TestMain
	etcd          string
	kubeAPIServer string
	kubectl       string
	helm          string
	argoCDModDir  string // the github.com/argoproj/argo-cd/v3 module in the module cache
	redis         string
	prometheus    string
	alertmanager  string
	// argoCDBinary is the argocd binary; it acts as the program it is run
	// as, so argoCD(name) links it under each name into argoCDLinks.
	argoCDBinary string
	argoCDLinks  string
	// jaeger and victoriaLogs are the real trace and log stores (Jaeger v2
	// with in-memory storage; VictoriaLogs, which takes Loki's push API).
	jaeger       string
	victoriaLogs string
	// repoRoot is the absolute path of the main module.
	repoRoot string
}

// TestMain builds crowsnest once for all tests and finds the servers; it
// exits non-zero, without running any test, if one is missing. After the
// tests it searches their outputs for the secrets they registered, and
// exits non-zero if crowsnest leaked one.
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "crowsnest-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	b, err := findBinaries(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	bin = b
	secrets = newSecretRegistry()
	code := m.Run()
	// The search runs before the logs of passing tests are removed.
	if leaks := secrets.Check(os.Stderr); leaks > 0 && code == 0 {
		code = 1
	}
	secrets.RemoveDirs(os.Stderr, os.Getenv("CROWSNEST_E2E_KEEP") != "")
	return code
}

// repoRoot is the main module's root, relative to this package's directory
// (go test runs a test binary in its package's source directory).
const repoRoot = "../.."

// kubeAPIServerModule is the module that pins the kube-apiserver version
// hack/tools.sh builds; the binary is cached under that version.
const kubeAPIServerModule = "test/e2e/tools/kube-apiserver/go.mod"

func findBinaries(dir string) (binaries, error) {
	var b binaries
	var missing []string
	need := func(what, path string, err error) string {
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v", what, err))
			return ""
		}
		return path
	}

	path, err := executable(envOr("CROWSNEST_ETCD", "/usr/bin/etcd"))
	b.etcd = need("etcd", path, err)
	path, err = kubeAPIServerPath()
	b.kubeAPIServer = need("kube-apiserver", path, err)
	path, err = toolPath("CROWSNEST_KUBECTL", kubeAPIServerModule, "k8s.io/kubernetes", "kubectl")
	b.kubectl = need("kubectl", path, err)
	path, err = executable(envOr("CROWSNEST_HELM", filepath.Join(cacheDir(), "bin", "helm")))
	b.helm = need("helm", path, err)
	path, err = executable(envOr("CROWSNEST_REDIS", "/usr/bin/redis-server"))
	b.redis = need("redis-server", path, err)
	path, err = executable(envOr("CROWSNEST_PROMETHEUS", "/usr/bin/prometheus"))
	b.prometheus = need("prometheus", path, err)
	path, err = executable(envOr("CROWSNEST_ALERTMANAGER", "/usr/bin/prometheus-alertmanager"))
	b.alertmanager = need("alertmanager", path, err)
	path, err = toolPath("CROWSNEST_ARGOCD", argoCDModule, "github.com/argoproj/argo-cd/v3", "argocd")
	b.argoCDBinary = need("argocd", path, err)
	path, err = toolPath("CROWSNEST_JAEGER", jaegerModule, "github.com/jaegertracing/jaeger", "jaeger")
	b.jaeger = need("jaeger", path, err)
	path, err = toolPath("CROWSNEST_VICTORIALOGS", victoriaLogsModule, "github.com/VictoriaMetrics/VictoriaLogs", "victoria-logs")
	b.victoriaLogs = need("victoria-logs", path, err)
	b.argoCDLinks = filepath.Join(dir, "argocd-links")
	if err := os.MkdirAll(b.argoCDLinks, 0o755); err != nil {
		return b, err
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("missing programs:\n  %s\nrun `make e2e` (or `bash hack/tools.sh`) to install or build them", strings.Join(missing, "\n  "))
	}

	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return b, err
	}
	b.repoRoot = root
	out, err := command(root, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-cd/v3")
	if err != nil {
		return b, fmt.Errorf("find the Argo CD module: %w", err)
	}
	b.argoCDModDir = strings.TrimSpace(out)
	for _, f := range append(slices.Clone(argoCDCRDs), gitVerifyWrapper) {
		if _, err := os.Stat(filepath.Join(b.argoCDModDir, f)); err != nil {
			return b, fmt.Errorf("Argo CD file (try `go mod download` in %s): %w", root, err)
		}
	}
	if err := installGitVerifyWrapper(b.argoCDModDir, b.argoCDLinks); err != nil {
		return b, err
	}
	// The repo-server renders Helm sources with helm from its PATH.
	if err := os.Symlink(b.helm, filepath.Join(b.argoCDLinks, "helm")); err != nil {
		return b, fmt.Errorf("put helm on the repo-server's PATH: %w", err)
	}

	start := time.Now()
	b.crowsnest = filepath.Join(dir, "crowsnest")
	args := []string{"build", "-o", b.crowsnest}
	if os.Getenv("CROWSNEST_E2E_RACE") != "" {
		args = append(args, "-race")
	}
	if _, err := command(root, "go", append(args, "./cmd/exporter")...); err != nil {
		return b, fmt.Errorf("build crowsnest: %w", err)
	}
	fmt.Fprintf(os.Stderr, "e2e: built crowsnest in %v\n", time.Since(start).Round(time.Millisecond))
	return b, nil
}

// recordingsVersion names the directory of test/e2e/testdata that
// -update-recordings writes: the Argo CD line the e2e runs. The recordings
// of older lines stay beside it (v2.14/) as the unit tests' regression
// inputs.
const recordingsVersion = "v3.6"

// recordingsDir is where -update-recordings writes the recordings.
func recordingsDir() string {
	return filepath.Join(bin.repoRoot, "test", "e2e", "testdata", recordingsVersion)
}

// gitVerifyWrapper is the script, relative to the argo-cd module directory,
// that the v3 repo-server runs (through PATH) for every git source: since
// v3 it verifies each revision's signature unconditionally
// (reposerver/repository/repository.go, runRepoOperation), and if the script
// is missing it fails every manifest generation with a bare "permission
// denied" (util/git/client.go, VerifyCommitSignature). Argo CD's image puts
// it in /usr/local/bin; the e2e puts it in argoCDLinks, first on the
// repo-server's PATH. For an unsigned commit it exits 0, so no gpg is needed.
const gitVerifyWrapper = "hack/git-verify-wrapper.sh"

// installGitVerifyWrapper copies the module's gitVerifyWrapper into dir as
// an executable (the module cache keeps it read-only, mode 0444).
func installGitVerifyWrapper(modDir, dir string) error {
	script, err := os.ReadFile(filepath.Join(modDir, gitVerifyWrapper))
	if err != nil {
		return fmt.Errorf("read Argo CD's git verify wrapper: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(gitVerifyWrapper)), script, 0o755); err != nil {
		return fmt.Errorf("install Argo CD's git verify wrapper: %w", err)
	}
	return nil
}

// argoCDModule is the module that pins the Argo CD version hack/tools.sh
// builds the argocd binary of.
const argoCDModule = "test/e2e/tools/argocd/go.mod"

// jaegerModule and victoriaLogsModule are the modules that pin the
// versions of Jaeger and VictoriaLogs that hack/tools.sh builds.
const (
	jaegerModule       = "test/e2e/tools/jaeger/go.mod"
	victoriaLogsModule = "test/e2e/tools/victorialogs/go.mod"
)

// kubeAPIServerPath returns $CROWSNEST_KUBE_APISERVER, else the binary
// hack/tools.sh caches for the version that test/e2e/tools/kube-apiserver
// pins: $CROWSNEST_CACHE/bin/kube-apiserver-VERSION.
func kubeAPIServerPath() (string, error) {
	return toolPath("CROWSNEST_KUBE_APISERVER", kubeAPIServerModule, "k8s.io/kubernetes", "kube-apiserver")
}

// toolPath returns $envVar if set, else the binary name that hack/tools.sh
// built from the tool module gomod and cached under the version of module
// it requires: $CROWSNEST_CACHE/bin/NAME-VERSION.
func toolPath(envVar, gomod, module, name string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		return executable(p)
	}
	version, err := requiredVersion(filepath.Join(repoRoot, gomod), module)
	if err != nil {
		return "", err
	}
	return executable(filepath.Join(cacheDir(), "bin", name+"-"+version))
}

// cacheDir is where hack/tools.sh keeps what it builds: $CROWSNEST_CACHE,
// else ~/.cache/crowsnest.
func cacheDir() string {
	if cache := os.Getenv("CROWSNEST_CACHE"); cache != "" {
		return cache
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "crowsnest-cache")
	}
	return filepath.Join(home, ".cache", "crowsnest")
}

// requiredVersion reads the version of module from a go.mod's
// single-line require directive, as hack/tools.sh does.
func requiredVersion(gomod, module string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) >= 3 && fields[0] == "require" && fields[1] == module {
			return fields[2], nil
		}
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", gomod, err)
	}
	return "", fmt.Errorf("%s: no `require %s VERSION` line", gomod, module)
}

// executable returns path if it is an executable file.
func executable(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", path)
	}
	return path, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// command runs a short command in dir and returns its standard output; the
// error carries its standard error.
func command(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
