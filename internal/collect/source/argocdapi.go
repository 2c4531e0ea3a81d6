package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/crowsnest/crowsnest/internal/argocd/api"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// DefaultArgoCDResyncPeriod is the ResyncPeriod of an ArgoCDAPIConfig that
// sets none.
const DefaultArgoCDResyncPeriod = 5 * time.Minute

// ArgoCDAPIConfig says how to reach one Argo CD API server.
type ArgoCDAPIConfig struct {
	// Address is host:port of argocd-server.
	Address string
	// Token is a bearer token, e.g. of a read-only account
	// (argocd account generate-token). It is never logged.
	Token string
	// TokenFile, when set, holds the token instead: it is read again at
	// every (re)connect, so a rotated token (a renewed Secret) is picked
	// up after the old one is rejected, without a restart.
	TokenFile string
	// CAFile holds PEM certificates to verify argocd-server's TLS
	// certificate with, instead of the system's.
	CAFile string
	// PlainText talks HTTP without TLS; Insecure skips verifying the
	// server's certificate.
	PlainText, Insecure bool
	// GRPCWeb is --argocd.grpc-web, which no longer has an effect: the
	// REST API crowsnest uses passes any proxy gRPC-Web passes.
	GRPCWeb bool
	// Namespaces restricts the source to Applications in these namespaces
	// (--namespaces); empty means all the token can see. Argo CD's Watch
	// cannot filter by namespace, so the source drops the others itself.
	Namespaces []string
	// ResyncPeriod is how often the source lists every Application while
	// connected and reconciles what it delivered with the list, to catch
	// the changes and deletions the Watch stream lost (argocd-server drops
	// events for a subscriber that falls behind). Zero or less means
	// DefaultArgoCDResyncPeriod.
	ResyncPeriod time.Duration
}

// APIConfig is how internal/argocd/api reaches the server of c (the source
// and the deployments' commit metadata client share it).
func (c ArgoCDAPIConfig) APIConfig() api.Config {
	return api.Config{
		Address: c.Address, Token: c.Token, TokenFile: c.TokenFile, CAFile: c.CAFile,
		PlainText: c.PlainText, Insecure: c.Insecure,
	}
}

const argoCDAPISourceName = "argocd-api"

// Reasons of a reconcile, the reason label of
// crowsnest_source_reconciles_total.
const (
	reconcileReconnect = "reconnect"
	reconcileResync    = "resync"
)

// watchStream is the receiving end of an Application Watch stream;
// api.Stream satisfies it.
type watchStream interface {
	Recv() (*v1alpha1.ApplicationWatchEvent, error)
}

// argoCDConn is one connection to argocd-server.
type argoCDConn interface {
	// watch opens a Watch stream of the changes to every Application from
	// now on, without the ADDED event of every app that a plain Watch
	// starts with.
	watch(ctx context.Context) (watchStream, error)
	// list returns the Applications of namespace ("": all namespaces) that
	// the token sees.
	list(ctx context.Context, namespace string) ([]v1alpha1.Application, error)
	// close releases the connection.
	close()
}

// connectFunc connects to the Argo CD API.
type connectFunc func(ctx context.Context) (argoCDConn, error)

// ArgoCDAPISource watches Applications through the Argo CD API
// (argocd-server's REST API: the application watch stream and list, see
// internal/argocd/api) with a token,
// without cluster credentials.
//
// argocd-server's Watch neither replays what happened while no one
// watched (after a reconnect it never sends DELETED for the apps deleted
// meanwhile) nor guarantees delivery (its broadcaster drops the events a
// slow subscriber has no room for). So the source remembers the apps it
// delivered and reconciles them with a full List after each (re)connect
// and every ResyncPeriod: listed apps it did not deliver are ADDED, those
// listed with a newer resourceVersion MODIFIED, and remembered apps the
// list lacks DELETED, with their last known state. A broken stream is
// reopened with backoff.
type ArgoCDAPISource struct {
	cfg          ArgoCDAPIConfig
	namespaces   map[string]bool // nil: all
	resyncPeriod time.Duration
	metrics      *SourceMetrics
	logger       *slog.Logger
	ready        atomic.Bool

	// connect is nil in production, where Run builds it from
	// internal/argocd/api; tests set it and the retry pacing.
	connect                connectFunc
	retryInitial, retryMax time.Duration
}

// NewArgoCDAPISource returns a source for the Argo CD API server of cfg.
func NewArgoCDAPISource(cfg ArgoCDAPIConfig, metrics *SourceMetrics, logger *slog.Logger) *ArgoCDAPISource {
	metrics.register(argoCDAPISourceName)
	metrics.registerReconciles(argoCDAPISourceName, []string{reconcileReconnect, reconcileResync})
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
	resync := cfg.ResyncPeriod
	if resync <= 0 {
		resync = DefaultArgoCDResyncPeriod
	}
	return &ArgoCDAPISource{
		cfg: cfg, namespaces: namespaces, resyncPeriod: resync, metrics: metrics,
		logger:       logger.With("component", "argocd-api-source", "address", cfg.Address),
		retryInitial: retryInitial, retryMax: retryMax,
	}
}

// Ready reports whether the server has accepted the token, the source has
// delivered the list of every Application (whether or not the token sees
// any) and the Watch stream is open.
func (s *ArgoCDAPISource) Ready() bool { return s.ready.Load() }

// Run watches until ctx is done. It returns an error only if the API
// client cannot be created from the configuration.
func (s *ArgoCDAPISource) Run(ctx context.Context, sink Sink) error {
	connect := s.connect
	if connect == nil {
		// The client reads the token file again at every request, so a
		// rotated token is picked up at the next (re)connect.
		client, err := api.New(s.cfg.APIConfig())
		if err != nil {
			return fmt.Errorf("argo cd api client for %s: %w", s.cfg.Address, err)
		}
		defer client.Close()
		connect = func(context.Context) (argoCDConn, error) { return restConn{client}, nil }
	}
	sink = s.metrics.counting(argoCDAPISourceName, sink)
	// delivered outlives the connections: a reconnect reconciles with it.
	delivered := newDeliveredApps()
	bo := newRetryBackOff(s.retryInitial, s.retryMax)
	// connected and failing are the state of the connection; only their
	// changes are logged, not every retry.
	connected, failing := false, false
	op := func() (struct{}, error) {
		err := s.session(ctx, connect, delivered, sink, func() {
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

// session connects, opens a Watch stream, reconciles delivered with a full
// list, calls connected, then delivers the stream's events and resyncs
// every resyncPeriod until the stream or a resync fails. It always returns
// an error, and only once the goroutine it started has ended.
//
// The stream is opened before the list so that no change falls between
// them: argocd-server's Watch does not replay from a resourceVersion (it
// only drops older events), so a Watch opened after the list would miss
// whatever changed in between. Events the stream queued that the list
// already reflects are skipped (see deliveredApps.apply).
func (s *ArgoCDAPISource) session(ctx context.Context, connect connectFunc, delivered *deliveredApps, sink Sink, connected func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, err := connect(ctx)
	if err != nil {
		return err
	}
	defer conn.close()
	stream, err := conn.watch(ctx)
	if err != nil {
		return err
	}
	received := make(chan watchResult)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		receive(ctx, stream, received)
	}()
	// Stop the receiver before the connection closes.
	defer func() {
		cancel()
		wg.Wait()
	}()

	if err := s.reconcile(ctx, conn, delivered, sink, reconcileReconnect); err != nil {
		return err
	}
	connected()
	resync := time.NewTicker(s.resyncPeriod)
	defer resync.Stop()
	for {
		select {
		case r := <-received:
			if errors.Is(r.err, io.EOF) {
				return errors.New("watch stream ended")
			}
			if r.err != nil {
				return fmt.Errorf("receive from watch stream: %w", r.err)
			}
			s.apply(delivered, r.ev, sink)
		case <-resync.C:
			if err := s.reconcile(ctx, conn, delivered, sink, reconcileResync); err != nil {
				return fmt.Errorf("resync: %w", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// watchResult is what one Recv of a Watch stream returned.
type watchResult struct {
	ev  *v1alpha1.ApplicationWatchEvent
	err error
}

// receive passes what stream receives to out until it fails or ctx is done.
func receive(ctx context.Context, stream watchStream, out chan<- watchResult) {
	for {
		ev, err := stream.Recv()
		select {
		case out <- watchResult{ev: ev, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// deliveredApps is what the source delivered: the last state of every app
// it has not since deleted, and how far its last reconcile got. Only the
// goroutine of Run uses it.
type deliveredApps struct {
	apps map[string]*v1alpha1.Application
	// listedUpTo is, by namespace ("" for the list of all namespaces), the
	// highest resourceVersion the last reconcile's list held. Lists are
	// consistent snapshots of argocd-server's informer, which applies
	// changes in resourceVersion order, so every change up to it is
	// reflected in the list.
	listedUpTo map[string]int64
}

func newDeliveredApps() *deliveredApps {
	return &deliveredApps{apps: map[string]*v1alpha1.Application{}}
}

// listed reports whether the last reconcile's list reflected a change of
// an app in namespace at resourceVersion rv.
func (d *deliveredApps) listed(namespace string, rv int64) bool {
	upTo, ok := d.listedUpTo[namespace]
	if !ok {
		upTo = d.listedUpTo[""]
	}
	return rv <= upTo
}

// watched reports whether the source delivers the apps of namespace.
func (s *ArgoCDAPISource) watched(namespace string) bool {
	return s.namespaces == nil || s.namespaces[namespace]
}

// listNamespaces returns the namespaces to list, "" for all.
func (s *ArgoCDAPISource) listNamespaces() []string {
	if s.namespaces == nil {
		return []string{""}
	}
	return slices.Sorted(maps.Keys(s.namespaces))
}

// apply delivers one event of the Watch stream, unless it is outside the
// watched namespaces or no news: a change the last list already reflected,
// a state older than the one delivered, or the deletion of an app not
// delivered (or already deleted by a reconcile).
func (s *ArgoCDAPISource) apply(delivered *deliveredApps, ev *v1alpha1.ApplicationWatchEvent, sink Sink) {
	var typ model.EventType
	switch ev.Type {
	case watch.Added:
		typ = model.Added
	case watch.Modified:
		typ = model.Modified
	case watch.Deleted:
		typ = model.Deleted
	default:
		return
	}
	app := ev.Application
	if !s.watched(app.Namespace) {
		return
	}
	key := model.Key(app.Namespace, app.Name)
	rv, numeric := parseResourceVersion(app.ResourceVersion)
	if numeric && delivered.listed(app.Namespace, rv) {
		return
	}
	last, known := delivered.apps[key]
	if typ == model.Deleted {
		if !known {
			return
		}
		delete(delivered.apps, key)
	} else {
		if known && numeric {
			if lastRV, ok := parseResourceVersion(last.ResourceVersion); ok && rv <= lastRV {
				return
			}
		}
		delivered.apps[key] = &app
	}
	sink.Handle(model.Event{Type: typ, Time: time.Now(), App: &app})
}

// reconcile lists every watched Application and brings delivered, and
// sink, to the list: listed apps not delivered are ADDED, those with a
// newer resourceVersion than delivered MODIFIED, and delivered apps the
// list lacks DELETED with their last known state. Nothing is delivered
// unless every list succeeds.
func (s *ArgoCDAPISource) reconcile(ctx context.Context, conn argoCDConn, delivered *deliveredApps, sink Sink, reason string) error {
	listed := map[string]*v1alpha1.Application{}
	upTo := map[string]int64{}
	for _, ns := range s.listNamespaces() {
		apps, err := conn.list(ctx, ns)
		if err != nil {
			if ns != "" {
				return fmt.Errorf("list applications in namespace %s: %w", ns, err)
			}
			return fmt.Errorf("list applications: %w", err)
		}
		for i := range apps {
			// A copy: a pointer into apps would keep the whole list
			// alive for as long as one app of it is remembered.
			app := new(v1alpha1.Application)
			*app = apps[i]
			if rv, ok := parseResourceVersion(app.ResourceVersion); ok && rv > upTo[ns] {
				upTo[ns] = rv
			}
			if s.watched(app.Namespace) {
				listed[model.Key(app.Namespace, app.Name)] = app
			}
		}
	}
	s.metrics.reconciled(argoCDAPISourceName, reason)

	var added, changed, deleted int
	for _, key := range slices.Sorted(maps.Keys(listed)) {
		app := listed[key]
		typ := model.Added
		if last, known := delivered.apps[key]; known {
			if !newerResourceVersion(app.ResourceVersion, last.ResourceVersion) {
				continue
			}
			typ = model.Modified
			changed++
			s.metrics.reconciledApp(argoCDAPISourceName, reconciledChanged)
		} else {
			added++
		}
		delivered.apps[key] = app
		sink.Handle(model.Event{Type: typ, Time: time.Now(), App: app})
	}
	var keys []string
	for key := range delivered.apps {
		if _, ok := listed[key]; !ok {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		last := delivered.apps[key]
		delete(delivered.apps, key)
		deleted++
		s.metrics.reconciledApp(argoCDAPISourceName, reconciledDeleted)
		sink.Handle(model.Event{Type: model.Deleted, Time: time.Now(), App: last})
	}
	delivered.listedUpTo = upTo
	if changed+deleted > 0 || (reason == reconcileResync && added > 0) {
		s.logger.Info("reconciled Applications with a full list", "reason", reason,
			"added", added, "changed", changed, "deleted", deleted)
	}
	return nil
}

// parseResourceVersion returns rv as a number, as argocd-server compares
// resourceVersions, and whether it is one.
func parseResourceVersion(rv string) (int64, bool) {
	n, err := strconv.ParseInt(rv, 10, 64)
	return n, err == nil
}

// newerResourceVersion reports whether an app at resourceVersion rv is
// newer than at last: numerically greater, or just different if either is
// not a number.
func newerResourceVersion(rv, last string) bool {
	n, ok := parseResourceVersion(rv)
	l, lok := parseResourceVersion(last)
	if ok && lok {
		return n > l
	}
	return rv != last
}

// restConn is a connection over argocd-server's REST API. Its watch
// streams are plain HTTP requests: nothing re-opens a broken one behind
// crowsnest's back, so every break is seen and followed by a list.
type restConn struct{ client *api.Client }

func (c restConn) watch(ctx context.Context) (watchStream, error) {
	// With a resourceVersion, argocd-server's Watch does not start with
	// the ADDED event of every app (the list delivers them) and drops
	// the events of older versions: "0" drops none.
	st, err := c.client.Watch(ctx, "0")
	if err != nil {
		return nil, err
	}
	// The session ends the stream by ending ctx: close the response
	// body then, as net/http wants.
	context.AfterFunc(ctx, func() { _ = st.Close() })
	return st, nil
}

func (c restConn) list(ctx context.Context, namespace string) ([]v1alpha1.Application, error) {
	return c.client.List(ctx, namespace)
}

func (c restConn) close() {}
