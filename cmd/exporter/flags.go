package main

import (
	"io"
	"log/slog"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	webflag "github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/checkpoint"
	"github.com/crowsnest/crowsnest/internal/collect/source"
	"github.com/crowsnest/crowsnest/internal/daemon"
)

// defaultListenAddress is crowsnest's default port.
const defaultListenAddress = ":9829"

// cli is the command line: kingpin's flags, parsed into the daemon's
// Options (serve) or the recorder's (record).
type cli struct {
	app    *kingpin.Application
	stderr io.Writer
	log    *promslog.Config

	exited   bool // --help or --version was handled
	exitCode int

	serve, record, checkConfig *kingpin.CmdClause

	opts daemon.Options
	rec  daemon.RecordOptions

	// Parsed further by options.
	namespaces []string // comma-separated or repeated
	appLabels  string   // comma-separated
	demo       bool
	speedSet   bool     // --replay.speed was given
	checkFiles []string // check-config's files
}

// newCLI defines the command line; its help goes to stdout, its errors to
// stderr.
func newCLI(stdout, stderr io.Writer) *cli {
	c := &cli{stderr: stderr, log: &promslog.Config{}}
	o := &c.opts
	o.Alertmanager.ExternalLabels = map[string]string{} // kingpin's StringMapVar adds to it
	a := kingpin.New("crowsnest", "Watches Argo CD Applications and serves Prometheus metrics about their sync state, health, drift and sync operations.")
	a.UsageWriter(stdout)
	a.ErrorWriter(stderr)
	// --help and --version end the program; run() decides how.
	a.Terminate(func(code int) { c.exited, c.exitCode = true, code })
	a.Version(version.Print("crowsnest"))
	a.HelpFlag.Short('h')
	promslogflag.AddFlags(a, c.log)
	c.serve = a.Command("serve", "Watch Applications and serve metrics (the default command). The other command, record, writes the Application watch events to a file: crowsnest record --help.").Default()
	c.record = a.Command("record", "Record the Application watch events as JSON lines, for --source=replay and for tests.")
	c.checkConfig = a.Command("check-config", "Validate configuration files (--config.file) as crowsnest would load them, without starting: for CI before a rollout. Exits 1 naming the file, line and field of the first error of each file.")
	c.checkConfig.Arg("file", "Configuration files to check.").Required().ExistingFilesVar(&c.checkFiles)

	a.Flag("kubeconfig", "Path to a kubeconfig file. Empty: the in-cluster service account, else $KUBECONFIG or ~/.kube/config.").StringVar(&o.Kubeconfig)
	a.Flag("namespaces", "Namespaces whose Applications to watch, comma-separated or repeated. Empty: all namespaces.").StringsVar(&c.namespaces)
	trackingFlags(a, &o.ArgoCD.Tracking)
	c.serve.Flag("demo", "Replay the demo recording built into the binary, then keep serving its final state.").BoolVar(&c.demo)
	c.record.Flag("out", "File to write the recording to; - for standard output.").Required().StringVar(&c.rec.Out)
	c.record.Flag("duration", "Stop recording after this long; 0 records until interrupted.").Default("0").DurationVar(&c.rec.Duration)
	c.webFlags(o)
	c.sourceFlags(o)
	c.runtimeFlags(o)
	c.replicaFlags(o)
	c.outputFlags(o)
	c.app = a
	return c
}

// options returns the daemon's Options from the parsed flags; --demo is
// resolved here, once, into a source and defaults.
func (c *cli) options() daemon.Options {
	o := c.opts
	o.Namespaces = c.watchedNamespaces()
	o.AppLabels = splitList(c.appLabels)
	if c.demo {
		o.UseDemo(c.speedSet)
	}
	return o
}

// recordOptions returns the recorder's options from the parsed flags.
func (c *cli) recordOptions() daemon.RecordOptions {
	r := c.rec
	r.Kubeconfig, r.Namespaces, r.Tracking = c.opts.Kubeconfig, c.watchedNamespaces(), c.opts.ArgoCD.Tracking
	return r
}

func (c *cli) logger() *slog.Logger {
	cfg := *c.log
	cfg.Writer = c.stderr
	return promslog.New(&cfg)
}

// watchedNamespaces splits comma-separated values of --namespaces.
func (c *cli) watchedNamespaces() []string {
	var out []string
	for _, v := range c.namespaces {
		out = append(out, splitList(v)...)
	}
	return out
}

// splitList splits a comma-separated flag value, dropping empty items and
// the space around each.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// webFlags adds the flags of the HTTP server and the configuration file.
func (c *cli) webFlags(o *daemon.Options) {
	c.serve.Flag("config.file", "Path to the configuration file (environment rules). Empty: every app's env is \"unknown\".").StringVar(&o.ConfigFile)
	o.Web = webflag.AddFlags(c.serve, defaultListenAddress)
	c.serve.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&o.MetricsPath)
	c.serve.Flag("web.enable-lifecycle", "Serve POST /-/reload (reloads --config.file, as SIGHUP does). Off by default, as in Prometheus: it needs no credentials beyond --web.config.file's.").BoolVar(&o.Lifecycle)
	c.serve.Flag("web.read-header-timeout", "Time limit for reading a request's headers.").Default("10s").DurationVar(&o.HTTP.ReadHeader)
	c.serve.Flag("web.read-timeout", "Time limit for reading a whole request.").Default("30s").DurationVar(&o.HTTP.Read)
	c.serve.Flag("web.write-timeout", "Time limit for writing a response (a scrape of 10,000 apps takes well under a second).").Default("1m").DurationVar(&o.HTTP.Write)
	c.serve.Flag("web.idle-timeout", "How long a kept-alive connection may idle.").Default("2m").DurationVar(&o.HTTP.Idle)
}

// sourceFlags adds the flags of where Applications come from and how Argo CD is reached and linked to.
func (c *cli) sourceFlags(o *daemon.Options) {
	c.serve.Flag("source", "Where Applications come from: kubernetes (a watch), argocd-api (the Argo CD API with a token) or replay (a recording made by 'crowsnest record').").Default("kubernetes").EnumVar(&o.Source, "kubernetes", "argocd-api", "replay")
	c.serve.Flag("argocd.server", "Argo CD API server host:port: the source with --source=argocd-api; beside the Kubernetes source, where deployments' commit metadata (author, date: lead time) comes from. Empty with the Kubernetes source: no lead time.").StringVar(&o.ArgoCD.Server)
	c.serve.Flag("argocd.token-file", "File holding an Argo CD API token (e.g. of a read-only account), for --argocd.server. Read again at every reconnect: a rotated token is picked up once the old one is rejected.").StringVar(&o.ArgoCD.TokenFile)
	c.serve.Flag("argocd.url", "Base URL of the Argo CD UI, e.g. https://argocd.example.com: pages and alerts link to each app there (annotation argocd_url), and the dashboards through crowsnest_links_info. Empty: no Argo CD links.").StringVar(&o.ArgoCD.URL)
	c.serve.Flag("grafana.url", "Base URL of the Grafana that has crowsnest's dashboards, e.g. https://grafana.example.com: pages and alerts link to the dashboard (annotation dashboard_url). Empty: the link is relative (/d/...).").StringVar(&o.GrafanaURL)
	c.serve.Flag("argocd.resync-period", "With --source=argocd-api: how often the full list of Applications is compared with what the watch delivered (argocd-server drops watch events when a client falls behind, and sends no deletions after a reconnect).").Default("5m").DurationVar(&o.ArgoCD.ResyncPeriod)
	c.serve.Flag("argocd.ca-file", "PEM file of the certificate authorities to verify argocd-server's TLS certificate with (instead of the system's; rather than --argocd.insecure).").StringVar(&o.ArgoCD.CAFile)
	c.serve.Flag("argocd.plaintext", "Talk to the Argo CD API without TLS.").BoolVar(&o.ArgoCD.PlainText)
	c.serve.Flag("argocd.insecure", "Do not verify the Argo CD API server's certificate.").BoolVar(&o.ArgoCD.Insecure)
	c.serve.Flag("argocd.grpc-web", "Deprecated, no effect: crowsnest talks to argocd-server's REST API (HTTP/1.1 or HTTP/2), which passes every proxy gRPC-Web passes. Still accepted so existing command lines keep working.").BoolVar(&o.ArgoCD.GRPCWeb)
	c.serve.Flag("replay.file", "Recording to replay with --source=replay.").StringVar(&o.Replay.File)
	c.serve.Flag("replay.speed", "Replay speed factor: 2 replays twice as fast as recorded, 0 without waiting. Default 1, or 10 with --demo.").IsSetByUser(&c.speedSet).Default("1").Float64Var(&o.Replay.Speed)
	c.serve.Flag("argocd.sync-wave-delay", "The delay Argo CD's application controller waits after each sync wave but the last (its ARGOCD_SYNC_WAVE_DELAY): Argo CD writes a wave's results only after it, so crowsnest dates the wave's start back by it.").Default("2s").DurationVar(&o.ArgoCD.SyncWaveDelay)
	c.serve.Flag("workloads.cluster", "The name Argo CD gives the cluster crowsnest runs in (its in-cluster cluster, or the cluster Secret naming it). The workloads crowsnest watches join only apps deployed there: destination name this, or server "+v1alpha1.KubernetesInternalAPIServerAddr+" or the URL crowsnest reaches the API server at. Apps deployed to other clusters get no workload series, events or hook waves.").Default(v1alpha1.InClusterName).StringVar(&o.WorkloadsCluster)
	c.serve.Flag("clusters.dir", "Directory of Argo CD cluster Secrets (one sub-directory per Secret, holding its keys name, server and config, as a mounted Secret volume does) of other clusters whose workloads to watch with their credentials: apps deployed there get workload series, events and hook waves. Give read-only tokens for the workload kinds; AWS and exec authentication are not supported. Empty: only the cluster crowsnest runs in.").StringVar(&o.ClustersDir)
	c.serve.Flag("workloads.kinds", "Workload kinds to watch and join to their Application (Kubernetes source only), comma-separated: "+source.DefaultWorkloadKinds+". Rollouts and certificates are watched only when their CRDs exist. Empty: none.").Default(source.DefaultWorkloadKinds).StringVar(&o.WorkloadKinds)
}

// runtimeFlags adds the flags of the Go runtime and of what /metrics exposes.
func (c *cli) runtimeFlags(o *daemon.Options) {
	c.serve.Flag("runtime.gomemlimit-ratio", "Set the Go runtime's soft memory limit (GOMEMLIMIT) to this share of the container's memory limit (cgroup v2 memory.max or v1 memory.limit_in_bytes), so the garbage collector works harder before the container is OOM-killed. 0 turns it off; a GOMEMLIMIT environment variable takes precedence.").Default("0.9").Float64Var(&o.MemLimitRatio)
	c.serve.Flag("runtime.gogc", "The Go garbage collector's GOGC: how far, in percent of the live heap, the heap may grow before the next collection. Below Go's 100 because crowsnest's heap is almost all its long-lived cache (apps, rendered series), whose garbage is small: 50 keeps the resident size near what is live for little CPU (docs/scale.md). It applies once the initial list is handled; until then the collector runs at no less than Go's 100, as the start-up's garbage is large and short-lived. A GOGC environment variable takes precedence; -1 turns the collector off as GOGC=off does.").Default("50").IntVar(&o.GCPercent)
	c.serve.Flag("metrics.app-labels-allowlist", "Application labels, comma-separated (e.g. team,app.kubernetes.io/part-of), exposed on crowsnest_app_labels as label_<name> and carried by the alerts paged directly; the chart's rules join the same series (as kube-state-metrics' --metric-labels-allowlist). Empty: none.").PlaceHolder("LABEL,...").StringVar(&c.appLabels)
	c.serve.Flag("metrics.per-app-histograms", "Also expose crowsnest_app_sync_duration_seconds, a histogram per Application. Its series grow with apps times buckets: for small fleets.").BoolVar(&o.PerAppHistograms)
}

// replicaFlags adds the flags of running several processes: leader election, shards, the checkpoint.
func (c *cli) replicaFlags(o *daemon.Options) {
	c.serve.Flag("leader-elect", "Run several replicas: all serve /metrics, only the holder of a Lease sends traces, Loki events and pages (Kubernetes source).").BoolVar(&o.Leader.Elect)
	c.serve.Flag("leader-elect.namespace", "Namespace of the Lease. Default: $POD_NAMESPACE, else default.").StringVar(&o.Leader.Namespace)
	c.serve.Flag("leader-elect.lease-name", "Name of the Lease; with --total-shards > 1, each shard's Lease is this name followed by -<shard>-of-<total>.").Default("crowsnest").StringVar(&o.Leader.LeaseName)
	c.serve.Flag("leader-elect.lease-duration", "How long a crashed leader's Lease holds before another replica takes over.").Default("15s").DurationVar(&o.Leader.LeaseDuration)
	c.serve.Flag("leader-elect.retry-period", "How often a replica that does not lead tries to take the Lease (client-go adds up to 1.2 times as much jitter): how soon it leads after the leader stops gracefully.").Default("500ms").DurationVar(&o.Leader.RetryPeriod)
	c.serve.Flag("shard", "This process's shard, from 0 to --total-shards - 1: it watches, serves and reports only the Applications whose UID hashes to it (Jump consistent hash of the UID's FNV-1a hash, as kube-state-metrics shards). In the chart's StatefulSet, the pod's ordinal.").Default("0").StringVar(&o.Shard.Index)
	c.serve.Flag("total-shards", "How many shards split the Applications; 1: unsharded. Each shard elects its own leader (Lease <--leader-elect.lease-name>-<shard>-of-<total>).").Default("1").IntVar(&o.Shard.Total)
	c.serve.Flag("checkpoint.configmap", "ConfigMap (in --leader-elect.namespace, default $POD_NAMESPACE) where crowsnest keeps what a restart must not lose: the watermark of the operations counted, so that syncs and deployments that finish while it is down are counted (with their events) once after it starts, and the open failure windows. With --total-shards > 1 each shard's is this name followed by -<shard>-of-<total>. Kubernetes source only. Empty: none (a restart forgets them).").StringVar(&o.Checkpoint.ConfigMap)
	c.serve.Flag("checkpoint.interval", "How often a changed checkpoint is saved (and once at a graceful stop): after a crash, what finished in the last interval is counted again.").Default(checkpoint.DefaultInterval.String()).DurationVar(&o.Checkpoint.Interval)
}

// outputFlags adds the flags of what leaves the process: Loki, Alertmanager, DORA, CloudEvents, traces.
func (c *cli) outputFlags(o *daemon.Options) {
	c.serve.Flag("traces.exporter", "Where traces of sync operations go: otlp, stdout (JSON lines), file (JSON lines to --traces.file) or none. Default: $OTEL_TRACES_EXPORTER, else otlp when an OTLP endpoint is set, else none; file with --demo.").EnumVar(&o.Traces.Exporter, "", "otlp", "stdout", "file", "none")
	c.serve.Flag("traces.file", "The file --traces.exporter=file writes spans to, one JSON object per line, rewritten at each start. Default with --demo: crowsnest-demo-traces.jsonl in the temporary directory.").StringVar(&o.Traces.File)
	c.serve.Flag("traces.otlp.endpoint", "OTLP endpoint URL, e.g. http://tempo:4318 (http/protobuf) or http://tempo:4317 (grpc); https for TLS. Default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT.").StringVar(&o.Traces.Endpoint)
	c.serve.Flag("traces.otlp.protocol", "OTLP protocol: grpc or http/protobuf. Default: $OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf.").EnumVar(&o.Traces.Protocol, "", "grpc", "http/protobuf")
	c.serve.Flag("loki.url", "Loki to push the tracker's facts to as JSON lines, e.g. http://loki:3100. Empty: facts are only logged.").StringVar(&o.Loki.URL)
	c.serve.Flag("loki.username", "User name for basic auth to Loki; the password comes from --loki.password-file.").StringVar(&o.Loki.Username)
	c.serve.Flag("loki.password-file", "File holding the password for basic auth to Loki (with --loki.username). Read at start; never logged.").StringVar(&o.Loki.PasswordFile)
	c.serve.Flag("loki.bearer-token-file", "File holding a bearer token for Loki, sent as \"Authorization: Bearer\" (not with --loki.username). Read at start; never logged.").StringVar(&o.Loki.BearerTokenFile)
	c.serve.Flag("loki.tenant", "Loki tenant (X-Scope-OrgID).").StringVar(&o.Loki.Tenant)
	c.serve.Flag("loki.job", "Value of the job stream label of crowsnest's Loki streams.").Default("crowsnest").StringVar(&o.Loki.Job)
	c.serve.Flag("loki.buffer-size", "Events waiting to be pushed; when full, new ones are dropped and counted.").Default("10000").IntVar(&o.Loki.BufferSize)
	c.serve.Flag("loki.timeout", "Time limit of one push to Loki.").Default("10s").DurationVar(&o.Loki.Timeout)
	c.serve.Flag("loki.max-line-bytes", "Most bytes of one pushed line (at least 1024): a longer line has its largest values cut, marked and counted. Keep it under Loki's max_line_size (256KB by default).").Default("65536").IntVar(&o.Loki.MaxLineBytes)
	c.serve.Flag("loki.max-retries", "Retries of a push that got 429, 5xx or no answer, with backoff from 500ms to 30s; then the batch is dropped and counted.").Default("10").IntVar(&o.Loki.MaxRetries)
	c.serve.Flag("alertmanager.url", "Alertmanager to page directly (API v2), e.g. http://alertmanager:9093; repeatable. crowsnest then evaluates its alerts that judge one app's present state (sync failed, degraded, drift, stuck, retrying, unknown) on its own state, with the labels of the Prometheus rules, so Alertmanager deduplicates both.").StringsVar(&o.Alertmanager.URLs)
	c.serve.Flag("alertmanager.evaluation-interval", "How often crowsnest evaluates the alerts for direct paging.").Default("1s").DurationVar(&o.Alertmanager.Interval)
	c.serve.Flag("alertmanager.resend-interval", "How often firing alerts are sent again.").Default("1m").DurationVar(&o.Alertmanager.Resend)
	c.serve.Flag("alertmanager.timeout", "Time limit for posting to one Alertmanager, retries included.").Default("10s").DurationVar(&o.Alertmanager.Timeout)
	c.serve.Flag("alertmanager.external-label", "A label NAME=VALUE added to every alert paged directly, as Prometheus adds its external_labels to its rules' alerts; repeatable. Give it the external labels of the Prometheus that evaluates crowsnest's rules (the Prometheus Operator sets prometheus=\"<namespace>/<name>\", and often cluster), so Alertmanager holds one alert for both paths.").PlaceHolder("NAME=VALUE").StringMapVar(&o.Alertmanager.ExternalLabels)
	c.serve.Flag("alertmanager.runbook-url", "The base of the runbook_url annotation of the alerts paged directly, as the rules have it (the chart's prometheusRule.runbookURL); empty: the project's docs/runbook.md.").PlaceHolder("URL").StringVar(&o.Alertmanager.RunbookURL)
	c.serve.Flag("alertmanager.for-scale", "Scale the alerts' for durations (tests).").Hidden().Default("1").Float64Var(&o.Alertmanager.ForScale)
	c.serve.Flag("deployments.failure-window", "An app turning Degraded this long after a deployment makes the deployment a failed change (DORA's change failure rate).").Default("1h").DurationVar(&o.Deployments.FailureWindow)
	c.serve.Flag("deployments.commit-timeout", "Time limit of one request for a deployed revision's commit metadata to --argocd.server.").Default("5s").DurationVar(&o.Deployments.CommitTimeout)
	c.serve.Flag("cloudevents.url", "HTTP endpoint to post a CloudEvent (a CDEvents service.deployed or service.rolledback) to for each deployment, in structured mode. Empty: none.").StringVar(&o.CloudEvents.URL)
	c.serve.Flag("cloudevents.source", "The source URI of crowsnest's CloudEvents.").Default("/crowsnest").StringVar(&o.CloudEvents.Source)
	c.serve.Flag("cloudevents.buffer-size", "CloudEvents waiting to be posted; when full, new ones are dropped and counted.").Default("1000").IntVar(&o.CloudEvents.BufferSize)
}

// trackingFlags bind how the watched Argo CD names the app that owns a
// live object: its argocd-cm settings, which crowsnest does not read (that
// would need RBAC on Argo CD's ConfigMaps), so they are given here.
func trackingFlags(a *kingpin.Application, t *source.Tracking) {
	a.Flag("argocd.tracking-method", "Argo CD's resource tracking method, as its argocd-cm application.resourceTrackingMethod sets it (Argo CD v3's default: annotation; v2's: label). The instance label names an app only with label: Helm charts set app.kubernetes.io/instance themselves.").
		Default(source.TrackingAnnotation).EnumVar(&t.Method, source.TrackingAnnotation, source.TrackingAnnotationAndLabel, source.TrackingLabel)
	a.Flag("argocd.instance-label-key", "The label Argo CD tracks apps by with --argocd.tracking-method=label (argocd-cm application.instanceLabelKey).").Default(source.DefaultInstanceLabelKey).StringVar(&t.LabelKey)
	a.Flag("argocd.installation-id", "argocd-cm installationID of the watched Argo CD, if set: objects with another installation's id (another Argo CD deploying to the same cluster) join none of its apps, as Argo CD ignores them.").StringVar(&t.InstallationID)
}
