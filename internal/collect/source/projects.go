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

// Projects watches Argo CD's AppProjects, in every namespace, for their
// sync windows. A failing list or watch is retried by client-go's
// reflector; the Application watch reports the API server's health.
type Projects struct {
	client versioned.Interface
	logger *slog.Logger
}

// NewProjects returns a watch of AppProjects.
func NewProjects(client versioned.Interface, logger *slog.Logger) *Projects {
	return &Projects{client: client, logger: logger.With("component", "projects")}
}

// Run delivers AppProject events to sink until ctx is done and the
// informer has stopped.
func (p *Projects) Run(ctx context.Context, sink ProjectSink) error {
	projects := p.client.ArgoprojV1alpha1().AppProjects(metav1.NamespaceAll)
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return projects.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return projects.Watch(ctx, opts)
		},
	}, noWatchList{}), &v1alpha1.AppProject{}, 0, cache.Indexers{})
	if err := inf.SetTransform(trimAppProject); err != nil {
		return fmt.Errorf("set AppProject transform: %w", err)
	}
	deliver := func(t model.EventType, obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if proj, ok := obj.(*v1alpha1.AppProject); ok {
			sink.HandleProject(model.ProjectEvent{Type: t, Project: proj})
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { deliver(model.Added, obj) },
		UpdateFunc: func(_, obj any) { deliver(model.Modified, obj) },
		DeleteFunc: func(obj any) { deliver(model.Deleted, obj) },
	}); err != nil {
		return fmt.Errorf("add AppProject handler: %w", err)
	}
	warned := false // the handler runs on the reflector's one goroutine
	if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		if !warned {
			// Typically RBAC: without get, list and watch on appprojects
			// no sync window holds any app.
			p.logger.Warn("cannot list or watch AppProjects; sync windows are not read until it works", "err", err)
			warned = true
			return
		}
		p.logger.Debug("list and watch of AppProjects ended", "err", err)
	}); err != nil {
		return fmt.Errorf("set AppProject watch error handler: %w", err)
	}
	inf.RunWithContext(ctx)
	return nil
}
