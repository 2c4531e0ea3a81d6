package exposition

import (
	"sort"
	"strconv"
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/redact"
)

// sampleFunc emits one sample: its value and label name/value pairs beyond
// the identity labels.
type sampleFunc func(value float64, labels ...string)

// family describes one per-app metric family, in the manner of
// kube-state-metrics' family generators.
type family struct {
	name, help, typ string
	generate        func(v *model.AppView, emit sampleFunc)
}

// appFamilies returns the per-app metric families in exposition order.
func appFamilies() []family {
	return []family{
		{
			name: "crowsnest_app_info",
			help: "Static facts about an Argo CD Application; the value is always 1. For a multi-source app, repo, path and target_revision are those of its first source with a path or chart (crowsnest_app_source_info has every source).",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				spec := &v.App.Spec
				src := primarySource(spec)
				path := sourcePath(&src)
				auto := v.AutoSync()
				emit(1,
					"repo", StripCredentials(src.RepoURL),
					"path", path,
					"target_revision", src.TargetRevision,
					"dest_server", spec.Destination.Server, // "" for a destination by name: dest_cluster names it

					"dest_namespace", spec.Destination.Namespace,
					"autosync", strconv.FormatBool(auto.Enabled),
					"self_heal", strconv.FormatBool(auto.SelfHeal),
					"prune", strconv.FormatBool(auto.Prune),
				)
			},
		},
		{
			name: "crowsnest_app_source_info",
			help: "One series per source of the Application (spec.source, or each of spec.sources by its index); the value is always 1.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				for i, src := range v.App.Spec.GetSources() {
					emit(1, "source", strconv.Itoa(i), "repo", StripCredentials(src.RepoURL), "path", sourcePath(&src),
						"target_revision", src.TargetRevision, "ref", src.Ref)
				}
			},
		},
		{
			name: "crowsnest_app_sync_status",
			help: "Sync status of the Application compared to its target revision, one series per status (1 for the current one).",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				stateSet(emit, "status", model.SyncStatuses(), string(v.App.Status.Sync.Status), "Unknown")
			},
		},
		{
			name: "crowsnest_app_health_status",
			help: "Health status of the Application, one series per status (1 for the current one).",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				stateSet(emit, "status", model.HealthStatuses(), string(v.App.Status.Health.Status), "Unknown")
			},
		},
		{
			name: "crowsnest_app_operation_phase",
			help: "Phase of the Application's operation, one series per phase (1 for the current one): Pending (asked for, no controller started it), Running, Terminating, Succeeded, Failed, Error, Terminated (ended by a person's terminate-op). A sync the controller's --sync-timeout ended is Failed. A dry run leaves the last real operation's phase. Absent before the first operation.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if v.Phase != "" {
					stateSet(emit, "phase", model.OperationPhases(), v.Phase, "")
				}
			},
		},
		{
			name: "crowsnest_app_operation_pending_since_timestamp_seconds",
			help: "Unix time at which crowsnest first saw the Application's requested operation waiting for a controller; absent unless the phase is Pending.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if v.Phase == model.PhasePending && !v.PendingSince.IsZero() {
					emit(unixSeconds(v.PendingSince))
				}
			},
		},
		{
			name: "crowsnest_app_operation_retries",
			help: "Retries of the Application's running operation so far (Argo CD's operationState.retryCount: attempts after the first that failed); absent unless an operation is Running.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if v.Phase == "Running" {
					emit(float64(v.Retries))
				}
			},
		},
		{
			name: "crowsnest_app_reconciled_timestamp_seconds",
			help: "Unix time of Argo CD's last full comparison of the Application (status.reconciledAt; Argo CD refreshes every app every 3 minutes by default); absent before the first.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if r := v.App.Status.ReconciledAt; r != nil {
					emit(unixSeconds(r.Time))
				}
			},
		},
		{
			name: "crowsnest_app_sync_window_held",
			help: "1 while a sync window of the Application's project denies the app's next sync (a change freeze), as Argo CD judges it: an app with auto-sync by the rule for automatic syncs, any other by the rule for manual syncs (a window with manualSync: true lets those through); 0 otherwise. AppProjects are read with the Kubernetes source.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				emit(boolValue(v.HeldByWindow))
			},
		},
		{
			name: "crowsnest_app_rollout_status",
			help: "Where an ApplicationSet's RollingSync has the Application, one series per status (1 for the current one): Waiting (its step not reached), Pending (sync asked for), Progressing (synced, not Healthy yet), Healthy; with the ApplicationSet and the app's step. Only apps a RollingSync syncs; ApplicationSets are read with the Kubernetes source.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				r := v.Rollout
				if r == nil {
					return
				}
				statuses := model.RolloutStatuses()
				stateSet(func(value float64, labels ...string) {
					emit(value, append([]string{"applicationset", r.ApplicationSet, "step", r.Step}, labels...)...)
				}, "status", statuses[:], r.Status, "")
			},
		},
		{
			name: "crowsnest_app_deletion_timestamp_seconds",
			help: "Unix time at which the Application's deletion was asked for (metadata.deletionTimestamp); present only while it is being deleted.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if t := v.App.DeletionTimestamp; t != nil {
					emit(unixSeconds(t.Time))
				}
			},
		},
		{
			name: "crowsnest_app_out_of_sync_resources",
			help: "Number of the Application's resources that are OutOfSync, by group and kind.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				type gk struct{ group, kind string }
				var counts map[gk]int
				for r := range v.App.Status.AllResources() {
					if r.Status != v1alpha1.SyncStatusCodeOutOfSync {
						continue
					}
					if counts == nil {
						counts = map[gk]int{}
					}
					counts[gk{r.Group, r.Kind}]++
				}
				keys := make([]gk, 0, len(counts))
				for k := range counts {
					keys = append(keys, k)
				}
				sort.Slice(keys, func(i, j int) bool {
					if keys[i].group != keys[j].group {
						return keys[i].group < keys[j].group
					}
					return keys[i].kind < keys[j].kind
				})
				for _, k := range keys {
					emit(float64(counts[k]), "group", k.group, "kind", k.kind)
				}
			},
		},
		{
			name:     "crowsnest_app_drift_since_timestamp_seconds",
			help:     "Unix time at which crowsnest first saw the Application OutOfSync in its current drift; absent while it is not OutOfSync.",
			typ:      typeGauge,
			generate: whileOutOfSync(func(v *model.AppView) time.Time { return v.DriftSince }),
		},
		{
			name:     "crowsnest_app_live_drift_since_timestamp_seconds",
			help:     "Unix time at which crowsnest first saw the Application's live state differ from the revisions and sources last synced (a hand edit, a deleted resource); absent while it does not. A release waiting for its sync is not live drift (see crowsnest_app_awaiting_sync_since_timestamp_seconds).",
			typ:      typeGauge,
			generate: whileOutOfSync(func(v *model.AppView) time.Time { return v.LiveDriftSince }),
		},
		{
			name:     "crowsnest_app_awaiting_sync_since_timestamp_seconds",
			help:     "Unix time at which crowsnest first saw the Application OutOfSync because its target moved from the revisions and sources last synced (a merge, a changed spec source, Git ahead of a rollback): a release waiting for its sync; absent while none waits.",
			typ:      typeGauge,
			generate: whileOutOfSync(func(v *model.AppView) time.Time { return v.AwaitingSyncSince }),
		},
		{
			name: "crowsnest_app_policy_violation",
			help: "1 if the Application breaks a policy of its environment (auto_sync, self_heal, prune, images_by_digest), 0 if it keeps it; only the policies its environment has.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				for _, p := range v.Policies {
					emit(boolValue(p.Violated), "policy", p.Policy)
				}
			},
		},
		{
			name: "crowsnest_app_conditions",
			help: "Number of conditions (errors and warnings) on the Application, by condition type.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				var counts map[string]int
				for _, c := range v.App.Status.Conditions {
					if counts == nil {
						counts = map[string]int{}
					}
					counts[c.Type]++
				}
				types := make([]string, 0, len(counts))
				for t := range counts {
					types = append(types, t)
				}
				sort.Strings(types)
				for _, t := range types {
					emit(float64(counts[t]), "type", t)
				}
			},
		},
		{
			name: "crowsnest_app_last_sync_finished_timestamp_seconds",
			help: "Unix time at which the Application's last operation (not a dry run) finished, labelled with its result; kept while the next one runs.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if op := v.LastFinished; op != nil {
					emit(unixSeconds(op.Finished), "result", op.Result)
				}
			},
		},
		{
			name: "crowsnest_app_last_sync_duration_seconds",
			help: "Duration of the Application's last finished operation (not a dry run), from Argo CD's startedAt to finishedAt less the time a sync window held it; kept while the next one runs.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if op := v.LastFinished; op != nil {
					emit(op.Duration().Seconds())
				}
			},
		},
		{
			name: "crowsnest_app_last_sync_wave_duration_seconds",
			help: "Duration of each sync wave of the Application's last operation that crowsnest timed from start to end (of its last attempt, if Argo CD retried it), by sync phase and wave (\"unknown\" for hooks and pruned resources whose live object crowsnest did not see).",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				for i := range v.LastWaves {
					w := &v.LastWaves[i]
					emit(w.Duration().Seconds(), "phase", w.Phase, "wave", w.WaveLabel())
				}
			},
		},
		{
			name: "crowsnest_app_last_successful_sync_timestamp_seconds",
			help: "Unix time at which the Application's last successful sync finished, from its operation state and sync history.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if !v.LastSuccessful.IsZero() {
					emit(unixSeconds(v.LastSuccessful))
				}
			},
		},
		{
			name: "crowsnest_app_syncs_total",
			help: "Operations of the Application that crowsnest saw finish, by result (Terminated: a person's terminate-op; a sync the controller's --sync-timeout ended is Failed); each is counted once, and those that finished before crowsnest's first observation are not.",
			typ:  typeCounter,
			generate: func(v *model.AppView, emit sampleFunc) {
				for i, r := range model.Results() {
					emit(float64(v.Syncs[i]), "result", r)
				}
			},
		},
		{
			name: "crowsnest_app_hydration_info",
			help: "The Source Hydrator of an Application (Argo CD v3.1+, spec.sourceHydrator); the value is always 1. dry_sha and hydrated_sha are those of the last successful hydration: the dry commit rendered and the commit on sync_branch that holds it. Absent for apps without a source hydrator.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				sh := v.App.Spec.SourceHydrator
				if sh == nil || v.Hydration == nil {
					return
				}
				hydrateTo := ""
				if sh.HydrateTo != nil {
					hydrateTo = sh.HydrateTo.TargetBranch
				}
				emit(1,
					"dry_repo", StripCredentials(sh.DrySource.RepoURL),
					"dry_path", sh.DrySource.Path,
					"dry_target_revision", sh.DrySource.TargetRevision,
					"sync_branch", sh.SyncSource.TargetBranch,
					"sync_path", sh.SyncSource.Path,
					"hydrate_to_branch", hydrateTo,
					"dry_sha", v.Hydration.DrySHA,
					"hydrated_sha", v.Hydration.HydratedSHA)
			},
		},
		{
			name: "crowsnest_app_hydration_phase",
			help: "Phase of the Application's current Source Hydrator operation, one series per phase (1 for the current one); absent before the first operation and for apps without a source hydrator.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if v.Hydration != nil && v.Hydration.Phase != "" {
					stateSet(emit, "phase", model.HydrationPhases(), v.Hydration.Phase, "Hydrating")
				}
			},
		},
		{
			name: "crowsnest_app_hydration_lagging_since_timestamp_seconds",
			help: "Unix time since which the hydrated branch has lagged the dry source: the start of the first of the hydrate operations (running, or failed and retried) that have not yet succeeded. Absent while the last one succeeded.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if v.Hydration != nil && !v.Hydration.LaggingSince.IsZero() {
					emit(unixSeconds(v.Hydration.LaggingSince))
				}
			},
		},
		{
			name: "crowsnest_app_last_hydration_duration_seconds",
			help: "How long the last successful Source Hydrator operation crowsnest saw took, from its start to its finish (Argo CD's whole seconds).",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if v.Hydration != nil && v.Hydration.HasLastDuration {
					emit(v.Hydration.LastDuration.Seconds())
				}
			},
		},
		{
			name: "crowsnest_app_hydrations_total",
			help: "Source Hydrator operations of the Application that crowsnest saw finish, by result (Hydrated, Failed); each is counted once, and those that finished before crowsnest's first observation are not.",
			typ:  typeCounter,
			generate: func(v *model.AppView, emit sampleFunc) {
				if v.Hydration == nil {
					return
				}
				for i, r := range model.HydrationResults() {
					emit(float64(v.Hydration.Counts[i]), "result", r)
				}
			},
		},
		{
			name: "crowsnest_app_dry_runs_total",
			help: "Dry-run operations of the Application that crowsnest saw finish; they are not syncs and count nowhere else.",
			typ:  typeCounter,
			generate: func(v *model.AppView, emit sampleFunc) {
				emit(float64(v.DryRuns))
			},
		},
		{
			name: "crowsnest_app_self_heals_total",
			help: "Self-heal syncs of the Application that crowsnest saw finish: automated syncs Argo CD started to repair drift from revisions it had already synced. Many in a short time are a fight with something that reverts the app (CrowsnestSelfHealLoop).",
			typ:  typeCounter,
			generate: func(v *model.AppView, emit sampleFunc) {
				emit(float64(v.SelfHeals))
			},
		},
		{
			name: "crowsnest_app_deployments_total",
			help: "Deployments of the Application that crowsnest saw finish, by result: a deployment is a sync (not a dry run) that changed the revisions the app runs or its sources' settings (Helm parameters, kustomize images...). succeeded; failed (the sync failed or errored; the same revisions and settings failing again count once); rolled_back (a successful sync back to revisions the app ran before the previous deployment). Self-heal and re-syncs of the same revisions are none.",
			typ:  typeCounter,
			generate: func(v *model.AppView, emit sampleFunc) {
				for i, r := range model.DeploymentResults() {
					emit(float64(v.Deployments[i]), "result", r)
				}
			},
		},
		{
			name: "crowsnest_app_change_failures_total",
			help: "Deployments of the Application counted as failed changes, by reason: sync_failed (its sync failed), degraded (the app turned Degraded within --deployments.failure-window after it), rolled_back (a later rollback undid it). Each deployment counts at most once.",
			typ:  typeCounter,
			generate: func(v *model.AppView, emit sampleFunc) {
				for i, r := range model.FailureReasons() {
					emit(float64(v.ChangeFailures[i]), "reason", r)
				}
			},
		},
		{
			name: "crowsnest_app_last_deployment_timestamp_seconds",
			help: "When the last successful deployment (or rollback) of the Application that crowsnest saw finished, Unix seconds. Absent before the first.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if !v.LastDeployment.IsZero() {
					emit(unixSeconds(v.LastDeployment))
				}
			},
		},
		{
			name: "crowsnest_app_sync_current_wave",
			help: "The sync wave the Application's running operation is in, with its phase; absent when no operation runs (or before its first wave shows).",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if p := v.Progress; p != nil && p.Phase != "" && p.Wave != model.UnknownWave {
					emit(float64(p.Wave), "phase", p.Phase)
				}
			},
		},
		{
			name: "crowsnest_app_sync_remaining_waves",
			help: "Waves the Application's running operation is expected to run after the current one, from the waves of its last successful syncs; absent when no operation runs or the app has no such sync yet.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if p := v.Progress; p != nil && !p.ExpectedFinish.IsZero() {
					emit(float64(p.RemainingWaves))
				}
			},
		},
		{
			name: "crowsnest_app_sync_expected_finish_timestamp_seconds",
			help: "When the Application's running operation is expected to finish, Unix seconds: each wave still to run takes the median of its durations in the app's last 5 successful syncs watched whole. ETA: the value minus time(). Absent when no operation runs or the app has no such sync yet.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				if p := v.Progress; p != nil && !p.ExpectedFinish.IsZero() {
					emit(unixSeconds(p.ExpectedFinish))
				}
			},
		},
	}
}

// primarySource is the source crowsnest_app_info shows: the app's source,
// or for a multi-source app its first source with a path or chart (the
// first is often a "ref" source of Helm values, with neither).
func primarySource(spec *v1alpha1.ApplicationSpec) v1alpha1.ApplicationSource {
	sources := spec.GetSources()
	for _, s := range sources {
		if sourcePath(&s) != "" {
			return s
		}
	}
	if len(sources) > 0 {
		return sources[0]
	}
	return v1alpha1.ApplicationSource{}
}

// sourcePath is a source's path, or its Helm chart's name.
func sourcePath(src *v1alpha1.ApplicationSource) string {
	if src.Path != "" {
		return src.Path
	}
	return src.Chart
}

// workloadFamilies returns the families of an app's workloads.
func workloadFamilies() []family {
	return []family{
		{
			name: "crowsnest_app_workload_replicas",
			help: "Replicas of a workload of the Application, by state: desired, ready, updated, available.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				for i := range v.Workloads {
					w := &v.Workloads[i]
					if w.Replicas == nil {
						continue
					}
					for _, state := range []string{"desired", "ready", "updated", "available"} {
						emit(float64(w.Replicas[state]), "kind", w.Kind, "workload", w.Namespace+"/"+w.Name, "state", state)
					}
				}
			},
		},
		{
			name: "crowsnest_app_workload_rollout_in_progress",
			help: "1 while a new version of the workload is rolling out.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				for i := range v.Workloads {
					if w := &v.Workloads[i]; w.Replicas != nil {
						emit(boolValue(w.RolloutInProgress), "kind", w.Kind, "workload", w.Namespace+"/"+w.Name)
					}
				}
			},
		},
		{
			name: "crowsnest_app_workload_job_status",
			help: "State set of the Application's Jobs (hooks included): Running, Complete, Failed.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				for i := range v.Workloads {
					if w := &v.Workloads[i]; w.JobStatus != "" {
						for _, s := range []string{"Running", "Complete", "Failed"} {
							emit(boolValue(w.JobStatus == s), "workload", w.Namespace+"/"+w.Name, "status", s)
						}
					}
				}
			},
		},
		{
			name: "crowsnest_app_workload_certificate_ready",
			help: "1 if the cert-manager Certificate is Ready.",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				for i := range v.Workloads {
					if w := &v.Workloads[i]; w.CertReady != nil {
						emit(boolValue(*w.CertReady), "workload", w.Namespace+"/"+w.Name)
					}
				}
			},
		},
		{
			name: "crowsnest_app_workload_certificate_expiry_timestamp_seconds",
			help: "When the cert-manager Certificate expires (status.notAfter).",
			typ:  typeGauge,
			generate: func(v *model.AppView, emit sampleFunc) {
				for i := range v.Workloads {
					if w := &v.Workloads[i]; w.CertReady != nil && !w.CertExpiry.IsZero() {
						emit(float64(w.CertExpiry.Unix()), "workload", w.Namespace+"/"+w.Name)
					}
				}
			},
		},
	}
}

// stateSet emits one series per value of states, 1 for current. A current
// value not in states counts as fallback ("" means none is set).
func stateSet(emit sampleFunc, label string, states []string, current, fallback string) {
	known := false
	for _, s := range states {
		if s == current {
			known = true
			break
		}
	}
	if !known {
		current = fallback
	}
	for _, s := range states {
		v := 0.0
		if s == current {
			v = 1
		}
		emit(v, label, s)
	}
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

// StripCredentials removes user information from a repository URL, so that
// neither "https://user:token@host/repo" nor a token used as the user name
// ends up in a label (see redact.URL).
func StripCredentials(repo string) string {
	return redact.URL(repo)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// whileOutOfSync generates the time since returns, as Unix seconds, while
// the Application is OutOfSync and since is set.
func whileOutOfSync(since func(*model.AppView) time.Time) func(*model.AppView, sampleFunc) {
	return func(v *model.AppView, emit sampleFunc) {
		if t := since(v); !t.IsZero() && v.App.Status.Sync.Status == v1alpha1.SyncStatusCodeOutOfSync {
			emit(unixSeconds(t))
		}
	}
}
