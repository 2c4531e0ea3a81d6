package trace

import (
	"testing"
	"time"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/otlptest"
)

// A retried operation's trace has a span per attempt holding that
// attempt's phases and waves, and a backoff span between attempts, so no
// wave absorbs the wait; the time a sync window held it is a span of its
// own; a hook whose wave crowsnest could not tell is in "wave unknown".
func TestRetriedOperationTrace(t *testing.T) {
	op := &model.Operation{
		UID: "uid-2", Namespace: "argocd", Name: "prod-api", Project: "shop", Env: "prod",
		Revision: "r2", Initiator: "automated", Result: "Succeeded",
		StartedAt: t0, FinishedAt: at(40 * time.Second), RetryCount: 1,
		Attempts:   []model.Attempt{{N: 0, Start: t0, End: at(6 * time.Second)}, {N: 1, Start: at(16 * time.Second), End: at(40 * time.Second)}},
		Blocked:    []model.Interval{{Start: at(20 * time.Second), End: at(30 * time.Second)}},
		BlockedFor: 10 * time.Second,
		Waves: []model.Wave{
			{Attempt: 0, Phase: "Sync", Wave: 0, Start: at(time.Second), End: at(6 * time.Second), Resources: []model.Resource{
				{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "api", Status: "SyncFailed", Message: "denied", Seen: at(3 * time.Second)},
			}},
			{Attempt: 1, Phase: "PreSync", Wave: model.UnknownWave, Start: at(16 * time.Second), End: at(18 * time.Second), Resources: []model.Resource{
				{Kind: "Pod", Namespace: "shop", Name: "check", Status: "Synced", HookType: "PreSync", HookPhase: "Succeeded", Seen: at(17 * time.Second)},
			}},
			{Attempt: 1, Phase: "Sync", Wave: 0, Start: at(18 * time.Second), End: at(40 * time.Second), Blocked: 10 * time.Second, Resources: []model.Resource{
				{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "api", Status: "Synced", Seen: at(38 * time.Second)},
			}},
		},
	}
	var r otlptest.Receiver
	endpoint, stop, err := r.ServeHTTPOn()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	e, _, stopEmitter := newEmitter(t, Config{Exporter: ExporterOTLP, Endpoint: endpoint, Protocol: ProtocolHTTP, Version: "test"})
	e.Finished(op)
	stopEmitter()
	spans := r.Spans()
	traceID := op.TraceID()
	byID := map[string]otlptest.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	if want := spanCount(op); len(spans) != want || len(byID) != want {
		t.Fatalf("got %d spans (%d ids), want %d: root, blocked, 2 attempts, backoff, 3 phases, 3 waves", len(spans), len(byID), want)
	}
	if len(spans) != 11 {
		t.Fatalf("got %d spans, want 11", len(spans))
	}
	span := func(path string) otlptest.Span {
		t.Helper()
		s, ok := byID[model.SpanID(traceID, path)]
		if !ok {
			t.Fatalf("no span at %s", path)
		}
		return s
	}
	root := span(model.RootPath)
	for _, c := range []struct {
		path, name, parent string
		start, end         time.Duration
		failed             bool
	}{
		{model.AttemptPath(0), "attempt 0", model.RootPath, 0, 6 * time.Second, true},
		{model.BackoffPath(1), "retry backoff", model.RootPath, 6 * time.Second, 16 * time.Second, false},
		{model.AttemptPath(1), "attempt 1", model.RootPath, 16 * time.Second, 40 * time.Second, false},
		{"blocked/0", "blocked by sync window", model.RootPath, 20 * time.Second, 30 * time.Second, false},
		{model.AttemptPhasePath(0, "Sync"), "Sync", model.AttemptPath(0), time.Second, 6 * time.Second, true},
		{model.AttemptWavePath(0, "Sync", 0), "wave 0", model.AttemptPhasePath(0, "Sync"), time.Second, 6 * time.Second, true},
		{model.AttemptPhasePath(1, "PreSync"), "PreSync", model.AttemptPath(1), 16 * time.Second, 18 * time.Second, false},
		{model.AttemptWavePath(1, "PreSync", model.UnknownWave), "wave unknown", model.AttemptPhasePath(1, "PreSync"), 16 * time.Second, 18 * time.Second, false},
		{model.AttemptWavePath(1, "Sync", 0), "wave 0", model.AttemptPhasePath(1, "Sync"), 18 * time.Second, 40 * time.Second, false},
	} {
		s := span(c.path)
		if s.Name != c.name || s.ParentSpanID != model.SpanID(traceID, c.parent) || !s.Start.Equal(at(c.start)) || !s.End.Equal(at(c.end)) || s.StatusError != c.failed {
			t.Errorf("%s: got %q parent %s [%v, %v] error %v, want %q under %s [%v, %v] error %v", c.path,
				s.Name, s.ParentSpanID, s.Start.Sub(t0), s.End.Sub(t0), s.StatusError, c.name, c.parent, c.start, c.end, c.failed)
		}
	}
	if w := span(model.AttemptWavePath(1, "PreSync", model.UnknownWave)); w.Attrs[AttrWave] != "" {
		t.Errorf("unknown wave has %s=%q, want none", AttrWave, w.Attrs[AttrWave])
	}
	if w := span(model.AttemptWavePath(1, "Sync", 0)); w.Attrs[AttrBlocked] != "10" {
		t.Errorf("blocked wave has %s=%q, want 10", AttrBlocked, w.Attrs[AttrBlocked])
	}
	if root.StatusError {
		t.Error("root of a succeeded operation has error status")
	}
}
