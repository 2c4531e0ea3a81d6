// Package fake is an in-memory client.Interface for unit tests.
package fake

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/crowsnest/crowsnest/internal/argocd/client"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

// The resources of the fake's object tracker.
var (
	ApplicationsResource    = v1alpha1.SchemeGroupVersion.WithResource("applications")
	AppProjectsResource     = v1alpha1.SchemeGroupVersion.WithResource("appprojects")
	ApplicationSetsResource = v1alpha1.SchemeGroupVersion.WithResource("applicationsets")
)

// Clientset is an in-memory client.Interface for unit tests, on client-go's object
// tracker and reactors, as generated fake clientsets are: tests add
// reactors (PrependReactor) and change objects through Tracker().
type Clientset struct {
	k8stesting.Fake
	tracker k8stesting.ObjectTracker
}

// NewSimpleClientset returns a Clientset holding objects.
func NewSimpleClientset(objects ...runtime.Object) *Clientset {
	scheme := client.Scheme()
	o := k8stesting.NewObjectTracker(scheme, serializer.NewCodecFactory(scheme).UniversalDecoder())
	for _, obj := range objects {
		if err := o.Add(obj); err != nil {
			panic(err)
		}
	}
	f := &Clientset{tracker: o}
	f.AddReactor("*", "*", k8stesting.ObjectReaction(o))
	f.AddWatchReactor("*", func(action k8stesting.Action) (bool, watch.Interface, error) {
		// The options let the tracker serve a streaming list
		// (sendInitialEvents), which client-go's reflectors ask for.
		var opts metav1.ListOptions
		if a, ok := action.(k8stesting.WatchActionImpl); ok {
			opts = a.ListOptions
		}
		w, err := o.Watch(action.GetResource(), action.GetNamespace(), opts)
		return true, w, err
	})
	return f
}

// Tracker returns the fake's objects.
func (f *Clientset) Tracker() k8stesting.ObjectTracker { return f.tracker }

// ArgoprojV1alpha1 implements client.Interface.
func (f *Clientset) ArgoprojV1alpha1() client.ArgoprojV1alpha1Interface { return fakeGroup{f} }

type fakeGroup struct{ f *Clientset }

func (g fakeGroup) Applications(ns string) client.ApplicationInterface {
	return fakeApps{fakeResource{f: g.f, ns: ns, gvr: ApplicationsResource, kind: "Application"}}
}

func (g fakeGroup) AppProjects(ns string) client.AppProjectInterface {
	return fakeTyped[*v1alpha1.AppProjectList]{fakeResource{f: g.f, ns: ns, gvr: AppProjectsResource, kind: "AppProject"}}
}

func (g fakeGroup) ApplicationSets(ns string) client.ApplicationSetInterface {
	return fakeTyped[*v1alpha1.ApplicationSetList]{fakeResource{f: g.f, ns: ns, gvr: ApplicationSetsResource, kind: "ApplicationSet"}}
}

type fakeResource struct {
	f    *Clientset
	ns   string
	gvr  schema.GroupVersionResource
	kind string
}

func (r fakeResource) list(opts metav1.ListOptions) (runtime.Object, error) {
	gvk := v1alpha1.SchemeGroupVersion.WithKind(r.kind)
	return r.f.Invokes(k8stesting.NewListActionWithOptions(r.gvr, gvk, r.ns, opts), nil)
}

func (r fakeResource) watch(opts metav1.ListOptions) (watch.Interface, error) {
	return r.f.InvokesWatch(k8stesting.NewWatchActionWithOptions(r.gvr, r.ns, opts))
}

type fakeApps struct{ fakeResource }

func (a fakeApps) List(_ context.Context, opts metav1.ListOptions) (*v1alpha1.ApplicationList, error) {
	obj, err := a.list(opts)
	if obj == nil {
		return nil, err
	}
	return obj.(*v1alpha1.ApplicationList), err
}

// ListEach lists with List and hands on each app, following continue
// tokens as the REST client does.
func (a fakeApps) ListEach(ctx context.Context, opts metav1.ListOptions, each func(*v1alpha1.Application) error) (*metav1.ListMeta, error) {
	for {
		l, err := a.List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			if err := each(&l.Items[i]); err != nil {
				return nil, err
			}
		}
		if l.Continue == "" {
			return &l.ListMeta, nil
		}
		opts.Continue, opts.ResourceVersion, opts.ResourceVersionMatch = l.Continue, "", ""
	}
}

func (a fakeApps) Watch(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return a.watch(opts)
}

// fakeTyped lists a resource into its list type L and watches it.
type fakeTyped[L runtime.Object] struct{ fakeResource }

func (t fakeTyped[L]) List(_ context.Context, opts metav1.ListOptions) (L, error) {
	obj, err := t.list(opts)
	if obj == nil {
		var none L
		return none, err
	}
	return obj.(L), err
}

func (t fakeTyped[L]) Watch(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return t.watch(opts)
}
