package rules

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
)

// PagerConfig configures direct paging.
type PagerConfig struct {
	// URLs of the Alertmanagers, e.g. http://alertmanager:9093.
	URLs []string
	// Interval between evaluations of the alerts on crowsnest's state.
	Interval time.Duration
	// Resend is how often firing alerts are sent again, so Alertmanager
	// keeps them (their endsAt is three resends ahead).
	Resend time.Duration
	// Timeout bounds one post to one Alertmanager, retries included.
	Timeout time.Duration
	// ForScale scales the alerts' for durations (1; tests shorten them).
	ForScale float64
}

// Pager evaluates the alerts that can be judged on one app's state
// directly on crowsnest's state and posts them to Alertmanager API v2, with
// the labels the Prometheus rules give them (alertname, severity and the
// app's namespace, name, project, env), so Alertmanager deduplicates the
// two paths. Alerts resolve by endsAt. It runs in its own goroutine and
// never blocks the tracker.
type Pager struct {
	cfg     PagerConfig
	alerts  []Alert
	apps    func() []AppState
	targets []target
	sent    *prometheus.CounterVec
	failed  *prometheus.CounterVec
	logger  *slog.Logger

	active   map[string]*activeAlert // by alertname/namespace/name
	lastSend time.Time
	gate     func() bool // nil: always post
}

// SetGate makes the pager post only while gate reports true (leader
// election); it keeps evaluating, so a new leader resends what is firing at
// once. Call it before Run.
func (p *Pager) SetGate(gate func() bool) { p.gate = gate }

type target struct {
	url string
	api *client.AlertmanagerAPI
}

type activeAlert struct {
	labels, annotations map[string]string
	since               time.Time // when the condition began to hold
	startsAt            time.Time // when it began to fire; zero while pending
}

// NewPager returns a pager for the Alertmanagers in cfg, judging the apps
// that apps returns, or an error naming a bad URL.
func NewPager(cfg PagerConfig, alerts []Alert, apps func() []AppState, reg prometheus.Registerer, logger *slog.Logger) (*Pager, error) {
	p := &Pager{
		cfg: cfg, alerts: alerts, apps: apps, logger: logger, active: map[string]*activeAlert{},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_alerts_sent_total",
			Help: "Alerts (firing or resolved) posted to an Alertmanager directly, by Alertmanager.",
		}, []string{"alertmanager"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_alerts_failed_total",
			Help: "Alerts that could not be posted to an Alertmanager after retries, by Alertmanager.",
		}, []string{"alertmanager"}),
	}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("--alertmanager.url=%q: want a URL like http://alertmanager:9093", raw)
		}
		tc := client.DefaultTransportConfig().WithHost(u.Host).WithBasePath(path.Join("/", u.Path, client.DefaultBasePath)).WithSchemes([]string{u.Scheme})
		p.targets = append(p.targets, target{url: u.Redacted(), api: client.NewHTTPClientWithConfig(strfmt.Default, tc)})
		p.sent.WithLabelValues(u.Redacted())
		p.failed.WithLabelValues(u.Redacted())
	}
	reg.MustRegister(p.sent, p.failed)
	return p, nil
}

// Run evaluates every Interval until ctx ends.
func (p *Pager) Run(ctx context.Context) {
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			batch := p.Evaluate(now)
			if p.gate != nil && !p.gate() {
				p.lastSend = time.Time{} // resend everything on taking over
				continue
			}
			if len(batch) > 0 {
				p.post(ctx, batch)
			}
		}
	}
}

// Evaluate judges the alerts on the apps' current state at now, as the
// metrics expose it (see asExposed), and returns what to post: alerts that
// began or stopped firing, or every firing one when a resend is due.
func (p *Pager) Evaluate(now time.Time) models.PostableAlerts {
	holds := map[string]bool{}
	changed := false
	for _, app := range p.apps() {
		app = asExposed(app)
		for i := range p.alerts {
			a := &p.alerts[i]
			if a.Check == nil || !a.Check(app) {
				continue
			}
			v, ok := a.variant(app.Env)
			if !ok {
				continue
			}
			key := a.Name + "/" + app.Namespace + "/" + app.Name
			holds[key] = true
			st := p.active[key]
			if st == nil {
				labels := map[string]string{"alertname": a.Name, "severity": string(v.Severity),
					"namespace": app.Namespace, "name": app.Name, "project": app.Project, "env": app.Env}
				st = &activeAlert{labels: labels, since: now, annotations: map[string]string{
					"summary": a.Summary, "description": Expand(a.Description, labels), "runbook_url": RunbookURL + "#" + a.Anchor(),
				}}
				p.active[key] = st
			}
			if st.startsAt.IsZero() && now.Sub(st.since) >= time.Duration(float64(a.For)*p.cfg.ForScale) {
				st.startsAt = now
				changed = true
			}
		}
	}
	var out models.PostableAlerts
	for key, st := range p.active {
		if holds[key] {
			continue
		}
		if !st.startsAt.IsZero() {
			out = append(out, st.postable(now))
		}
		delete(p.active, key)
	}
	if changed || len(out) > 0 || now.Sub(p.lastSend) >= p.cfg.Resend {
		for _, st := range p.active {
			if !st.startsAt.IsZero() {
				out = append(out, st.postable(now.Add(3*p.cfg.Resend)))
			}
		}
		if len(out) > 0 {
			p.lastSend = now
		}
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i].Labels) < fmt.Sprint(out[j].Labels) })
	return out
}

func (st *activeAlert) postable(endsAt time.Time) *models.PostableAlert {
	return &models.PostableAlert{
		Alert:       models.Alert{Labels: models.LabelSet(st.labels)},
		Annotations: models.LabelSet(st.annotations),
		StartsAt:    strfmt.DateTime(st.startsAt),
		EndsAt:      strfmt.DateTime(endsAt),
	}
}

// asExposed returns a with its sync and health status mapped into the state
// sets the metrics expose (crowsnest_app_sync_status and
// crowsnest_app_health_status, built in internal/collect/exposition): a
// value outside its set, including the empty status Argo CD leaves before
// its first comparison, is "Unknown". The Go checks thus judge what the
// PromQL rules see. The operation phase is left as is: the metrics expose
// an unknown phase as no phase set, and the checks only ask for known ones.
func asExposed(a AppState) AppState {
	a.SyncStatus = model.ExposedSync(a.SyncStatus)
	a.Health = model.ExposedHealth(a.Health)
	return a
}

// variant is the alert's severity for env, if the alert covers it.
func (a *Alert) variant(env string) (Variant, bool) {
	for _, v := range a.Variants {
		if v.Scope.Covers(env) {
			return v, true
		}
	}
	return Variant{}, false
}

// post sends the batch to every Alertmanager at once, retrying each with
// backoff (250 ms doubling to 2 s) within the timeout.
func (p *Pager) post(ctx context.Context, batch models.PostableAlerts) {
	var wg sync.WaitGroup
	for _, t := range p.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
			defer cancel()
			var lastErr error // the last attempt's own error, not Retry's
			_, err := backoff.Retry(ctx, func() (struct{}, error) {
				_, err := t.api.Alert.PostAlerts(alert.NewPostAlertsParamsWithContext(ctx).WithAlerts(batch))
				if err != nil {
					lastErr = err
				}
				return struct{}{}, err
			},
				backoff.WithBackOff(&backoff.ExponentialBackOff{ // no RandomizationFactor: no jitter
					InitialInterval: 250 * time.Millisecond,
					Multiplier:      2,
					MaxInterval:     2 * time.Second,
				}),
				// Give up once the next wait would end past the timeout (no
				// try could start), not at Retry's default of 15 minutes.
				backoff.WithMaxElapsedTime(p.cfg.Timeout),
			)
			if err != nil {
				p.failed.WithLabelValues(t.url).Add(float64(len(batch)))
				p.logger.Warn("posting alerts to Alertmanager failed", "alertmanager", t.url, "alerts", len(batch), "err", lastErr)
				return
			}
			p.sent.WithLabelValues(t.url).Add(float64(len(batch)))
		}()
	}
	wg.Wait()
}

// Expand fills {{ $labels.x }} in an annotation template, as Prometheus
// does for these templates.
func Expand(tmpl string, labels map[string]string) string {
	return labelRef.ReplaceAllStringFunc(tmpl, func(m string) string {
		return labels[labelRef.FindStringSubmatch(m)[1]]
	})
}

var labelRef = regexp.MustCompile(`\{\{ \$labels\.([a-z_]+) \}\}`)
