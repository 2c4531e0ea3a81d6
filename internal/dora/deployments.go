package dora

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/queue"
)

// Defaults of the Config fields left zero.
const (
	DefaultQueueSize    = 1024
	DefaultFetchTimeout = 5 * time.Second
	DefaultCacheSize    = 4096
	DefaultFailedTTL    = time.Minute
	DefaultFlushTimeout = 5 * time.Second
)

// prefetchQueueSize bounds the prefetches waiting for the worker. One
// dropped only means the commit is fetched when its deployment finishes.
const prefetchQueueSize = 256

// Config tunes Deployments. Zero fields take their defaults.
type Config struct {
	// QueueSize bounds the notices waiting for the worker; more are
	// dropped and counted.
	QueueSize int
	// FetchTimeout bounds each commit metadata fetch, the dial included.
	FetchTimeout time.Duration
	// CacheSize bounds the revisions whose lookup is cached.
	CacheSize int
	// FailedTTL is how long a failed lookup is remembered, so that a
	// broken repository is not asked again for every notice.
	FailedTTL time.Duration
	// FlushTimeout bounds the handling of the notices still queued when
	// Run's context ends.
	FlushTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.CacheSize <= 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.FailedTTL <= 0 {
		c.FailedTTL = DefaultFailedTTL
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	return c
}

// FactSubscriber receives the deployment_finished fact of each deployment
// (the tracker's fact subscribers: Loki events, the fact log). It must not
// block.
type FactSubscriber interface {
	Fact(f *model.Fact)
}

// RecordSink receives the record of each deployment (the CloudEvents
// sink). It must not block.
type RecordSink interface {
	Send(r *model.DeploymentRecord)
}

// Outputs are where Deployments hands each deployment.
type Outputs struct {
	Facts   []FactSubscriber
	Records []RecordSink
}

// Deployments measures lead and recovery times from the tracker's
// deployment notices and records each deployment with its commit (see the
// package doc). It is the tracker's deployment subscriber and a view
// subscriber (for prefetching); Operations decorates its operation
// subscribers. Its methods are safe for concurrent use and never block,
// except Run, the worker.
type Deployments struct {
	cfg     Config
	client  MetadataClient // nil: no commit metadata
	out     Outputs
	log     *slog.Logger
	metrics *metrics
	cache   *commitCache
	now     func() time.Time

	notices    *queue.Queue[*model.DeploymentNotice]
	prefetches chan prefetch
	fetching   sync.Mutex // one lookup at a time: the notices' and the prefetches'

	mu   sync.Mutex // guards apps
	apps map[string]*appState
}

// appState is the little Deployments keeps per app.
type appState struct {
	// seen: a view of the app arrived; revisions are those of its
	// comparison target, by source.
	seen      bool
	revisions []string
	// deployed is the last deployment's trace id and commit date, for
	// the lead time until Healthy; zero when unknown.
	deployedTrace string
	deployedDate  time.Time
}

// prefetch asks the worker to look up a revision ahead of its deployment.
type prefetch struct {
	namespace, name string
	src             model.DeploymentSource
}

// New returns Deployments with its metrics registered on reg (nil: not
// registered), logging to logger (nil: discarded). client is nil (a nil
// interface, not a nil pointer in one) without an Argo CD API server.
func New(cfg Config, client MetadataClient, out Outputs, reg prometheus.Registerer, logger *slog.Logger) (*Deployments, error) {
	cfg = cfg.withDefaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	notices, err := queue.New(queue.Config[*model.DeploymentNotice]{Size: cfg.QueueSize, Dropped: m.dropped, FlushTimeout: cfg.FlushTimeout})
	if err != nil {
		return nil, fmt.Errorf("deployment notices queue: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Deployments{
		cfg: cfg, client: client, out: out, metrics: m,
		log:        logger.With("component", "deployments"),
		cache:      newCommitCache(cfg.CacheSize),
		now:        time.Now,
		notices:    notices,
		prefetches: make(chan prefetch, prefetchQueueSize),
		apps:       map[string]*appState{},
	}, nil
}

// Deployment queues n for the worker and returns at once; when the queue
// is full, n is dropped and counted. It implements the tracker's
// deployment subscriber.
func (d *Deployments) Deployment(n *model.DeploymentNotice) { d.notices.Send(n) }

// Run is the worker: it handles the queued notices in order until ctx
// ends, then those still queued within the flush timeout (see package
// queue), and returns nil. Beside it, one goroutine of its own prefetches
// the commits of revisions about to be deployed, until ctx ends; lookups
// take turns, so a notice waits for at most one prefetch's fetch. Run must
// be called once.
func (d *Deployments) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	prefetchCtx, stop := context.WithCancel(ctx)
	wg.Go(func() { d.prefetch(prefetchCtx) })
	err := d.notices.Run(ctx, (*worker)(d))
	stop()
	wg.Wait()
	return err
}

// prefetch looks up the queued prefetches until ctx ends.
func (d *Deployments) prefetch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-d.prefetches:
			d.lookup(ctx, p.namespace, p.name, p.src)
		}
	}
}

// worker is Deployments as the notice queue's worker.
type worker Deployments

// Deliver handles the batch's notice.
func (w *worker) Deliver(ctx context.Context, batch []*model.DeploymentNotice) {
	for _, n := range batch {
		(*Deployments)(w).handle(ctx, n)
	}
}

// handle acts on one notice.
func (d *Deployments) handle(ctx context.Context, n *model.DeploymentNotice) {
	if n == nil || n.Deployment == nil {
		return
	}
	switch n.Kind {
	case model.NoticeDeployed:
		d.deployed(ctx, n.Deployment)
	case model.NoticeHealthy:
		d.healthy(n)
	case model.NoticeRecovered:
		dep := n.Deployment
		if took := n.Time.Sub(n.Onset); !n.Onset.IsZero() && took >= 0 {
			observe(d.metrics.recovery, took, dep.TraceID, dep.Project, dep.Env)
		}
	case model.NoticeChangeFailed:
		// The tracker counts change failures per app.
	}
}

// deployed measures the lead time of a finished deployment, remembers when
// its change was made for the healthy notice and hands its record out.
func (d *Deployments) deployed(ctx context.Context, dep *model.Deployment) {
	rec := &model.DeploymentRecord{Deployment: dep}
	rec.Commit = d.commitOf(dep, func(src model.DeploymentSource) *model.Commit {
		return d.lookup(ctx, dep.Namespace, dep.Name, src)
	})
	var from time.Time // when the change was made, when the lead time is measured
	// Only a succeeded deployment has a lead time: a failed one brought
	// nothing to the env, and a rollback's commit is an old one, whose age
	// says nothing of how fast changes ship.
	if dep.Result == model.DeploymentSucceeded {
		from, rec.LeadFrom = d.changeOf(ctx, rec)
	}
	// A change dated after the finish (a clock off, a forged date) has no
	// lead time.
	if lead := dep.FinishedAt.Sub(from); !from.IsZero() && lead >= 0 {
		rec.LeadTime = lead
		observe(d.metrics.leadTime, lead, dep.TraceID, dep.Project, dep.Env, untilDeployed)
	} else {
		from, rec.LeadFrom = time.Time{}, ""
	}
	if !dep.AwaitedSince.IsZero() {
		// (Argo CD keeps whole seconds of the start: a wait that began in
		// the start's second is 0.)
		observe(d.metrics.releaseWait, max(dep.StartedAt.Sub(dep.AwaitedSince), 0), dep.TraceID, dep.Project, dep.Env)
	}
	d.rememberDeployed(dep, from)
	f := fact(rec)
	for _, s := range d.out.Facts {
		s.Fact(f)
	}
	for _, s := range d.out.Records {
		s.Send(rec)
	}
}

// changeOf returns when the change rec's deployment shipped was made, and
// what that time is (a model.LeadFrom* value); zero and "" when unknown.
// It may set rec.Commit to the commit CI named. In order:
//
//   - the change CI named in the app's annotations: its time, else its
//     commit's date; a named commit that cannot be looked up gives no lead
//     time rather than another one;
//   - the deployed revisions' commit (the oldest changed source's);
//   - for a change of the sources' settings (Image Updater, `argocd app
//     set -p`) or of a Helm chart's version, which have no commit: when
//     Argo CD first compared the app with the deployed sources.
func (d *Deployments) changeOf(ctx context.Context, rec *model.DeploymentRecord) (time.Time, string) {
	dep := rec.Deployment
	switch {
	case !dep.ChangeTime.IsZero():
		c := &model.Commit{Date: dep.ChangeTime}
		if s := dep.ChangeCommit; s != nil {
			c.SHA, c.RepoURL = s.Revision, s.RepoURL
		}
		rec.Commit = c
		return c.Date, model.LeadFromAnnotation
	case dep.ChangeCommit != nil:
		c := d.lookup(ctx, dep.Namespace, dep.Name, *dep.ChangeCommit)
		if c == nil || c.Date.IsZero() {
			return time.Time{}, ""
		}
		rec.Commit = c
		return c.Date, model.LeadFromAnnotation
	case dep.LeadUnknown != "":
		return time.Time{}, ""
	case rec.Commit != nil && !rec.Commit.Date.IsZero():
		return rec.Commit.Date, model.LeadFromCommit
	case !dep.TargetSeenAt.IsZero() && (dep.SourceChanged || onlyCharts(dep.Changed)):
		return dep.TargetSeenAt, model.LeadFromSourceChange
	}
	return time.Time{}, ""
}

// onlyCharts reports whether every changed source is a Helm chart (and one
// is): a new chart version has no commit to date it by.
func onlyCharts(changed []model.DeploymentSource) bool {
	for _, s := range changed {
		if sourceKind(s) != kindHelm {
			return false
		}
	}
	return len(changed) > 0
}

// rememberDeployed keeps the commit date of the app's deployment (zero:
// none) while the app may still turn Healthy after it: one per app,
// replaced by the next deployment.
func (d *Deployments) rememberDeployed(dep *model.Deployment, date time.Time) {
	key := model.Key(dep.Namespace, dep.Name)
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.apps[key]
	if st == nil {
		if date.IsZero() {
			return
		}
		st = &appState{}
		d.apps[key] = st
	}
	st.deployedTrace, st.deployedDate = dep.TraceID, date
	if date.IsZero() {
		st.deployedTrace = ""
	}
}

// healthy observes the lead time until the app was first Healthy after
// its deployment, when the deployment's commit date is known.
func (d *Deployments) healthy(n *model.DeploymentNotice) {
	dep := n.Deployment
	key := model.Key(dep.Namespace, dep.Name)
	d.mu.Lock()
	st := d.apps[key]
	var date time.Time
	if st != nil && st.deployedTrace == dep.TraceID {
		date = st.deployedDate
		st.deployedTrace, st.deployedDate = "", time.Time{} // once
	}
	d.mu.Unlock()
	if date.IsZero() {
		return
	}
	if lead := n.Time.Sub(date); lead >= 0 {
		observe(d.metrics.leadTime, lead, dep.TraceID, dep.Project, dep.Env, untilHealthy)
	}
}
