package exposition

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/collect/collecttest"
	"github.com/crowsnest/crowsnest/internal/model"
)

// webApp returns the Application "web" in namespace argocd, of project
// shop, as the tracker tests' newApp does.
func webApp(mutate ...func(*v1alpha1.Application)) *v1alpha1.Application {
	return collecttest.WebApp(mutate...)
}

func mtime(t time.Time) *metav1.Time {
	m := metav1.NewTime(t)
	return &m
}

// renderFamily renders the samples of the family name alone for v, as the
// store renders them: the identity labels, then the family's own.
func renderFamily(t *testing.T, name string, v *model.AppView) string {
	t.Helper()
	s := NewStore(false)
	for i := range s.families {
		if s.families[i].name == name {
			return string(s.render(v.Key(), v, nil).family(i))
		}
	}
	t.Fatalf("the store has no family %s", name)
	return ""
}

// testFamily checks the samples family renders from each of
// collecttest.FamilyCases,
// literally and in order; want has an entry for every view (a leading
// newline is dropped).
func testFamily(t *testing.T, family string, want map[string]string) {
	t.Helper()
	cases := collecttest.FamilyCases(t0)
	for _, fc := range cases {
		w, ok := want[fc.Name]
		if !ok {
			t.Fatalf("%s: no want for the view %q", family, fc.Name)
		}
		if got, w := renderFamily(t, family, fc.View), strings.TrimPrefix(w, "\n"); got != w {
			t.Errorf("%s of %q:\n got:\n%s\nwant:\n%s", family, fc.Name, got, w)
		}
	}
	if len(want) != len(cases) {
		t.Errorf("%s: %d wants for %d views", family, len(want), len(cases))
	}
}

func TestAppInfo(t *testing.T) {
	testFamily(t, "crowsnest_app_info", map[string]string{
		"no status": `
crowsnest_app_info{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",dest_server="https://kubernetes.default.svc",dest_namespace="web",autosync="false",self_heal="false",prune="false"} 1
`,
		"synced": `
crowsnest_app_info{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",dest_server="https://kubernetes.default.svc",dest_namespace="web",autosync="true",self_heal="false",prune="true"} 1
`,
		"out of sync": `
crowsnest_app_info{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",dest_server="https://kubernetes.default.svc",dest_namespace="web",autosync="false",self_heal="false",prune="false"} 1
`,
		"unknown states": `
crowsnest_app_info{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",dest_server="https://kubernetes.default.svc",dest_namespace="web",autosync="false",self_heal="false",prune="false"} 1
`,
		"odd labels": `
crowsnest_app_info{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",repo="https://gitlab.example.com/platform/charts.git",path="we\"ird\\chart",target_revision="1.2.*",dest_server="",dest_namespace="web",autosync="false",self_heal="false",prune="false"} 1
`,
	})
}

func TestAppSourceInfo(t *testing.T) {
	testFamily(t, "crowsnest_app_source_info", map[string]string{
		"no status": `
crowsnest_app_source_info{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",source="0",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",ref=""} 1
`,
		"synced": `
crowsnest_app_source_info{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",source="0",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",ref=""} 1
`,
		"out of sync": `
crowsnest_app_source_info{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",source="0",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",ref=""} 1
`,
		"unknown states": `
crowsnest_app_source_info{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",source="0",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",ref=""} 1
`,
		"odd labels": `
crowsnest_app_source_info{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",source="0",repo="https://other.example.com/values.git",path="",target_revision="",ref="values"} 1
crowsnest_app_source_info{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",source="1",repo="https://gitlab.example.com/platform/charts.git",path="we\"ird\\chart",target_revision="1.2.*",ref=""} 1
`,
	})
}

func TestAppSyncStatus(t *testing.T) {
	testFamily(t, "crowsnest_app_sync_status", map[string]string{
		"no status": `
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Synced"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="OutOfSync"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Unknown"} 1
`,
		"synced": `
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",status="Synced"} 1
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",status="OutOfSync"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",status="Unknown"} 0
`,
		"out of sync": `
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Synced"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="OutOfSync"} 1
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Unknown"} 0
`,
		"unknown states": `
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Synced"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="OutOfSync"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Unknown"} 1
`,
		"odd labels": `
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",status="Synced"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",status="OutOfSync"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",status="Unknown"} 1
`,
	})
}

func TestAppHealthStatus(t *testing.T) {
	testFamily(t, "crowsnest_app_health_status", map[string]string{
		"no status": `
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Healthy"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Progressing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Degraded"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Suspended"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Missing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Unknown"} 1
`,
		"synced": `
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",status="Healthy"} 1
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",status="Progressing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",status="Degraded"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",status="Suspended"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",status="Missing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",status="Unknown"} 0
`,
		"out of sync": `
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Healthy"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Progressing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Degraded"} 1
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Suspended"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Missing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Unknown"} 0
`,
		"unknown states": `
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Healthy"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Progressing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Degraded"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Suspended"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Missing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",status="Unknown"} 1
`,
		"odd labels": `
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",status="Healthy"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",status="Progressing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",status="Degraded"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",status="Suspended"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",status="Missing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",status="Unknown"} 1
`,
	})
}

func TestAppOperationPhase(t *testing.T) {
	testFamily(t, "crowsnest_app_operation_phase", map[string]string{
		"no status": "",
		"synced": `
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",phase="Pending"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",phase="Running"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",phase="Terminating"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",phase="Succeeded"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",phase="Failed"} 1
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",phase="Error"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",phase="Terminated"} 0
`,
		"out of sync": "",
		"unknown states": `
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",phase="Pending"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",phase="Running"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",phase="Terminating"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",phase="Succeeded"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",phase="Failed"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",phase="Error"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",phase="Terminated"} 0
`,
		"odd labels": "",
	})
}

func TestAppOperationPendingSinceTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_operation_pending_since_timestamp_seconds", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppOperationRetries(t *testing.T) {
	testFamily(t, "crowsnest_app_operation_retries", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppReconciledTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_reconciled_timestamp_seconds", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppSyncWindowHeld(t *testing.T) {
	testFamily(t, "crowsnest_app_sync_window_held", map[string]string{
		"no status": `
crowsnest_app_sync_window_held{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster"} 0
`,
		"synced": `
crowsnest_app_sync_window_held{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster"} 0
`,
		"out of sync": `
crowsnest_app_sync_window_held{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster"} 0
`,
		"unknown states": `
crowsnest_app_sync_window_held{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster"} 0
`,
		"odd labels": `
crowsnest_app_sync_window_held{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu"} 0
`,
	})
	// Held by a window.
	held := &model.AppView{App: webApp(), Env: "unknown", HeldByWindow: true}
	if got, want := renderFamily(t, "crowsnest_app_sync_window_held", held), `crowsnest_app_sync_window_held{namespace="argocd",name="web",project="shop",env="unknown"} 1
`; got != want {
		t.Errorf("held:\n got:\n%s\nwant:\n%s", got, want)
	}
}

func TestAppRolloutStatus(t *testing.T) {
	testFamily(t, "crowsnest_app_rollout_status", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppDeletionTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_deletion_timestamp_seconds", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppOutOfSyncResources(t *testing.T) {
	testFamily(t, "crowsnest_app_out_of_sync_resources", map[string]string{
		"no status": "",
		"synced":    "",
		"out of sync": `
crowsnest_app_out_of_sync_resources{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",group="",kind="ConfigMap"} 1
crowsnest_app_out_of_sync_resources{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",group="apps",kind="Deployment"} 2
`,
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppDriftSinceTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_drift_since_timestamp_seconds", map[string]string{
		"no status": "",
		"synced":    "",
		"out of sync": `
crowsnest_app_drift_since_timestamp_seconds{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster"} 1.7956836e+09
`,
		"unknown states": "",
		"odd labels":     "",
	})
	// Drift the tracker remembers while the comparison failed (Unknown)
	// is not shown.
	unknown := &model.AppView{App: webApp(func(a *v1alpha1.Application) { a.Status.Sync.Status = v1alpha1.SyncStatusCodeUnknown }), Env: "unknown", DriftSince: t0}
	if got := renderFamily(t, "crowsnest_app_drift_since_timestamp_seconds", unknown); got != "" {
		t.Errorf("drift since shown while Unknown: %s", got)
	}
}

func TestAppLiveDriftSinceTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_live_drift_since_timestamp_seconds", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppAwaitingSyncSinceTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_awaiting_sync_since_timestamp_seconds", map[string]string{
		"no status": "",
		"synced":    "",
		"out of sync": `
crowsnest_app_awaiting_sync_since_timestamp_seconds{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster"} 1.7956836e+09
`,
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppPolicyViolation(t *testing.T) {
	testFamily(t, "crowsnest_app_policy_violation", map[string]string{
		"no status": "",
		"synced": `
crowsnest_app_policy_violation{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",policy="auto_sync"} 1
crowsnest_app_policy_violation{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",policy="images_by_digest"} 0
`,
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppConditions(t *testing.T) {
	testFamily(t, "crowsnest_app_conditions", map[string]string{
		"no status": "",
		"synced":    "",
		"out of sync": `
crowsnest_app_conditions{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",type="ComparisonError"} 1
crowsnest_app_conditions{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",type="SyncError"} 2
`,
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppLastSyncFinishedTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_last_sync_finished_timestamp_seconds", map[string]string{
		"no status": "",
		"synced": `
crowsnest_app_last_sync_finished_timestamp_seconds{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",result="Failed"} 1.79568306e+09
`,
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppLastSyncDurationSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_last_sync_duration_seconds", map[string]string{
		"no status": "",
		"synced": `
crowsnest_app_last_sync_duration_seconds{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster"} 60
`,
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppLastSyncWaveDurationSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_last_sync_wave_duration_seconds", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppLastSuccessfulSyncTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_last_successful_sync_timestamp_seconds", map[string]string{
		"no status": "",
		"synced": `
crowsnest_app_last_successful_sync_timestamp_seconds{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster"} 1.79568e+09
`,
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppSyncsTotal(t *testing.T) {
	testFamily(t, "crowsnest_app_syncs_total", map[string]string{
		"no status": `
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Succeeded"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Failed"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Error"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Terminated"} 0
`,
		"synced": `
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",result="Succeeded"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",result="Failed"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",result="Error"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",result="Terminated"} 0
`,
		"out of sync": `
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Succeeded"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Failed"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Error"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Terminated"} 0
`,
		"unknown states": `
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Succeeded"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Failed"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Error"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="Terminated"} 0
`,
		"odd labels": `
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",result="Succeeded"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",result="Failed"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",result="Error"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",result="Terminated"} 0
`,
	})
}

func TestAppHydrationInfo(t *testing.T) {
	testFamily(t, "crowsnest_app_hydration_info", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppHydrationPhase(t *testing.T) {
	testFamily(t, "crowsnest_app_hydration_phase", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppHydrationLaggingSinceTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_hydration_lagging_since_timestamp_seconds", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppLastHydrationDurationSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_last_hydration_duration_seconds", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppHydrationsTotal(t *testing.T) {
	testFamily(t, "crowsnest_app_hydrations_total", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppDryRunsTotal(t *testing.T) {
	testFamily(t, "crowsnest_app_dry_runs_total", map[string]string{
		"no status": `
crowsnest_app_dry_runs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster"} 0
`,
		"synced": `
crowsnest_app_dry_runs_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster"} 0
`,
		"out of sync": `
crowsnest_app_dry_runs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster"} 0
`,
		"unknown states": `
crowsnest_app_dry_runs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster"} 0
`,
		"odd labels": `
crowsnest_app_dry_runs_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu"} 0
`,
	})
}

func TestAppSelfHealsTotal(t *testing.T) {
	testFamily(t, "crowsnest_app_self_heals_total", map[string]string{
		"no status": `
crowsnest_app_self_heals_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster"} 0
`,
		"synced": `
crowsnest_app_self_heals_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster"} 0
`,
		"out of sync": `
crowsnest_app_self_heals_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster"} 0
`,
		"unknown states": `
crowsnest_app_self_heals_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster"} 0
`,
		"odd labels": `
crowsnest_app_self_heals_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu"} 0
`,
	})
}

func TestAppDeploymentsTotal(t *testing.T) {
	testFamily(t, "crowsnest_app_deployments_total", map[string]string{
		"no status": `
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="succeeded"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="failed"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="rolled_back"} 0
`,
		"synced": `
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",result="succeeded"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",result="failed"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",result="rolled_back"} 0
`,
		"out of sync": `
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="succeeded"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="failed"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="rolled_back"} 0
`,
		"unknown states": `
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="succeeded"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="failed"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",result="rolled_back"} 0
`,
		"odd labels": `
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",result="succeeded"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",result="failed"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",result="rolled_back"} 0
`,
	})
}

func TestAppChangeFailuresTotal(t *testing.T) {
	testFamily(t, "crowsnest_app_change_failures_total", map[string]string{
		"no status": `
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",reason="sync_failed"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",reason="degraded"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",reason="rolled_back"} 0
`,
		"synced": `
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",reason="sync_failed"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",reason="degraded"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="prod",dest_cluster="in-cluster",reason="rolled_back"} 0
`,
		"out of sync": `
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",reason="sync_failed"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",reason="degraded"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",reason="rolled_back"} 0
`,
		"unknown states": `
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",reason="sync_failed"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",reason="degraded"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="in-cluster",reason="rolled_back"} 0
`,
		"odd labels": `
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",reason="sync_failed"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",reason="degraded"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",dest_cluster="prod-eu",reason="rolled_back"} 0
`,
	})
}

func TestAppLastDeploymentTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_last_deployment_timestamp_seconds", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppSyncCurrentWave(t *testing.T) {
	testFamily(t, "crowsnest_app_sync_current_wave", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppSyncRemainingWaves(t *testing.T) {
	testFamily(t, "crowsnest_app_sync_remaining_waves", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppSyncExpectedFinishTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_sync_expected_finish_timestamp_seconds", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppWorkloadReplicas(t *testing.T) {
	testFamily(t, "crowsnest_app_workload_replicas", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppWorkloadRolloutInProgress(t *testing.T) {
	testFamily(t, "crowsnest_app_workload_rollout_in_progress", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppWorkloadJobStatus(t *testing.T) {
	testFamily(t, "crowsnest_app_workload_job_status", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppWorkloadCertificateReady(t *testing.T) {
	testFamily(t, "crowsnest_app_workload_certificate_ready", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

func TestAppWorkloadCertificateExpiryTimestampSeconds(t *testing.T) {
	testFamily(t, "crowsnest_app_workload_certificate_expiry_timestamp_seconds", map[string]string{
		"no status":      "",
		"synced":         "",
		"out of sync":    "",
		"unknown states": "",
		"odd labels":     "",
	})
}

// TestExpositionParses checks the whole output, headers included, with the
// Prometheus text parser, and that every family the store renders has HELP
// and TYPE and samples: the views between them fill every family.
func TestExpositionParses(t *testing.T) {
	s := NewStore(true)
	s.SetApp(&model.AppView{App: webApp(), Env: "unknown"})
	// Synced once, drifted since: waves, conditions, syncs.
	op := &model.Operation{UID: "uid-api", Namespace: "argocd", Name: "api", Project: "shop", Env: "prod",
		Result: model.ResultSucceeded, StartedAt: t0, FinishedAt: t0.Add(time.Second)}
	api := &model.AppView{
		App: webApp(func(a *v1alpha1.Application) {
			a.Name, a.UID = "api", "uid-api"
			a.Labels = map[string]string{"env": "prod"}
			a.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
			a.Status.Resources = []v1alpha1.ResourceStatus{{Kind: "ConfigMap", Name: "c", Status: v1alpha1.SyncStatusCodeOutOfSync}}
			a.Status.Conditions = []v1alpha1.ApplicationCondition{{Type: v1alpha1.ApplicationConditionSyncError}}
			a.Status.ReconciledAt = mtime(t0)
		}),
		Env: "prod", DriftSince: t0, AwaitingSyncSince: t0, Phase: "Succeeded",
		Policies:       []model.PolicyResult{{Policy: "auto_sync", Violated: true}},
		LastFinished:   &model.FinishedOperation{Result: model.ResultSucceeded, Started: op.StartedAt, Finished: op.FinishedAt},
		LastWaves:      []model.WaveTiming{{Phase: "Sync", Wave: 0, Start: t0, End: t0.Add(time.Second), Resources: 1}},
		LastSuccessful: op.FinishedAt, LastDeployment: op.FinishedAt,
	}
	api.Syncs[model.ResultIndex(model.ResultSucceeded)] = 1
	s.SetApp(api)
	s.Finished(op)
	// Pending while being deleted, held by a window, its live state
	// drifted, with a source hydrator, a RollingSync and workloads.
	ready := true
	s.SetApp(&model.AppView{
		App: webApp(func(a *v1alpha1.Application) {
			a.Name, a.UID = "held", "uid-held"
			a.DeletionTimestamp = mtime(t0)
			a.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
			a.Spec.SourceHydrator = &v1alpha1.SourceHydrator{
				DrySource:  v1alpha1.DrySource{RepoURL: "https://git.example.com/dry.git", TargetRevision: "main", Path: "apps/held"},
				SyncSource: v1alpha1.SyncSource{TargetBranch: "env/prod", Path: "apps/held"},
			}
		}),
		Env: "unknown", Phase: model.PhasePending, PendingSince: t0, HeldByWindow: true, DriftSince: t0, LiveDriftSince: t0,
		Hydration: &model.Hydration{Phase: "Hydrating", DrySHA: "d1", HydratedSHA: "h1", LaggingSince: t0, LastDuration: time.Second, HasLastDuration: true},
		Rollout:   &model.Rollout{ApplicationSet: "shop", Step: "1", Status: "Waiting"},
		Workloads: []model.Workload{
			{Kind: "Deployment", Namespace: "web", Name: "held", Replicas: map[string]int64{"desired": 2, "ready": 1}, RolloutInProgress: true},
			{Kind: "Job", Namespace: "web", Name: "migrate", JobStatus: "Running"},
			{Kind: "Certificate", Namespace: "web", Name: "tls", CertReady: &ready, CertExpiry: t0.Add(24 * time.Hour)},
		},
	})
	// Running, retried, in its second wave.
	s.SetApp(&model.AppView{
		App: webApp(func(a *v1alpha1.Application) { a.Name, a.UID = "running", "uid-running" }),
		Env: "unknown", Phase: "Running", Retries: 1,
		Progress: &model.SyncProgress{Phase: "Sync", Wave: 1, RemainingWaves: 2, ExpectedFinish: t0.Add(time.Minute)},
	})

	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(pmodel.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	for name, typ := range s.Families() {
		mf, ok := mfs[name]
		if !ok {
			t.Errorf("family %s missing", name)
			continue
		}
		if mf.GetHelp() == "" {
			t.Errorf("family %s has no HELP", name)
		}
		if got := strings.ToLower(mf.GetType().String()); got != typ {
			t.Errorf("family %s has TYPE %s, want %s", name, got, typ)
		}
	}
	if got := len(mfs["crowsnest_app_info"].GetMetric()); got != 4 {
		t.Errorf("crowsnest_app_info has %d series, want 4 (one per app)", got)
	}
}

// crowsnest_app_policy_violation renders each policy of the view, and
// crowsnest_app_info the app's auto-sync policy, for the views of
// TestPolicyViolations in the tracker package: prod syncs by hand and pins
// images by digest, dev auto-syncs with self-heal and prune; a paused
// automated block (Argo CD v3.1+, enabled: false) is no auto-sync.
func TestPolicyViolations(t *testing.T) {
	view := func(name, env string, auto *v1alpha1.SyncPolicyAutomated, policies ...model.PolicyResult) *model.AppView {
		return &model.AppView{App: webApp(func(a *v1alpha1.Application) {
			a.Name, a.UID, a.Labels = name, types.UID("uid-"+name), map[string]string{"env": env}
			a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: auto}
		}), Env: env, Policies: policies}
	}
	for _, c := range []struct {
		view       *model.AppView
		violations string
		autosync   string
	}{
		{
			view("prod-api", "prod", &v1alpha1.SyncPolicyAutomated{}, model.PolicyResult{Policy: "auto_sync", Violated: true}, model.PolicyResult{Policy: "images_by_digest", Violated: true}),
			`crowsnest_app_policy_violation{namespace="argocd",name="prod-api",project="shop",env="prod",policy="auto_sync"} 1
crowsnest_app_policy_violation{namespace="argocd",name="prod-api",project="shop",env="prod",policy="images_by_digest"} 1
`,
			`autosync="true",self_heal="false",prune="false"`,
		},
		{
			view("prod-paused", "prod", &v1alpha1.SyncPolicyAutomated{Enabled: new(false), SelfHeal: new(true), Prune: new(true)}, model.PolicyResult{Policy: "auto_sync"}, model.PolicyResult{Policy: "images_by_digest"}),
			`crowsnest_app_policy_violation{namespace="argocd",name="prod-paused",project="shop",env="prod",policy="auto_sync"} 0
crowsnest_app_policy_violation{namespace="argocd",name="prod-paused",project="shop",env="prod",policy="images_by_digest"} 0
`,
			`autosync="false",self_heal="false",prune="false"`,
		},
		{
			view("dev-api", "dev", &v1alpha1.SyncPolicyAutomated{SelfHeal: new(true)}, model.PolicyResult{Policy: "auto_sync"}, model.PolicyResult{Policy: "self_heal"}, model.PolicyResult{Policy: "prune", Violated: true}),
			`crowsnest_app_policy_violation{namespace="argocd",name="dev-api",project="shop",env="dev",policy="auto_sync"} 0
crowsnest_app_policy_violation{namespace="argocd",name="dev-api",project="shop",env="dev",policy="self_heal"} 0
crowsnest_app_policy_violation{namespace="argocd",name="dev-api",project="shop",env="dev",policy="prune"} 1
`,
			`autosync="true",self_heal="true",prune="false"`,
		},
	} {
		name := c.view.App.Name
		if got := renderFamily(t, "crowsnest_app_policy_violation", c.view); got != c.violations {
			t.Errorf("%s: crowsnest_app_policy_violation\n got:\n%s\nwant:\n%s", name, got, c.violations)
		}
		want := `crowsnest_app_info{namespace="argocd",name="` + name + `",project="shop",env="` + c.view.Env +
			`",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",dest_server="https://kubernetes.default.svc",dest_namespace="web",` + c.autosync + "} 1\n"
		if got := renderFamily(t, "crowsnest_app_info", c.view); got != want {
			t.Errorf("%s: crowsnest_app_info\n got:\n%s\nwant:\n%s", name, got, want)
		}
	}
}
