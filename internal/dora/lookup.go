package dora

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/crowsnest/crowsnest/internal/model"
)

// commitOf returns the commit lead time counts from for dep, of those
// find gives for its changed sources: the oldest dated one. With several
// changed sources, the change that waited longest for this deployment is
// what the deployment's lead time is; the others waited less. Sources
// without a commit (a Helm chart, a failed lookup) are skipped. Nil
// without a client.
func (d *Deployments) commitOf(dep *model.Deployment, find func(model.DeploymentSource) *model.Commit) *model.Commit {
	if d.client == nil {
		return nil
	}
	var best *model.Commit
	for _, src := range dep.Changed {
		c := find(src)
		if c == nil {
			continue
		}
		if best == nil || best.Date.IsZero() && !c.Date.IsZero() || !c.Date.IsZero() && c.Date.Before(best.Date) {
			best = c
		}
	}
	return best
}

// lookup returns the commit of src's revision from the cache, else from
// the client, counting the lookup; nil when unknown. A failure is logged
// at warn the first time for the revision (while the cache remembers it).
func (d *Deployments) lookup(ctx context.Context, namespace, name string, src model.DeploymentSource) *model.Commit {
	if d.client == nil {
		return nil
	}
	if sourceKind(src) == kindHelm {
		d.metrics.lookups.WithLabelValues(LookupUnsupported).Inc()
		return nil
	}
	d.fetching.Lock()
	defer d.fetching.Unlock()
	key := cacheKey{src.RepoURL, src.Revision}
	e, known, fresh := d.cache.get(key, d.now())
	if fresh {
		switch {
		case e.unsupported:
			d.metrics.lookups.WithLabelValues(LookupUnsupported).Inc()
		case e.failed:
			d.metrics.lookups.WithLabelValues(LookupFailed).Inc()
		default:
			d.metrics.lookups.WithLabelValues(LookupCached).Inc()
		}
		return e.commit
	}
	fctx, cancel := context.WithTimeout(ctx, d.cfg.FetchTimeout)
	c, err := d.client.Commit(fctx, namespace, name, src)
	cancel()
	if err == nil && c == nil {
		err = fmt.Errorf("commit metadata of %s at %s: empty answer", src.RepoURL, src.Revision)
	}
	switch {
	case err == nil:
		d.metrics.lookups.WithLabelValues(LookupFetched).Inc()
		d.cache.put(key, cacheEntry{commit: c})
		return c
	case isUnsupported(err):
		d.metrics.lookups.WithLabelValues(LookupUnsupported).Inc()
		d.cache.put(key, cacheEntry{unsupported: true})
		d.log.Debug("no commit metadata for a source", "app", model.Key(namespace, name), "err", err)
		return nil
	case ctx.Err() != nil:
		return nil // shutting down: neither a failure nor worth remembering
	}
	d.metrics.lookups.WithLabelValues(LookupFailed).Inc()
	level := slog.LevelWarn
	if known && e.failed {
		level = slog.LevelDebug // logged when it first failed
	}
	d.log.Log(ctx, level, "looking up commit metadata failed; no lead time for deployments of this revision until it succeeds",
		"app", model.Key(namespace, name), "repo", src.RepoURL, "revision", src.Revision, "timeout", d.cfg.FetchTimeout, "err", err)
	d.cache.put(key, cacheEntry{failed: true, expires: d.now().Add(d.cfg.FailedTTL)})
	return nil
}
