package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/common/version"

	"github.com/crowsnest/crowsnest/internal/cdevents"
	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/collect/tracker"
	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/dora"
	"github.com/crowsnest/crowsnest/internal/loki"
	"github.com/crowsnest/crowsnest/internal/pager"
	"github.com/crowsnest/crowsnest/internal/redact"
	"github.com/crowsnest/crowsnest/internal/rules"
	"github.com/crowsnest/crowsnest/internal/trace"
)

// outputs are the tracker's subscribers, built from the options.
type outputs struct {
	subs  tracker.Subscribers
	store *exposition.Store // what /metrics serves of the apps
	close func()            // after the run: closes what has no flush
}

// outputs builds the exposition and every output, adding their workers to
// the group. What leaves the process (Loki, CloudEvents, traces) goes
// through a queue gated by leadership (internal/queue).
func (d *daemon) outputs(conf *config.Config, cfg *config.Reloader) (*outputs, error) {
	store := exposition.NewStore(d.o.PerAppHistograms)
	store.ExposeAppLabels(d.o.AppLabels)
	promotion := exposition.NewPromotion(nil)
	counters := exposition.NewDeploymentCounters(d.aggregated)
	rollouts, waveDelay := exposition.NewRollouts(), exposition.NewWaveDelay()
	d.reg.MustRegister(promotion, rollouts, waveDelay)
	out := &outputs{store: store, close: func() {}}
	out.subs = tracker.Subscribers{
		Views:       []tracker.ViewSubscriber{store, promotion, counters},
		Operations:  []tracker.OperationSubscriber{exposition.NewDurations(d.aggregated), store},
		Facts:       []tracker.FactSubscriber{factLogger{d.log}},
		Deployments: []tracker.DeploymentSubscriber{counters},
		Rollouts:    []tracker.RolloutSubscriber{rollouts},
		WaveDelay:   []tracker.WaveDelaySubscriber{waveDelay},
	}
	if err := d.loki(&out.subs); err != nil {
		return nil, err
	}
	if err := d.pager(conf, cfg, &out.subs); err != nil {
		return nil, err
	}
	sink, err := d.cloudEvents()
	if err != nil {
		return nil, err
	}
	deployments, closeClient, err := d.deployments(out.subs.Facts, sink)
	if err != nil {
		return nil, err
	}
	out.close = closeClient
	out.subs.Views = append(out.subs.Views, deployments)
	out.subs.Deployments = append(out.subs.Deployments, deployments)
	emitter, err := d.traces()
	if err != nil {
		out.close()
		return nil, err
	}
	if emitter != nil {
		// The trace gets the deployed commit when it is at hand.
		out.subs.Operations = append(out.subs.Operations, deployments.Operations(emitter))
	}
	return out, nil
}

// loki adds the Loki shipper to the fact subscribers when a URL is set.
func (d *daemon) loki(subs *tracker.Subscribers) error {
	o := d.o.Loki
	if o.URL == "" {
		return nil
	}
	lc := loki.DefaultConfig()
	lc.URL, lc.Tenant, lc.Job = o.URL, o.Tenant, o.Job
	lc.BufferSize, lc.Timeout, lc.MaxRetries, lc.MaxLineBytes = o.BufferSize, o.Timeout, o.MaxRetries, o.MaxLineBytes
	lc.Gate, lc.FlushTimeout = d.gate.leading, flushTimeout
	var err error
	if lc.Username, lc.Password, lc.BearerToken, err = o.credentials(); err != nil {
		return err
	}
	shipper, err := loki.New(lc, d.reg, d.log.With("component", "loki"))
	if err != nil {
		return err
	}
	subs.Facts = append(subs.Facts, shipper)
	d.actors = append(d.actors, actor{"loki", stageOutputs, shipper.Run})
	d.log.Info("pushing events to Loki", "url", redact.URL(lc.URL), "auth", lc.AuthKind())
	return nil
}

// credentials reads Loki's credentials from the files the options name.
// Secrets come only from files: a flag's value shows in ps and in the pod spec.
func (o LokiOptions) credentials() (user, password, bearer string, err error) {
	user = o.Username
	if o.PasswordFile != "" {
		if user == "" {
			return "", "", "", errors.New("--loki.password-file: set without --loki.username")
		}
		if password, err = readSecretFile(o.PasswordFile); err != nil {
			return "", "", "", fmt.Errorf("--loki.password-file: %w", err)
		}
	}
	if o.BearerTokenFile != "" {
		if user != "" {
			return "", "", "", errors.New("--loki.bearer-token-file: set together with --loki.username; choose one")
		}
		if bearer, err = readSecretFile(o.BearerTokenFile); err != nil {
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

// pager adds direct paging of Alertmanager when URLs are set: the app
// states it evaluates are a view subscriber.
func (d *daemon) pager(conf *config.Config, cfg *config.Reloader, subs *tracker.Subscribers) error {
	o := d.o.Alertmanager
	if len(o.URLs) == 0 {
		return nil
	}
	states := pager.NewStates()
	subs.Views = append(subs.Views, states)
	p, err := pager.NewPager(pager.PagerConfig{
		URLs: o.URLs, Interval: o.Interval, Resend: o.Resend,
		Timeout: o.Timeout, ForScale: o.ForScale, Links: d.links,
		ExternalLabels: o.ExternalLabels, RunbookURL: o.RunbookURL,
		ProdEnvironments: conf.Prod(),
		AppLabels:        d.o.AppLabels,
	}, rules.Alerts(), states.List, d.reg, d.log)
	if err != nil {
		return err
	}
	p.SetGate(d.gate.leading)
	// A reload's prod_environments; the rules' matchers follow it where
	// they are rendered again (the chart).
	cfg.OnReload(func(conf *config.Config) {
		if err := p.SetProdEnvironments(conf.Prod()); err != nil {
			d.log.Warn("prod_environments of the reloaded configuration not applied", "err", err)
		}
	})
	d.actors = append(d.actors, actor{"pager", stageInputs, func(ctx context.Context) error { p.Run(ctx); return nil }})
	d.log.Info("paging Alertmanager directly", "alertmanagers", len(o.URLs))
	return nil
}

// cloudEvents returns the CloudEvents sink of deployment records, nil
// without a URL.
func (d *daemon) cloudEvents() (*cdevents.Sink, error) {
	o := d.o.CloudEvents
	if o.URL == "" {
		return nil, nil
	}
	sink, err := cdevents.New(cdevents.Config{URL: o.URL, Source: o.Source, BufferSize: o.BufferSize, Gate: d.gate.leading, FlushTimeout: flushTimeout}, d.reg, d.log.With("component", "cloudevents"))
	if err != nil {
		return nil, err
	}
	d.actors = append(d.actors, actor{"cloudevents", stageOutputs, sink.Run})
	d.log.Info("posting a CloudEvent per deployment", "url", redact.URL(o.URL))
	return sink, nil
}

// traces returns the emitter of sync traces, nil when tracing is off.
func (d *daemon) traces() (*trace.Emitter, error) {
	o := d.o.Traces
	tc := trace.Config{Exporter: o.Exporter, Endpoint: o.Endpoint, Protocol: o.Protocol, Stdout: d.stdout, File: o.File, Version: version.Version, Gate: d.gate.leading, FlushTimeout: flushTimeout}
	chosen := tc.Exporter != "" || os.Getenv("OTEL_TRACES_EXPORTER") != ""
	tc, err := trace.ResolveConfig(tc, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	if !chosen && tc.Exporter == trace.ExporterNone && o.Default != "" {
		if tc, err = trace.ResolveConfig(trace.Config{Exporter: o.Default, Stdout: tc.Stdout, File: tc.File, Version: tc.Version, Gate: tc.Gate, FlushTimeout: tc.FlushTimeout}, os.Getenv); err != nil {
			return nil, fmt.Errorf("traces: %w", err)
		}
	}
	e, err := trace.NewEmitter(tc, trace.NewMetrics(d.reg), d.log)
	if err != nil || e == nil {
		return nil, err
	}
	d.actors = append(d.actors, actor{"traces", stageOutputs, e.Run})
	switch tc.Exporter {
	case trace.ExporterOTLP:
		d.log.Info("sending traces of sync operations", "exporter", tc.Exporter, "protocol", tc.Protocol, "endpoint", redact.URL(tc.Endpoint))
	case trace.ExporterFile:
		d.log.Info("writing traces of sync operations to a file, one JSON object per span", "file", tc.File)
	default:
		d.log.Info("writing traces of sync operations to standard output")
	}
	return e, nil
}

// deployments builds what measures deployments: commit metadata from the
// Argo CD API server, its facts to facts (fact subscribers already gated
// as needed) and its records to the CloudEvents sink (nil: none). The
// returned func closes the Argo CD connection.
func (d *daemon) deployments(facts []tracker.FactSubscriber, sink *cdevents.Sink) (*dora.Deployments, func(), error) {
	var client dora.MetadataClient
	closeClient := func() {}
	if a := d.o.ArgoCD; a.Server != "" {
		if a.TokenFile == "" {
			return nil, nil, errors.New("--argocd.server needs --argocd.token-file")
		}
		ac, err := dora.NewArgoCDClient(a.sourceConfig().APIConfig())
		if err != nil {
			return nil, nil, err
		}
		client = ac
		closeClient = func() {
			if err := ac.Close(); err != nil {
				d.log.Debug("close the Argo CD API connection for commit metadata", "err", err)
			}
		}
		d.log.Info("reading deployed commits from argocd-server", "server", a.Server)
	}
	var out dora.Outputs
	for _, f := range facts {
		out.Facts = append(out.Facts, f)
	}
	if sink != nil {
		out.Records = append(out.Records, sink)
	}
	deps, err := dora.New(dora.Config{FetchTimeout: d.o.Deployments.CommitTimeout, FlushTimeout: flushTimeout}, client, out, d.aggregated, d.log)
	if err != nil {
		closeClient()
		return nil, nil, err
	}
	d.actors = append(d.actors, actor{"deployments", stageDeployments, deps.Run})
	return deps, closeClient, nil
}
