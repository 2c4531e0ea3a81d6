// Package client reads Argo CD's Applications, AppProjects and
// ApplicationSets from the
// Kubernetes API server: list and watch, into the lean types of
// internal/argocd/v1alpha1. It is the small part of Argo CD's generated
// clientset crowsnest uses (which would bring Argo CD's whole type
// package, see v1alpha1's doc), on client-go's REST client, so it speaks
// the same protocol: JSON, list and watch options as query parameters.
package client

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

// Interface reads Applications, AppProjects and ApplicationSets.
type Interface interface {
	ArgoprojV1alpha1() ArgoprojV1alpha1Interface
}

// ArgoprojV1alpha1Interface reads the argoproj.io/v1alpha1 resources.
type ArgoprojV1alpha1Interface interface {
	Applications(namespace string) ApplicationInterface
	AppProjects(namespace string) AppProjectInterface
	ApplicationSets(namespace string) ApplicationSetInterface
}

// ApplicationInterface lists and watches Applications of a namespace
// ("" for all).
type ApplicationInterface interface {
	List(ctx context.Context, opts metav1.ListOptions) (*v1alpha1.ApplicationList, error)
	// ListEach lists as List does, handing each Application to each as
	// it is read, and returns the list's metadata.
	ListEach(ctx context.Context, opts metav1.ListOptions, each func(*v1alpha1.Application) error) (*metav1.ListMeta, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// ListWatcher lists and watches one resource of a namespace ("" for all)
// into its list type L.
type ListWatcher[L runtime.Object] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// AppProjectInterface lists and watches AppProjects.
type AppProjectInterface = ListWatcher[*v1alpha1.AppProjectList]

// ApplicationSetInterface lists and watches ApplicationSets.
type ApplicationSetInterface = ListWatcher[*v1alpha1.ApplicationSetList]

// Scheme returns a scheme with the argoproj.io/v1alpha1 types crowsnest
// reads.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err) // AddToScheme cannot fail
	}
	return s
}

// UncompressedLists is rest.Config.DisableCompression for the clients
// crowsnest lists big collections with (Applications, workloads): without
// it, Go's transport asks for gzip and kube-apiserver compresses every list
// response over 128 KiB (APIResponseCompression), at the default level:
// for 10,000 Applications of 50 resources that is 320 MB of JSON
// compressed by the API server and inflated by crowsnest at every start.
// Lists are read once at start-up and after a lost watch, over the
// cluster's network, where the bytes cost less than the CPU on both sides.
const UncompressedLists = true

// Clientset is the REST implementation of Interface.
type Clientset struct {
	rest   rest.Interface
	params runtime.ParameterCodec
}

// NewForConfig returns a Clientset for the API server of c.
func NewForConfig(c *rest.Config) (*Clientset, error) {
	scheme := Scheme()
	cfg := rest.CopyConfig(c)
	cfg.GroupVersion = &v1alpha1.SchemeGroupVersion
	cfg.APIPath = "/apis"
	cfg.ContentType = runtime.ContentTypeJSON
	cfg.AcceptContentTypes = runtime.ContentTypeJSON
	cfg.NegotiatedSerializer = serializer.WithoutConversionCodecFactory{CodecFactory: serializer.NewCodecFactory(scheme)}
	cfg.DisableCompression = UncompressedLists
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("argoproj.io/v1alpha1 client: %w", err)
	}
	return &Clientset{rest: rc, params: runtime.NewParameterCodec(scheme)}, nil
}

// ArgoprojV1alpha1 implements Interface.
func (c *Clientset) ArgoprojV1alpha1() ArgoprojV1alpha1Interface { return c }

// Applications implements ArgoprojV1alpha1Interface.
func (c *Clientset) Applications(namespace string) ApplicationInterface {
	return apps{resource{c: c, ns: namespace, name: "applications"}}
}

// AppProjects implements ArgoprojV1alpha1Interface.
func (c *Clientset) AppProjects(namespace string) AppProjectInterface {
	return typed[*v1alpha1.AppProjectList]{resource{c: c, ns: namespace, name: "appprojects"}, func() *v1alpha1.AppProjectList { return &v1alpha1.AppProjectList{} }}
}

// ApplicationSets implements ArgoprojV1alpha1Interface.
func (c *Clientset) ApplicationSets(namespace string) ApplicationSetInterface {
	return typed[*v1alpha1.ApplicationSetList]{resource{c: c, ns: namespace, name: "applicationsets"}, func() *v1alpha1.ApplicationSetList { return &v1alpha1.ApplicationSetList{} }}
}

// resource lists and watches one resource of a namespace.
type resource struct {
	c    *Clientset
	ns   string
	name string
}

func (r resource) list(ctx context.Context, opts metav1.ListOptions, into runtime.Object) error {
	err := r.c.rest.Get().Namespace(r.ns).Resource(r.name).VersionedParams(&opts, r.c.params).Do(ctx).Into(into)
	if err != nil {
		return fmt.Errorf("list %s: %w", r.name, err)
	}
	return nil
}

func (r resource) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	w, err := r.c.rest.Get().Namespace(r.ns).Resource(r.name).VersionedParams(&opts, r.c.params).Watch(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", r.name, err)
	}
	return w, nil
}

type apps struct{ resource }

func (a apps) List(ctx context.Context, opts metav1.ListOptions) (*v1alpha1.ApplicationList, error) {
	l := &v1alpha1.ApplicationList{}
	if err := a.list(ctx, opts, l); err != nil {
		return nil, err
	}
	return l, nil
}

func (a apps) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return a.watch(ctx, opts)
}

// typed lists a resource into a new L and watches it.
type typed[L runtime.Object] struct {
	resource
	newList func() L
}

func (t typed[L]) List(ctx context.Context, opts metav1.ListOptions) (L, error) {
	l := t.newList()
	if err := t.list(ctx, opts, l); err != nil {
		var none L
		return none, err
	}
	return l, nil
}

func (t typed[L]) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return t.watch(ctx, opts)
}
