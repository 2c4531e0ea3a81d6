// Package checkpoint keeps what crowsnest must not forget across a restart
// in one ConfigMap of its own: the tracker's checkpoint (tracker.Checkpoint:
// the watermark of the operations counted, the failure windows still
// open), as JSON under one key.
//
// A Keeper saves it every interval while this replica leads (without
// leader election: always), only when it changed, and once more when
// crowsnest stops; a restarted crowsnest loads it before its sources start.
// The ConfigMap is the only object crowsnest writes: the chart creates it
// and grants get and update on it alone. Missing, it is created (which
// needs create on ConfigMaps in its namespace). A failing API server
// never blocks the tracker: a save that fails is logged and tried at the
// next interval; a load that fails starts without a checkpoint, as
// crowsnest did before it had one.
package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/crowsnest/crowsnest/internal/restjson"
)

// Key is the ConfigMap key the checkpoint is stored under.
const Key = "checkpoint.json"

// DefaultInterval is how often a Keeper saves a changed checkpoint: a
// crash counts again at most what finished in the last interval.
const DefaultInterval = 10 * time.Second

// Store reads and writes the checkpoint ConfigMap.
type Store interface {
	// Load returns the stored checkpoint, nil if there is none.
	Load(ctx context.Context) ([]byte, error)
	// Save stores data, creating the ConfigMap if it is missing.
	Save(ctx context.Context, data []byte) error
}

// ConfigMapStore is a Store over one ConfigMap, through the API server's
// REST API (JSON; no typed clientset in the binary).
type ConfigMapStore struct {
	rest            *rest.RESTClient
	namespace, name string
}

// NewConfigMapStore returns the store of ConfigMap namespace/name.
func NewConfigMapStore(c *rest.Config, namespace, name string) (*ConfigMapStore, error) {
	rc, err := restjson.NewClient(c, schema.GroupVersion{Version: "v1"}, "/api", &corev1.ConfigMap{})
	if err != nil {
		return nil, fmt.Errorf("checkpoint client: %w", err)
	}
	return &ConfigMapStore{rest: rc, namespace: namespace, name: name}, nil
}

// String names the ConfigMap.
func (s *ConfigMapStore) String() string { return s.namespace + "/" + s.name }

func (s *ConfigMapStore) get(ctx context.Context) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := s.rest.Get().Namespace(s.namespace).Resource("configmaps").Name(s.name).Do(ctx).Into(cm)
	return cm, err
}

// Load implements Store.
func (s *ConfigMapStore) Load(ctx context.Context) ([]byte, error) {
	cm, err := s.get(ctx)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read ConfigMap %s: %w", s, err)
	}
	if v, ok := cm.Data[Key]; ok {
		return []byte(v), nil
	}
	return nil, nil
}

// Save implements Store: it reads the ConfigMap and updates it (the
// resource version guards against a concurrent writer: a conflict fails
// this save, the next one wins), or creates it.
func (s *ConfigMapStore) Save(ctx context.Context, data []byte) error {
	cm, err := s.get(ctx)
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace, Labels: map[string]string{"app.kubernetes.io/name": "crowsnest"}},
			Data:       map[string]string{Key: string(data)},
		}
		if err := s.rest.Post().Namespace(s.namespace).Resource("configmaps").Body(cm).Do(ctx).Error(); err != nil {
			return fmt.Errorf("create ConfigMap %s: %w", s, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read ConfigMap %s: %w", s, err)
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[Key] = string(data)
	if err := s.rest.Put().Namespace(s.namespace).Resource("configmaps").Name(s.name).Body(cm).Do(ctx).Error(); err != nil {
		return fmt.Errorf("update ConfigMap %s: %w", s, err)
	}
	return nil
}

// Keeper saves snapshots of the checkpoint to a Store.
type Keeper struct {
	store    Store
	snapshot func() ([]byte, error)
	leading  func() bool
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger
	saves    *prometheus.CounterVec

	// last is the last checkpoint saved, led whether this replica led at
	// the last tick; only Run and then Final touch them.
	last []byte
	led  bool
}

// Result values of crowsnest_checkpoint_saves_total.
const (
	SaveOK     = "ok"
	SaveFailed = "failed"
)

// NewKeeper returns a keeper that saves what snapshot returns into store
// every interval (0: DefaultInterval) while leading says so (nil: always),
// each save bounded by timeout, with crowsnest_checkpoint_saves_total
// registered on reg (nil: not registered).
func NewKeeper(store Store, snapshot func() ([]byte, error), leading func() bool, interval, timeout time.Duration, reg prometheus.Registerer, logger *slog.Logger) (*Keeper, error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if leading == nil {
		leading = func() bool { return true }
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	saves := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crowsnest_checkpoint_saves_total",
		Help: "Saves of the checkpoint (operations counted, open failure windows) to its ConfigMap, by result (ok, failed).",
	}, []string{"result"})
	for _, r := range []string{SaveOK, SaveFailed} {
		saves.WithLabelValues(r)
	}
	if reg != nil {
		if err := reg.Register(saves); err != nil {
			return nil, fmt.Errorf("register checkpoint metrics: %w", err)
		}
	}
	return &Keeper{store: store, snapshot: snapshot, leading: leading, interval: interval, timeout: timeout, log: logger, saves: saves}, nil
}

// Run saves every interval until ctx ends, then returns nil. The save at
// the stop is Final's, once the sources have stopped.
func (k *Keeper) Run(ctx context.Context) error {
	tick := time.NewTicker(k.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if k.led = k.leading(); k.led {
				k.save(ctx)
			}
		}
	}
}

// Final saves the checkpoint once more, after Run returned and the sources
// stopped (so that it holds every operation counted), if this replica led
// at Run's last tick or leads now (the daemon releases the Lease only
// after this, but Run's last tick may have seen another leader). ctx
// bounds it.
func (k *Keeper) Final(ctx context.Context) {
	if k.led || k.leading() {
		k.save(ctx)
	}
}

// save stores the snapshot if it changed since the last save.
func (k *Keeper) save(ctx context.Context) {
	data, err := k.snapshot()
	if err != nil {
		k.log.Warn("checkpoint not saved", "err", err)
		k.saves.WithLabelValues(SaveFailed).Inc()
		return
	}
	if bytes.Equal(data, k.last) {
		return
	}
	if k.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, k.timeout)
		defer cancel()
	}
	if err := k.store.Save(ctx, data); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return
		}
		k.log.Warn("checkpoint not saved; trying again at the next interval", "err", err)
		k.saves.WithLabelValues(SaveFailed).Inc()
		return
	}
	k.last = data
	k.saves.WithLabelValues(SaveOK).Inc()
}
