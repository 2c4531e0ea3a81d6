package trace

import (
	"context"
	"crypto/rand"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Attribute keys of crowsnest's spans and span events. The app's
// environment uses the OpenTelemetry semantic convention.
const (
	AttrApp          = "argocd.app"           // namespace/name
	AttrAppName      = "argocd.app.name"      //
	AttrAppNamespace = "argocd.app.namespace" //
	AttrProject      = "argocd.app.project"
	AttrEnv          = string(semconv.DeploymentEnvironmentNameKey)
	// AttrDestCluster names the cluster the app deploys to
	// (model.AppView.Dest: in-cluster, a spoke's name, or a server URL).
	AttrDestCluster = "argocd.app.destination.cluster"
	AttrRevision    = "argocd.sync.revision"
	AttrRevisions   = "argocd.sync.revisions"   // one per source of a multi-source app
	AttrDrySHA      = "argocd.hydrator.dry_sha" // the dry commit a hydrated revision renders
	AttrInitiator   = "argocd.sync.initiator"
	AttrResult      = "argocd.sync.result"
	AttrMessage     = "argocd.sync.message"
	AttrRetryCount  = "argocd.sync.retry_count"
	AttrAttempt     = "argocd.sync.attempt" // 0 for the first run, n for the nth retry
	AttrPartial     = "crowsnest.partial"
	AttrPhase       = "argocd.sync.phase"
	AttrWave        = "argocd.sync.wave"
	AttrResources   = "argocd.sync.resources"
	AttrBlocked     = "crowsnest.blocked_seconds" // time a sync window held the wave

	// Deployments (see model.Deployment): set on the root span of an
	// operation that changed the revisions the app runs.
	AttrDeploymentResult   = "crowsnest.deployment.result" // succeeded, failed, rolled_back
	AttrDeploymentPrevious = "crowsnest.deployment.previous_revision"
	// The deployed commit, when argocd-server's RevisionMetadata had told
	// crowsnest by the operation's end; the code commit when the deployed
	// one references it (Argocd-reference-commit-* trailers).
	AttrCommitSHA        = string(semconv.VCSRefHeadRevisionKey)
	AttrCommitRepo       = string(semconv.VCSRepositoryURLFullKey)
	AttrCommitAuthor     = "crowsnest.commit.author"
	AttrCommitTime       = "crowsnest.commit.time" // RFC 3339
	AttrCommitReferenced = "crowsnest.commit.referenced"
	AttrLeadTime         = "crowsnest.deployment.lead_time_seconds" // commit to the operation's end
	// AttrPredictedSeconds is the duration crowsnest predicted when it
	// first saw the operation run, from the app's last syncs' waves.
	AttrPredictedSeconds = "crowsnest.sync.predicted_duration_seconds"

	AttrResourceGroup     = "argocd.resource.group"
	AttrResourceKind      = "argocd.resource.kind"
	AttrResourceNamespace = "argocd.resource.namespace"
	AttrResourceName      = "argocd.resource.name"
	AttrResourceStatus    = "argocd.resource.status"
	AttrResourceHookPhase = "argocd.resource.hook_phase"
	AttrResourceHookType  = "argocd.resource.hook_type"
	AttrResourceMessage   = "argocd.resource.message"
)

// ids carries the ids the next span must get.
type ids struct {
	trace oteltrace.TraceID
	span  oteltrace.SpanID
}

type idsKey struct{}

// withIDs makes the next span started with ctx get the trace id traceID
// and the span id of path in it.
func withIDs(ctx context.Context, traceID, path string) context.Context {
	var v ids
	v.trace, _ = oteltrace.TraceIDFromHex(traceID)
	v.span, _ = oteltrace.SpanIDFromHex(model.SpanID(traceID, path))
	return context.WithValue(ctx, idsKey{}, v)
}

// idGenerator hands the SDK the ids put in the context by withIDs, and
// random ones otherwise.
type idGenerator struct{}

// NewIDs implements sdktrace.IDGenerator.
func (idGenerator) NewIDs(ctx context.Context) (oteltrace.TraceID, oteltrace.SpanID) {
	if v, ok := ctx.Value(idsKey{}).(ids); ok && v.trace.IsValid() {
		return v.trace, v.span
	}
	var t oteltrace.TraceID
	var s oteltrace.SpanID
	_, _ = rand.Read(t[:])
	_, _ = rand.Read(s[:])
	return t, s
}

// NewSpanID implements sdktrace.IDGenerator.
func (idGenerator) NewSpanID(ctx context.Context, _ oteltrace.TraceID) oteltrace.SpanID {
	if v, ok := ctx.Value(idsKey{}).(ids); ok && v.span.IsValid() {
		return v.span
	}
	var s oteltrace.SpanID
	_, _ = rand.Read(s[:])
	return s
}

// record turns op into spans on tracer. The
// root span covers Argo CD's startedAt to finishedAt (stretched to cover
// the waves crowsnest saw, as Argo CD's times are whole seconds); a span
// per phase covers its waves; each wave span has an event per resource.
func record(ctx context.Context, tracer oteltrace.Tracer, op *model.Operation) {
	traceID := op.TraceID()
	start, end := op.StartedAt, op.FinishedAt
	for _, w := range op.Waves {
		if w.Start.Before(start) {
			start = w.Start
		}
		if w.End.After(end) {
			end = w.End
		}
	}
	if end.Before(start) {
		end = start
	}
	opts := []oteltrace.SpanStartOption{
		oteltrace.WithTimestamp(start),
		oteltrace.WithSpanKind(oteltrace.SpanKindInternal),
		oteltrace.WithAttributes(
			attribute.String(AttrApp, op.Namespace+"/"+op.Name),
			attribute.String(AttrAppNamespace, op.Namespace),
			attribute.String(AttrAppName, op.Name),
			attribute.String(AttrProject, op.Project),
			attribute.String(AttrEnv, op.Env),
			attribute.String(AttrDestCluster, op.Dest),
			attribute.String(AttrRevision, op.RevisionText()),
			attribute.StringSlice(AttrRevisions, op.Revisions),
			attribute.String(AttrInitiator, op.Initiator),
			attribute.String(AttrResult, op.Result),
			attribute.String(AttrMessage, op.Message),
			attribute.Int64(AttrRetryCount, op.RetryCount),
			attribute.Bool(AttrPartial, op.Partial),
		),
	}
	if op.DrySHA != "" {
		opts = append(opts, oteltrace.WithAttributes(attribute.String(AttrDrySHA, op.DrySHA)))
	}
	opts = append(opts, oteltrace.WithAttributes(pipelineAttributes(op)...))
	opts = append(opts, oteltrace.WithAttributes(deploymentAttributes(op)...))
	if op.Parent != nil {
		if sc, ok := spanContext(op.Parent); ok {
			opts = append(opts, oteltrace.WithLinks(oteltrace.Link{SpanContext: sc}))
		}
	}
	rootCtx, root := tracer.Start(withIDs(ctx, traceID, model.RootPath), "sync "+op.Namespace+"/"+op.Name, opts...)
	for _, r := range op.Resources {
		addResource(root, r, start, end)
	}
	for i, b := range op.Blocked {
		_, bs := tracer.Start(withIDs(rootCtx, traceID, "blocked/"+strconv.Itoa(i)), "blocked by sync window",
			oteltrace.WithTimestamp(clamp(b.Start, start, end)))
		bs.End(oteltrace.WithTimestamp(clamp(b.End, start, end)))
	}
	if len(op.Attempts) == 0 {
		recordPhases(rootCtx, tracer, traceID, op.Waves)
	}
	for i, a := range op.Attempts {
		// A retried operation: a span per attempt holds its phases,
		// and a span per backoff the wait before it.
		if i > 0 {
			_, bs := tracer.Start(withIDs(rootCtx, traceID, model.BackoffPath(a.N)), "retry backoff",
				oteltrace.WithTimestamp(clamp(op.Attempts[i-1].End, start, end)),
				oteltrace.WithAttributes(attribute.Int64(AttrAttempt, a.N)))
			bs.End(oteltrace.WithTimestamp(clamp(a.Start, start, end)))
		}
		var waves []model.Wave
		for _, w := range op.Waves {
			if w.Attempt == a.N {
				waves = append(waves, w)
			}
		}
		as, ae := a.Start, a.End
		if len(waves) > 0 {
			as, ae = minTime(as, waves[0].Start), maxTime(ae, waves[len(waves)-1].End)
		}
		attemptCtx, span := tracer.Start(withIDs(rootCtx, traceID, model.AttemptPath(a.N)), "attempt "+strconv.FormatInt(a.N, 10),
			oteltrace.WithTimestamp(as), oteltrace.WithAttributes(attribute.Int64(AttrAttempt, a.N)))
		recordPhases(attemptCtx, tracer, traceID, waves)
		if i < len(op.Attempts)-1 || op.Result != "Succeeded" {
			span.SetStatus(codes.Error, "attempt failed")
		}
		span.End(oteltrace.WithTimestamp(ae))
	}
	if op.Result != "Succeeded" {
		root.SetStatus(codes.Error, op.Message)
	}
	root.End(oteltrace.WithTimestamp(end))
}

// recordPhases records a span per phase of waves, which run phase by
// phase.
func recordPhases(ctx context.Context, tracer oteltrace.Tracer, traceID string, waves []model.Wave) {
	for i := 0; i < len(waves); {
		j := i
		for j < len(waves) && waves[j].Phase == waves[i].Phase {
			j++
		}
		recordPhase(ctx, tracer, traceID, waves[i:j])
		i = j
	}
}

// recordPhase records the span of one phase and its waves.
func recordPhase(ctx context.Context, tracer oteltrace.Tracer, traceID string, waves []model.Wave) {
	phase, attempt := waves[0].Phase, waves[0].Attempt
	start, end := waves[0].Start, waves[len(waves)-1].End
	phaseCtx, ps := tracer.Start(withIDs(ctx, traceID, model.AttemptPhasePath(attempt, phase)), phase,
		oteltrace.WithTimestamp(start), oteltrace.WithAttributes(attribute.String(AttrPhase, phase)))
	failed := ""
	for _, w := range waves {
		attrs := []attribute.KeyValue{
			attribute.String(AttrPhase, phase),
			attribute.Int(AttrResources, len(w.Resources)),
		}
		if w.Wave != model.UnknownWave {
			attrs = append(attrs, attribute.Int64(AttrWave, w.Wave))
		}
		if w.Blocked > 0 {
			attrs = append(attrs, attribute.Float64(AttrBlocked, w.Blocked.Seconds()))
		}
		attrs = append(attrs,
			semconv.CICDPipelineTaskName(phase+" wave "+model.WaveLabel(w.Wave)),
			semconv.CICDPipelineTaskRunID(traceID+"/"+model.AttemptWavePath(attempt, phase, w.Wave)),
			semconv.CICDPipelineTaskTypeDeploy,
		)
		_, ws := tracer.Start(withIDs(phaseCtx, traceID, model.AttemptWavePath(attempt, phase, w.Wave)), "wave "+model.WaveLabel(w.Wave),
			oteltrace.WithTimestamp(w.Start), oteltrace.WithAttributes(attrs...))
		result := "Succeeded"
		for _, r := range w.Resources {
			addResource(ws, r, w.Start, w.End)
			if resourceFailed(&r) {
				result = "Failed"
				ws.SetStatus(codes.Error, r.Kind+" "+r.Name+": "+r.Message)
				failed = r.Kind + " " + r.Name + ": " + r.Message
			}
		}
		taskResult := semconv.CICDPipelineTaskRunResultSuccess
		if result == "Failed" {
			taskResult = semconv.CICDPipelineTaskRunResultFailure
		}
		ws.SetAttributes(attribute.String(AttrResult, result), taskResult)
		ws.End(oteltrace.WithTimestamp(w.End))
	}
	if failed != "" {
		ps.SetStatus(codes.Error, failed)
	}
	ps.End(oteltrace.WithTimestamp(end))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// addResource adds a span event for one resource result, at the time it
// was first seen (within the span).
func addResource(s oteltrace.Span, r model.Resource, start, end time.Time) {
	attrs := []attribute.KeyValue{
		attribute.String(AttrResourceGroup, r.Group),
		attribute.String(AttrResourceKind, r.Kind),
		attribute.String(AttrResourceNamespace, r.Namespace),
		attribute.String(AttrResourceName, r.Name),
		attribute.String(AttrResourceStatus, r.Status),
	}
	if r.HookPhase != "" {
		attrs = append(attrs, attribute.String(AttrResourceHookPhase, r.HookPhase))
	}
	if r.HookType != "" {
		attrs = append(attrs, attribute.String(AttrResourceHookType, r.HookType))
	}
	if r.Message != "" {
		attrs = append(attrs, attribute.String(AttrResourceMessage, r.Message))
	}
	s.AddEvent(r.Kind+" "+r.Name, oteltrace.WithTimestamp(clamp(r.Seen, start, end)), oteltrace.WithAttributes(attrs...))
}

// failed reports whether the resource's sync or hook failed.
func resourceFailed(r *model.Resource) bool {
	return r.Status == "SyncFailed" || r.HookPhase == "Failed" || r.HookPhase == "Error"
}

// spanContext is the remote span context a link points at.
func spanContext(l *model.Link) (oteltrace.SpanContext, bool) {
	tid, err := oteltrace.TraceIDFromHex(l.TraceID)
	if err != nil {
		return oteltrace.SpanContext{}, false
	}
	sid, err := oteltrace.SpanIDFromHex(l.SpanID)
	if err != nil {
		return oteltrace.SpanContext{}, false
	}
	return oteltrace.NewSpanContext(oteltrace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: oteltrace.FlagsSampled, Remote: true}), true
}

func clamp(t, lo, hi time.Time) time.Time {
	if t.IsZero() || t.Before(lo) {
		return lo
	}
	if t.After(hi) {
		return hi
	}
	return t
}

// pipelineAttributes are the root span's attributes of OpenTelemetry's
// CI/CD and VCS semantic conventions, beside the argocd.* ones: the
// Application is the pipeline, the operation its run (id: the trace id, as
// Argo CD gives an operation none while it runs), the sync its action.
func pipelineAttributes(op *model.Operation) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		semconv.CICDPipelineName(op.Namespace + "/" + op.Name),
		semconv.CICDPipelineActionNameSync,
		semconv.CICDPipelineRunID(op.TraceID()),
	}
	if r, ok := pipelineResult(op.Result); ok {
		attrs = append(attrs, r)
	}
	// The deployed commit, when known, sets the revision again below
	// (the same value for a git source).
	if rev := op.RevisionText(); rev != "" && op.Commit == nil {
		attrs = append(attrs, semconv.VCSRefHeadRevision(rev))
	}
	return attrs
}

// pipelineResult maps an operation's result to cicd.pipeline.result.
func pipelineResult(result string) (attribute.KeyValue, bool) {
	switch result {
	case "Succeeded":
		return semconv.CICDPipelineResultSuccess, true
	case "Failed":
		return semconv.CICDPipelineResultFailure, true
	case "Error":
		return semconv.CICDPipelineResultError, true
	case "Terminated":
		return semconv.CICDPipelineResultCancellation, true
	}
	return attribute.KeyValue{}, false
}

// deploymentAttributes are the root span's attributes of a deployment, its
// commit and the predicted duration; none for other operations.
func deploymentAttributes(op *model.Operation) []attribute.KeyValue {
	var attrs []attribute.KeyValue
	if !op.PredictedFinish.IsZero() {
		attrs = append(attrs, attribute.Float64(AttrPredictedSeconds, op.PredictedFinish.Sub(op.StartedAt).Seconds()))
	}
	d := op.Deployment
	if d == nil {
		return attrs
	}
	attrs = append(attrs,
		attribute.String(AttrDeploymentResult, d.Result),
		attribute.String(AttrDeploymentPrevious, model.JoinRevisions(d.PreviousRevision, d.PreviousRevisions)),
	)
	if c := op.Commit; c != nil {
		attrs = append(attrs,
			attribute.String(AttrCommitSHA, c.SHA),
			attribute.String(AttrCommitRepo, c.RepoURL),
			attribute.String(AttrCommitAuthor, c.Author),
			attribute.String(AttrCommitTime, c.Date.UTC().Format(time.RFC3339)),
			attribute.Bool(AttrCommitReferenced, c.Referenced),
			attribute.Float64(AttrLeadTime, op.FinishedAt.Sub(c.Date).Seconds()),
		)
	}
	return attrs
}
