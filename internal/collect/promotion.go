package collect

import (
	"sort"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/config"
)

// PromotionGrouper is a Classifier that also groups apps for promotion.
type PromotionGrouper interface {
	PromotionGroup(app *v1alpha1.Application) (*config.Promotion, string)
}

var (
	promotionRevisionDesc = prometheus.NewDesc("crowsnest_promotion_revision_info",
		"The revision each environment of a promotion group runs (its last successful sync); the value is 1.",
		[]string{"group", "env", "revision"}, nil)
	promotionLagDesc = prometheus.NewDesc("crowsnest_promotion_lag_seconds",
		"How long the environment `to` has trailed `from` in the promotion order: since `from` deployed a revision `to` has not deployed since; 0 when `to` runs the same revision or deployed after `from`.",
		[]string{"group", "from", "to"}, nil)
)

// PromotionCollector exposes, for apps grouped across environments (e.g.
// dev-backend, stage-backend, prod-backend), the revision each environment
// runs and how long each environment has trailed the one before it.
type PromotionCollector struct {
	tracker *Tracker
	now     func() time.Time
}

// NewPromotionCollector returns the promotion view of the tracker's apps.
func NewPromotionCollector(t *Tracker) *PromotionCollector {
	return &PromotionCollector{tracker: t, now: time.Now}
}

// Describe implements prometheus.Collector.
func (c *PromotionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- promotionRevisionDesc
	ch <- promotionLagDesc
}

// deployed is what one environment of a group runs.
type deployed struct {
	revision string
	at       time.Time
}

// Collect implements prometheus.Collector.
func (c *PromotionCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.tracker
	t.mu.Lock()
	pg, ok := t.classifier.(PromotionGrouper)
	if !ok {
		t.mu.Unlock()
		return
	}
	var order []string
	groups := map[string]map[string]deployed{} // group -> env -> deployed
	for _, st := range t.apps {
		p, group := pg.PromotionGroup(st.app)
		if group == "" {
			continue
		}
		order = p.Order
		env := st.env
		d, ok := lastDeployed(st.app)
		if groups[group] == nil {
			groups[group] = map[string]deployed{}
		}
		if ok {
			groups[group][env] = d
		} else if _, seen := groups[group][env]; !seen {
			groups[group][env] = deployed{}
		}
	}
	t.mu.Unlock()
	now := c.now()
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		envs := groups[g]
		for _, env := range order {
			if d, ok := envs[env]; ok && d.revision != "" {
				ch <- prometheus.MustNewConstMetric(promotionRevisionDesc, prometheus.GaugeValue, 1, g, env, d.revision)
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
			ch <- prometheus.MustNewConstMetric(promotionLagDesc, prometheus.GaugeValue, lag, g, order[i], order[i+1])
		}
	}
}

// lastDeployed is the app's last successful sync: the history entry
// deployed last (Argo CD appends one per successful sync).
func lastDeployed(app *v1alpha1.Application) (deployed, bool) {
	var d deployed
	for _, h := range app.Status.History {
		if !h.DeployedAt.Time.Before(d.at) {
			d = deployed{revision: h.Revision, at: h.DeployedAt.Time}
			if d.revision == "" && len(h.Revisions) > 0 {
				d.revision = h.Revisions[0]
			}
		}
	}
	return d, !d.at.IsZero()
}
