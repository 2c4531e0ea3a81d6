package dora

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/crowsnest/crowsnest/internal/logtest"
	"github.com/crowsnest/crowsnest/internal/model"
)

// fakeClient is a MetadataClient answering from a map by revision.
type fakeClient struct {
	mu      sync.Mutex
	commits map[string]*model.Commit // by revision
	fail    map[string]error         // by revision
	hang    map[string]bool          // by revision: block until ctx ends
	calls   []model.DeploymentSource
	apps    []string
}

func newFakeClient() *fakeClient {
	return &fakeClient{commits: map[string]*model.Commit{}, fail: map[string]error{}, hang: map[string]bool{}}
}

func (f *fakeClient) set(revision string, c *model.Commit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits[revision] = c
}

func (f *fakeClient) Commit(ctx context.Context, appNamespace, appName string, src model.DeploymentSource) (*model.Commit, error) {
	f.mu.Lock()
	f.calls = append(f.calls, src)
	f.apps = append(f.apps, model.Key(appNamespace, appName))
	c, err, hang := f.commits[src.Revision], f.fail[src.Revision], f.hang[src.Revision]
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("revision %s: %w", src.Revision, ErrUnsupported)
	}
	return c, nil
}

// callsFor counts the calls for revision.
func (f *fakeClient) callsFor(revision string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Revision == revision {
			n++
		}
	}
	return n
}

func (f *fakeClient) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// outputs records what Deployments hands out.
type outputs struct {
	mu      sync.Mutex
	facts   []*model.Fact
	records []*model.DeploymentRecord
	got     chan struct{} // one per record
}

func newOutputs() *outputs { return &outputs{got: make(chan struct{}, 100)} }

func (o *outputs) Fact(f *model.Fact) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.facts = append(o.facts, f)
}

func (o *outputs) Send(r *model.DeploymentRecord) {
	o.mu.Lock()
	o.records = append(o.records, r)
	o.mu.Unlock()
	o.got <- struct{}{}
}

// waitRecords waits for n more records.
func (o *outputs) waitRecords(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-o.got:
		case <-time.After(10 * time.Second):
			t.Fatal("timed out waiting for a deployment record")
		}
	}
}

func (o *outputs) snapshot() ([]*model.Fact, []*model.DeploymentRecord) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*model.Fact(nil), o.facts...), append([]*model.DeploymentRecord(nil), o.records...)
}

type fixture struct {
	d    *Deployments
	reg  *prometheus.Registry
	out  *outputs
	logs *logtest.Buffer
}

// newFixture returns Deployments over client (nil: none) with its own
// registry, outputs and debug log.
func newFixture(t *testing.T, cfg Config, client MetadataClient) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	out := newOutputs()
	logs := &logtest.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(cfg, client, Outputs{Facts: []FactSubscriber{out}, Records: []RecordSink{out}}, reg, logger)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{d: d, reg: reg, out: out, logs: logs}
}

// run runs the worker until the test ends, and checks that it returns nil
// when ctx ends.
func (f *fixture) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after ctx ended")
		}
	})
}

func (f *fixture) lookups(result string) float64 {
	return testutil.ToFloat64(f.d.metrics.lookups.WithLabelValues(result))
}

// series is one histogram series as gathered.
type series struct {
	count     uint64
	sum       float64
	exemplars []string // trace ids, of every bucket
}

// histogram gathers the series of name with exactly labels; ok is false
// when it does not exist.
func histogram(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (series, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !sameLabels(m.GetLabel(), labels) {
				continue
			}
			h := m.GetHistogram()
			s := series{count: h.GetSampleCount(), sum: h.GetSampleSum()}
			for _, b := range h.GetBucket() {
				if e := b.GetExemplar(); e != nil {
					for _, l := range e.GetLabel() {
						if l.GetName() == "trace_id" {
							s.exemplars = append(s.exemplars, l.GetValue())
						}
					}
				}
			}
			return s, true
		}
	}
	return series{}, false
}

func sameLabels(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}

// t0 is the finish of test deployments.
var t0 = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

// deployment returns a deployment of app ns/name in prod, finished at t0,
// that changed sources.
func deployment(name, result, trace string, changed ...model.DeploymentSource) *model.Deployment {
	revs := make([]string, len(changed))
	for i, c := range changed {
		revs[i] = c.Revision
	}
	return &model.Deployment{
		UID: "uid-" + name, Namespace: "argocd", Name: name, Project: "shop", Env: "prod", Dest: "prod-eu",
		Result: result, Revision: strings.Join(revs, ","), PreviousRevision: "prev",
		Changed: changed, Initiator: "automated",
		StartedAt: t0.Add(-time.Minute), FinishedAt: t0, TraceID: trace,
	}
}

func gitSource(index int, revision string) model.DeploymentSource {
	return model.DeploymentSource{Index: index, RepoURL: "https://git.example.com/shop.git", Revision: revision}
}

func deployed(dep *model.Deployment) *model.DeploymentNotice {
	return &model.DeploymentNotice{Kind: model.NoticeDeployed, Time: dep.FinishedAt, Deployment: dep}
}
