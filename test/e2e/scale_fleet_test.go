//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// scaleFleet is the benchmark's objects: apps Applications in namespaces
// apps-N, scaleAppsPerNamespace each, and workloads Deployments in
// namespaces team-NNN, each tracked by Argo CD's annotation to an app
// (app i has Deployments i, i+apps, i+2*apps, ...).
type scaleFleet struct {
	apps, workloads int
	// resources is the length of each app's status.resources and of its
	// last operation's syncResult.resources; history the length of its
	// status.history (Argo CD keeps 10 by default).
	resources, history int
	// drift is the share of apps written OutOfSync, with some of their
	// resources OutOfSync (see drifted).
	drift float64
	// writers is how many goroutines write the objects.
	writers int
}

// appState is what the churn flips in an app: its sync status and its
// health, as the application controller writes them.
type appState struct{ outOfSync, degraded bool }

func (s appState) sync() v1alpha1.SyncStatusCode {
	if s.outOfSync {
		return v1alpha1.SyncStatusCodeOutOfSync
	}
	return v1alpha1.SyncStatusCodeSynced
}

func (s appState) health() health.HealthStatusCode {
	if s.degraded {
		return health.HealthStatusDegraded
	}
	return health.HealthStatusHealthy
}

// drifted reports whether app i is one of the drifted share: spread evenly,
// so any prefix of the fleet (e.g. the first namespace) has the same share.
func (f scaleFleet) drifted(i int) bool {
	return f.drift > 0 && int(float64(i+1)*f.drift) > int(float64(i)*f.drift)
}

// baseState is the state app i is written with.
func (f scaleFleet) baseState(i int) appState { return appState{outOfSync: f.drifted(i)} }

// driftedResource reports whether the k-th resource of an OutOfSync app is
// OutOfSync itself: 3 of 50.
func driftedResource(k int) bool { return k%17 == 3 }

// scaleKinds are the kinds of an app's resources, in order, repeated.
var scaleKinds = []struct{ group, version, kind string }{
	{"apps", "v1", "Deployment"}, {"apps", "v1", "Deployment"}, {"", "v1", "Service"}, {"", "v1", "Service"},
	{"", "v1", "ConfigMap"}, {"", "v1", "ConfigMap"}, {"", "v1", "ConfigMap"}, {"", "v1", "ConfigMap"},
	{"", "v1", "Secret"}, {"", "v1", "Secret"}, {"", "v1", "ServiceAccount"},
	{"rbac.authorization.k8s.io", "v1", "Role"}, {"rbac.authorization.k8s.io", "v1", "RoleBinding"},
	{"autoscaling", "v2", "HorizontalPodAutoscaler"}, {"autoscaling", "v2", "HorizontalPodAutoscaler"},
	{"policy", "v1", "PodDisruptionBudget"}, {"policy", "v1", "PodDisruptionBudget"},
	{"networking.k8s.io", "v1", "Ingress"}, {"networking.k8s.io", "v1", "NetworkPolicy"},
	{"monitoring.coreos.com", "v1", "ServiceMonitor"}, {"monitoring.coreos.com", "v1", "PrometheusRule"},
	{"batch", "v1", "CronJob"}, {"external-secrets.io", "v1beta1", "ExternalSecret"},
	{"cert-manager.io", "v1", "Certificate"}, {"", "v1", "PersistentVolumeClaim"},
	{"", "v1", "ConfigMap"}, {"", "v1", "ConfigMap"}, {"", "v1", "Secret"},
	{"keda.sh", "v1alpha1", "ScaledObject"}, {"", "v1", "Service"},
}

// resourceID names the k-th resource of app i.
func (f scaleFleet) resourceID(i, k int) (group, version, kind, namespace, name string) {
	kd := scaleKinds[k%len(scaleKinds)]
	app := f.appName(i)
	name = app + "-" + strings.ToLower(kd.kind)
	if kd.kind == "Deployment" {
		name = app + "-" + component(k)
	} else if k > 0 {
		name += "-" + strconv.Itoa(k)
	}
	return kd.group, kd.version, kd.kind, f.destination(i), name
}

// appResources is status.resources of app i in state s: an OutOfSync app
// has some resources OutOfSync, a Degraded one its first Deployment.
func (f scaleFleet) appResources(i int, s appState) []v1alpha1.ResourceStatus {
	resources := make([]v1alpha1.ResourceStatus, 0, f.resources)
	for k := range f.resources {
		group, version, kind, ns, name := f.resourceID(i, k)
		sync, hs := v1alpha1.SyncStatusCodeSynced, &v1alpha1.HealthStatus{Status: health.HealthStatusHealthy}
		if s.outOfSync && driftedResource(k) {
			sync = v1alpha1.SyncStatusCodeOutOfSync
		}
		if s.degraded && k == 0 {
			hs = &v1alpha1.HealthStatus{Status: health.HealthStatusDegraded, Message: `Deployment "` + name + `" exceeded its progress deadline`}
		}
		resources = append(resources, v1alpha1.ResourceStatus{
			Group: group, Version: version, Kind: kind, Namespace: ns, Name: name,
			Status: sync, Health: hs, SyncWave: int64(k % 4),
		})
	}
	return resources
}

func (f scaleFleet) appNamespace(i int) string {
	return fmt.Sprintf("apps-%d", i/scaleAppsPerNamespace)
}
func (f scaleFleet) appName(i int) string { return fmt.Sprintf("app-%05d", i) }

// destination is where app i deploys to.
func (f scaleFleet) destination(i int) string {
	return fmt.Sprintf("team-%03d", i%scaleWorkloadNamespaces)
}

// component names the j-th workload of an app.
func component(j int) string {
	names := []string{"api", "worker", "web", "cron"}
	if j < len(names) {
		return names[j]
	}
	return fmt.Sprintf("svc%d", j)
}

// create writes every object, with f.writers goroutines.
func (f scaleFleet) create(t *testing.T, kas *KubeAPIServer) {
	t.Helper()
	cfg := kas.RESTConfig()
	// No client-side limit worth the name: the writers' count is the limit.
	cfg.QPS, cfg.Burst = 5000, 10000
	cfg.WarningHandler = rest.NoWarnings{} // the finalizer's name, once per app
	argo, err := versioned.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	namespaces := []string{"scale-empty"}
	for i := 0; i < f.apps; i += scaleAppsPerNamespace {
		namespaces = append(namespaces, f.appNamespace(i))
	}
	for i := range min(f.apps, scaleWorkloadNamespaces) {
		namespaces = append(namespaces, f.destination(i))
	}
	for _, ns := range namespaces {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}

	var done atomic.Int64
	total := int64(f.apps + f.workloads)
	tasks := make(chan func() error)
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range f.writers {
		wg.Go(func() {
			for task := range tasks {
				if err := retryTransient(ctx, task); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
				done.Add(1)
			}
		})
	}
	progress := time.NewTicker(15 * time.Second)
	defer progress.Stop()
	send := func(task func() error) {
		for {
			select {
			case tasks <- task:
				return
			case <-progress.C:
				t.Logf("created %d of %d objects", done.Load(), total)
			}
		}
	}
	for i := range f.apps {
		send(func() error { return f.createApp(ctx, argo, i) })
	}
	for j := range f.workloads {
		send(func() error { return f.createDeployment(ctx, kube, j) })
	}
	close(tasks)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

// retryTransient retries a write the API server turned away for now.
func retryTransient(ctx context.Context, task func() error) error {
	var err error
	for attempt := range 5 {
		if err = task(); err == nil || !(apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) ||
			apierrors.IsTimeout(err) || apierrors.IsInternalError(err) || apierrors.IsConflict(err)) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * time.Second):
		}
	}
	return err
}

// createApp writes app i as Argo CD's users and controller do: the spec
// server-side applied (with the last-applied annotation a client-side
// apply, e.g. of an app-of-apps, leaves), then the status written by the
// application controller's patch.
func (f scaleFleet) createApp(ctx context.Context, client versioned.Interface, i int) error {
	ns, name, dest := f.appNamespace(i), f.appName(i), f.destination(i)
	team := fmt.Sprintf("team-%03d", i%scaleWorkloadNamespaces)
	envName := []string{"dev", "stage", "prod"}[i%3]
	rev := func(k int) string { return fmt.Sprintf("%040x", uint64(i)*1_000_003+uint64(k)) }
	src := v1alpha1.ApplicationSource{
		RepoURL:        "https://git.example.com/platform/deployments.git",
		Path:           "charts/" + name,
		TargetRevision: "main",
		Helm: &v1alpha1.ApplicationSourceHelm{
			ReleaseName: name,
			ValueFiles:  []string{"values.yaml", "values-" + envName + ".yaml"},
			Parameters: []v1alpha1.HelmParameter{
				{Name: "image.tag", Value: "v1.42." + strconv.Itoa(i%50)},
				{Name: "replicaCount", Value: "2"},
				{Name: "ingress.host", Value: name + "." + envName + ".example.com"},
			},
		},
	}
	factor := int64(2)
	limit := int64(10)
	spec := v1alpha1.ApplicationSpec{
		Project:     team,
		Source:      &src,
		Destination: v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: dest},
		SyncPolicy: &v1alpha1.SyncPolicy{
			Automated:   &v1alpha1.SyncPolicyAutomated{Prune: new(true), SelfHeal: new(true)},
			SyncOptions: v1alpha1.SyncOptions{"CreateNamespace=true", "PruneLast=true", "RespectIgnoreDifferences=true"},
			Retry:       &v1alpha1.RetryStrategy{Limit: 5, Backoff: &v1alpha1.Backoff{Duration: "5s", Factor: &factor, MaxDuration: "3m"}},
		},
		IgnoreDifferences: []v1alpha1.ResourceIgnoreDifferences{
			{Group: "apps", Kind: "Deployment", JSONPointers: []string{"/spec/replicas"}},
			{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration", JQPathExpressions: []string{".webhooks[]?.clientConfig.caBundle"}},
		},
		RevisionHistoryLimit: &limit,
	}
	labels := map[string]string{"team": team, "env": envName, "app.kubernetes.io/part-of": "platform", "argocd.argoproj.io/instance": "root-" + envName}
	annotations := map[string]string{
		"notifications.argoproj.io/subscribe.on-sync-failed.slack": team + "-alerts",
		"link.argocd.argoproj.io/runbook":                          "https://runbooks.example.com/" + name,
	}
	apply := map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Application",
		"metadata":   map[string]any{"name": name, "namespace": ns, "labels": labels, "annotations": annotations, "finalizers": []string{"resources-finalizer.argocd.argoproj.io"}},
		"spec":       spec,
	}
	lastApplied, err := json.Marshal(apply)
	if err != nil {
		return err
	}
	annotations["kubectl.kubernetes.io/last-applied-configuration"] = string(lastApplied)
	body, err := json.Marshal(apply)
	if err != nil {
		return err
	}
	force := true
	apps := client.ArgoprojV1alpha1().Applications(ns)
	if _, err := apps.Patch(ctx, name, types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "argocd-applicationset-controller", Force: &force}); err != nil {
		return fmt.Errorf("apply Application %s/%s: %w", ns, name, err)
	}

	now := time.Now().Truncate(time.Second)
	at := func(ago time.Duration) metav1.Time { return metav1.NewTime(now.Add(-ago)) }
	state := f.baseState(i)
	results := make([]*v1alpha1.ResourceResult, 0, f.resources)
	for k := range f.resources {
		group, version, kind, ns, rname := f.resourceID(i, k)
		results = append(results, &v1alpha1.ResourceResult{
			Group: group, Version: version, Kind: kind, Namespace: ns, Name: rname,
			Status: synccommon.ResultCodeSynced, Message: strings.ToLower(kind) + "/" + rname + " unchanged",
			HookPhase: synccommon.OperationRunning, SyncPhase: synccommon.SyncPhaseSync,
		})
	}
	var history v1alpha1.RevisionHistories
	for k := range f.history {
		started := at(time.Duration(f.history-k) * time.Hour)
		history = append(history, v1alpha1.RevisionHistory{
			Revision: rev(k), DeployedAt: at(time.Duration(f.history-k)*time.Hour - 40*time.Second), ID: int64(k),
			Source: src, DeployStartedAt: &started, InitiatedBy: v1alpha1.OperationInitiator{Automated: true},
		})
	}
	last := rev(max(f.history-1, 0))
	finished := at(0)
	status := v1alpha1.ApplicationStatus{
		Resources: f.appResources(i, state),
		Sync: v1alpha1.SyncStatus{Status: state.sync(), Revision: last,
			ComparedTo: v1alpha1.ComparedTo{Source: src, Destination: spec.Destination, IgnoreDifferences: spec.IgnoreDifferences}},
		Health:  v1alpha1.AppHealthStatus{Status: state.health()},
		History: history,
		OperationState: &v1alpha1.OperationState{
			Operation: v1alpha1.Operation{
				Sync:        &v1alpha1.SyncOperation{Revision: last, Prune: true, SyncOptions: spec.SyncPolicy.SyncOptions},
				InitiatedBy: v1alpha1.OperationInitiator{Automated: true},
				Retry:       v1alpha1.RetryStrategy{Limit: 5},
			},
			Phase:      synccommon.OperationSucceeded,
			Message:    "successfully synced (all tasks run)",
			SyncResult: &v1alpha1.SyncOperationResult{Resources: results, Revision: last, Source: src},
			StartedAt:  at(time.Hour),
			FinishedAt: &finished,
		},
		ReconciledAt: &finished,
		SourceType:   v1alpha1.ApplicationSourceTypeHelm,
		Summary: v1alpha1.ApplicationSummary{
			ExternalURLs: []string{"https://" + name + "." + envName + ".example.com"},
			Images:       []string{"registry.example.com/" + name + ":v1.42." + strconv.Itoa(i%50), "registry.example.com/envoy:v1.31.2", "registry.example.com/otel-collector:0.112.0"},
		},
		ControllerNamespace: "argocd",
	}
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	if _, err := apps.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "argocd-application-controller"}); err != nil {
		return fmt.Errorf("write the status of Application %s/%s: %w", ns, name, err)
	}
	return nil
}

// createDeployment writes workload j as Argo CD's client-side apply does
// (the last-applied annotation, manager argocd-controller), then its
// status as kube-controller-manager does.
func (f scaleFleet) createDeployment(ctx context.Context, client kubernetes.Interface, j int) error {
	i := j % f.apps
	app, ns := f.appName(i), f.destination(i)
	name := app + "-" + component(j/f.apps)
	instance := f.appNamespace(i) + "_" + app // Argo CD's name of an app outside its own namespace
	selector := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/instance": app}
	labels := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/instance": app,
		"app.kubernetes.io/version": "v1.42." + strconv.Itoa(i%50), "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "service-3.7.1"}
	replicas := int32(2)
	env := make([]corev1.EnvVar, 0, 16)
	for k := range 12 {
		env = append(env, corev1.EnvVar{Name: fmt.Sprintf("FEATURE_FLAG_%02d", k), Value: strconv.FormatBool(k%2 == 0)})
	}
	env = append(env,
		corev1.EnvVar{Name: "DATABASE_URL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: app + "-db"}, Key: "url"}}},
		corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		corev1.EnvVar{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://otel-collector.observability:4318"},
	)
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			InitialDelaySeconds: 5, PeriodSeconds: 10, TimeoutSeconds: 2, FailureThreshold: 3}
	}
	res := func(cpu, mem string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)},
		}
	}
	nonRoot, noEscalation, readOnly := true, false, true
	d := &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: map[string]string{
			"argocd.argoproj.io/tracking-id": instance + ":apps/Deployment:" + ns + "/" + name,
			"argocd.argoproj.io/sync-wave":   "2",
		}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					"checksum/config":      fmt.Sprintf("%064x", j),
					"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
				}},
				Spec: corev1.PodSpec{
					ServiceAccountName: app,
					SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: &nonRoot, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: "app", Image: "registry.example.com/" + app + ":v1.42." + strconv.Itoa(i%50),
						Args:           []string{"--config=/etc/app/config.yaml", "--log.format=json"},
						Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
						Env:            env,
						EnvFrom:        []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: app + "-env"}}}},
						Resources:      res("100m", "256Mi"),
						LivenessProbe:  probe("/healthz"),
						ReadinessProbe: probe("/readyz"),
						VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "tmp", MountPath: "/tmp"}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &noEscalation, ReadOnlyRootFilesystem: &readOnly,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}, {
						Name: "envoy", Image: "registry.example.com/envoy:v1.31.2",
						Args:      []string{"-c", "/etc/envoy/envoy.yaml", "--service-cluster", name},
						Ports:     []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001}},
						Resources: res("50m", "64Mi"),
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: app + "-config"}}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
						Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchLabels: selector}, TopologyKey: "kubernetes.io/hostname"},
					}}}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone",
						WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: selector}}},
				},
			},
		},
	}
	lastApplied, err := json.Marshal(d)
	if err != nil {
		return err
	}
	d.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = string(lastApplied)
	deployments := client.AppsV1().Deployments(ns)
	created, err := deployments.Create(ctx, d, metav1.CreateOptions{FieldManager: "argocd-controller"})
	if apierrors.IsAlreadyExists(err) {
		// A retry of a create whose answer was lost.
		created, err = deployments.Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("create Deployment %s/%s: %w", ns, name, err)
	}
	now := metav1.Now()
	created.Status = appsv1.DeploymentStatus{
		ObservedGeneration: created.Generation, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, LastUpdateTime: now, LastTransitionTime: now,
				Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability."},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, LastUpdateTime: now, LastTransitionTime: now,
				Reason: "NewReplicaSetAvailable", Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", name+"-7d9f8b6c5d")},
		},
	}
	if _, err := deployments.UpdateStatus(ctx, created, metav1.UpdateOptions{FieldManager: "kube-controller-manager"}); err != nil {
		return fmt.Errorf("write the status of Deployment %s/%s: %w", ns, name, err)
	}
	return nil
}

// logSizes logs the size of one app and one Deployment as the API server
// serves them (JSON), managed fields included, and returns the app's size
// and that of its managed fields, in bytes.
func (f scaleFleet) logSizes(t *testing.T, kas *KubeAPIServer) (appBytes, managedBytes float64) {
	t.Helper()
	ctx := t.Context()
	raw, err := kas.ArgoCD().ArgoprojV1alpha1().RESTClient().Get().
		Namespace(f.appNamespace(0)).Resource("applications").Name(f.appName(0)).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Metadata struct {
			ManagedFields json.RawMessage   `json:"managedFields"`
			Annotations   map[string]string `json:"annotations"`
		} `json:"metadata"`
		Status struct {
			Resources json.RawMessage `json:"resources"`
			History   json.RawMessage `json:"history"`
			Operation struct {
				SyncResult json.RawMessage `json:"syncResult"`
			} `json:"operationState"`
		} `json:"status"`
	}
	if err := json.Unmarshal(raw, &app); err != nil {
		t.Fatal(err)
	}
	kib := func(n int) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }
	t.Logf("an Application is %s of JSON: managed fields %s, last-applied %s, status.resources %s, status.history %s, operationState.syncResult %s",
		kib(len(raw)), kib(len(app.Metadata.ManagedFields)), kib(len(app.Metadata.Annotations["kubectl.kubernetes.io/last-applied-configuration"])),
		kib(len(app.Status.Resources)), kib(len(app.Status.History)), kib(len(app.Status.Operation.SyncResult)))
	appBytes, managedBytes = float64(len(raw)), float64(len(app.Metadata.ManagedFields))
	if f.workloads == 0 {
		return appBytes, managedBytes
	}
	d, err := kas.Kubernetes().AppsV1().Deployments(f.destination(0)).Get(ctx, f.appName(0)+"-"+component(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	size := func(v any) string {
		b, _ := json.Marshal(v)
		return kib(len(b))
	}
	t.Logf("a Deployment is %s of JSON (managed fields %s, last-applied %s)", size(d), size(d.ManagedFields),
		kib(len(d.Annotations["kubectl.kubernetes.io/last-applied-configuration"])))
	return appBytes, managedBytes
}
