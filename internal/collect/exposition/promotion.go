package exposition

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Promotion exposes, for apps grouped across environments (e.g.
// dev-backend, stage-backend, prod-backend), the revision each environment
// runs and how long each environment has trailed the one before it.
//
// It is a view subscriber: each app's group and deployed revision are
// resolved when the app changes (the tracker applies the grouping rules),
// so a scrape takes no tracker lock and runs no regexp. Only the lag is
// computed at scrape time, since it grows with the clock.
type Promotion struct {
	now          func() time.Time
	revisionDesc *prometheus.Desc
	lagDesc      *prometheus.Desc

	mu   sync.Mutex
	apps map[string]promotedApp // by app key
}

// promotedApp is what one app contributes to its group.
type promotedApp struct {
	group, env string
	order      []string
	deployed   deployed
}

// deployed is what one environment of a group runs.
type deployed struct {
	revision string
	at       time.Time
}

// NewPromotion returns an empty promotion view; now is the clock the lag
// is measured with (nil: time.Now).
func NewPromotion(now func() time.Time) *Promotion {
	if now == nil {
		now = time.Now
	}
	return &Promotion{
		now: now,
		revisionDesc: prometheus.NewDesc("crowsnest_promotion_revision_info",
			"The revision each environment of a promotion group runs (its last successful sync); the value is 1.",
			[]string{"group", "env", "revision"}, nil),
		lagDesc: prometheus.NewDesc("crowsnest_promotion_lag_seconds",
			"How long the environment `to` has trailed `from` in the promotion order: since `from` deployed a revision `to` has not deployed since; 0 when `to` runs the same revision or deployed after `from`.",
			[]string{"group", "from", "to"}, nil),
		apps: map[string]promotedApp{},
	}
}

// SetApp implements the tracker's view subscriber.
func (p *Promotion) SetApp(v *model.AppView) {
	key := v.Key()
	p.mu.Lock()
	defer p.mu.Unlock()
	if v.Promotion == nil || v.Promotion.Group == "" {
		delete(p.apps, key)
		return
	}
	// Label values are made safe once per change, as the per-app series'
	// are (model.LabelValue): invalid UTF-8 would panic in Collect.
	d, _ := lastDeployed(v.App)
	d.revision = model.LabelValue(d.revision)
	order := make([]string, len(v.Promotion.Order))
	for i, env := range v.Promotion.Order {
		order[i] = model.LabelValue(env)
	}
	p.apps[key] = promotedApp{group: model.LabelValue(v.Promotion.Group), env: model.LabelValue(v.Env), order: order, deployed: d}
}

// DeleteApp implements the tracker's view subscriber.
func (p *Promotion) DeleteApp(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.apps, key)
}

// Describe implements prometheus.Collector.
func (p *Promotion) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.revisionDesc
	ch <- p.lagDesc
}

// Collect implements prometheus.Collector.
func (p *Promotion) Collect(ch chan<- prometheus.Metric) {
	var order []string
	groups := map[string]map[string]deployed{} // group -> env -> deployed
	p.mu.Lock()
	for _, a := range p.apps {
		order = a.order
		if groups[a.group] == nil {
			groups[a.group] = map[string]deployed{}
		}
		if !a.deployed.at.IsZero() {
			groups[a.group][a.env] = a.deployed
		} else if _, seen := groups[a.group][a.env]; !seen {
			groups[a.group][a.env] = deployed{}
		}
	}
	p.mu.Unlock()
	now := p.now()
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		envs := groups[g]
		for _, env := range order {
			if d, ok := envs[env]; ok && d.revision != "" {
				ch <- prometheus.MustNewConstMetric(p.revisionDesc, prometheus.GaugeValue, 1, g, env, d.revision)
			}
		}
		for i := 0; i+1 < len(order); i++ {
			from, fok := envs[order[i]]
			to, tok := envs[order[i+1]]
			if !fok || !tok || from.revision == "" {
				continue
			}
			lag := 0.0
			if to.revision != from.revision && !to.at.After(from.at) {
				lag = max(now.Sub(from.at).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(p.lagDesc, prometheus.GaugeValue, lag, g, order[i], order[i+1])
		}
	}
}

// lastDeployed is the revision of the app's last successful sync (the
// history entry deployed last; Argo CD appends one per successful sync),
// dated by when the app first deployed it: re-syncs of the same revision
// after it do not move the date, or the lag of the next environment would
// restart at each re-sync.
func lastDeployed(app *v1alpha1.Application) (deployed, bool) {
	h := app.Status.History
	last := -1
	for i := range h {
		if last < 0 || !h[i].DeployedAt.Time.Before(h[last].DeployedAt.Time) {
			last = i
		}
	}
	if last < 0 {
		return deployed{}, false
	}
	// A multi-source app runs all its sources' revisions.
	rev := model.JoinRevisions(h[last].Revision, h[last].Revisions)
	first := last
	for first > 0 && model.JoinRevisions(h[first-1].Revision, h[first-1].Revisions) == rev {
		first--
	}
	d := deployed{revision: rev, at: h[first].DeployedAt.Time}
	return d, !d.at.IsZero()
}
