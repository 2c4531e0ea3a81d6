package source

import (
	"context"
	"errors"
	"fmt"
	"github.com/crowsnest/crowsnest/internal/model"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient"
	applicationpkg "github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"k8s.io/apimachinery/pkg/watch"
)

// ArgoCDAPIConfig says how to reach one Argo CD API server.
type ArgoCDAPIConfig struct {
	// Address is host:port of argocd-server.
	Address string
	// Token is a bearer token, e.g. of a read-only account
	// (argocd account generate-token). It is never logged.
	Token string
	// PlainText talks gRPC without TLS; Insecure skips verifying the
	// server's certificate.
	PlainText, Insecure bool
	// GRPCWeb tunnels over HTTP/1.1, through proxies without HTTP/2.
	GRPCWeb bool
}

const argoCDAPISourceName = "argocd-api"

// ArgoCDAPISource watches Applications through the Argo CD API
// (pkg/apiclient's application Watch stream) with a token, without cluster
// credentials. A broken stream is reopened with backoff; Argo CD's Watch
// first sends every app as ADDED, which is the relist.
type ArgoCDAPISource struct {
	cfg     ArgoCDAPIConfig
	metrics *SourceMetrics
	logger  *slog.Logger
	ready   atomic.Bool
}

// NewArgoCDAPISource returns a source for the Argo CD API server of cfg.
func NewArgoCDAPISource(cfg ArgoCDAPIConfig, metrics *SourceMetrics, logger *slog.Logger) *ArgoCDAPISource {
	metrics.register(argoCDAPISourceName)
	return &ArgoCDAPISource{cfg: cfg, metrics: metrics, logger: logger.With("component", "argocd-api-source", "address", cfg.Address)}
}

// Ready reports whether the watch stream is open.
func (s *ArgoCDAPISource) Ready() bool { return s.ready.Load() }

// Run watches until ctx is done.
func (s *ArgoCDAPISource) Run(ctx context.Context, sink Sink) error {
	client, err := apiclient.NewClient(&apiclient.ClientOptions{
		ServerAddr: s.cfg.Address, AuthToken: s.cfg.Token, PlainText: s.cfg.PlainText, Insecure: s.cfg.Insecure,
		GRPCWeb: s.cfg.GRPCWeb, UserAgent: "crowsnest",
	})
	if err != nil {
		return fmt.Errorf("argo cd api client for %s: %w", s.cfg.Address, err)
	}
	delay := retryInitial
	failing := false
	for ctx.Err() == nil {
		err := s.watch(ctx, client, sink)
		s.ready.Store(false)
		s.metrics.setUp(argoCDAPISourceName, false)
		if ctx.Err() != nil {
			break
		}
		if !failing {
			s.logger.Error("watching Applications through the Argo CD API failed; retrying", "err", err)
			failing = true
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay = min(2*delay, retryMax)
		if err == nil {
			delay = retryInitial
		}
	}
	return nil
}

// watch runs one Watch stream until it breaks.
func (s *ArgoCDAPISource) watch(ctx context.Context, client apiclient.Client, sink Sink) error {
	closer, apps, err := client.NewApplicationClient()
	if err != nil {
		return err
	}
	defer closer.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := apps.Watch(ctx, &applicationpkg.ApplicationQuery{})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("watch stream ended")
			}
			return err
		}
		if !s.ready.Swap(true) {
			// The first event (Argo CD sends every app first) says the
			// token works.
			s.logger.Info("watching Applications through the Argo CD API")
			s.metrics.setUp(argoCDAPISourceName, true)
		}
		typ := model.Modified
		switch ev.Type {
		case watch.Added:
			typ = model.Added
		case watch.Deleted:
			typ = model.Deleted
		case watch.Modified:
		default:
			continue
		}
		app := ev.Application
		now := time.Now()
		s.metrics.event(argoCDAPISourceName, typ, now)
		sink.Handle(model.Event{Type: typ, Time: now, App: &app})
	}
}
