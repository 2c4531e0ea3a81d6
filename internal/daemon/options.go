package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/crowsnest/crowsnest/internal/collect/source"
	"github.com/crowsnest/crowsnest/internal/demo"
	"github.com/crowsnest/crowsnest/internal/trace"
)

// The sources of Applications (Options.Source).
const (
	SourceKubernetes = "kubernetes" // a watch of the API server
	SourceArgoCDAPI  = "argocd-api" // argocd-server's API, with a token
	SourceReplay     = "replay"     // a recording made by `crowsnest record`
)

// Options is everything the daemon is told: cmd/exporter parses its flags
// into one, Validate checks it once, Run builds and runs the pipeline from
// it. A zero field means the feature is off, unless its doc says otherwise.
type Options struct {
	Kubeconfig string   // empty: in-cluster, else $KUBECONFIG or ~/.kube/config
	Namespaces []string // whose Applications to watch; empty: all

	ConfigFile    string // environment rules; empty: BuiltinConfig
	BuiltinConfig []byte // the configuration without a file (the demo's); nil: every env "unknown"
	// Guide is logged once crowsnest serves: where a newcomer looks (the
	// demo's: its /metrics URL and traces file), as key/value pairs after
	// the message; nil: nothing.
	Guide []any

	Web         *web.FlagConfig
	MetricsPath string
	Lifecycle   bool // serve POST /-/reload
	HTTP        HTTPTimeouts

	Source string // SourceKubernetes, SourceArgoCDAPI or SourceReplay
	Replay ReplayOptions
	ArgoCD ArgoCDOptions

	GrafanaURL       string
	PerAppHistograms bool
	AppLabels        []string // Application labels exposed and carried by pages

	MemLimitRatio float64 // share of the container's memory limit for GOMEMLIMIT; 0: off
	GCPercent     int     // GOGC once ready

	Traces        TraceOptions
	WorkloadKinds string // comma-separated (source.ParseWorkloadKinds); Kubernetes source only
	// WorkloadsCluster is Argo CD's name for the cluster crowsnest runs in:
	// apps deployed there join its workloads. Empty: v1alpha1.InClusterName.
	WorkloadsCluster string
	// ClustersDir holds Argo CD cluster Secrets, one directory each, of the
	// other clusters whose workloads to watch (clusters.Load); empty: none.
	ClustersDir string

	Leader     LeaderOptions
	Checkpoint CheckpointOptions
	Shard      ShardOptions

	Loki         LokiOptions
	Alertmanager AlertmanagerOptions
	Deployments  DeploymentOptions
	CloudEvents  CloudEventsOptions
}

// HTTPTimeouts bound the HTTP server's requests.
type HTTPTimeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// ReplayOptions describe a replayed recording: a file, or Data in memory
// (the demo's), named Name in logs.
type ReplayOptions struct {
	File  string
	Data  []byte
	Name  string
	Speed float64 // 2: twice as fast as recorded; 0: without waiting
}

// ArgoCDOptions say how to reach and link to Argo CD.
type ArgoCDOptions struct {
	Server, TokenFile, CAFile    string
	PlainText, Insecure, GRPCWeb bool
	ResyncPeriod                 time.Duration   // argocd-api source: full list compared this often
	URL                          string          // the UI's base URL, for links
	SyncWaveDelay                time.Duration   // the controller's ARGOCD_SYNC_WAVE_DELAY
	Tracking                     source.Tracking // how Argo CD names the app owning a live object
}

// TraceOptions choose where traces of sync operations go; empty fields
// are left to the OTEL_* environment (trace.ResolveConfig).
type TraceOptions struct {
	Exporter, Endpoint, Protocol string
	// File is where the file exporter writes spans (--traces.file).
	File string
	// Default is the exporter when neither the options nor the
	// environment choose one and no endpoint is set (the demo: file).
	Default string
}

// DemoTracesFile is where the demo writes its traces unless told
// otherwise: a file, so that the terminal shows crowsnest's log.
func DemoTracesFile() string { return filepath.Join(os.TempDir(), "crowsnest-demo-traces.jsonl") }

// LeaderOptions configure leader election among replicas.
type LeaderOptions struct {
	Elect                      bool
	Namespace                  string // of the Lease and the checkpoint; empty: $POD_NAMESPACE, else default
	LeaseName                  string
	LeaseDuration, RetryPeriod time.Duration
}

// CheckpointOptions name the checkpoint ConfigMap; empty: none.
type CheckpointOptions struct {
	ConfigMap string
	Interval  time.Duration
}

// ShardOptions split the Applications among processes. Index is kept as
// given (the chart passes a pod label) so an empty one is explained.
type ShardOptions struct {
	Index string
	Total int
}

// LokiOptions configure the Loki shipper; no URL: none.
type LokiOptions struct {
	URL, Username, PasswordFile, BearerTokenFile, Tenant, Job string
	BufferSize, MaxRetries, MaxLineBytes                      int
	Timeout                                                   time.Duration
}

// AlertmanagerOptions configure direct paging; no URLs: none.
type AlertmanagerOptions struct {
	URLs                      []string
	Interval, Resend, Timeout time.Duration
	ExternalLabels            map[string]string
	RunbookURL                string
	ForScale                  float64 // scales the alerts' for durations (tests)
}

// DeploymentOptions configure the DORA measurements.
type DeploymentOptions struct {
	FailureWindow, CommitTimeout time.Duration
}

// CloudEventsOptions configure the CloudEvents of deployments; no URL: none.
type CloudEventsOptions struct {
	URL, Source string
	BufferSize  int
}

// UseDemo turns o into the demo's, once, so that nothing downstream asks
// whether this is the demo: the recording built into the binary replayed
// at 10× (unless speedSet), the demo's configuration unless a file is
// given, traces to a file (DemoTracesFile) unless told otherwise, so the
// terminal shows the log, which says where to look, and nothing read from
// Argo CD.
func (o *Options) UseDemo(speedSet bool) {
	o.Source = SourceReplay
	o.Replay = ReplayOptions{Data: demo.Recording(), Name: "demo recording", Speed: o.Replay.Speed}
	if !speedSet {
		o.Replay.Speed = 10
	}
	if o.ConfigFile == "" {
		o.BuiltinConfig = demo.Config()
	}
	o.Traces.Default = trace.ExporterFile
	if o.Traces.File == "" {
		o.Traces.File = DemoTracesFile()
	}
	o.Guide = []any{"metrics", "http://" + localAddress(o.Web) + "/metrics", "traces", o.Traces.File,
		"facts", "the log lines below: sync started, wave entered, sync finished, drift began..."}
	o.ArgoCD.Server = ""
}

// shard returns the shard the options name (shard 0 if Index is not a
// number: Validate says so).
func (o *Options) shard() source.Shard {
	i, _ := strconv.Atoi(o.Shard.Index)
	return source.Shard{Index: i, Total: o.Shard.Total}
}

// sourceName describes the source for the start-up log line.
func (o *Options) sourceName() string {
	if o.Source == SourceReplay && o.Replay.Name != "" {
		return o.Replay.Name
	}
	return o.Source
}

// kubernetes reports whether Applications come from the API server: the
// workloads, AppProjects, leader election and the checkpoint need it.
func (o *Options) kubernetes() bool { return o.Source == SourceKubernetes }

// Validate checks what flag parsing cannot; each error names its flag,
// all of them at once, sorted.
func (o *Options) Validate() error {
	var errs []error
	switch p := o.MetricsPath; {
	case !strings.HasPrefix(p, "/"):
		errs = append(errs, fmt.Errorf("--web.telemetry-path: %q must start with /", p))
	case p == "/healthz" || p == "/readyz" || p == "/-/reload":
		errs = append(errs, fmt.Errorf("--web.telemetry-path: %s is crowsnest's own endpoint", p))
	}
	for flag, d := range map[string]time.Duration{
		"--alertmanager.evaluation-interval": o.Alertmanager.Interval,
		"--alertmanager.resend-interval":     o.Alertmanager.Resend,
		"--alertmanager.timeout":             o.Alertmanager.Timeout,
		"--argocd.resync-period":             o.ArgoCD.ResyncPeriod,
		"--web.read-header-timeout":          o.HTTP.ReadHeader,
		"--web.read-timeout":                 o.HTTP.Read,
		"--web.write-timeout":                o.HTTP.Write,
		"--web.idle-timeout":                 o.HTTP.Idle,
		"--loki.timeout":                     o.Loki.Timeout,
		"--leader-elect.lease-duration":      o.Leader.LeaseDuration,
		"--leader-elect.retry-period":        o.Leader.RetryPeriod,
		"--deployments.failure-window":       o.Deployments.FailureWindow,
		"--deployments.commit-timeout":       o.Deployments.CommitTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", flag, d))
		}
	}
	if o.ArgoCD.SyncWaveDelay < 0 {
		errs = append(errs, fmt.Errorf("--argocd.sync-wave-delay: must not be negative, got %s", o.ArgoCD.SyncWaveDelay))
	}
	if o.Replay.Speed < 0 {
		errs = append(errs, fmt.Errorf("--replay.speed: must not be negative, got %v", o.Replay.Speed))
	}
	if r := o.MemLimitRatio; r < 0 || r > 1 {
		errs = append(errs, fmt.Errorf("--runtime.gomemlimit-ratio: %v is not between 0 and 1", r))
	}
	if o.GCPercent < -1 {
		errs = append(errs, fmt.Errorf("--runtime.gogc: %d is neither a percentage nor -1 (off)", o.GCPercent))
	}
	if err := o.ArgoCD.Tracking.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.shardError(); err != nil {
		errs = append(errs, err)
	}
	if o.Leader.Elect && o.Leader.RetryPeriod >= o.Leader.LeaseDuration {
		errs = append(errs, fmt.Errorf("--leader-elect.retry-period: %s must be shorter than --leader-elect.lease-duration %s", o.Leader.RetryPeriod, o.Leader.LeaseDuration))
	}
	if o.Leader.Elect && !o.kubernetes() {
		errs = append(errs, errors.New("--leader-elect needs the Kubernetes source"))
	}
	if o.ClustersDir != "" && !o.kubernetes() {
		errs = append(errs, errors.New("--clusters.dir needs the Kubernetes source"))
	}
	if o.Checkpoint.ConfigMap != "" && !o.kubernetes() {
		errs = append(errs, errors.New("--checkpoint.configmap needs the Kubernetes source"))
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// shardError checks --shard and --total-shards. --shard is read as a
// string to say what went wrong when the chart's StatefulSet passes an empty
// one: a Kubernetes older than 1.28 sets no pod-index label.
func (o *Options) shardError() error {
	if _, err := strconv.Atoi(o.Shard.Index); err != nil {
		return fmt.Errorf("--shard: %q is not a number (in the chart's StatefulSet it is the pod's apps.kubernetes.io/pod-index label, which Kubernetes sets from 1.28 on)", o.Shard.Index)
	}
	return o.shard().Validate()
}

// perShard is name with "-<shard>-of-<total>" when sharded: the Lease and
// the checkpoint of this process's shard. The total is part of the name so
// that while a StatefulSet rolls from one shard count to another, processes
// of the old and the new count, which own different apps, never share a
// Lease (that would leave apps without anyone sending their traces).
func (o *Options) perShard(name string) string {
	s := o.shard()
	if name == "" || !s.Sharded() {
		return name
	}
	return fmt.Sprintf("%s-%d-of-%d", name, s.Index, s.Total)
}

// localAddress is the first address crowsnest listens on as a browser on
// this machine reaches it: localhost when it listens on every interface.
func localAddress(w *web.FlagConfig) string {
	addr := ":9829"
	if w != nil && w.WebListenAddresses != nil && len(*w.WebListenAddresses) > 0 {
		addr = (*w.WebListenAddresses)[0]
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
