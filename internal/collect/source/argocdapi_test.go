package source

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	applicationpkg "github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	versionpkg "github.com/argoproj/argo-cd/v2/pkg/apiclient/version"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
)

// recvResult is what one Recv of a fake Watch stream returns.
type recvResult struct {
	ev  *v1alpha1.ApplicationWatchEvent
	err error
}

// fakeStream is a Watch stream fed by a test; Recv returns what the test
// sends, or ctx's error once the session is over.
type fakeStream struct {
	ctx  context.Context
	recv <-chan recvResult
}

func (s *fakeStream) Recv() (*v1alpha1.ApplicationWatchEvent, error) {
	select {
	case r := <-s.recv:
		return r.ev, r.err
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

// openResult is the outcome of one attempt to open a Watch stream: err, or
// a stream fed through recv.
type openResult struct {
	err  error
	recv chan recvResult
}

// fakeAPI stands for an Argo CD API server at the source's openWatch seam:
// each attempt takes the next result the test queued, or waits for one.
type fakeAPI struct {
	opens    chan openResult
	attempts atomic.Int32
}

func newFakeAPI() *fakeAPI { return &fakeAPI{opens: make(chan openResult, 16)} }

func (f *fakeAPI) openWatch(ctx context.Context) (watchStream, func(), error) {
	f.attempts.Add(1)
	select {
	case r := <-f.opens:
		if r.err != nil {
			return nil, nil, r.err
		}
		return &fakeStream{ctx: ctx, recv: r.recv}, func() {}, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// stream queues a successful open and returns the channel feeding its
// stream.
func (f *fakeAPI) stream() chan recvResult {
	recv := make(chan recvResult, 16)
	f.opens <- openResult{recv: recv}
	return recv
}

func (f *fakeAPI) fail(err error) { f.opens <- openResult{err: err} }

func added(app *v1alpha1.Application) recvResult {
	return recvResult{ev: &v1alpha1.ApplicationWatchEvent{Type: watch.Added, Application: *app}}
}

// startAPISource runs an Argo CD API source on api, retrying after initial
// (doubling up to a minute), until the test ends.
func startAPISource(t *testing.T, api *fakeAPI, cfg ArgoCDAPIConfig, initial time.Duration, sink Sink) (*ArgoCDAPISource, *prometheus.Registry, *logRecorder) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &logRecorder{}
	src := NewArgoCDAPISource(cfg, NewSourceMetrics(reg), slog.New(logs))
	src.openWatch = api.openWatch
	src.retryInitial, src.retryMax = initial, time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil once ctx is done", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return once ctx was done")
		}
	})
	return src, reg, logs
}

// After a reconnect, the next outage is logged again and backs off from
// the initial interval again.
func TestArgoCDAPISourceStartsOverAfterReconnecting(t *testing.T) {
	const initial = 20 * time.Millisecond
	api := newFakeAPI()
	first := api.stream()
	first <- added(newApp())
	first <- recvResult{err: errors.New("connection reset by peer")}
	for range 3 {
		api.fail(errors.New("connection refused"))
	}
	second := api.stream()
	var got collector
	src, reg, logs := startAPISource(t, api, ArgoCDAPIConfig{}, initial, &got)

	// The stream broke, three reconnects failed (backing off 20, 40, 80
	// and 160 ms), the fourth succeeded.
	waitFor(t, "the reconnect", func() bool { return api.attempts.Load() == 5 && src.Ready() })
	if n := len(logs.at(slog.LevelError)); n != 1 {
		t.Fatalf("%d error logs for the first outage, want 1", n)
	}
	second <- recvResult{err: errors.New("connection reset by peer")}
	waitFor(t, "the next reconnect attempt", func() bool { return api.attempts.Load() == 6 })

	if n := len(logs.at(slog.LevelError)); n != 2 {
		t.Errorf("%d error logs after two outages, want 2", n)
	}
	retries := logs.at(slog.LevelDebug)
	if len(retries) != 5 {
		t.Fatalf("%d retries logged, want 5", len(retries))
	}
	if in := attr(retries[4], "in").Duration(); in != initial {
		t.Errorf("the first retry of the second outage waited %v, want the initial %v", in, initial)
	}
	if src.Ready() || gathered(t, reg, "crowsnest_source_up", "source", "argocd-api") != 0 {
		t.Error("ready or up while reconnecting")
	}
	if len(got.get()) != 1 {
		t.Errorf("%d events delivered, want 1", len(got.get()))
	}
}

// A token that sees no Application gets no event at all: the source is
// ready once the stream is open.
func TestArgoCDAPISourceIsReadyWithoutApplications(t *testing.T) {
	api := newFakeAPI()
	recv := api.stream()
	src, reg, _ := startAPISource(t, api, ArgoCDAPIConfig{}, 10*time.Millisecond, &collector{})
	up := func() float64 { return gathered(t, reg, "crowsnest_source_up", "source", "argocd-api") }
	waitFor(t, "ready with an empty stream", func() bool { return src.Ready() && up() == 1 })

	recv <- recvResult{err: io.EOF}
	waitFor(t, "not ready once the stream ended", func() bool { return !src.Ready() && up() == 0 })
	api.stream()
	waitFor(t, "ready again", func() bool { return src.Ready() && up() == 1 })
}

func TestArgoCDAPISourceWatchesOnlyTheGivenNamespaces(t *testing.T) {
	inB := newApp(func(a *v1alpha1.Application) { a.Namespace, a.UID = "team-b", "uid-b" })
	inC := newApp(func(a *v1alpha1.Application) { a.Namespace, a.UID = "team-c", "uid-c" })
	last := newApp(func(a *v1alpha1.Application) { a.Name, a.UID = "last", "uid-last" })
	api := newFakeAPI()
	recv := api.stream()
	for _, r := range []recvResult{
		added(newApp()), added(inB), added(inC),
		{ev: &v1alpha1.ApplicationWatchEvent{Type: watch.Modified, Application: *inC}},
		{ev: &v1alpha1.ApplicationWatchEvent{Type: watch.Deleted, Application: *inB}},
		{ev: &v1alpha1.ApplicationWatchEvent{Type: watch.Deleted, Application: *inC}},
		added(last),
	} {
		recv <- r
	}
	var got collector
	_, reg, _ := startAPISource(t, api, ArgoCDAPIConfig{Namespaces: []string{"argocd", "team-b"}}, 10*time.Millisecond, &got)
	waitFor(t, "the last event", func() bool { return len(got.get()) > 0 && got.get()[len(got.get())-1].App.Name == "last" })

	var seen []string
	for _, e := range got.get() {
		seen = append(seen, string(e.Type)+" "+e.App.Namespace+"/"+e.App.Name)
	}
	want := []string{"ADDED argocd/web", "ADDED team-b/web", "DELETED team-b/web", "ADDED argocd/last"}
	if len(seen) != len(want) {
		t.Fatalf("delivered %q, want %q", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("delivered %q, want %q", seen, want)
		}
	}
	if n := gathered(t, reg, "crowsnest_source_events_total", "type", "added"); n != 3 {
		t.Errorf("crowsnest_source_events_total{type=added} = %v, want 3", n)
	}
}

// fakeArgoCDServer serves the parts of Argo CD's gRPC API the source
// uses, over a real gRPC connection: Version (pkg/apiclient calls it when
// it creates a client), and List and Watch of Applications, which need the
// token and apply List's label selector as argocd-server does.
type fakeArgoCDServer struct {
	applicationpkg.UnimplementedApplicationServiceServer
	versionpkg.UnimplementedVersionServiceServer
	token string
	apps  []*v1alpha1.Application
}

func (f *fakeArgoCDServer) Version(context.Context, *emptypb.Empty) (*versionpkg.VersionMessage, error) {
	return &versionpkg.VersionMessage{Version: "v2.14.21"}, nil
}

func (f *fakeArgoCDServer) authenticate(ctx context.Context) error {
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("token")) != 1 || md.Get("token")[0] != f.token {
		return status.Error(codes.Unauthenticated, "invalid session: token signature is invalid")
	}
	return nil
}

func (f *fakeArgoCDServer) List(ctx context.Context, q *applicationpkg.ApplicationQuery) (*v1alpha1.ApplicationList, error) {
	if err := f.authenticate(ctx); err != nil {
		return nil, err
	}
	selector, err := labels.Parse(q.GetSelector())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	list := &v1alpha1.ApplicationList{}
	for _, a := range f.apps {
		if selector.Matches(labels.Set(a.Labels)) {
			list.Items = append(list.Items, *a)
		}
	}
	return list, nil
}

func (f *fakeArgoCDServer) Watch(q *applicationpkg.ApplicationQuery, ws applicationpkg.ApplicationService_WatchServer) error {
	if err := f.authenticate(ws.Context()); err != nil {
		return err
	}
	for _, a := range f.apps {
		if err := ws.Send(&v1alpha1.ApplicationWatchEvent{Type: watch.Added, Application: *a}); err != nil {
			return err
		}
	}
	<-ws.Context().Done()
	return nil
}

// serve starts f on a local port and returns its address.
func (f *fakeArgoCDServer) serve(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	versionpkg.RegisterVersionServiceServer(srv, f)
	applicationpkg.RegisterApplicationServiceServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

// runOverGRPC runs the production path (pkg/apiclient) against f.
func runOverGRPC(t *testing.T, f *fakeArgoCDServer, cfg ArgoCDAPIConfig, sink Sink) (*ArgoCDAPISource, *prometheus.Registry, *logRecorder) {
	t.Helper()
	cfg.Address, cfg.PlainText = f.serve(t), true
	reg := prometheus.NewRegistry()
	logs := &logRecorder{}
	src := NewArgoCDAPISource(cfg, NewSourceMetrics(reg), slog.New(logs))
	src.retryInitial = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return once ctx was done")
		}
	})
	return src, reg, logs
}

func TestArgoCDAPISourceOverGRPC(t *testing.T) {
	t.Run("a token that sees no app", func(t *testing.T) {
		src, reg, _ := runOverGRPC(t, &fakeArgoCDServer{token: "secret"}, ArgoCDAPIConfig{Token: "secret"}, &collector{})
		waitFor(t, "ready", func() bool {
			return src.Ready() && gathered(t, reg, "crowsnest_source_up", "source", "argocd-api") == 1
		})
	})
	t.Run("a rejected token", func(t *testing.T) {
		f := &fakeArgoCDServer{token: "secret", apps: []*v1alpha1.Application{newApp()}}
		src, reg, logs := runOverGRPC(t, f, ArgoCDAPIConfig{Token: "expired"}, &collector{})
		waitFor(t, "a few retries", func() bool { return len(logs.at(slog.LevelDebug)) >= 3 })
		if src.Ready() || gathered(t, reg, "crowsnest_source_up", "source", "argocd-api") != 0 {
			t.Error("ready or up with a rejected token")
		}
		errs := logs.at(slog.LevelError)
		if len(errs) != 1 {
			t.Fatalf("%d error logs for one outage, want 1", len(errs))
		}
		if err, _ := attr(errs[0], "err").Any().(error); status.Code(err) != codes.Unauthenticated {
			t.Errorf("logged %v, want the server's Unauthenticated", err)
		}
		for _, r := range logs.at(slog.LevelDebug) {
			if strings.Contains(attr(r, "err").String(), "expired") {
				t.Errorf("a log record holds the token: %v", attr(r, "err"))
			}
		}
	})
	t.Run("namespaces", func(t *testing.T) {
		inC := newApp(func(a *v1alpha1.Application) { a.Namespace, a.UID = "team-c", "uid-c" })
		// team-c's app comes first on the stream: once argocd/web is
		// delivered, team-c/web has been handled (and must be dropped).
		f := &fakeArgoCDServer{token: "secret", apps: []*v1alpha1.Application{inC, newApp()}}
		store := newAppsSink()
		src, _, _ := runOverGRPC(t, f, ArgoCDAPIConfig{Token: "secret", Namespaces: []string{"argocd"}}, store)
		waitFor(t, "ready with argocd/web", func() bool { _, ok := store.get("argocd/web"); return ok && src.Ready() })
		if store.Len() != 1 {
			t.Errorf("store holds %d apps, want only argocd/web", store.Len())
		}
	})
}
