package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient"
	applicationpkg "github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/cenkalti/backoff/v5"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/crowsnest/crowsnest/internal/model"
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
	// Namespaces restricts the source to Applications in these namespaces
	// (--namespaces); empty means all the token can see. Argo CD's Watch
	// cannot filter by namespace, so the source drops the others itself.
	Namespaces []string
}

const argoCDAPISourceName = "argocd-api"

// noAppsSelector is a label selector no object can match (the label both
// exists and does not). Listing Applications with it checks that the server
// accepts the token without transferring any app.
const noAppsSelector = "crowsnest.io/probe,!crowsnest.io/probe"

// watchStream is the receiving end of an Application Watch stream;
// pkg/apiclient's ApplicationService_WatchClient satisfies it.
type watchStream interface {
	Recv() (*v1alpha1.ApplicationWatchEvent, error)
}

// openWatchFunc connects to the Argo CD API and opens a Watch stream of
// all Applications. It returns only once the server has accepted the
// token; closeConn releases the connection.
type openWatchFunc func(ctx context.Context) (stream watchStream, closeConn func(), err error)

// ArgoCDAPISource watches Applications through the Argo CD API
// (pkg/apiclient's application Watch stream) with a token, without cluster
// credentials. A broken stream is reopened with backoff; Argo CD's Watch
// first sends every app as ADDED, which is the relist.
type ArgoCDAPISource struct {
	cfg        ArgoCDAPIConfig
	namespaces map[string]bool // nil: all
	metrics    *SourceMetrics
	logger     *slog.Logger
	ready      atomic.Bool

	// openWatch is nil in production, where Run builds it from
	// pkg/apiclient; tests set it and the retry pacing.
	openWatch              openWatchFunc
	retryInitial, retryMax time.Duration
}

// NewArgoCDAPISource returns a source for the Argo CD API server of cfg.
func NewArgoCDAPISource(cfg ArgoCDAPIConfig, metrics *SourceMetrics, logger *slog.Logger) *ArgoCDAPISource {
	metrics.register(argoCDAPISourceName)
	var namespaces map[string]bool
	for _, ns := range cfg.Namespaces {
		if ns == "" { // metav1.NamespaceAll
			namespaces = nil
			break
		}
		if namespaces == nil {
			namespaces = map[string]bool{}
		}
		namespaces[ns] = true
	}
	return &ArgoCDAPISource{
		cfg: cfg, namespaces: namespaces, metrics: metrics,
		logger:       logger.With("component", "argocd-api-source", "address", cfg.Address),
		retryInitial: retryInitial, retryMax: retryMax,
	}
}

// Ready reports whether the server has accepted the token and the Watch
// stream is open, whether or not the token sees any Application.
func (s *ArgoCDAPISource) Ready() bool { return s.ready.Load() }

// Run watches until ctx is done. It returns an error only if the API
// client cannot be created from the configuration.
func (s *ArgoCDAPISource) Run(ctx context.Context, sink Sink) error {
	openWatch := s.openWatch
	if openWatch == nil {
		client, err := apiclient.NewClient(&apiclient.ClientOptions{
			ServerAddr: s.cfg.Address, AuthToken: s.cfg.Token, PlainText: s.cfg.PlainText, Insecure: s.cfg.Insecure,
			GRPCWeb: s.cfg.GRPCWeb, UserAgent: "crowsnest",
		})
		if err != nil {
			return fmt.Errorf("argo cd api client for %s: %w", s.cfg.Address, err)
		}
		openWatch = apiclientWatch(client)
	}
	sink = s.metrics.counting(argoCDAPISourceName, sink)
	bo := newRetryBackOff(s.retryInitial, s.retryMax)
	// connected and failing are the state of the connection; only their
	// changes are logged, not every retry.
	connected, failing := false, false
	op := func() (struct{}, error) {
		err := s.watch(ctx, openWatch, sink, func() {
			connected, failing = true, false
			s.ready.Store(true)
			s.metrics.setUp(argoCDAPISourceName, true)
			s.logger.Info("watching Applications through the Argo CD API")
			// The next outage backs off from the start again.
			bo.Reset()
		})
		s.ready.Store(false)
		s.metrics.setUp(argoCDAPISourceName, false)
		if ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(ctx.Err())
		}
		switch {
		case failing:
		case connected:
			s.logger.Error("lost the Argo CD API watch of Applications; serving the last known state while reconnecting", "err", err)
		default:
			s.logger.Error("watching Applications through the Argo CD API failed; retrying", "err", err)
		}
		connected, failing = false, true
		return struct{}{}, err
	}
	// The operation never succeeds: it returns when ctx is done.
	_, _ = backoff.Retry(ctx, op, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, next time.Duration) {
			s.logger.Debug("reconnecting to the Argo CD API", "in", next, "err", err)
		}))
	return nil
}

// watch opens one Watch stream and delivers its events until it breaks;
// it calls connected once the stream is open. It always returns an error.
func (s *ArgoCDAPISource) watch(ctx context.Context, openWatch openWatchFunc, sink Sink, connected func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, closeConn, err := openWatch(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	connected()
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("watch stream ended")
		}
		if err != nil {
			return fmt.Errorf("receive from watch stream: %w", err)
		}
		var typ model.EventType
		switch ev.Type {
		case watch.Added:
			typ = model.Added
		case watch.Modified:
			typ = model.Modified
		case watch.Deleted:
			typ = model.Deleted
		default:
			continue
		}
		app := ev.Application
		if s.namespaces != nil && !s.namespaces[app.Namespace] {
			continue
		}
		sink.Handle(model.Event{Type: typ, Time: time.Now(), App: &app})
	}
}

// apiclientWatch opens Watch streams with client.
func apiclientWatch(client apiclient.Client) openWatchFunc {
	return func(ctx context.Context) (watchStream, func(), error) {
		conn, apps, err := client.NewApplicationClient()
		if err != nil {
			return nil, nil, fmt.Errorf("connect: %w", err)
		}
		closeConn := func() { _ = conn.Close() }
		// Watch reports a rejected token only with its first event,
		// which a token that sees no app never gets: check it first.
		selector := noAppsSelector
		if _, err := apps.List(ctx, &applicationpkg.ApplicationQuery{Selector: &selector}); err != nil {
			closeConn()
			return nil, nil, fmt.Errorf("list applications: %w", err)
		}
		stream, err := apps.Watch(ctx, &applicationpkg.ApplicationQuery{})
		if err != nil {
			closeConn()
			return nil, nil, fmt.Errorf("watch applications: %w", err)
		}
		return stream, closeConn, nil
	}
}
