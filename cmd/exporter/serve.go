package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	oklogrun "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	versioned "github.com/crowsnest/crowsnest/internal/argocd/client"
	"github.com/crowsnest/crowsnest/internal/pager"

	"github.com/crowsnest/crowsnest/internal/cdevents"
	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/collect/source"
	"github.com/crowsnest/crowsnest/internal/collect/tracker"
	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/demo"
	"github.com/crowsnest/crowsnest/internal/dora"
	"github.com/crowsnest/crowsnest/internal/loki"
	"github.com/crowsnest/crowsnest/internal/redact"
	"github.com/crowsnest/crowsnest/internal/rules"
	"github.com/crowsnest/crowsnest/internal/trace"
)

// shutdownTimeout bounds the graceful shutdown after SIGTERM or SIGINT.
const shutdownTimeout = 10 * time.Second

// runServe is the default command: watch, track, serve. Every goroutine it
// starts is an actor of one run.Group, joined before it returns.
func (c *cli) runServe(ctx context.Context, logger *slog.Logger) error {
	start := time.Now()
	gcReady, err := setGCPercent(*c.gcPercent, os.Getenv, logger)
	if err != nil {
		return err
	}
	if err := c.setMemoryLimit(logger); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector("crowsnest"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	var builtin []byte
	if *c.demo && *c.configFile == "" {
		builtin = demo.Config()
	}
	cfg := config.NewReloader(*c.configFile, builtin, reg, logger)
	conf, err := cfg.Load()
	if err != nil {
		return err
	}
	if *c.leaderElect && (*c.demo || *c.source != "kubernetes") {
		return errors.New("--leader-elect needs the Kubernetes source")
	}
	if *c.checkpointName != "" && (*c.demo || *c.source != "kubernetes") {
		return errors.New("--checkpoint.configmap needs the Kubernetes source")
	}
	if err := c.validateServeFlags(); err != nil {
		return err
	}
	aggregated := c.registerShard(reg) // the shard label of the aggregated families
	links, err := rules.ParseLinks(*c.argoURL, *c.grafanaURL)
	if err != nil {
		return err
	}
	reg.MustRegister(links.Collector())

	// Outputs: the tracker's subscribers. The leader gate is applied here,
	// once, to everything that leaves the process.
	gate := newLeaderGate(*c.leaderElect, reg)
	store := exposition.NewStore(*c.perAppHistograms)
	appLabels := splitList(*c.appLabels)
	store.ExposeAppLabels(appLabels)
	promotion := exposition.NewPromotion(nil)
	reg.MustRegister(promotion)
	counters := exposition.NewDeploymentCounters(aggregated)
	subs := tracker.Subscribers{
		Views:       []tracker.ViewSubscriber{store, promotion, counters},
		Operations:  []tracker.OperationSubscriber{exposition.NewDurations(aggregated), store},
		Facts:       []tracker.FactSubscriber{loki.NewLogger(logger)},
		Deployments: []tracker.DeploymentSubscriber{counters},
	}
	emitter, err := c.newEmitter(ctx, reg, logger)
	if err != nil {
		return err
	}
	var shipper *loki.Shipper
	if *c.lokiURL != "" {
		lc := loki.DefaultConfig()
		lc.URL, lc.Tenant, lc.Job = *c.lokiURL, *c.lokiTenant, *c.lokiJob
		lc.BufferSize, lc.Timeout, lc.MaxRetries, lc.MaxLineBytes = *c.lokiBuffer, *c.lokiTimeout, *c.lokiRetries, *c.lokiMaxLine
		if lc.Username, lc.Password, lc.BearerToken, err = c.lokiCredentials(); err != nil {
			return err
		}
		if shipper, err = loki.New(lc, reg, logger.With("component", "loki")); err != nil {
			return err
		}
		subs.Facts = append(subs.Facts, gate.facts(shipper))
		logger.Info("pushing events to Loki", "url", redact.URL(lc.URL), "auth", lc.AuthKind())
	}
	var pg *pager.Pager
	if len(*c.alertmanagerURLs) > 0 {
		states := pager.NewStates()
		subs.Views = append(subs.Views, states)
		pg, err = pager.NewPager(pager.PagerConfig{
			URLs: *c.alertmanagerURLs, Interval: *c.alertmanagerInterval, Resend: *c.alertmanagerResend,
			Timeout: *c.alertmanagerTimeout, ForScale: *c.alertForScale, Links: links,
			ExternalLabels: *c.alertmanagerLabels, RunbookURL: *c.alertmanagerRunbook,
			ProdEnvironments: conf.Prod(),
			AppLabels:        appLabels,
		}, rules.Alerts(), states.List, reg, logger)
		if err != nil {
			return err
		}
		pg.SetGate(gate.leading)
		// A reload's prod_environments; the rules' matchers follow it
		// where they are rendered again (the chart).
		cfg.OnReload(func(conf *config.Config) {
			if err := pg.SetProdEnvironments(conf.Prod()); err != nil {
				logger.Warn("prod_environments of the reloaded configuration not applied", "err", err)
			}
		})
		logger.Info("paging Alertmanager directly", "alertmanagers", len(*c.alertmanagerURLs))
	}

	var sink *cdevents.Sink
	if *c.cloudEventsURL != "" {
		sink, err = cdevents.New(cdevents.Config{URL: *c.cloudEventsURL, Source: *c.cloudEventsSrc, BufferSize: *c.cloudEventsQueue}, reg, logger.With("component", "cloudevents"))
		if err != nil {
			return err
		}
		logger.Info("posting a CloudEvent per deployment", "url", redact.URL(*c.cloudEventsURL))
	}
	deployments, closeMetadata, err := c.newDeployments(subs.Facts, sink, gate, aggregated, logger)
	if err != nil {
		return err
	}
	defer closeMetadata()
	subs.Views = append(subs.Views, deployments)
	rollouts, waveDelay := exposition.NewRollouts(), exposition.NewWaveDelay()
	reg.MustRegister(rollouts, waveDelay)
	subs.Rollouts = append(subs.Rollouts, rollouts)
	subs.WaveDelay = append(subs.WaveDelay, waveDelay)
	subs.Deployments = append(subs.Deployments, deployments)
	if emitter != nil {
		// The trace gets the deployed commit when it is at hand.
		subs.Operations = append(subs.Operations, deployments.Operations(gate.operations(emitter)))
	}

	track := tracker.New(conf, subs, logger)
	track.SetWaveDelay(*c.waveDelay)
	track.SetFailureWindow(*c.failureWindow)
	// Each ApplicationSet's rollout series come from the shard its UID
	// hashes to, as an app's do.
	track.SetApplicationSetOwner(c.shardOf().Owns)
	cfg.OnReload(func(conf *config.Config) { track.SetClassifier(conf) })
	// Before the sources start: what finished while crowsnest was down is
	// counted from the checkpoint's watermark on.
	keeper, err := c.newCheckpoint(ctx, track, gate.leading, reg, logger)
	if err != nil {
		return err
	}

	// Sources.
	src, err := c.newSource(source.NewSourceMetrics(reg), logger)
	if err != nil {
		return err
	}
	if ks, ok := src.(*source.KubeSource); ok {
		ks.SetShard(c.shardOf())        // other shards' apps: metadata only
		track.SetOnRelease(ks.Released) // finished operations' results leave the cache
	}
	workloads, err := c.newWorkloadSource(logger)
	if err != nil {
		return err
	}
	var projects *source.Projects
	if !*c.demo && *c.source == "kubernetes" {
		client, err := c.argoClient(logger)
		if err != nil {
			return err
		}
		projects = source.NewProjects(client, logger)
	}

	srv, err := c.newHTTPServer(reg, store, src, cfg, logger)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var g oklogrun.Group
	// Stop on the signal's context (SIGTERM, SIGINT).
	g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	g.Add(func() error { return src.Run(ctx, c.shardOf().Sink(track)) }, func(error) { cancel() })
	if workloads != nil {
		g.Add(func() error { return workloads.Run(ctx, track) }, func(error) { cancel() })
	}
	g.Add(func() error {
		if err := web.ListenAndServe(srv, c.web, logger); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	}, func(error) {
		// A fresh context: the signal one is already done.
		shutdownCtx, done := context.WithTimeout(context.Background(), shutdownTimeout)
		defer done()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			logger.Warn("shut down http server", "err", err)
		}
	})
	if projects != nil {
		g.Add(func() error { return projects.Run(ctx, track) }, func(error) { cancel() })
		// Sync windows open and close on their schedules, with no event.
		g.Add(func() error {
			tick := time.NewTicker(tracker.DefaultWindowTick)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
					track.Tick()
				}
			}
		}, func(error) { cancel() })
	}
	g.Add(func() error { return cfg.Run(ctx) }, func(error) { cancel() })
	g.Add(func() error {
		waitReady(ctx, start, src, store.Len, reg, logger, gcReady)
		<-ctx.Done()
		return nil
	}, func(error) { cancel() })
	g.Add(func() error { return deployments.Run(ctx) }, func(error) { cancel() })
	if keeper != nil {
		g.Add(func() error { return keeper.Run(ctx) }, func(error) { cancel() })
	}
	if pg != nil {
		g.Add(func() error { pg.Run(ctx); return nil }, func(error) { cancel() })
	}
	if *c.leaderElect {
		rc, err := c.restConfig()
		if err != nil {
			return err
		}
		elect, err := c.newLeaderElection(rc, gate, logger.With("component", "leader-election"))
		if err != nil {
			return err
		}
		// Returns once the Lease is released, so a graceful stop hands
		// over at once.
		g.Add(func() error { elect(ctx); return nil }, func(error) { cancel() })
	}
	logger.Info("crowsnest started", "version", version.Info(), "input", c.sourceName())
	runErr := g.Run()
	if runErr == nil {
		logger.Info("shutting down")
	}

	// The sources have stopped: no more facts or operations. Flush what is
	// queued, events and traces side by side, within the shutdown timeout.
	flushCtx, done := context.WithTimeout(context.Background(), shutdownTimeout)
	defer done()
	var flush sync.WaitGroup
	if keeper != nil {
		// Every operation counted is in it now.
		flush.Go(func() { keeper.Final(flushCtx) })
	}
	if shipper != nil {
		flush.Go(func() {
			if err := shipper.Close(flushCtx); err != nil {
				logger.Warn("events not flushed to Loki", "err", err)
			}
		})
	}
	if sink != nil {
		flush.Go(func() {
			if err := sink.Close(flushCtx); err != nil {
				logger.Warn("CloudEvents not flushed", "err", err)
			}
		})
	}
	if emitter != nil {
		flush.Go(func() {
			if err := emitter.Shutdown(flushCtx); err != nil {
				logger.Warn("traces not flushed", "err", err)
			}
		})
	}
	flush.Wait()
	return runErr
}

// newHTTPServer builds the HTTP server: metrics, health, readiness, reload
// and the landing page.
func (c *cli) newHTTPServer(reg *prometheus.Registry, store *exposition.Store, src source.Source, cfg *config.Reloader, logger *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle(*c.metricsPath, exposition.NewMetricsHandler(reg, store, logger))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !src.Ready() {
			http.Error(w, "source not ready: initial list not complete or API server unreachable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if !*c.lifecycle {
			http.Error(w, "lifecycle endpoints are off; start crowsnest with --web.enable-lifecycle (or send SIGHUP)", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			http.Error(w, "use POST or PUT to reload", http.StatusMethodNotAllowed)
			return
		}
		if err := cfg.Reload(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "crowsnest",
		Description: "Prometheus metrics for Argo CD Applications: sync, health, drift and sync operations",
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: *c.metricsPath, Text: "Metrics"},
			{Address: "/healthz", Text: "Health"},
			{Address: "/readyz", Text: "Readiness"},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("landing page: %w", err)
	}
	if *c.metricsPath != "/" {
		mux.Handle("/", landing)
	}
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: *c.timeouts.readHeader,
		ReadTimeout:       *c.timeouts.read,
		WriteTimeout:      *c.timeouts.write,
		IdleTimeout:       *c.timeouts.idle,
	}, nil
}

// validateServeFlags checks what kingpin cannot: each error names its flag.
func (c *cli) validateServeFlags() error {
	var errs []error
	switch p := *c.metricsPath; {
	case !strings.HasPrefix(p, "/"):
		errs = append(errs, fmt.Errorf("--web.telemetry-path: %q must start with /", p))
	case p == "/healthz" || p == "/readyz" || p == "/-/reload":
		errs = append(errs, fmt.Errorf("--web.telemetry-path: %s is crowsnest's own endpoint", p))
	}
	for flag, d := range map[string]time.Duration{
		"--alertmanager.evaluation-interval": *c.alertmanagerInterval,
		"--alertmanager.resend-interval":     *c.alertmanagerResend,
		"--alertmanager.timeout":             *c.alertmanagerTimeout,
		"--argocd.resync-period":             *c.argoResync,
		"--web.read-header-timeout":          *c.timeouts.readHeader,
		"--web.read-timeout":                 *c.timeouts.read,
		"--web.write-timeout":                *c.timeouts.write,
		"--web.idle-timeout":                 *c.timeouts.idle,
		"--loki.timeout":                     *c.lokiTimeout,
		"--leader-elect.lease-duration":      *c.leaderLeaseDuration,
		"--leader-elect.retry-period":        *c.leaderRetryPeriod,
		"--deployments.failure-window":       *c.failureWindow,
		"--deployments.commit-timeout":       *c.commitTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", flag, d))
		}
	}
	if *c.waveDelay < 0 {
		errs = append(errs, fmt.Errorf("--argocd.sync-wave-delay: must not be negative, got %s", *c.waveDelay))
	}
	if *c.replaySpeed < 0 {
		errs = append(errs, fmt.Errorf("--replay.speed: must not be negative, got %v", *c.replaySpeed))
	}
	if err := c.shardError(); err != nil {
		errs = append(errs, err)
	}
	if *c.leaderElect && *c.leaderRetryPeriod >= *c.leaderLeaseDuration {
		errs = append(errs, fmt.Errorf("--leader-elect.retry-period: %s must be shorter than --leader-elect.lease-duration %s", *c.leaderRetryPeriod, *c.leaderLeaseDuration))
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// lokiCredentials reads Loki's credentials from the files the flags name.
// Secrets come only from files: a flag's value shows in ps and in the pod spec.
func (c *cli) lokiCredentials() (user, password, bearer string, err error) {
	user = *c.lokiUsername
	if *c.lokiPasswordFile != "" {
		if user == "" {
			return "", "", "", errors.New("--loki.password-file: set without --loki.username")
		}
		if password, err = readSecretFile(*c.lokiPasswordFile); err != nil {
			return "", "", "", fmt.Errorf("--loki.password-file: %w", err)
		}
	}
	if *c.lokiBearerFile != "" {
		if user != "" {
			return "", "", "", errors.New("--loki.bearer-token-file: set together with --loki.username; choose one")
		}
		if bearer, err = readSecretFile(*c.lokiBearerFile); err != nil {
			return "", "", "", fmt.Errorf("--loki.bearer-token-file: %w", err)
		}
	}
	return user, password, bearer, nil
}

// readSecretFile reads a credential file, trimmed of surrounding white space
// (a trailing newline is the rule in mounted Secrets). An empty file is an
// error: it is a mistake, not "no authentication".
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err // names the path, never the content
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// newEmitter sets up the traces of sync operations from the flags and the
// OTEL_* environment; nil when tracing is off.
func (c *cli) newEmitter(ctx context.Context, reg prometheus.Registerer, logger *slog.Logger) (*trace.Emitter, error) {
	tc := trace.Config{Exporter: *c.tracesExporter, Endpoint: *c.otlpEndpoint, Protocol: *c.otlpProtocol, Stdout: c.stdout, Version: version.Version}
	chosen := tc.Exporter != "" || os.Getenv("OTEL_TRACES_EXPORTER") != ""
	tc, err := trace.ResolveConfig(tc, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	if *c.demo && !chosen && tc.Exporter == trace.ExporterNone {
		// The demo shows its traces, unless told where to send them.
		tc.Exporter = trace.ExporterStdout
	}
	m := trace.NewMetrics(reg)
	e, err := trace.NewEmitter(ctx, tc, m, logger)
	if err != nil {
		return nil, err
	}
	if e != nil {
		if tc.Exporter == trace.ExporterOTLP {
			logger.Info("sending traces of sync operations", "exporter", tc.Exporter, "protocol", tc.Protocol, "endpoint", redact.URL(tc.Endpoint))
		} else {
			logger.Info("writing traces of sync operations to standard output")
		}
	}
	return e, nil
}

// sourceName describes the source for the start-up log line.
func (c *cli) sourceName() string {
	if *c.demo {
		return "demo recording"
	}
	return *c.source
}

// newSource builds the source the flags ask for.
func (c *cli) newSource(m *source.SourceMetrics, logger *slog.Logger) (source.Source, error) {
	if *c.demo {
		speed := 10.0
		if c.speedSet {
			speed = *c.replaySpeed
		}
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(demo.Recording())), nil }
		return source.NewReplaySource("demo recording", open, speed, m, logger), nil
	}
	switch *c.source {
	case "argocd-api":
		if *c.argoAddr == "" || *c.argoTokenFile == "" {
			return nil, errors.New("--source=argocd-api needs --argocd.server and --argocd.token-file")
		}
		if _, err := os.Stat(*c.argoTokenFile); err != nil {
			return nil, fmt.Errorf("--argocd.token-file: %w", err)
		}
		if *c.argoCAFile != "" {
			if _, err := os.Stat(*c.argoCAFile); err != nil {
				return nil, fmt.Errorf("--argocd.ca-file: %w", err)
			}
		}
		return source.NewArgoCDAPISource(source.ArgoCDAPIConfig{
			Address: *c.argoAddr, TokenFile: *c.argoTokenFile, CAFile: *c.argoCAFile,
			PlainText: *c.argoPlainText, Insecure: *c.argoInsecure, GRPCWeb: *c.argoGRPCWeb,
			Namespaces: c.watchedNamespaces(), ResyncPeriod: *c.argoResync,
		}, m, logger), nil
	case "replay":
		if *c.replayFile == "" {
			return nil, errors.New("--source=replay needs --replay.file")
		}
		path := *c.replayFile
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("replay file: %w", err)
		}
		open := func() (io.ReadCloser, error) { return os.Open(path) }
		return source.NewReplaySource(path, open, *c.replaySpeed, m, logger), nil
	default:
		client, err := c.argoClient(logger)
		if err != nil {
			return nil, err
		}
		return source.NewKubeSource(client, c.watchedNamespaces(), m, logger), nil
	}
}

func (c *cli) argoClient(logger *slog.Logger) (versioned.Interface, error) {
	// client-go logs through klog; send it to our logger instead.
	klog.SetSlogLogger(logger.With("component", "client-go"))
	rc, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	client, err := versioned.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create Argo CD client: %w", err)
	}
	return client, nil
}

// newWorkloadSource returns the watch of --workloads.kinds, for the
// Kubernetes source; nil when there is none.
func (c *cli) newWorkloadSource(logger *slog.Logger) (*source.Workloads, error) {
	kinds, err := source.ParseWorkloadKinds(*c.workloadKinds)
	if err != nil || len(kinds) == 0 || *c.demo || *c.source != "kubernetes" {
		return nil, err
	}
	return c.workloadsOf(kinds, logger)
}

// workloadsOf returns the watch of the workload kinds.
func (c *cli) workloadsOf(kinds []string, logger *slog.Logger) (*source.Workloads, error) {
	rc, err := c.restConfig()
	if err != nil {
		return nil, err
	}
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
	return source.NewWorkloads(dyn, disc, kinds, logger.With("component", "workloads")), nil
}

// newDeployments builds what measures deployments: commit metadata from
// --argocd.server (for the argocd-api source, the same server), its facts
// to facts (fact subscribers already gated as needed) and its records to
// the CloudEvents sink. The returned func closes the Argo CD connection.
func (c *cli) newDeployments(facts []tracker.FactSubscriber, sink *cdevents.Sink, gate *leaderGate, reg prometheus.Registerer, logger *slog.Logger) (*dora.Deployments, func(), error) {
	var client dora.MetadataClient
	closeClient := func() {}
	if *c.argoAddr != "" && !*c.demo {
		if *c.argoTokenFile == "" {
			return nil, nil, errors.New("--argocd.server needs --argocd.token-file")
		}
		ac, err := dora.NewArgoCDClient(source.ArgoCDAPIConfig{
			Address: *c.argoAddr, TokenFile: *c.argoTokenFile, CAFile: *c.argoCAFile,
			PlainText: *c.argoPlainText, Insecure: *c.argoInsecure, GRPCWeb: *c.argoGRPCWeb,
		}.APIConfig())
		if err != nil {
			return nil, nil, err
		}
		client = ac
		closeClient = func() {
			if err := ac.Close(); err != nil {
				logger.Debug("close the Argo CD API connection for commit metadata", "err", err)
			}
		}
		logger.Info("reading deployed commits from argocd-server", "server", *c.argoAddr)
	}
	var out dora.Outputs
	for _, f := range facts {
		out.Facts = append(out.Facts, f)
	}
	if sink != nil {
		out.Records = append(out.Records, gate.records(sink))
	}
	d, err := dora.New(dora.Config{FetchTimeout: *c.commitTimeout}, client, out, reg, logger)
	if err != nil {
		closeClient()
		return nil, nil, err
	}
	return d, closeClient, nil
}
