// Package restjson builds REST clients of the API server that speak JSON
// for a few known types, without the typed clientset: the checkpoint's
// ConfigMap. (The leader election uses client-go's typed coordination
// client, as tools/leaderelection does.)
package restjson

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// NewClient returns a REST client of group version gv (under apiPath:
// "/api" for the core group, "/apis" for the others) on the API server of
// c, decoding objs, in JSON.
func NewClient(c *rest.Config, gv schema.GroupVersion, apiPath string, objs ...runtime.Object) (*rest.RESTClient, error) {
	scheme := runtime.NewScheme()
	scheme.AddKnownTypes(gv, objs...)
	metav1.AddToGroupVersion(scheme, gv)
	cfg := rest.CopyConfig(c)
	cfg.GroupVersion, cfg.APIPath = &gv, apiPath
	cfg.ContentType, cfg.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	cfg.NegotiatedSerializer = serializer.WithoutConversionCodecFactory{CodecFactory: serializer.NewCodecFactory(scheme)}
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", gv, err)
	}
	return rc, nil
}
