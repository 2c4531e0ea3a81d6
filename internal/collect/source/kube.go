package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	versioned "github.com/crowsnest/crowsnest/internal/argocd/client"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// kubeSourceName is the value of the source label for the Kubernetes watch.
const kubeSourceName = "kubernetes"

// KubeSource watches Applications through the Kubernetes API with one shared
// informer per watched namespace (one for all namespaces by default).
type KubeSource struct {
	client     versioned.Interface
	namespaces []string
	metrics    *SourceMetrics
	logger     *slog.Logger
	trim       *appTrimmer // the informers' transform

	mu        sync.Mutex
	informers []cache.SharedIndexInformer
	// handlers are the sink's registrations: synced once the sink has
	// handled every app of the initial list, not only once the informer
	// has queued them.
	handlers []cache.ResourceEventHandlerRegistration
	down     map[string]error // namespace → error of its last failed list or watch call
	notYet   error            // the error of a namespace not listed yet

	// paged: a first list without a limit failed (an API server without
	// its watch cache for Applications reads it from etcd whole); the
	// first lists from then on keep the reflector's pages.
	paged atomic.Bool
}

// NewKubeSource returns a source watching namespaces; none means all.
func NewKubeSource(client versioned.Interface, namespaces []string, metrics *SourceMetrics, logger *slog.Logger) *KubeSource {
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	metrics.register(kubeSourceName)
	// Down until the first list succeeds: an API server that is unreachable
	// from the start must show as such.
	notYet := errors.New("not connected yet")
	down := map[string]error{}
	for _, ns := range namespaces {
		down[ns] = notYet
	}
	// Operations that finished before now are the tracker's baselines,
	// whose first event comes later: their results are dropped.
	trim := newAppTrimmer()
	trim.since = time.Now()
	return &KubeSource{client: client, namespaces: namespaces, metrics: metrics, logger: logger.With("component", "kubernetes-source"), trim: trim, down: down, notYet: notYet}
}

// Run starts the informers and blocks until ctx is done.
func (s *KubeSource) Run(ctx context.Context, sink Sink) error {
	sink = s.metrics.counting(kubeSourceName, sink)
	var wg sync.WaitGroup
	for _, ns := range s.namespaces {
		lw := cache.ToListWatcherWithWatchListSemantics(s.listWatch(ctx, ns), noWatchList{})
		inf := cache.NewSharedIndexInformer(lw, &v1alpha1.Application{}, 0, cache.Indexers{})
		if err := inf.SetTransform(s.trim.application); err != nil {
			return fmt.Errorf("set transform: %w", err)
		}
		if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
			// The list/watch wrappers have already logged the failure
			// behind this (and set crowsnest_source_up); replacing
			// client-go's default handler keeps it from logging it again.
			s.logger.Debug("list and watch ended", "namespace", ns, "err", err)
		}); err != nil {
			return fmt.Errorf("set watch error handler: %w", err)
		}
		reg, err := inf.AddEventHandler(handler(sink))
		if err != nil {
			return fmt.Errorf("add event handler: %w", err)
		}
		s.mu.Lock()
		s.informers = append(s.informers, inf)
		s.handlers = append(s.handlers, reg)
		s.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			inf.Run(ctx.Done())
		}()
	}
	wg.Wait()
	return nil
}

// Released is the tracker's release hook (tracker.SetOnRelease): the
// results of the app's operation that started and finished then are
// dropped from the app at its next update; zero times forget the app.
func (s *KubeSource) Released(uid types.UID, started, finished time.Time) {
	if started.IsZero() && finished.IsZero() {
		s.trim.released.Delete(uid)
		return
	}
	s.trim.released.Store(uid, releasedOp{started.Unix(), finished.Unix()})
}

// Ready reports whether every informer has synced and the last request to
// the API server succeeded.
func (s *KubeSource) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.informers) != len(s.namespaces) {
		return false
	}
	for _, h := range s.handlers {
		if !h.HasSynced() {
			return false
		}
	}
	return len(s.down) == 0
}

// Retry pacing of the sources' calls while their server is away: the
// Kubernetes list and watch calls, and reconnecting to the Argo CD API.
const (
	retryInitial = 500 * time.Millisecond
	retryMax     = 5 * time.Second
)

// listWatch wraps the typed client's list and watch so that each call's
// outcome sets crowsnest_source_up, and retries failed calls itself.
//
// Why retry here: client-go's reflector backs off up to 30 s, with jitter up
// to a minute, after failed calls, and a shared informer cannot be given
// another backoff. Measured against a real kube-apiserver down for 20 s,
// crowsnest then took up to 64 s after the server was back to catch up.
// Retrying inside the calls (0.5 s doubling to 5 s) keeps the reflector's
// backoff from growing during an outage, so crowsnest catches up within
// seconds. Errors retrying cannot fix (an expired resource version, a bad
// request) go back to the reflector, which relists. Lists are read as a
// stream, each app trimmed as it is decoded (listStreamed).
// The reflectors do not ask for streaming lists (noWatchList).
func (s *KubeSource) listWatch(ctx context.Context, ns string) *cache.ListWatch {
	apps := s.client.ArgoprojV1alpha1().Applications(ns)
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			var list runtime.Object
			err := s.retry(ctx, ns, "list", func() error {
				o := opts
				whole := o.ResourceVersion == "0" && o.Limit > 0 && !s.paged.Load()
				if whole {
					o.Limit = 0
				}
				began := time.Now()
				l, first, err := listStreamed(ctx, apps, o, s.trim.application)
				if err == nil {
					// At start-up this is most of the time to ready;
					// the first app's arrival splits the API server's
					// wait from the reading.
					s.logger.Info("listed Applications", "namespace", ns, "apps", len(l.Items), "whole", o.Limit == 0,
						"took", time.Since(began).Round(time.Millisecond), "first_app_after", max(first.Sub(began), 0).Round(time.Millisecond))
				}
				if err != nil && whole && ctx.Err() == nil && s.paged.CompareAndSwap(false, true) {
					// The error itself is logged once, by retry.
					s.logger.Warn("the list of every Application in one response failed; listing in pages from now on (is kube-apiserver's watch cache off for Applications?)", "namespace", ns)
				}
				list = l
				return err
			})
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			var w watch.Interface
			err := s.retry(ctx, ns, "watch", func() error {
				var err error
				w, err = apps.Watch(ctx, opts)
				return err
			})
			if err != nil {
				return nil, err
			}
			// After an outage the informer re-watches from its old
			// resource version: the call succeeds, then the stream ends
			// at once with 410 Gone and the informer relists. Until that
			// relist the state is stale, so an error event counts as a
			// failed call.
			return watch.Filter(w, func(ev watch.Event) (watch.Event, bool) {
				if ev.Type == watch.Error {
					s.observe(ns, "watch", apierrors.FromObject(ev.Object))
				}
				return ev, true
			}), nil
		},
	}
}

// retry calls f until it succeeds, fails in a way retrying cannot fix, or
// ctx is done, recording each outcome. observe logs only the changes
// between up and down, not every attempt.
func (s *KubeSource) retry(ctx context.Context, ns, verb string, f func() error) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := f()
		s.observe(ns, verb, err)
		if err != nil && !retriable(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(newRetryBackOff(retryInitial, retryMax)), backoff.WithMaxElapsedTime(0))
	return err
}

// newRetryBackOff returns the pacing of the sources' retries: initial,
// doubling up to maxInterval, without jitter. It has no time limit of its
// own, but backoff.Retry does (15 minutes by default): pass
// backoff.WithMaxElapsedTime(0) to retry until ctx is done.
func newRetryBackOff(initial, maxInterval time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: initial, Multiplier: 2, MaxInterval: maxInterval}
}

// retriable tells errors that may go away by themselves (the server is
// unreachable or overloaded, RBAC or the CRD not there yet) from those that
// need the reflector to start over.
func retriable(err error) bool {
	return !errors.Is(err, context.Canceled) &&
		!apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) &&
		!apierrors.IsBadRequest(err) && !apierrors.IsInvalid(err)
}

func (s *KubeSource) observe(ns, verb string, err error) {
	if errors.Is(err, context.Canceled) {
		return // shutting down, not an outage
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, wasDown := s.down[ns]
	switch {
	case err != nil && prev == s.notYet:
		// Never connected: RBAC, a missing CRD, a wrong address. Say so
		// once; the retries go on.
		s.logger.Error("listing Applications failed; retrying", "namespace", ns, "verb", verb, "err", err)
		s.down[ns] = err
	case err != nil && !wasDown:
		s.logger.Error("watching Applications failed; serving the last known state until the informer relists", "namespace", ns, "verb", verb, "err", err)
		s.down[ns] = err
	case err != nil:
		s.down[ns] = err
	case prev == s.notYet:
		delete(s.down, ns)
	case wasDown:
		s.logger.Info("watching Applications again", "namespace", ns, "verb", verb)
		delete(s.down, ns)
	}
	s.metrics.setUp(kubeSourceName, len(s.down) == 0)
}

// noWatchList tells client-go's reflectors not to ask for a streaming list
// (WatchList), which client-go v0.37 does by default: they list, then
// watch. Measured with kube-apiserver 1.37 whose watch cache is off for a
// resource (--watch-cache-sizes=<resource>#0; the scale benchmark's
// 50,000 apps): it accepts the streaming list but never sends the bookmark
// that ends the initial events, and the reflector waited for it until the
// watch timed out: 7m36s to be ready on an empty namespace. Where the cache
// is on, the list streamed from it (listStreamed) gives what WatchList
// would: one object decoded at a time.
type noWatchList struct{}

// IsWatchListSemanticsUnSupported implements client-go's watchlist check.
func (noWatchList) IsWatchListSemanticsUnSupported() bool { return true }

// listStreamed is the informers' list of Applications: read as a stream,
// each app trimmed as soon as it is decoded (client.ApplicationInterface's
// ListEach), so the list never holds the response or an untrimmed app
// beyond the one being read. The reflector's first list (resourceVersion
// 0) is asked without a limit (listWatch), which the API server answers from
// its watch cache in one response. With the reflector's limit of 500,
// kube-apiserver 1.37 pages it too: with 10,000 apps of 50 resources it
// spent 11.2-36.4 s of CPU on the pages and up to 13.4 GiB, and crowsnest
// was ready after 9.9-21.9 s (one response: 8.1-11.3 s of its CPU; three
// runs each, docs/design.md). Only when that fails — an
// API server whose watch cache is off read all 50,000 apps of the scale
// benchmark from etcd in one response, and timed out after 60 s — the
// source falls back to the reflector's pages for good. It also returns when
// the first app arrived (zero for an empty list), for the source's log.
func listStreamed(ctx context.Context, apps versioned.ApplicationInterface, opts metav1.ListOptions, trim cache.TransformFunc) (list *v1alpha1.ApplicationList, first time.Time, err error) {
	list = &v1alpha1.ApplicationList{}
	meta, err := apps.ListEach(ctx, opts, func(a *v1alpha1.Application) error {
		if first.IsZero() {
			first = time.Now() // the API server's wait ends
		}
		t, err := trim(a)
		if err != nil {
			return err
		}
		app, ok := t.(*v1alpha1.Application)
		if !ok {
			return fmt.Errorf("trimmed application is a %T", t)
		}
		list.Items = append(list.Items, *app)
		return nil
	})
	if err != nil {
		return nil, first, err
	}
	list.ListMeta = *meta
	list.Continue, list.RemainingItemCount = "", nil // every page is in
	return list, first, nil
}

// handler adapts informer notifications to events; it unwraps tombstones of
// deletions the informer saw only as a relist.
func handler(sink Sink) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if app, ok := obj.(*v1alpha1.Application); ok {
				sink.Handle(model.Event{Type: model.Added, Time: time.Now(), App: app})
			}
		},
		UpdateFunc: func(_, obj any) {
			if app, ok := obj.(*v1alpha1.Application); ok {
				sink.Handle(model.Event{Type: model.Modified, Time: time.Now(), App: app})
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if app, ok := obj.(*v1alpha1.Application); ok {
				sink.Handle(model.Event{Type: model.Deleted, Time: time.Now(), App: app})
			}
		},
	}
}
