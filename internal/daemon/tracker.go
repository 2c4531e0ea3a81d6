package daemon

import (
	"context"

	"github.com/crowsnest/crowsnest/internal/collect/tracker"
	"github.com/crowsnest/crowsnest/internal/config"
)

// tracker builds the tracker with its subscribers and settings, restored
// from the checkpoint when there is one: what finished while crowsnest was
// down is counted from the checkpoint's watermark on.
func (d *daemon) tracker(ctx context.Context, conf *config.Config, cfg *config.Reloader, subs tracker.Subscribers) (*tracker.Tracker, error) {
	track := tracker.New(conf, subs, d.log)
	track.SetWaveDelay(d.o.ArgoCD.SyncWaveDelay)
	track.SetFailureWindow(d.o.Deployments.FailureWindow)
	// Each ApplicationSet's rollout series come from the shard its UID
	// hashes to, as an app's do.
	track.SetApplicationSetOwner(d.shard().Owns)
	cfg.OnReload(func(conf *config.Config) { track.SetClassifier(conf) })
	// Before the sources start.
	keeper, err := d.checkpoint(ctx, track)
	if err != nil {
		return nil, err
	}
	if keeper != nil {
		d.actors = append(d.actors, actor{"checkpoint", keeper.Run})
		// Every operation counted is in it once the sources stop.
		d.flushers = append(d.flushers, flusher{"checkpoint", func(ctx context.Context) error { keeper.Final(ctx); return nil }})
	}
	return track, nil
}
