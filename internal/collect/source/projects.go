package source

import (
	"context"
	"fmt"
	"log/slog"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	versioned "github.com/crowsnest/crowsnest/internal/argocd/client"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// ProjectSink consumes AppProject events, like Sink.
type ProjectSink interface {
	HandleProject(model.ProjectEvent)
}

// ApplicationSetSink consumes ApplicationSet events, like Sink.
type ApplicationSetSink interface {
	HandleApplicationSet(model.ApplicationSetEvent)
}

// Projects watches Argo CD's AppProjects, in every namespace, for their
// sync windows, and its ApplicationSets for their RollingSync. A failing
// list or watch is retried by client-go's reflector; the Application
// watch reports the API server's health.
type Projects struct {
	client versioned.Interface
	logger *slog.Logger
}

// NewProjects returns a watch of AppProjects and ApplicationSets.
func NewProjects(client versioned.Interface, logger *slog.Logger) *Projects {
	return &Projects{client: client, logger: logger.With("component", "projects")}
}

// Run delivers AppProject events to sink, and ApplicationSet events too
// when sink is an ApplicationSetSink, until ctx is done and the informers
// have stopped.
func (p *Projects) Run(ctx context.Context, sink ProjectSink) error {
	projects := p.client.ArgoprojV1alpha1().AppProjects(metav1.NamespaceAll)
	pinf, err := informer(projects, p.logger, "AppProjects", "sync windows are not read until it works", trimObjectMeta,
		func(t model.EventType, proj *v1alpha1.AppProject) {
			sink.HandleProject(model.ProjectEvent{Type: t, Project: proj})
		})
	if err != nil {
		return err
	}
	sets, ok := sink.(ApplicationSetSink)
	if !ok {
		pinf.RunWithContext(ctx)
		return nil
	}
	appsets := p.client.ArgoprojV1alpha1().ApplicationSets(metav1.NamespaceAll)
	sinf, err := informer(appsets, p.logger, "ApplicationSets", "RollingSync rollouts are not read until it works", trimObjectMeta,
		func(t model.EventType, s *v1alpha1.ApplicationSet) {
			sets.HandleApplicationSet(model.ApplicationSetEvent{Type: t, ApplicationSet: s})
		})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sinf.RunWithContext(ctx)
	}()
	pinf.RunWithContext(ctx)
	<-done
	return nil
}

// informer returns an informer of every object of lw (objects of type T in
// lists of type L) that hands each event to deliver. what names the
// resource in the warning logged at its first failing list or watch
// (typically RBAC), with lost saying what is missing meanwhile.
func informer[T interface {
	runtime.Object
	*E
}, E any, L runtime.Object](lw versioned.ListWatcher[L], logger *slog.Logger, what, lost string, transform cache.TransformFunc, deliver func(model.EventType, T)) (cache.SharedIndexInformer, error) {
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return lw.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return lw.Watch(ctx, opts)
		},
	}, noWatchList{}), T(new(E)), 0, cache.Indexers{})
	if err := inf.SetTransform(transform); err != nil {
		return nil, fmt.Errorf("set %s transform: %w", what, err)
	}
	handle := func(t model.EventType, obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if o, ok := obj.(T); ok {
			deliver(t, o)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { handle(model.Added, obj) },
		UpdateFunc: func(_, obj any) { handle(model.Modified, obj) },
		DeleteFunc: func(obj any) { handle(model.Deleted, obj) },
	}); err != nil {
		return nil, fmt.Errorf("add %s handler: %w", what, err)
	}
	warned := false // the handler runs on the reflector's one goroutine
	if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		if !warned {
			logger.Warn("cannot list or watch "+what+"; "+lost, "err", err)
			warned = true
			return
		}
		logger.Debug("list and watch of "+what+" ended", "err", err)
	}); err != nil {
		return nil, fmt.Errorf("set %s watch error handler: %w", what, err)
	}
	return inf, nil
}
