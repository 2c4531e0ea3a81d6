package config

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// Reloader loads the configuration file and reloads it on SIGHUP and on
// request (POST /-/reload); a bad reload keeps the running configuration.
// Loads and their application are serialized: configurations are applied
// in the order they were loaded.
type Reloader struct {
	path    string
	builtin []byte // configuration used when there is no file
	logger  *slog.Logger
	apply   func(*Config)

	mu          sync.Mutex
	applied     [sha256.Size]byte // the file content last applied
	success     prometheus.Gauge
	successTime prometheus.Gauge
}

// NewReloader returns a reloader of the file at path (empty: builtin, else
// the default configuration), registering its gauges with reg.
func NewReloader(path string, builtin []byte, reg prometheus.Registerer, logger *slog.Logger) *Reloader {
	r := &Reloader{
		path:    path,
		builtin: builtin,
		logger:  logger,
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

// Load reads the configuration for the first time.
func (r *Reloader) Load() (*Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	conf, sum, err := r.read()
	if err == nil {
		r.applied = sum
	}
	return conf, err
}

// OnReload sets what a successful reload applies the new configuration to.
// Call it before Run or Reload.
func (r *Reloader) OnReload(apply func(*Config)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apply = apply
}

// read loads the configuration and returns it with the checksum of what it
// was read from.
func (r *Reloader) read() (*Config, [sha256.Size]byte, error) {
	data := r.builtin
	if r.path != "" {
		var err error
		if data, err = os.ReadFile(r.path); err != nil {
			r.success.Set(0)
			return nil, [sha256.Size]byte{}, fmt.Errorf("read config: %w", err)
		}
	}
	conf, err := Parse(data)
	if err != nil {
		r.success.Set(0)
		if r.path != "" {
			err = fmt.Errorf("%s: %w", r.path, err)
		}
		return nil, [sha256.Size]byte{}, err
	}
	r.success.Set(1)
	r.successTime.SetToCurrentTime()
	sum := sha256.Sum256(data)
	return conf, sum, nil
}

// Reload reads the configuration again and applies it, under the lock so
// that two reloads at once apply in the order they loaded. It logs the
// outcome; the error is for the HTTP answer.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	conf, sum, err := r.read()
	if err != nil {
		r.logger.Error("reload configuration; keeping the running one", "err", err)
		return err
	}
	if sum == r.applied {
		// Nothing changed: re-rendering every app would be work for
		// nothing (a second or so at 10,000 apps).
		r.logger.Debug("configuration unchanged; nothing to reload", "file", r.path)
		return nil
	}
	if r.apply != nil {
		r.apply(conf)
	}
	r.applied = sum
	r.logger.Info("configuration reloaded", "file", r.path)
	return nil
}

// Run reloads on every SIGHUP until ctx is done.
func (r *Reloader) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			_ = r.Reload() // logged inside
		}
	}
}
