package daemon

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/common/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	versioned "github.com/crowsnest/crowsnest/internal/argocd/client"
	"github.com/crowsnest/crowsnest/internal/collect/source"
)

// kube is the API server connection: its configuration is loaded once and
// shared by the source, the workload watch, leader election and the
// checkpoint.
type kube struct {
	kubeconfig string
	log        *slog.Logger
	rest       *rest.Config
	err        error
}

func newKube(kubeconfig string, logger *slog.Logger) *kube {
	return &kube{kubeconfig: kubeconfig, log: logger}
}

// config returns a copy of the API server configuration: the kubeconfig
// named, else in-cluster, else the usual kubeconfig loading rules.
func (k *kube) config() (*rest.Config, error) {
	if k.rest == nil && k.err == nil {
		k.rest, k.err = loadRestConfig(k.kubeconfig)
	}
	if k.err != nil {
		return nil, k.err
	}
	return rest.CopyConfig(k.rest), nil
}

func loadRestConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	default:
		cfg, err = rest.InClusterConfig()
		if err != nil {
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = userAgent()
	return cfg, nil
}

// argoClient returns the client of Argo CD's resources.
func (k *kube) argoClient() (versioned.Interface, error) {
	// client-go logs through klog; send it to our logger instead.
	klog.SetSlogLogger(k.log.With("component", "client-go"))
	rc, err := k.config()
	if err != nil {
		return nil, err
	}
	client, err := versioned.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create Argo CD client: %w", err)
	}
	return client, nil
}

// workloads returns the watch of the workload kinds, each joined to its
// app by tracking.
func (k *kube) workloads(kinds []string, tracking source.Tracking) (*source.Workloads, error) {
	rc, err := k.config()
	if err != nil {
		return nil, err
	}
	return workloadsOf(rc, kinds, tracking, k.log.With("component", "workloads"))
}

// userAgent is how crowsnest names itself to every API server.
func userAgent() string { return "crowsnest/" + version.Version }

// workloadsOf returns the watch of the workload kinds of the API server of
// rc (crowsnest's own, or a spoke's), each joined to its app by tracking.
func workloadsOf(rc *rest.Config, kinds []string, tracking source.Tracking, logger *slog.Logger) (*source.Workloads, error) {
	lists := rest.CopyConfig(rc)
	lists.DisableCompression = versioned.UncompressedLists // see there
	dyn, err := dynamic.NewForConfig(lists)
	if err != nil {
		return nil, fmt.Errorf("workload client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	return source.NewWorkloads(dyn, disc, kinds, tracking, logger), nil
}

// ownNamespace is where crowsnest keeps its own objects (the Lease, the
// checkpoint): --leader-elect.namespace, else $POD_NAMESPACE, else default.
func (o *Options) ownNamespace() string {
	if ns := o.Leader.Namespace; ns != "" {
		return ns
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "default"
}
