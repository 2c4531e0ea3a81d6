package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	webflag "github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/crowsnest/crowsnest/internal/collect/source"
)

// defaultListenAddress is crowsnest's default port.
const defaultListenAddress = ":9829"

// cli holds the parsed command line.
type cli struct {
	app    *kingpin.Application
	stdout io.Writer
	stderr io.Writer
	log    *promslog.Config

	exited bool // --help or --version was handled

	rest     *rest.Config // loaded by restConfig, once
	restErr  error
	exitCode int

	// global
	kubeconfig *string
	namespaces *[]string

	// serve (the default command)
	serve       *kingpin.CmdClause
	configFile  *string
	web         *web.FlagConfig
	metricsPath *string
	lifecycle   *bool
	timeouts    struct{ readHeader, read, write, idle *time.Duration }
	source      *string
	replayFile  *string

	argoAddr, argoTokenFile                  *string
	argoResync                               *time.Duration
	argoCAFile                               *string
	argoPlainText, argoInsecure, argoGRPCWeb *bool
	argoURL, grafanaURL                      *string
	replaySpeed                              *float64
	speedSet                                 bool
	demo                                     *bool

	perAppHistograms *bool
	appLabels        *string
	memLimitRatio    *float64
	gcPercent        *int

	waveDelay      *time.Duration
	tracesExporter *string
	otlpEndpoint   *string
	otlpProtocol   *string

	workloadKinds *string

	leaderElect         *bool
	leaderNamespace     *string
	checkpointName      *string
	checkpointInterval  *time.Duration
	leaderLease         *string
	leaderLeaseDuration *time.Duration
	leaderRetryPeriod   *time.Duration

	shard       *string // parsed by shardOf, checked by shardError
	totalShards *int

	lokiURL          *string
	lokiUsername     *string
	lokiPasswordFile *string
	lokiBearerFile   *string
	lokiTenant       *string
	lokiJob          *string
	lokiBuffer       *int
	lokiTimeout      *time.Duration
	lokiRetries      *int
	lokiMaxLine      *int

	alertmanagerURLs     *[]string
	alertmanagerInterval *time.Duration
	alertmanagerResend   *time.Duration
	alertmanagerTimeout  *time.Duration
	alertmanagerLabels   *map[string]string
	alertmanagerRunbook  *string
	alertForScale        *float64

	failureWindow    *time.Duration
	cloudEventsURL   *string
	cloudEventsSrc   *string
	commitTimeout    *time.Duration
	cloudEventsQueue *int

	// record
	record         *kingpin.CmdClause
	recordOut      *string
	recordDuration *time.Duration
}

func newCLI(stdout, stderr io.Writer) *cli {
	c := &cli{stdout: stdout, stderr: stderr, log: &promslog.Config{}}
	a := kingpin.New("crowsnest", "Watches Argo CD Applications and serves Prometheus metrics about their sync state, health, drift and sync operations.")
	a.UsageWriter(stdout)
	a.ErrorWriter(stderr)
	// --help and --version end the program; run() decides how.
	a.Terminate(func(code int) { c.exited, c.exitCode = true, code })
	a.Version(version.Print("crowsnest"))
	a.HelpFlag.Short('h')
	promslogflag.AddFlags(a, c.log)

	c.kubeconfig = a.Flag("kubeconfig", "Path to a kubeconfig file. Empty: the in-cluster service account, else $KUBECONFIG or ~/.kube/config.").String()
	c.namespaces = a.Flag("namespaces", "Namespaces whose Applications to watch, comma-separated or repeated. Empty: all namespaces.").Strings()

	c.serve = a.Command("serve", "Watch Applications and serve metrics (the default command). The other command, record, writes the Application watch events to a file: crowsnest record --help.").Default()
	c.configFile = c.serve.Flag("config.file", "Path to the configuration file (environment rules). Empty: every app's env is \"unknown\".").String()
	c.web = webflag.AddFlags(c.serve, defaultListenAddress)
	c.metricsPath = c.serve.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
	c.lifecycle = c.serve.Flag("web.enable-lifecycle", "Serve POST /-/reload (reloads --config.file, as SIGHUP does). Off by default, as in Prometheus: it needs no credentials beyond --web.config.file's.").Bool()
	c.timeouts.readHeader = c.serve.Flag("web.read-header-timeout", "Time limit for reading a request's headers.").Default("10s").Duration()
	c.timeouts.read = c.serve.Flag("web.read-timeout", "Time limit for reading a whole request.").Default("30s").Duration()
	c.timeouts.write = c.serve.Flag("web.write-timeout", "Time limit for writing a response (a scrape of 10,000 apps takes well under a second).").Default("1m").Duration()
	c.timeouts.idle = c.serve.Flag("web.idle-timeout", "How long a kept-alive connection may idle.").Default("2m").Duration()
	c.source = c.serve.Flag("source", "Where Applications come from: kubernetes (a watch), argocd-api (the Argo CD API with a token) or replay (a recording made by 'crowsnest record').").Default("kubernetes").Enum("kubernetes", "argocd-api", "replay")
	c.argoAddr = c.serve.Flag("argocd.server", "Argo CD API server host:port: the source with --source=argocd-api; beside the Kubernetes source, where deployments' commit metadata (author, date: lead time) comes from. Empty with the Kubernetes source: no lead time.").String()
	c.argoTokenFile = c.serve.Flag("argocd.token-file", "File holding an Argo CD API token (e.g. of a read-only account), for --argocd.server. Read again at every reconnect: a rotated token is picked up once the old one is rejected.").String()
	c.argoURL = c.serve.Flag("argocd.url", "Base URL of the Argo CD UI, e.g. https://argocd.example.com: pages and alerts link to each app there (annotation argocd_url), and the dashboards through crowsnest_links_info. Empty: no Argo CD links.").String()
	c.grafanaURL = c.serve.Flag("grafana.url", "Base URL of the Grafana that has crowsnest's dashboards, e.g. https://grafana.example.com: pages and alerts link to the dashboard (annotation dashboard_url). Empty: the link is relative (/d/...).").String()
	c.argoResync = c.serve.Flag("argocd.resync-period", "With --source=argocd-api: how often the full list of Applications is compared with what the watch delivered (argocd-server drops watch events when a client falls behind, and sends no deletions after a reconnect).").Default("5m").Duration()
	c.argoCAFile = c.serve.Flag("argocd.ca-file", "PEM file of the certificate authorities to verify argocd-server's TLS certificate with (instead of the system's; rather than --argocd.insecure).").String()
	c.argoPlainText = c.serve.Flag("argocd.plaintext", "Talk to the Argo CD API without TLS.").Bool()
	c.argoInsecure = c.serve.Flag("argocd.insecure", "Do not verify the Argo CD API server's certificate.").Bool()
	c.argoGRPCWeb = c.serve.Flag("argocd.grpc-web", "Deprecated, no effect: crowsnest talks to argocd-server's REST API (HTTP/1.1 or HTTP/2), which passes every proxy gRPC-Web passes. Still accepted so existing command lines keep working.").Bool()
	c.replayFile = c.serve.Flag("replay.file", "Recording to replay with --source=replay.").String()
	c.replaySpeed = c.serve.Flag("replay.speed", "Replay speed factor: 2 replays twice as fast as recorded, 0 without waiting. Default 1, or 10 with --demo.").IsSetByUser(&c.speedSet).Default("1").Float64()
	c.memLimitRatio = c.serve.Flag("runtime.gomemlimit-ratio", "Set the Go runtime's soft memory limit (GOMEMLIMIT) to this share of the container's memory limit (cgroup v2 memory.max or v1 memory.limit_in_bytes), so the garbage collector works harder before the container is OOM-killed. 0 turns it off; a GOMEMLIMIT environment variable takes precedence.").Default("0.9").Float64()
	c.gcPercent = c.serve.Flag("runtime.gogc", "The Go garbage collector's GOGC: how far, in percent of the live heap, the heap may grow before the next collection. Below Go's 100 because crowsnest's heap is almost all its long-lived cache (apps, rendered series), whose garbage is small: 50 keeps the resident size near what is live for little CPU (docs/scale.md). It applies once the initial list is handled; until then the collector runs at no less than Go's 100, as the start-up's garbage is large and short-lived. A GOGC environment variable takes precedence; -1 turns the collector off as GOGC=off does.").Default("50").Int()
	c.appLabels = c.serve.Flag("metrics.app-labels-allowlist", "Application labels, comma-separated (e.g. team,app.kubernetes.io/part-of), exposed on crowsnest_app_labels as label_<name> and carried by the alerts paged directly; the chart's rules join the same series (as kube-state-metrics' --metric-labels-allowlist). Empty: none.").PlaceHolder("LABEL,...").String()
	c.perAppHistograms = c.serve.Flag("metrics.per-app-histograms", "Also expose crowsnest_app_sync_duration_seconds, a histogram per Application. Its series grow with apps times buckets: for small fleets.").Bool()
	c.waveDelay = c.serve.Flag("argocd.sync-wave-delay", "The delay Argo CD's application controller waits after each sync wave but the last (its ARGOCD_SYNC_WAVE_DELAY): Argo CD writes a wave's results only after it, so crowsnest dates the wave's start back by it.").Default("2s").Duration()
	c.tracesExporter = c.serve.Flag("traces.exporter", "Where traces of sync operations go: otlp, stdout (JSON lines) or none. Default: $OTEL_TRACES_EXPORTER, else otlp when an OTLP endpoint is set, else none; stdout with --demo.").Enum("", "otlp", "stdout", "none")
	c.otlpEndpoint = c.serve.Flag("traces.otlp.endpoint", "OTLP endpoint URL, e.g. http://tempo:4318 (http/protobuf) or http://tempo:4317 (grpc); https for TLS. Default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT.").String()
	c.otlpProtocol = c.serve.Flag("traces.otlp.protocol", "OTLP protocol: grpc or http/protobuf. Default: $OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf.").Enum("", "grpc", "http/protobuf")
	c.workloadKinds = c.serve.Flag("workloads.kinds", "Workload kinds to watch and join to their Application (Kubernetes source only), comma-separated: "+source.DefaultWorkloadKinds+". Rollouts and certificates are watched only when their CRDs exist. Empty: none.").Default(source.DefaultWorkloadKinds).String()
	c.leaderElect = c.serve.Flag("leader-elect", "Run several replicas: all serve /metrics, only the holder of a Lease sends traces, Loki events and pages (Kubernetes source).").Bool()
	c.leaderNamespace = c.serve.Flag("leader-elect.namespace", "Namespace of the Lease. Default: $POD_NAMESPACE, else default.").String()
	c.leaderLease = c.serve.Flag("leader-elect.lease-name", "Name of the Lease; with --total-shards > 1, each shard's Lease is this name followed by -<shard>-of-<total>.").Default("crowsnest").String()
	c.leaderLeaseDuration = c.serve.Flag("leader-elect.lease-duration", "How long a crashed leader's Lease holds before another replica takes over.").Default("15s").Duration()
	c.leaderRetryPeriod = c.serve.Flag("leader-elect.retry-period", "How often a replica that does not lead tries to take the Lease: how soon it leads after the leader stops gracefully.").Default("500ms").Duration()
	c.addShardFlags()
	c.addCheckpointFlags()
	c.lokiURL = c.serve.Flag("loki.url", "Loki to push the tracker's facts to as JSON lines, e.g. http://loki:3100. Empty: facts are only logged.").String()
	c.lokiUsername = c.serve.Flag("loki.username", "User name for basic auth to Loki; the password comes from --loki.password-file.").String()
	c.lokiPasswordFile = c.serve.Flag("loki.password-file", "File holding the password for basic auth to Loki (with --loki.username). Read at start; never logged.").String()
	c.lokiBearerFile = c.serve.Flag("loki.bearer-token-file", "File holding a bearer token for Loki, sent as \"Authorization: Bearer\" (not with --loki.username). Read at start; never logged.").String()
	c.lokiTenant = c.serve.Flag("loki.tenant", "Loki tenant (X-Scope-OrgID).").String()
	c.lokiJob = c.serve.Flag("loki.job", "Value of the job stream label of crowsnest's Loki streams.").Default("crowsnest").String()
	c.lokiBuffer = c.serve.Flag("loki.buffer-size", "Events waiting to be pushed; when full, new ones are dropped and counted.").Default("10000").Int()
	c.lokiTimeout = c.serve.Flag("loki.timeout", "Time limit of one push to Loki.").Default("10s").Duration()
	c.lokiMaxLine = c.serve.Flag("loki.max-line-bytes", "Most bytes of one pushed line (at least 1024): a longer line has its largest values cut, marked and counted. Keep it under Loki's max_line_size (256KB by default).").Default("65536").Int()
	c.lokiRetries = c.serve.Flag("loki.max-retries", "Retries of a push that got 429, 5xx or no answer, with backoff from 500ms to 30s; then the batch is dropped and counted.").Default("10").Int()
	c.alertmanagerURLs = c.serve.Flag("alertmanager.url", "Alertmanager to page directly (API v2), e.g. http://alertmanager:9093; repeatable. crowsnest then evaluates its alerts that judge one app's present state (sync failed, degraded, drift, stuck, retrying, unknown) on its own state, with the labels of the Prometheus rules, so Alertmanager deduplicates both.").Strings()
	c.alertmanagerInterval = c.serve.Flag("alertmanager.evaluation-interval", "How often crowsnest evaluates the alerts for direct paging.").Default("1s").Duration()
	c.alertmanagerResend = c.serve.Flag("alertmanager.resend-interval", "How often firing alerts are sent again.").Default("1m").Duration()
	c.alertmanagerTimeout = c.serve.Flag("alertmanager.timeout", "Time limit for posting to one Alertmanager, retries included.").Default("10s").Duration()
	c.alertmanagerLabels = c.serve.Flag("alertmanager.external-label", "A label NAME=VALUE added to every alert paged directly, as Prometheus adds its external_labels to its rules' alerts; repeatable. Give it the external labels of the Prometheus that evaluates crowsnest's rules (the Prometheus Operator sets prometheus=\"<namespace>/<name>\", and often cluster), so Alertmanager holds one alert for both paths.").PlaceHolder("NAME=VALUE").StringMap()
	c.alertmanagerRunbook = c.serve.Flag("alertmanager.runbook-url", "The base of the runbook_url annotation of the alerts paged directly, as the rules have it (the chart's prometheusRule.runbookURL); empty: the project's docs/runbook.md.").PlaceHolder("URL").String()
	c.alertForScale = c.serve.Flag("alertmanager.for-scale", "Scale the alerts' for durations (tests).").Hidden().Default("1").Float64()
	c.failureWindow = c.serve.Flag("deployments.failure-window", "An app turning Degraded this long after a deployment makes the deployment a failed change (DORA's change failure rate).").Default("1h").Duration()
	c.commitTimeout = c.serve.Flag("deployments.commit-timeout", "Time limit of one request for a deployed revision's commit metadata to --argocd.server.").Default("5s").Duration()
	c.cloudEventsURL = c.serve.Flag("cloudevents.url", "HTTP endpoint to post a CloudEvent (a CDEvents service.deployed or service.rolledback) to for each deployment, in structured mode. Empty: none.").String()
	c.cloudEventsSrc = c.serve.Flag("cloudevents.source", "The source URI of crowsnest's CloudEvents.").Default("/crowsnest").String()
	c.cloudEventsQueue = c.serve.Flag("cloudevents.buffer-size", "CloudEvents waiting to be posted; when full, new ones are dropped and counted.").Default("1000").Int()
	c.demo = c.serve.Flag("demo", "Replay the demo recording built into the binary, then keep serving its final state.").Bool()

	c.record = a.Command("record", "Record the Application watch events as JSON lines, for --source=replay and for tests.")
	c.recordOut = c.record.Flag("out", "File to write the recording to; - for standard output.").Required().String()
	c.recordDuration = c.record.Flag("duration", "Stop recording after this long; 0 records until interrupted.").Default("0").Duration()

	c.app = a
	return c
}

func (c *cli) logger() *slog.Logger {
	cfg := *c.log
	cfg.Writer = c.stderr
	return promslog.New(&cfg)
}

// watchedNamespaces splits comma-separated values of --namespaces.
func (c *cli) watchedNamespaces() []string {
	var out []string
	for _, v := range *c.namespaces {
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

// restConfig returns a copy of the API server configuration: --kubeconfig,
// else in-cluster, else the usual kubeconfig loading rules. It is loaded
// once; the source, the workload watch and leader election share it.
func (c *cli) restConfig() (*rest.Config, error) {
	if c.rest == nil && c.restErr == nil {
		c.rest, c.restErr = c.loadRestConfig()
	}
	if c.restErr != nil {
		return nil, c.restErr
	}
	return rest.CopyConfig(c.rest), nil
}

func (c *cli) loadRestConfig() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch {
	case *c.kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", *c.kubeconfig)
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
	cfg.UserAgent = "crowsnest/" + version.Version
	return cfg, nil
}
