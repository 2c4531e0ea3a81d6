//go:build e2e

package e2e

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Annotations by which a test steers the stand-in controllers.
const (
	// annotationReadyReplicas holds a Deployment's or StatefulSet's ready
	// replicas below its desired count ("1" of 3, say).
	annotationReadyReplicas = "e2e.crowsnest.dev/ready-replicas"
	// annotationJobResult makes a Job fail ("Failed") instead of succeed,
	// or fail the first time a Job of its namespace and name runs and
	// succeed after ("FailedOnce": what a retry gets past).
	annotationJobResult = "e2e.crowsnest.dev/job-result"
	// jobRunTime is how long a stand-in Job "runs" before it completes.
	jobRunTime = 2 * time.Second
)

// StandInControllers plays kube-controller-manager and the kubelets, which
// the e2e cluster does not run: it writes the status they would write for
// Deployments, StatefulSets and Jobs, so that Argo CD's real health checks
// and hook handling run against it, and it plays the garbage collector for
// them: Argo CD deletes hooks and pruned objects in the foreground, which
// leaves them waiting for the collector to remove the foregroundDeletion
// finalizer (they have no dependents here: no ReplicaSets, no Pods).
type StandInControllers struct {
	t  *testing.T
	cs kubernetes.Interface

	mu      sync.Mutex
	pending map[string]bool // Jobs with a completion scheduled
	failed  map[string]bool // namespace/name of Jobs that failed once
}

// standInResync is how often the stand-in controllers handle every object
// again.
const standInResync = 5 * time.Second

// StartStandInControllers runs the stand-in controllers until the test ends.
func StartStandInControllers(t *testing.T, cs kubernetes.Interface) *StandInControllers {
	t.Helper()
	s := &StandInControllers{t: t, cs: cs, pending: map[string]bool{}, failed: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Every object is handled again each standInResync, as real
	// controllers requeue an object whose update failed: the outage
	// scenario stops the API server mid-sync, and a hook Job's finalizer
	// removal that failed then was never retried, Argo CD waiting for the
	// Job's deletion until the test gave up. The handlers are idempotent.
	f := informers.NewSharedInformerFactory(cs, standInResync)
	handle := func(fn func(context.Context, any)) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { fn(ctx, obj) },
			UpdateFunc: func(_, obj any) { fn(ctx, obj) },
		}
	}
	f.Apps().V1().Deployments().Informer().AddEventHandler(handle(s.deployment))
	f.Apps().V1().StatefulSets().Informer().AddEventHandler(handle(s.statefulSet))
	f.Batch().V1().Jobs().Informer().AddEventHandler(handle(s.job))
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("stand-in controllers: %v cache did not sync", typ)
		}
	}
	return s
}

// readyReplicas is what the stand-in reports ready for an object that
// wants desired replicas.
func readyReplicas(meta metav1.ObjectMeta, desired int32) int32 {
	if v, ok := meta.Annotations[annotationReadyReplicas]; ok {
		if n, err := strconv.Atoi(v); err == nil && int32(n) < desired {
			return int32(n)
		}
	}
	return desired
}

func (s *StandInControllers) logf(format string, args ...any) {
	// t.Logf panics after the test ends; informers may still fire then.
	defer func() { _ = recover() }()
	s.t.Logf("stand-in controllers: "+format, args...)
}

// collectGarbage removes the garbage collector's finalizers from obj (a
// copy) if it is being deleted, writing it with update, and reports whether
// it is being deleted.
func (s *StandInControllers) collectGarbage(ctx context.Context, meta metav1.Object, update func(context.Context) error) bool {
	if meta.GetDeletionTimestamp() == nil {
		return false
	}
	var keep []string
	for _, f := range meta.GetFinalizers() {
		if f != metav1.FinalizerDeleteDependents && f != metav1.FinalizerOrphanDependents {
			keep = append(keep, f)
		}
	}
	if len(keep) == len(meta.GetFinalizers()) {
		return true
	}
	meta.SetFinalizers(keep)
	if err := update(ctx); err != nil && ctx.Err() == nil {
		s.logf("finalize %s/%s: %v", meta.GetNamespace(), meta.GetName(), err)
	}
	return true
}

func (s *StandInControllers) deployment(ctx context.Context, obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	d = d.DeepCopy()
	if s.collectGarbage(ctx, d, func(ctx context.Context) error {
		_, err := s.cs.AppsV1().Deployments(d.Namespace).Update(ctx, d, metav1.UpdateOptions{})
		return err
	}) {
		return
	}
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	ready := readyReplicas(d.ObjectMeta, desired)
	st := d.Status
	if st.ObservedGeneration == d.Generation && st.Replicas == desired && st.ReadyReplicas == ready && st.UpdatedReplicas == desired {
		return
	}
	d = d.DeepCopy()
	now := metav1.Now()
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            desired,
		UpdatedReplicas:     desired,
		ReadyReplicas:       ready,
		AvailableReplicas:   ready,
		UnavailableReplicas: desired - ready,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: conditionStatus(ready == desired), Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", LastUpdateTime: now, LastTransitionTime: now},
		},
	}
	if _, err := s.cs.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		s.logf("deployment %s/%s status: %v", d.Namespace, d.Name, err)
	}
}

func (s *StandInControllers) statefulSet(ctx context.Context, obj any) {
	ss, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return
	}
	ss = ss.DeepCopy()
	if s.collectGarbage(ctx, ss, func(ctx context.Context) error {
		_, err := s.cs.AppsV1().StatefulSets(ss.Namespace).Update(ctx, ss, metav1.UpdateOptions{})
		return err
	}) {
		return
	}
	desired := int32(1)
	if ss.Spec.Replicas != nil {
		desired = *ss.Spec.Replicas
	}
	ready := readyReplicas(ss.ObjectMeta, desired)
	st := ss.Status
	if st.ObservedGeneration == ss.Generation && st.Replicas == desired && st.ReadyReplicas == ready {
		return
	}
	ss = ss.DeepCopy()
	ss.Status = appsv1.StatefulSetStatus{
		ObservedGeneration: ss.Generation,
		Replicas:           desired,
		ReadyReplicas:      ready,
		CurrentReplicas:    desired,
		UpdatedReplicas:    desired,
		AvailableReplicas:  ready,
		CurrentRevision:    ss.Name + "-1",
		UpdateRevision:     ss.Name + "-1",
	}
	if _, err := s.cs.AppsV1().StatefulSets(ss.Namespace).UpdateStatus(ctx, ss, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		s.logf("statefulset %s/%s status: %v", ss.Namespace, ss.Name, err)
	}
}

// job completes a Job jobRunTime after it appears: succeeded, or failed
// when annotated so.
func (s *StandInControllers) job(ctx context.Context, obj any) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	j = j.DeepCopy()
	if s.collectGarbage(ctx, j, func(ctx context.Context) error {
		_, err := s.cs.BatchV1().Jobs(j.Namespace).Update(ctx, j, metav1.UpdateOptions{})
		return err
	}) || jobFinished(j) {
		return
	}
	key := string(j.UID)
	s.mu.Lock()
	if s.pending[key] {
		s.mu.Unlock()
		return
	}
	s.pending[key] = true
	s.mu.Unlock()

	start := metav1.Now()
	j = j.DeepCopy()
	j.Status.StartTime = &start
	j.Status.Active = 1
	updated, err := s.cs.BatchV1().Jobs(j.Namespace).UpdateStatus(ctx, j, metav1.UpdateOptions{})
	if err != nil {
		s.logf("job %s/%s start: %v", j.Namespace, j.Name, err)
		updated = j
	}
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(jobRunTime):
		}
		if err := s.finishJob(ctx, updated); err != nil && ctx.Err() == nil {
			s.logf("job %s/%s finish: %v", j.Namespace, j.Name, err)
		}
	}()
}

// finishJob marks j completed, retrying until it succeeds: the API server
// may be down (the outage scenario stops it in the middle of a sync).
func (s *StandInControllers) finishJob(ctx context.Context, j *batchv1.Job) error {
	fail := s.fails(j)
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		cur, err := s.cs.BatchV1().Jobs(j.Namespace).Get(ctx, j.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil // deleted meanwhile
		}
		if err != nil {
			if attempt == 1 || attempt%20 == 0 {
				s.logf("job %s/%s finish, attempt %d: %v", j.Namespace, j.Name, attempt, err)
			}
			continue
		}
		if cur.UID != j.UID {
			return nil // replaced by a new Job of the same name
		}
		cur = cur.DeepCopy()
		now := metav1.Now()
		if cur.Status.StartTime == nil {
			cur.Status.StartTime = &now
		}
		cur.Status.Active = 0
		if fail {
			cur.Status.Failed = 1
			cur.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonBackoffLimitExceeded, Message: "Job has reached the specified backoff limit", LastProbeTime: now, LastTransitionTime: now},
				{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonBackoffLimitExceeded, Message: "Job has reached the specified backoff limit", LastProbeTime: now, LastTransitionTime: now},
			}
		} else {
			cur.Status.Succeeded = 1
			cur.Status.CompletionTime = &now
			cur.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached, LastProbeTime: now, LastTransitionTime: now},
				{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached, LastProbeTime: now, LastTransitionTime: now},
			}
		}
		_, err = s.cs.BatchV1().Jobs(cur.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		if attempt == 1 || attempt%20 == 0 {
			s.logf("job %s/%s finish, attempt %d: %v", j.Namespace, j.Name, attempt, err)
		}
	}
}

// fails decides whether the Job j fails, as its annotation asks.
func (s *StandInControllers) fails(j *batchv1.Job) bool {
	switch j.Annotations[annotationJobResult] {
	case "Failed":
		return true
	case "FailedOnce":
		s.mu.Lock()
		defer s.mu.Unlock()
		key := j.Namespace + "/" + j.Name
		if s.failed[key] {
			return false
		}
		s.failed[key] = true
		return true
	}
	return false
}

func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func conditionStatus(b bool) corev1.ConditionStatus {
	if b {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}
