package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/collect/source"
	"github.com/crowsnest/crowsnest/internal/config"
)

// httpServer serves metrics, health, readiness, reload and the landing
// page, with exporter-toolkit's TLS and authentication (--web.config.file).
type httpServer struct {
	srv *http.Server
	web *web.FlagConfig
	d   *daemon
}

// serve runs the server until shutdown.
func (s *httpServer) serve() error {
	if err := web.ListenAndServe(s.srv, s.web, s.d.log); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// shutdown stops the server gracefully within the shutdown timeout.
func (s *httpServer) shutdown(error) {
	// A fresh context: the signal's is already done.
	ctx, done := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer done()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.d.log.Warn("shut down http server", "err", err)
	}
}

// httpServer builds the HTTP server.
func (d *daemon) httpServer(store *exposition.Store, src source.Source, cfg *config.Reloader) (*httpServer, error) {
	mux := http.NewServeMux()
	mux.Handle(d.o.MetricsPath, exposition.NewMetricsHandler(d.reg, store, d.log))
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
		if !d.o.Lifecycle {
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
			{Address: d.o.MetricsPath, Text: "Metrics"},
			{Address: "/healthz", Text: "Health"},
			{Address: "/readyz", Text: "Readiness"},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("landing page: %w", err)
	}
	if d.o.MetricsPath != "/" {
		mux.Handle("/", landing)
	}
	t := d.o.HTTP
	return &httpServer{d: d, web: d.o.Web, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
	}}, nil
}
