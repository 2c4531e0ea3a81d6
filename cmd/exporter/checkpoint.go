package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/checkpoint"
	"github.com/crowsnest/crowsnest/internal/collect/tracker"
)

// checkpointLoadTimeout bounds reading the checkpoint at start: an API
// server that does not answer delays the start by this much at most.
const checkpointLoadTimeout = 10 * time.Second

// addCheckpointFlags adds the flags of the checkpoint ConfigMap.
func (c *cli) addCheckpointFlags() {
	c.checkpointName = c.serve.Flag("checkpoint.configmap", "ConfigMap (in --leader-elect.namespace, default $POD_NAMESPACE) where crowsnest keeps what a restart must not lose: the watermark of the operations counted, so that syncs and deployments that finish while it is down are counted (with their events) once after it starts, and the open failure windows. With --total-shards > 1 each shard's is this name followed by -<shard>-of-<total>. Kubernetes source only. Empty: none (a restart forgets them).").String()
	c.checkpointInterval = c.serve.Flag("checkpoint.interval", "How often a changed checkpoint is saved (and once at a graceful stop): after a crash, what finished in the last interval is counted again.").Default(checkpoint.DefaultInterval.String()).Duration()
}

// checkpointConfigMap is this process's checkpoint ConfigMap name, "" if
// none: --checkpoint.configmap, with "-<shard>-of-<total>" when sharded.
func (c *cli) checkpointConfigMap() string {
	if *c.checkpointName == "" {
		return ""
	}
	s := c.shardOf()
	if !s.Sharded() {
		return *c.checkpointName
	}
	return fmt.Sprintf("%s-%d-of-%d", *c.checkpointName, s.Index, s.Total)
}

// ownNamespace is where crowsnest keeps its own objects (the Lease, the
// checkpoint): --leader-elect.namespace, else $POD_NAMESPACE, else default.
func (c *cli) ownNamespace() string {
	if ns := *c.leaderNamespace; ns != "" {
		return ns
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "default"
}

// newCheckpoint restores the tracker from the checkpoint ConfigMap and
// returns the keeper that saves it, nil without --checkpoint.configmap. A
// checkpoint that cannot be read or decoded is logged, and crowsnest
// starts without it.
func (c *cli) newCheckpoint(ctx context.Context, track *tracker.Tracker, leading func() bool, reg prometheus.Registerer, logger *slog.Logger) (*checkpoint.Keeper, error) {
	name := c.checkpointConfigMap()
	if name == "" {
		return nil, nil
	}
	rc, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	store, err := checkpoint.NewConfigMapStore(rc, c.ownNamespace(), name)
	if err != nil {
		return nil, err
	}
	log := logger.With("component", "checkpoint", "configmap", store.String())
	lctx, cancel := context.WithTimeout(ctx, checkpointLoadTimeout)
	data, err := store.Load(lctx)
	cancel()
	var cp tracker.Checkpoint
	switch {
	case err != nil:
		log.Warn("checkpoint not read: syncs that finished while crowsnest was down are not counted, open failure windows are forgotten", "err", err)
	case data == nil:
		log.Info("no checkpoint yet: counting from now")
	default:
		if err := json.Unmarshal(data, &cp); err != nil {
			log.Warn("checkpoint not decoded: counting from now", "err", err)
			break
		}
		track.Restore(cp)
		log.Info("restored the checkpoint: counting the operations that finished since its watermark", "watermark", cp.Watermark, "failure_windows", len(cp.Deployments))
	}
	warned := false
	snapshot := func() ([]byte, error) {
		cp, cut := track.Checkpoint()
		if cut > 0 && !warned {
			warned = true
			log.Warn("checkpoint full: the oldest failure windows are left out of it", "left_out", cut, "kept", tracker.MaxCheckpointDeployments)
		}
		b, err := json.Marshal(cp)
		if err != nil {
			return nil, errors.Join(errors.New("encode the checkpoint"), err)
		}
		return b, nil
	}
	return checkpoint.NewKeeper(store, snapshot, leading, *c.checkpointInterval, checkpointLoadTimeout, reg, log)
}
