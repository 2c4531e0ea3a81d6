package model

import "time"

// Workload is what crowsnest keeps of one workload an Application deployed.
type Workload struct {
	// App is the Argo CD Application that deployed it, as Argo CD's
	// controller reads its tracking annotation or instance label
	// (source.Tracking.Owner); AppNamespace is set when the
	// "<namespace>_<name>" form names it.
	App, AppNamespace string
	// Cluster is the API server URL of the cluster it was read from, as
	// Argo CD's cluster Secret names it; empty for the cluster crowsnest
	// runs in. It joins only apps deployed to that cluster.
	Cluster               string
	Kind, Namespace, Name string
	// Replicas by state (desired, ready, updated, available), for kinds
	// that have them.
	Replicas map[string]int64
	// RolloutInProgress: a new version is still rolling out.
	RolloutInProgress bool
	// JobStatus is Running, Complete or Failed for Jobs.
	JobStatus string
	// CertReady and CertExpiry for Certificates.
	CertReady  *bool
	CertExpiry time.Time
	// SyncWave is the wave Argo CD runs the object in, from its own
	// annotations as gitops-engine reads them (syncwaves.Wave): the
	// argocd.argoproj.io/sync-wave annotation, else helm.sh/hook-weight,
	// else 0. It is how crowsnest places hooks and pruned resources, which
	// the Application does not list with a wave.
	SyncWave int64
	// PruneLast: the object's argocd.argoproj.io/sync-options annotation
	// holds PruneLast=true.
	PruneLast bool
	// Created is the object's creationTimestamp.
	Created time.Time
}

// Key identifies the workload among all: kind/namespace/name, after
// "<cluster> " for a workload of another cluster.
func (w *Workload) Key() string {
	k := w.Kind + "/" + w.Namespace + "/" + w.Name
	if w.Cluster != "" {
		return w.Cluster + " " + k
	}
	return k
}

// Degraded reports whether the workload is not serving as it should:
// fewer replicas ready or available than desired, a failed Job, a
// Certificate not Ready.
func (w *Workload) Degraded() bool {
	if d, ok := w.Replicas["desired"]; ok && (w.Replicas["ready"] < d || w.Replicas["available"] < d) {
		return true
	}
	return w.JobStatus == "Failed" || w.CertReady != nil && !*w.CertReady
}

// Describe gives the workload's identity and state as key/value pairs.
func (w *Workload) Describe() []any {
	args := []any{"kind", w.Kind, "workload", w.Namespace + "/" + w.Name}
	if d, ok := w.Replicas["desired"]; ok {
		args = append(args, "desired", d, "ready", w.Replicas["ready"], "available", w.Replicas["available"])
	}
	if w.JobStatus != "" {
		args = append(args, "job_status", w.JobStatus)
	}
	return args
}
