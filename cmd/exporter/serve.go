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
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/client/clientset/versioned"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	"github.com/crowsnest/crowsnest/internal/collect"
	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/demo"
	"github.com/crowsnest/crowsnest/internal/events"
	"github.com/crowsnest/crowsnest/internal/redact"
	"github.com/crowsnest/crowsnest/internal/rules"
	"github.com/crowsnest/crowsnest/internal/trace"
	"github.com/crowsnest/crowsnest/internal/workload"
)

// shutdownTimeout bounds the graceful shutdown after SIGTERM or SIGINT.
const shutdownTimeout = 10 * time.Second

// runServe is the default command: watch, track, serve.
func (c *cli) runServe(ctx context.Context, logger *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector("crowsnest"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	cfg := newConfigReloader(*c.configFile, reg, logger)
	if *c.demo && *c.configFile == "" {
		cfg.builtin = demo.Config()
	}
	conf, err := cfg.load()
	if err != nil {
		return err
	}

	store := collect.NewStore()
	tracker := collect.NewTracker(store, collect.NewSyncMetrics(reg, *c.perAppHistograms), conf, logger)
	tracker.SetWaveDelay(*c.waveDelay)
	lead := &leadership{}
	if *c.leaderElect {
		if *c.demo || *c.source != "kubernetes" {
			return errors.New("--leader-elect needs the Kubernetes source")
		}
		lead.gauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "crowsnest_leader", Help: "1 while this replica holds the leader Lease and sends traces, events and pages."})
		reg.MustRegister(lead.gauge)
		lead.set(false)
	} else {
		lead.set(true)
	}
	reg.MustRegister(collect.NewPromotionCollector(tracker))
	emitter, err := c.newEmitter(ctx, reg, logger)
	if err != nil {
		return err
	}
	if emitter != nil {
		tracker.SetOperationSink(gatedOps{l: lead, inner: emitter})
	}
	cfg.onReload = func(conf *config.Config) { tracker.SetClassifier(conf) }
	sourceMetrics := collect.NewSourceMetrics(reg)
	src, err := c.newSource(sourceMetrics, logger)
	if err != nil {
		return err
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()

	mux := http.NewServeMux()
	mux.Handle(*c.metricsPath, collect.NewMetricsHandler(reg, store, logger))
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
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			http.Error(w, "use POST or PUT to reload", http.StatusMethodNotAllowed)
			return
		}
		if err := cfg.reload(); err != nil {
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
		return fmt.Errorf("landing page: %w", err)
	}
	if *c.metricsPath != "/" {
		mux.Handle("/", landing)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	var shipper *events.Shipper
	if *c.lokiURL != "" {
		lc := events.DefaultConfig()
		lc.URL, lc.Tenant, lc.Job = *c.lokiURL, *c.lokiTenant, *c.lokiJob
		lc.BufferSize, lc.Timeout, lc.MaxRetries = *c.lokiBuffer, *c.lokiTimeout, *c.lokiRetries
		if lc.Username, lc.Password, lc.BearerToken, err = c.lokiCredentials(); err != nil {
			return err
		}
		if shipper, err = events.New(lc, reg, logger.With("component", "loki")); err != nil {
			return err
		}
		tracker.SetFactSink(gatedFacts{l: lead, inner: shipper})
		logger.Info("pushing events to Loki", "url", redact.URL(lc.URL), "auth", lc.AuthKind())
	}
	if *c.leaderElect {
		rc, err := c.restConfig()
		if err != nil {
			return err
		}
		if err := c.runLeaderElection(ctx, rc, lead, logger.With("component", "leader-election")); err != nil {
			return err
		}
	}
	var facts collect.FactSink
	if shipper != nil {
		facts = gatedFacts{l: lead, inner: shipper}
	}
	if err := c.startWorkloadWatch(ctx, tracker, facts, reg, logger); err != nil {
		return err
	}
	if len(*c.alertmanagerURLs) > 0 {
		pager, err := rules.NewPager(rules.PagerConfig{
			URLs: *c.alertmanagerURLs, Interval: *c.alertmanagerInterval, Resend: *c.alertmanagerResend,
			Timeout: *c.alertmanagerTimeout, ForScale: *c.alertForScale,
		}, rules.Alerts(), func() []rules.AppState { return appStates(tracker.Apps()) }, reg, logger)
		if err != nil {
			return err
		}
		pager.SetGate(lead.leading.Load)
		go pager.Run(ctx)
		logger.Info("paging Alertmanager directly", "alertmanagers", len(*c.alertmanagerURLs))
	}

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := src.Run(ctx, tracker); err != nil {
			errc <- err
		}
	}()
	go func() {
		defer wg.Done()
		if err := web.ListenAndServe(srv, c.web, logger); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve http: %w", err)
		}
	}()
	go cfg.reloadOnSIGHUP(ctx)
	logger.Info("crowsnest started", "version", version.Info(), "input", c.sourceName())

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case runErr = <-errc:
	}
	stop()
	// A fresh context: the signal one is already done.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("shut down http server: %w", err)
	}
	wg.Wait()
	// The source has stopped: no more facts or operations. Flush what is
	// queued, events and traces side by side, within the shutdown timeout.
	var flush sync.WaitGroup
	if shipper != nil {
		flush.Go(func() {
			if err := shipper.Close(shutdownCtx); err != nil {
				logger.Warn("events not flushed to Loki", "err", err)
			}
		})
	}
	if emitter != nil {
		flush.Go(func() {
			if err := emitter.Shutdown(shutdownCtx); err != nil {
				logger.Warn("traces not flushed", "err", err)
			}
		})
	}
	flush.Wait()
	return runErr
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
			logger.Info("sending traces of sync operations", "exporter", tc.Exporter, "protocol", tc.Protocol, "endpoint", tc.Endpoint)
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
func (c *cli) newSource(m *collect.SourceMetrics, logger *slog.Logger) (collect.Source, error) {
	if *c.demo {
		speed := 10.0
		if c.speedSet {
			speed = *c.replaySpeed
		}
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(demo.Recording())), nil }
		return collect.NewReplaySource("demo recording", open, speed, m, logger), nil
	}
	switch *c.source {
	case "argocd-api":
		if *c.argoAddr == "" || *c.argoTokenFile == "" {
			return nil, errors.New("--source=argocd-api needs --argocd.server and --argocd.token-file")
		}
		token, err := os.ReadFile(*c.argoTokenFile)
		if err != nil {
			return nil, fmt.Errorf("--argocd.token-file: %w", err)
		}
		return collect.NewArgoCDAPISource(collect.ArgoCDAPIConfig{
			Address: *c.argoAddr, Token: strings.TrimSpace(string(token)),
			PlainText: *c.argoPlainText, Insecure: *c.argoInsecure, GRPCWeb: *c.argoGRPCWeb,
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
		return collect.NewReplaySource(path, open, *c.replaySpeed, m, logger), nil
	default:
		client, err := c.argoClient(logger)
		if err != nil {
			return nil, err
		}
		return collect.NewKubeSource(client, c.watchedNamespaces(), m, logger), nil
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

// configReloader loads the configuration file and reloads it on SIGHUP and
// POST /-/reload; a bad reload keeps the running configuration.
type configReloader struct {
	path     string
	builtin  []byte // configuration used when there is no file
	logger   *slog.Logger
	onReload func(*config.Config)

	mu          sync.Mutex
	success     prometheus.Gauge
	successTime prometheus.Gauge
}

func newConfigReloader(path string, reg prometheus.Registerer, logger *slog.Logger) *configReloader {
	r := &configReloader{
		path:   path,
		logger: logger,
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crowsnest_config_last_reload_successful",
			Help: "Whether the last configuration load or reload succeeded.",
		}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crowsnest_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load or reload.",
		}),
	}
	reg.MustRegister(r.success, r.successTime)
	return r
}

// load reads the configuration; without a file it is the default one.
func (r *configReloader) load() (*config.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var conf *config.Config
	var err error
	if r.path != "" {
		conf, err = config.Load(r.path)
	} else {
		conf, err = config.Parse(r.builtin)
	}
	if err != nil {
		r.success.Set(0)
		return nil, err
	}
	r.success.Set(1)
	r.successTime.SetToCurrentTime()
	return conf, nil
}

func (r *configReloader) reload() error {
	conf, err := r.load()
	if err != nil {
		r.logger.Error("reload configuration; keeping the running one", "err", err)
		return err
	}
	r.logger.Info("configuration reloaded", "file", r.path)
	r.onReload(conf)
	return nil
}

func (r *configReloader) reloadOnSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = r.reload() // logged inside
		}
	}
}

// appStates converts the tracker's summaries for the pager.
func appStates(apps []collect.AppSummary) []rules.AppState {
	out := make([]rules.AppState, len(apps))
	for i, a := range apps {
		out[i] = rules.AppState{Namespace: a.Namespace, Name: a.Name, Project: a.Project, Env: a.Env,
			SyncStatus: a.SyncStatus, Health: a.Health, Phase: a.Phase, AutoSync: a.AutoSync}
	}
	return out
}

// startWorkloadWatch watches the workloads of --workloads.kinds, for the
// Kubernetes source.
func (c *cli) startWorkloadWatch(ctx context.Context, tracker *collect.Tracker, facts collect.FactSink, reg prometheus.Registerer, logger *slog.Logger) error {
	kinds, err := workload.ParseKinds(*c.workloadKinds)
	if err != nil || len(kinds) == 0 || *c.demo || *c.source != "kubernetes" {
		return err
	}
	rc, err := c.restConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("workload client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return fmt.Errorf("discovery client: %w", err)
	}
	lookup := func(ns, name string) (workload.App, bool) {
		a, ok := tracker.Lookup(ns, name)
		return workload.App{Namespace: a.Namespace, Name: a.Name, Project: a.Project, Env: a.Env}, ok
	}
	w := workload.NewWatcher(dyn, disc, kinds, lookup, logger.With("component", "workloads"))
	if facts != nil {
		w.SetEvents(facts.Send)
	}
	reg.MustRegister(w)
	go w.Run(ctx)
	return nil
}
