package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/crowsnest/crowsnest/internal/argocd/client/fake"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/argocd/api"
	"github.com/crowsnest/crowsnest/internal/model"
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

// openResult is the outcome of one attempt to connect: err, or a
// connection whose Watch stream is fed through recv.
type openResult struct {
	err  error
	recv chan recvResult
}

// fakeAPI stands for an Argo CD API server at the source's connect seam:
// each attempt takes the next result the test queued, or waits for one;
// list returns the apps the test set.
type fakeAPI struct {
	opens    chan openResult
	attempts atomic.Int32

	mu   sync.Mutex
	apps []*v1alpha1.Application
}

func newFakeAPI(apps ...*v1alpha1.Application) *fakeAPI {
	return &fakeAPI{opens: make(chan openResult, 16), apps: apps}
}

func (f *fakeAPI) connect(ctx context.Context) (argoCDConn, error) {
	f.attempts.Add(1)
	select {
	case r := <-f.opens:
		if r.err != nil {
			return nil, r.err
		}
		return &fakeConn{api: f, recv: r.recv}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fakeConn is one connection to a fakeAPI.
type fakeConn struct {
	api  *fakeAPI
	recv chan recvResult
}

func (c *fakeConn) watch(ctx context.Context) (watchStream, error) {
	return &fakeStream{ctx: ctx, recv: c.recv}, nil
}

func (c *fakeConn) list(_ context.Context, namespace string) ([]v1alpha1.Application, error) {
	c.api.mu.Lock()
	defer c.api.mu.Unlock()
	var items []v1alpha1.Application
	for _, a := range c.api.apps {
		if namespace == "" || a.Namespace == namespace {
			items = append(items, *a)
		}
	}
	return items, nil
}

func (c *fakeConn) close() {}

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
	src.connect = api.connect
	src.retryInitial, src.retryMax = initial, time.Minute
	runUntilCleanup(t, src, sink, 5*time.Second)
	return src, reg, logs
}

// After a reconnect, the next outage is logged again and backs off from
// the initial interval again.
func TestArgoCDAPISourceStartsOverAfterReconnecting(t *testing.T) {
	const initial = 20 * time.Millisecond
	web := newApp(func(a *v1alpha1.Application) { a.ResourceVersion = "1" })
	api := newFakeAPI(web)
	first := api.stream()
	// The list delivers web; the stream's ADDED of the same version is
	// no news.
	first <- added(web)
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

// fakeArgoCDServer serves the parts of argocd-server's REST API (its
// grpc-gateway) the source uses, over real HTTP, at the wire format of
// grpc-gateway v1.16 that argocd-server v3 runs: List and Watch of
// Applications, which need the bearer token and behave as argocd-server's
// do: List applies its label selector and appNamespace; Watch starts with
// the ADDED event of every app only without a resourceVersion, then
// streams the changes broadcast to it as {"result": event} lines, with no
// replay of what happened before it subscribed; a broken stream ends with
// an {"error": status} line.
type fakeArgoCDServer struct {
	token string

	mu   sync.Mutex
	apps []*v1alpha1.Application
	// watches are the open Watch streams; watchVersions the
	// resourceVersion query of every Watch opened ("" for none).
	watches       map[*fakeWatch]bool
	watchVersions []string
	rejections    int // calls refused for their token
}

// rejected returns how many calls were refused for their token.
func (f *fakeArgoCDServer) rejected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rejections
}

// fakeWatch is one open Watch stream of a fakeArgoCDServer.
type fakeWatch struct {
	events chan *v1alpha1.ApplicationWatchEvent
	broken chan struct{}
}

// authenticate answers 401 as argocd-server does unless the request
// carries the token as a bearer token.
func (f *fakeArgoCDServer) authenticate(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		f.mu.Lock()
		f.rejections++
		f.mu.Unlock()
		writeGatewayError(w, http.StatusUnauthorized, 16, "invalid session: token signature is invalid")
		return false
	}
	return true
}

// writeGatewayError writes grpc-gateway v1's error body.
func writeGatewayError(w http.ResponseWriter, httpStatus, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": msg, "code": code, "message": msg})
}

func (f *fakeArgoCDServer) list(w http.ResponseWriter, r *http.Request) {
	if !f.authenticate(w, r) {
		return
	}
	selector, err := labels.Parse(r.URL.Query().Get("selector"))
	if err != nil {
		writeGatewayError(w, http.StatusBadRequest, 3, err.Error())
		return
	}
	f.mu.Lock()
	list := &v1alpha1.ApplicationList{}
	for _, a := range f.apps {
		if ns := r.URL.Query().Get("appNamespace"); ns != "" && a.Namespace != ns {
			continue
		}
		if selector.Matches(labels.Set(a.Labels)) {
			list.Items = append(list.Items, *a)
		}
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

func (f *fakeArgoCDServer) watch(w http.ResponseWriter, r *http.Request) {
	if !f.authenticate(w, r) {
		return
	}
	fw := &fakeWatch{events: make(chan *v1alpha1.ApplicationWatchEvent, 16), broken: make(chan struct{})}
	rv := r.URL.Query().Get("resourceVersion")
	f.mu.Lock()
	apps := slices.Clone(f.apps)
	f.watchVersions = append(f.watchVersions, rv)
	if f.watches == nil {
		f.watches = map[*fakeWatch]bool{}
	}
	f.watches[fw] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watches, fw)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(ev *v1alpha1.ApplicationWatchEvent) error {
		err := enc.Encode(map[string]any{"result": ev})
		w.(http.Flusher).Flush()
		return err
	}
	if rv == "" {
		for _, a := range apps {
			if err := send(&v1alpha1.ApplicationWatchEvent{Type: watch.Added, Application: *a}); err != nil {
				return
			}
		}
	}
	w.(http.Flusher).Flush()
	for {
		select {
		case ev := <-fw.events:
			if err := send(ev); err != nil {
				return
			}
		case <-fw.broken:
			_ = enc.Encode(map[string]any{"error": map[string]any{
				"grpc_code": 14, "http_code": 503, "message": "transport is closing", "http_status": "Service Unavailable"}})
			return
		case <-r.Context().Done():
			return
		}
	}
}

// set replaces the server's apps without telling any Watch stream, as
// when the changes happen while no one watches or argocd-server drops
// their events.
func (f *fakeArgoCDServer) set(apps ...*v1alpha1.Application) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps = apps
}

// broadcast sets the server's apps and sends ev to every open Watch
// stream.
func (f *fakeArgoCDServer) broadcast(ev watch.EventType, app *v1alpha1.Application, apps ...*v1alpha1.Application) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps = apps
	for w := range f.watches {
		w.events <- &v1alpha1.ApplicationWatchEvent{Type: ev, Application: *app}
	}
}

// breakWatches ends every open Watch stream with an error.
func (f *fakeArgoCDServer) breakWatches() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.watches {
		close(w.broken)
		delete(f.watches, w)
	}
}

// openWatches returns how many Watch streams are open.
func (f *fakeArgoCDServer) openWatches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watches)
}

// watchesOpened returns how many Watch streams were opened, and whether
// each asked for a resourceVersion.
func (f *fakeArgoCDServer) watchesOpened() (n int, allWithVersion bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	allWithVersion = true
	for _, rv := range f.watchVersions {
		allWithVersion = allWithVersion && rv != ""
	}
	return len(f.watchVersions), allWithVersion
}

// serve starts f on a local port and returns its address.
func (f *fakeArgoCDServer) serve(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/applications", f.list)
	mux.HandleFunc("GET /api/v1/stream/applications", f.watch)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.Listener.Addr().String()
}

// runOverHTTP runs the production path (internal/argocd/api) against f.
func runOverHTTP(t *testing.T, f *fakeArgoCDServer, cfg ArgoCDAPIConfig, sink Sink) (*ArgoCDAPISource, *prometheus.Registry, *logRecorder) {
	t.Helper()
	cfg.Address, cfg.PlainText = f.serve(t), true
	reg := prometheus.NewRegistry()
	logs := &logRecorder{}
	src := NewArgoCDAPISource(cfg, NewSourceMetrics(reg), slog.New(logs))
	src.retryInitial = 20 * time.Millisecond
	runUntilCleanup(t, src, sink, 10*time.Second)
	return src, reg, logs
}

// runUntilCleanup runs src until the test ends, then checks that Run
// returned nil within stop of its context's end.
func runUntilCleanup(t *testing.T, src *ArgoCDAPISource, sink Sink, stop time.Duration) {
	t.Helper()
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
		case <-time.After(stop):
			t.Error("Run did not return once ctx was done")
		}
	})
}

func TestArgoCDAPISourceOverHTTP(t *testing.T) {
	t.Run("a token that sees no app", func(t *testing.T) {
		src, reg, _ := runOverHTTP(t, &fakeArgoCDServer{token: "secret"}, ArgoCDAPIConfig{Token: "secret"}, &collector{})
		waitFor(t, "ready", func() bool {
			return src.Ready() && gathered(t, reg, "crowsnest_source_up", "source", "argocd-api") == 1
		})
	})
	t.Run("a rejected token", func(t *testing.T) {
		f := &fakeArgoCDServer{token: "secret", apps: []*v1alpha1.Application{newApp()}}
		src, reg, logs := runOverHTTP(t, f, ArgoCDAPIConfig{Token: "expired"}, &collector{})
		waitFor(t, "a few retries", func() bool { return len(logs.at(slog.LevelDebug)) >= 3 })
		if src.Ready() || gathered(t, reg, "crowsnest_source_up", "source", "argocd-api") != 0 {
			t.Error("ready or up with a rejected token")
		}
		errs := logs.at(slog.LevelError)
		if len(errs) != 1 {
			t.Fatalf("%d error logs for one outage, want 1", len(errs))
		}
		var apiErr *api.Error
		if err, _ := attr(errs[0], "err").Any().(error); !errors.As(err, &apiErr) || apiErr.Code != 16 || apiErr.HTTPStatus != http.StatusUnauthorized {
			t.Errorf("logged %v, want the server's Unauthenticated (401, code 16)", err)
		}
		for _, r := range logs.at(slog.LevelDebug) {
			if strings.Contains(attr(r, "err").String(), "expired") {
				t.Errorf("a log record holds the token: %v", attr(r, "err"))
			}
		}
	})
	t.Run("namespaces", func(t *testing.T) {
		inC := newApp(func(a *v1alpha1.Application) { a.Namespace, a.UID = "team-c", "uid-c" })
		// team-c's app comes first: once argocd/web is delivered,
		// team-c/web has been handled (and must be dropped).
		f := &fakeArgoCDServer{token: "secret", apps: []*v1alpha1.Application{inC, newApp()}}
		store := newAppsSink()
		src, _, _ := runOverHTTP(t, f, ArgoCDAPIConfig{Token: "secret", Namespaces: []string{"argocd"}}, store)
		waitFor(t, "ready with argocd/web", func() bool { _, ok := store.get("argocd/web"); return ok && src.Ready() })
		if store.Len() != 1 {
			t.Errorf("store holds %d apps, want only argocd/web", store.Len())
		}
	})
}

// appAt returns the Application argocd/name at resourceVersion rv.
func appAt(name, rv string) *v1alpha1.Application {
	return newApp(func(a *v1alpha1.Application) {
		a.Name, a.UID, a.ResourceVersion = name, types.UID("uid-"+name), rv
	})
}

func watchEvent(typ watch.EventType, app *v1alpha1.Application) recvResult {
	return recvResult{ev: &v1alpha1.ApplicationWatchEvent{Type: typ, Application: *app}}
}

// described returns "TYPE namespace/name@resourceVersion" of events.
func described(events []model.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, fmt.Sprintf("%s %s/%s@%s", e.Type, e.App.Namespace, e.App.Name, e.App.ResourceVersion))
	}
	return out
}

// tee hands every event to each of sinks.
func tee(sinks ...Sink) Sink {
	return SinkFunc(func(e model.Event) {
		for _, s := range sinks {
			s.Handle(e)
		}
	})
}

// series returns the series of the metric name in reg, as
// "label=value,... value".
func series(t *testing.T, reg prometheus.Gatherer, name string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out = append(out, fmt.Sprintf("%s %v", strings.Join(ls, ","), m.GetCounter().GetValue()))
		}
	}
	slices.Sort(out)
	return out
}

// The reconcile series exist at 0 from the start, for the Argo CD API
// source only.
func TestArgoCDAPISourceReconcileSeriesStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := NewSourceMetrics(reg)
	NewKubeSource(fake.NewSimpleClientset(), nil, metrics, slog.New(&logRecorder{}))
	NewArgoCDAPISource(ArgoCDAPIConfig{}, metrics, slog.New(&logRecorder{}))
	for name, want := range map[string][]string{
		"crowsnest_source_reconciles_total": {
			"reason=reconnect,source=argocd-api 0", "reason=resync,source=argocd-api 0",
		},
		"crowsnest_source_reconciled_apps_total": {
			"action=changed,source=argocd-api 0", "action=deleted,source=argocd-api 0",
		},
	} {
		if got := series(t, reg, name); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// An app deleted while the stream is down loses its state after the
// reconnect: argocd-server's Watch never sends DELETED for it, the list
// after the reconnect finds it gone.
func TestArgoCDAPISourceReconcilesAfterReconnecting(t *testing.T) {
	f := &fakeArgoCDServer{token: "secret", apps: []*v1alpha1.Application{appAt("web", "10"), appAt("api", "11")}}
	store := newAppsSink()
	var got collector
	src, reg, _ := runOverHTTP(t, f, ArgoCDAPIConfig{Token: "secret"}, tee(store, &got))
	waitFor(t, "ready with both apps", func() bool { return src.Ready() && store.Len() == 2 })

	// While the stream is down, api is deleted, web changes and new is
	// created; no Watch stream hears of it.
	f.set(appAt("web", "12"), appAt("new", "13"))
	f.breakWatches()
	waitFor(t, "api deleted", func() bool { _, ok := store.get("argocd/api"); return !ok })
	// The new stream carries the changes from then on.
	waitFor(t, "ready and watching again", func() bool { return src.Ready() && f.openWatches() == 1 })
	f.broadcast(watch.Modified, appAt("web", "14"), appAt("web", "14"), appAt("new", "13"))
	waitFor(t, "web@14", func() bool { a, ok := store.get("argocd/web"); return ok && a.ResourceVersion == "14" })

	want := []string{
		"ADDED argocd/api@11", "ADDED argocd/web@10", // the list at the first connect
		"ADDED argocd/new@13", "MODIFIED argocd/web@12", "DELETED argocd/api@11", // the reconcile after the reconnect
		"MODIFIED argocd/web@14", // the stream
	}
	if d := described(got.get()); !slices.Equal(d, want) {
		t.Errorf("delivered %q, want %q", d, want)
	}
	if n, withVersion := f.watchesOpened(); n != 2 || !withVersion {
		t.Errorf("%d Watch streams opened, all with a resourceVersion: %v; want 2, true (the list delivers every app)", n, withVersion)
	}
	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"crowsnest_source_reconciles_total", "reason", "reconnect", 2},
		{"crowsnest_source_reconciles_total", "reason", "resync", 0},
		{"crowsnest_source_reconciled_apps_total", "action", "deleted", 1},
		{"crowsnest_source_reconciled_apps_total", "action", "changed", 1},
	} {
		if v := gathered(t, reg, c.name, c.label, c.value); v != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, v, c.want)
		}
	}
}

// The changes argocd-server drops while the stream is up are caught by the
// periodic resync, each delivered once.
func TestArgoCDAPISourceResyncCatchesDroppedEvents(t *testing.T) {
	f := &fakeArgoCDServer{token: "secret", apps: []*v1alpha1.Application{appAt("web", "10"), appAt("api", "11")}}
	store := newAppsSink()
	var got collector
	src, reg, _ := runOverHTTP(t, f, ArgoCDAPIConfig{Token: "secret", ResyncPeriod: 50 * time.Millisecond}, tee(store, &got))
	waitFor(t, "ready with both apps", func() bool { return src.Ready() && store.Len() == 2 })

	// api is deleted and web changes, but their events are dropped.
	f.set(appAt("web", "13"))
	waitFor(t, "api deleted and web@13", func() bool {
		_, hasAPI := store.get("argocd/api")
		web, _ := store.get("argocd/web")
		return !hasAPI && web != nil && web.ResourceVersion == "13"
	})
	// Later resyncs find nothing new and deliver nothing.
	resyncs := func() float64 { return gathered(t, reg, "crowsnest_source_reconciles_total", "reason", "resync") }
	after := resyncs() + 2
	waitFor(t, "two more resyncs", func() bool { return resyncs() >= after })

	want := []string{"ADDED argocd/api@11", "ADDED argocd/web@10", "MODIFIED argocd/web@13", "DELETED argocd/api@11"}
	if d := described(got.get()); !slices.Equal(d, want) {
		t.Errorf("delivered %q, want %q", d, want)
	}
	if n, _ := f.watchesOpened(); n != 1 {
		t.Errorf("%d Watch streams opened, want 1: the resync needs no reconnect", n)
	}
	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"crowsnest_source_reconciles_total", "reason", "reconnect", 1},
		{"crowsnest_source_reconciled_apps_total", "action", "deleted", 1},
		{"crowsnest_source_reconciled_apps_total", "action", "changed", 1},
	} {
		if v := gathered(t, reg, c.name, c.label, c.value); v != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, v, c.want)
		}
	}
}

// The Watch stream is opened before the list, so it may hold changes the
// list already reflects: they are no news, and neither is an older
// version of a delivered app or the deletion of an app never delivered.
func TestArgoCDAPISourceSkipsStreamEventsTheListReflects(t *testing.T) {
	api := newFakeAPI(appAt("web", "7"))
	recv := api.stream()
	for _, r := range []recvResult{
		// Before the list: web's older and listed versions, and an app
		// created and deleted.
		watchEvent(watch.Modified, appAt("web", "5")),
		watchEvent(watch.Added, appAt("gone", "6")),
		watchEvent(watch.Deleted, appAt("gone", "7")),
		watchEvent(watch.Modified, appAt("web", "7")),
		// After the list.
		watchEvent(watch.Modified, appAt("web", "8")),
		watchEvent(watch.Added, appAt("api", "9")),
		watchEvent(watch.Deleted, appAt("api", "10")),
		watchEvent(watch.Deleted, appAt("never", "11")),
		watchEvent(watch.Added, appAt("last", "12")),
	} {
		recv <- r
	}
	var got collector
	startAPISource(t, api, ArgoCDAPIConfig{}, 10*time.Millisecond, &got)
	waitFor(t, "the last event", func() bool { e := got.get(); return len(e) > 0 && e[len(e)-1].App.Name == "last" })

	want := []string{"ADDED argocd/web@7", "MODIFIED argocd/web@8", "ADDED argocd/api@9", "DELETED argocd/api@10", "ADDED argocd/last@12"}
	if d := described(got.get()); !slices.Equal(d, want) {
		t.Errorf("delivered %q, want %q", d, want)
	}
}

// A token rotated in its file (a renewed Secret) is picked up at the next
// reconnect, without a restart.
func TestArgoCDAPISourceRereadsItsTokenFile(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("expired\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fakeArgoCDServer{token: "renewed", apps: []*v1alpha1.Application{newApp()}}
	store := newAppsSink()
	src, _, _ := runOverHTTP(t, f, ArgoCDAPIConfig{TokenFile: tokenFile}, store)
	waitFor(t, "a few rejected connects", func() bool { return !src.Ready() && f.rejected() >= 2 })
	if err := os.WriteFile(tokenFile, []byte("renewed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready with the renewed token", func() bool { _, ok := store.get("argocd/web"); return ok && src.Ready() })
}
