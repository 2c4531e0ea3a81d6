//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// apiCallTimeout bounds one API call of the test helpers.
const apiCallTimeout = 30 * time.Second

// Apps creates, changes and deletes the Applications of one namespace,
// playing the part of Argo CD's controller: Applications have no status
// subresource, so a plain update writes .status too.
type Apps struct {
	t      *testing.T
	client versioned.Interface
	ns     string
}

// Apps returns the Applications of namespace ns, with the admin token.
func (k *KubeAPIServer) Apps(ns string) *Apps {
	k.t.Helper()
	return &Apps{t: k.t, client: k.ArgoCD(), ns: ns}
}

// New returns an Application of the namespace with a minimal valid spec
// (project default, a Git source, the in-cluster destination) and the given
// sync and health status.
func (a *Apps) New(name string, sync v1alpha1.SyncStatusCode, healthStatus health.HealthStatusCode) *v1alpha1.Application {
	return &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.ns},
		Spec: v1alpha1.ApplicationSpec{
			Project: "default",
			Source: &v1alpha1.ApplicationSource{
				RepoURL:        "https://git.example.com/org/deploy.git",
				Path:           "apps/" + name,
				TargetRevision: "HEAD",
			},
			Destination: v1alpha1.ApplicationDestination{
				Server:    "https://kubernetes.default.svc",
				Namespace: name,
			},
		},
		Status: v1alpha1.ApplicationStatus{
			Sync:   v1alpha1.SyncStatus{Status: sync, Revision: "0123456789abcdef0123456789abcdef01234567"},
			Health: v1alpha1.AppHealthStatus{Status: healthStatus},
		},
	}
}

// Create creates app, status included.
func (a *Apps) Create(app *v1alpha1.Application) *v1alpha1.Application {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.t.Context(), apiCallTimeout)
	defer cancel()
	created, err := a.client.ArgoprojV1alpha1().Applications(a.ns).Create(ctx, app, metav1.CreateOptions{})
	if err != nil {
		a.t.Fatalf("create Application %s/%s: %v", a.ns, app.Name, err)
	}
	return created
}

// Update reads the Application name, applies mutate to it and writes it
// back, status included, retrying on conflicts.
func (a *Apps) Update(name string, mutate func(*v1alpha1.Application)) *v1alpha1.Application {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.t.Context(), apiCallTimeout)
	defer cancel()
	apps := a.client.ArgoprojV1alpha1().Applications(a.ns)
	var updated *v1alpha1.Application
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		app, err := apps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(app)
		updated, err = apps.Update(ctx, app, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		a.t.Fatalf("update Application %s/%s: %v", a.ns, name, err)
	}
	return updated
}

// Delete deletes the Application name.
func (a *Apps) Delete(name string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.t.Context(), apiCallTimeout)
	defer cancel()
	if err := a.client.ArgoprojV1alpha1().Applications(a.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		a.t.Fatalf("delete Application %s/%s: %v", a.ns, name, err)
	}
}

// finishedSync returns the operation state of a sync of revision that ran
// from started to finished and ended in phase, as Argo CD writes it.
func finishedSync(revision string, phase synccommon.OperationPhase, started, finished time.Time) *v1alpha1.OperationState {
	fin := metav1.NewTime(finished)
	return &v1alpha1.OperationState{
		Operation:  v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{Revision: revision}},
		Phase:      phase,
		Message:    fmt.Sprintf("sync %s", phase),
		SyncResult: &v1alpha1.SyncOperationResult{Revision: revision},
		StartedAt:  metav1.NewTime(started),
		FinishedAt: &fin,
	}
}
