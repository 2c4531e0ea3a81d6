package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/crowsnest/crowsnest/internal/checkpoint"
	"github.com/crowsnest/crowsnest/internal/collect/tracker"
)

// checkpointLoadTimeout bounds reading the checkpoint at start: an API
// server that does not answer delays the start by this much at most.
const checkpointLoadTimeout = 10 * time.Second

// checkpoint restores the tracker from the checkpoint ConfigMap and
// returns the keeper that saves it, nil without --checkpoint.configmap. A
// checkpoint that cannot be read or decoded is logged, and crowsnest
// starts without it.
func (d *daemon) checkpoint(ctx context.Context, track *tracker.Tracker) (*checkpoint.Keeper, error) {
	name := d.o.perShard(d.o.Checkpoint.ConfigMap)
	if name == "" {
		return nil, nil
	}
	rc, err := d.kube.config()
	if err != nil {
		return nil, err
	}
	store, err := checkpoint.NewConfigMapStore(rc, d.o.ownNamespace(), name)
	if err != nil {
		return nil, err
	}
	log := d.log.With("component", "checkpoint", "configmap", store.String())
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
	return checkpoint.NewKeeper(store, snapshot, d.gate.leading, d.o.Checkpoint.Interval, checkpointLoadTimeout, d.reg, log)
}
