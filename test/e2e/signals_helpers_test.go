//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	appclient "github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned/typed/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// argoCDUser is the user a person's sync runs as: Argo CD's API server puts
// the session's user name into .operation.initiatedBy.
const argoCDUser = "admin"

// newManifestRepo commits files (path in the repository → content) to a
// new git repository in dir and returns its file:// URL and the commit's
// hash.
func newManifestRepo(t *testing.T, dir string, files map[string]string) (url, head string) {
	t.Helper()
	run := func(args ...string) string { t.Helper(); return gitIn(t, dir, args...) }
	run("init", "-q", "-b", "main")
	run("config", "user.email", "e2e@crowsnest.invalid")
	run("config", "user.name", "crowsnest e2e")
	for rel, content := range files {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run("add", "-A")
	run("commit", "-q", "-m", "manifests")
	return "file://" + dir, run("rev-parse", "HEAD")
}

// gitIn runs git with args in dir and returns its trimmed output, failing
// the test if it fails.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// requestSync asks Argo CD to sync the Application name to revision (a
// commit hash) as its API server does for `argocd app sync` or the UI's
// Sync button (server/application Sync, then util/argo SetAppOperation,
// the same in v2.14 and v3.6): it sets .operation, initiated by argoCDUser, with the
// app's sync options and retry strategy, and clears
// status.operationState, in one update of the whole Application, retried
// on conflicts. A dry run is the same with .operation.sync.dryRun set. It
// fails the test if an operation is in progress (Argo CD refuses then too)
// and returns when the update is written.
func requestSync(ctx context.Context, t *testing.T, apps appclient.ApplicationInterface, name, revision string, dryRun bool) time.Time {
	t.Helper()
	return setOperation(ctx, t, apps, name, func(a *v1alpha1.Application) (*v1alpha1.Operation, error) {
		op := v1alpha1.Operation{
			Sync: &v1alpha1.SyncOperation{
				Revision: revision,
				DryRun:   dryRun,
				Sources:  a.Spec.Sources,
			},
			InitiatedBy: v1alpha1.OperationInitiator{Username: argoCDUser},
		}
		if p := a.Spec.SyncPolicy; p != nil {
			op.Sync.SyncOptions = p.SyncOptions
			if p.Retry != nil {
				op.Retry = *p.Retry
			}
		}
		return &op, nil
	})
}

// setOperation sets the operation build returns on the Application name,
// and clears its operation state, as Argo CD's API server does
// (argo.SetAppOperation) for every operation a person asks for, and
// returns when: build sees the Application as it is, retried on conflict.
func setOperation(ctx context.Context, t *testing.T, apps appclient.ApplicationInterface, name string, build func(*v1alpha1.Application) (*v1alpha1.Operation, error)) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	var requested time.Time
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		a, err := apps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if a.Operation != nil {
			return fmt.Errorf("another operation is already in progress: %+v", *a.Operation)
		}
		if a.Operation, err = build(a); err != nil {
			return err
		}
		a.Status.OperationState = nil
		requested = time.Now()
		_, err = apps.Update(ctx, a, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("set an operation on %s: %v", name, err)
	}
	return requested
}

// terminateOperation ends the running operation of the Application name as
// Argo CD's API server does for `argocd app terminate-op` or the UI's
// Terminate button (server/application TerminateOperation, the same in
// v2.14 and v3.6): it sets status.operationState.phase to Terminating and writes the whole
// Application back, retried on conflicts. The application controller then
// stops the operation and writes it Failed, "Operation terminated". It
// returns an error if no operation is in progress.
//
// The controller writes the operation state with a merge patch, not
// guarded by resourceVersion: a sync iteration that read the state before
// this update overwrites Terminating with Running when it ends, and the
// termination is lost, for a person's click as for this call; the person
// clicks again, and so does the caller.
func terminateOperation(ctx context.Context, apps appclient.ApplicationInterface, name string) error {
	ctx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		a, err := apps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if a.Operation == nil || a.Status.OperationState == nil {
			return fmt.Errorf("unable to terminate operation: no operation is in progress")
		}
		a.Status.OperationState.Phase = synccommon.OperationTerminating
		_, err = apps.Update(ctx, a, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("terminate the operation of %s: %w", name, err)
	}
	return nil
}

// finishedOperation returns the Application name's operation state once
// Argo CD has finished its operation (.operation cleared, the phase
// completed) and the operation started no earlier than the second of
// since; else an error saying what it is at.
func finishedOperation(ctx context.Context, apps appclient.ApplicationInterface, name string, since time.Time) (*v1alpha1.OperationState, error) {
	a, err := apps.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	op := a.Status.OperationState
	switch {
	case op == nil:
		return nil, fmt.Errorf("%s: no operation state", name)
	case op.StartedAt.Time.Before(since.Truncate(time.Second)):
		return nil, fmt.Errorf("%s: operation state of an operation started at %v, before %v", name, op.StartedAt.Time, since)
	case a.Operation != nil || !op.Phase.Completed():
		return nil, fmt.Errorf("%s: operation %s: %s", name, op.Phase, op.Message)
	}
	return op, nil
}

// observePoll is how often an observer looks.
const observePoll = 200 * time.Millisecond

// observer polls crowsnest's /metrics and Alertmanager's active alerts in
// the background, every observePoll, and records per app each change of
// the operation phase crowsnest exposes, and when Alertmanager first held
// an active Crowsnest(Prod)SyncFailed for it: what a test that looks only now
// and then would miss (a resolved alert leaves Alertmanager's list of
// active alerts).
type observer struct {
	mu     sync.Mutex
	phases map[string][]string // app name → exposed phases, each change once
	paged  map[string]time.Time
}

// observe starts an observer of crowsnest c and Alertmanager am; it stops
// when t ends.
func observe(t *testing.T, c *Crowsnest, am *Alertmanager) *observer {
	t.Helper()
	o := &observer{phases: map[string][]string{}, paged: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(observePoll)
		defer tick.Stop()
		for {
			if m, err := c.Scrape(); err == nil {
				o.recordPhases(m)
			}
			for _, name := range []string{"CrowsnestSyncFailed", "CrowsnestProdSyncFailed"} {
				if alerts, err := am.FindAlerts(ctx, map[string]string{"alertname": name}); err == nil {
					o.recordPages(alerts)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return o
}

func (o *observer) recordPhases(m *Metrics) {
	now := map[string][]string{}
	for _, s := range m.Find("crowsnest_app_operation_phase") {
		name := string(s.Metric["name"])
		if _, ok := now[name]; !ok {
			now[name] = nil
		}
		if s.Value == 1 {
			now[name] = append(now[name], string(s.Metric["phase"]))
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, set := range now {
		sort.Strings(set)
		phase := strings.Join(set, "+") // more than one is a broken state set
		if phase == "" {
			phase = "none"
		}
		if seen := o.phases[name]; len(seen) == 0 || seen[len(seen)-1] != phase {
			o.phases[name] = append(seen, phase)
		}
	}
}

func (o *observer) recordPages(alerts []map[string]string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, a := range alerts {
		if _, ok := o.paged[a["name"]]; !ok {
			o.paged[a["name"]] = time.Now()
		}
	}
}

// Phases returns the phases crowsnest exposed for app name so far, each
// change once ("none" while the state set has no 1).
func (o *observer) Phases(name string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.phases[name]...)
}

// Paged reports whether Alertmanager held an active Crowsnest(Prod)SyncFailed for
// app name at any look so far, and since when.
func (o *observer) Paged(name string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	at, ok := o.paged[name]
	return at, ok
}

// snapshot returns the samples of metrics (by name) that carry the given
// label pairs, keyed by series, for comparing two scrapes.
func snapshot(m *Metrics, metrics []string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	for _, name := range metrics {
		for _, s := range m.Find(name, labels...) {
			out[s.Metric.String()] = float64(s.Value)
		}
	}
	return out
}

// diffSnapshots describes how after differs from before, "" if it does not.
func diffSnapshots(before, after map[string]float64) string {
	var diffs []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: %v → gone", k, v))
		} else if w != v {
			diffs = append(diffs, fmt.Sprintf("%s: %v → %v", k, v, w))
		}
	}
	for k, w := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: new, %v", k, w))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}
