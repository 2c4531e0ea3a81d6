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
	clusters, err := d.trackerClusters()
	if err != nil {
		return nil, err
	}
	track.SetClusters(clusters)
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
		// Saved a last time once the sources have stopped: every
		// operation counted is in it then.
		d.actors = append(d.actors, actor{"checkpoint", stageDeployments, func(ctx context.Context) error {
			err := keeper.Run(ctx)
			final, done := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
			defer done()
			keeper.Final(final)
			return err
		}})
	}
	return track, nil
}
