// Package pager pages Alertmanager directly (API v2): it evaluates the
// alerts of internal/rules that judge one app's present state on
// crowsnest's own app states (States, a view subscriber), with the labels,
// annotations and for durations of the Prometheus rules, so Alertmanager
// deduplicates the two paths into one notification; it resends firing
// alerts and resolves them, retrying each Alertmanager with backoff.
package pager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/redact"
	"github.com/crowsnest/crowsnest/internal/rules"
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
	// Links are the base URLs of the pages' dashboard_url and argocd_url
	// annotations, as the rules' templates render them.
	Links rules.Links
	// ExternalLabels are added to every alert, as Prometheus adds its
	// external labels to the alerts of its rules (the Prometheus
	// Operator's prometheus="<namespace>/<name>", often cluster): with
	// the same ones, Alertmanager holds one alert for both paths. They
	// never replace a label of the alert itself, as in Prometheus.
	ExternalLabels map[string]string
	// RunbookURL is the base of the runbook_url annotations; "" is the
	// project's (RunbookURL), as the rules have it.
	RunbookURL string
	// ProdEnvironments is the regular expression of the environments that
	// page (the configuration's prod_environments); "" is ProdEnv.
	ProdEnvironments string
	// AppLabels are the Application labels each alert carries, as
	// label_<name> (model.AppLabelName), where the app has them: the rule
	// alerts join crowsnest_app_labels for the same labels.
	AppLabels []string
}

// Pager evaluates the alerts that can be judged on one app's state
// directly on crowsnest's state and posts them to Alertmanager API v2, with
// the labels the Prometheus rules give them (alertname, severity and the
// app's namespace, name, project, env, dest_cluster), so Alertmanager deduplicates the
// two paths. Alerts resolve by endsAt. It runs in its own goroutine and
// never blocks the tracker.
//
// What an Alertmanager has not accepted is owed to it, each Alertmanager
// apart: after a post fails (retries within the timeout exhausted), the
// next evaluation posts every firing alert to it again and every resolve it
// missed, until one post succeeds; a missed resolve is dropped only when
// its alert fires again. An answer 4xx other than 429 rejects the alerts
// themselves: it is not retried.
type Pager struct {
	cfg      PagerConfig
	alerts   []rules.Alert
	apps     func() []rules.AppState
	targets  []*target
	sent     *prometheus.CounterVec
	failed   *prometheus.CounterVec
	rejected *prometheus.CounterVec
	logger   *slog.Logger
	prod     atomic.Pointer[regexp.Regexp] // the environments that page
	// appLabelNames are the label names of cfg.AppLabels.
	appLabelNames []string

	active    map[string]*activeAlert // by alertname/namespace/name
	lastSend  time.Time               // when Evaluate last scheduled the firing alerts
	evaluated time.Time               // the time of the last Evaluate
	gate      func() bool             // nil: always post
}

// SetProdEnvironments makes prod, a regular expression, the environments
// that page from the next evaluation on (a reloaded configuration's
// prod_environments); an invalid one is an error and changes nothing.
func (p *Pager) SetProdEnvironments(prod string) error {
	re, err := rules.ProdMatcher(cmp.Or(prod, rules.ProdEnv))
	if err != nil {
		return err
	}
	p.prod.Store(re)
	return nil
}

// SetGate makes the pager post only while gate reports true (leader
// election); it keeps evaluating, so a new leader resends what is firing at
// once. Call it before Run.
func (p *Pager) SetGate(gate func() bool) { p.gate = gate }

// target is one Alertmanager and what the pager owes it. Its fields other
// than url and api belong to the goroutine running Run, except during a
// post, when they belong to the goroutine posting to this target.
type target struct {
	url string
	api *client.AlertmanagerAPI

	// resend: the last post of firing alerts failed, so the next post
	// carries every firing alert, whatever Evaluate scheduled.
	resend bool
	// resolves are the resolved alerts that never reached it, by key.
	resolves map[string]*models.PostableAlert
	// failing: posts to it fail; logged when it begins and ends.
	failing bool
}

// outcome is how a post to one Alertmanager ended.
type outcome int

const (
	delivered outcome = iota // accepted
	failed                   // no answer, 429 or 5xx until the timeout
	rejected                 // a 4xx other than 429: not retried
)

type activeAlert struct {
	labels, annotations map[string]string
	since               time.Time // when the condition began to hold
	startsAt            time.Time // when it began to fire; zero while pending
}

// NewPager returns a pager for the Alertmanagers in cfg, judging the apps
// that apps returns, or an error naming a bad URL.
func NewPager(cfg PagerConfig, alerts []rules.Alert, apps func() []rules.AppState, reg prometheus.Registerer, logger *slog.Logger) (*Pager, error) {
	p := &Pager{
		cfg: cfg, alerts: alerts, apps: apps, logger: logger, active: map[string]*activeAlert{},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_alerts_sent_total",
			Help: "Alerts (firing or resolved) posted to an Alertmanager directly, by Alertmanager.",
		}, []string{"alertmanager"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_alerts_failed_total",
			Help: "Alerts that could not be posted to an Alertmanager after retries (no answer, 429 or 5xx), by Alertmanager; each is posted again at the next evaluation.",
		}, []string{"alertmanager"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_alerts_rejected_total",
			Help: "Alerts an Alertmanager rejected with a 4xx answer other than 429, by Alertmanager; not retried.",
		}, []string{"alertmanager"}),
	}
	prod, err := rules.ProdMatcher(cmp.Or(cfg.ProdEnvironments, rules.ProdEnv))
	if err != nil {
		return nil, err
	}
	p.prod.Store(prod)
	p.appLabelNames = model.AppLabelNames(cfg.AppLabels)
	for name, value := range cfg.ExternalLabels {
		if !labelName.MatchString(name) || strings.HasPrefix(name, "__") || value == "" {
			return nil, fmt.Errorf("--alertmanager.external-label=%s=%s: want NAME=VALUE, NAME a Prometheus label name not starting with __, VALUE not empty", name, value)
		}
	}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("--alertmanager.url=%q: want a URL like http://alertmanager:9093", redact.Input(raw))
		}
		rt := httptransport.New(u.Host, path.Join("/", u.Path, client.DefaultBasePath), []string{u.Scheme})
		if u.User != nil {
			// Basic auth from the URL's user information, as
			// Prometheus' basic_auth would send it.
			password, _ := u.User.Password()
			rt.DefaultAuthentication = httptransport.BasicAuth(u.User.Username(), password)
		}
		// Not u.Redacted(): it keeps a user name without a password,
		// which is often a token.
		shown := redact.URL(raw)
		p.targets = append(p.targets, &target{url: shown, api: client.New(rt, strfmt.Default)})
		p.sent.WithLabelValues(shown)
		p.failed.WithLabelValues(shown)
		p.rejected.WithLabelValues(shown)
	}
	reg.MustRegister(p.sent, p.failed, p.rejected)
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
				// Resend everything on taking over; what the last
				// leader owes is its own.
				p.lastSend = time.Time{}
				for _, t := range p.targets {
					t.resend, t.resolves = false, nil
				}
				continue
			}
			p.post(ctx, batch)
		}
	}
}

// Evaluate judges the alerts on the apps' current state at now, as the
// metrics expose it (see asExposed), and returns what to post: alerts that
// began or stopped firing, or every firing one when a resend is due. post
// adds to it, for each Alertmanager, what earlier posts failed to deliver.
func (p *Pager) Evaluate(now time.Time) models.PostableAlerts {
	p.evaluated = now
	prod := p.prod.Load()
	holds := map[string]bool{}
	changed := false
	for _, app := range p.apps() {
		app = asExposed(app)
		for i := range p.alerts {
			a := &p.alerts[i]
			if a.Check == nil || !a.Check(app) {
				continue
			}
			v, ok := a.VariantFor(app.Env, prod)
			if !ok {
				continue
			}
			key := a.Name + "/" + app.Namespace + "/" + app.Name
			holds[key] = true
			st := p.active[key]
			if st == nil {
				labels := map[string]string{"alertname": a.Name, "severity": string(v.Severity),
					"namespace": app.Namespace, "name": app.Name, "project": app.Project, "env": app.Env}
				if app.Dest != "" { // an empty label is no label, in Prometheus' alerts too
					labels["dest_cluster"] = app.Dest
				}
				for i, key := range p.cfg.AppLabels {
					if value, ok := app.Labels[key]; ok {
						labels[p.appLabelNames[i]] = value
					}
				}
				for k, v := range p.cfg.ExternalLabels {
					if _, own := labels[k]; !own {
						labels[k] = v
					}
				}
				st = &activeAlert{labels: labels, since: now, annotations: map[string]string{
					"summary": a.Summary, "description": rules.Expand(a.Description, labels), "runbook_url": cmp.Or(p.cfg.RunbookURL, rules.RunbookURL) + "#" + a.Anchor(),
					"dashboard_url": p.cfg.Links.DashboardURL(a, labels),
				}}
				if u := p.cfg.Links.AppURL(app.Namespace, app.Name); a.Dashboard() == rules.DashboardApp && u != "" {
					// None without --argocd.url, as the rules' (RenderWith).
					st.annotations["argocd_url"] = u
				}
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
func asExposed(a rules.AppState) rules.AppState {
	a.SyncStatus = model.ExposedSync(a.SyncStatus)
	a.Health = model.ExposedHealth(a.Health)
	return a
}

// post sends the batch, with what each Alertmanager is owed (see owed), to
// every Alertmanager at once, and records what each accepted.
func (p *Pager) post(ctx context.Context, batch models.PostableAlerts) {
	owed := make([]models.PostableAlerts, len(p.targets))
	ends := make([]outcome, len(p.targets))
	var wg sync.WaitGroup
	for i, t := range p.targets {
		owed[i] = p.owed(t, batch)
		if len(owed[i]) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ends[i] = p.send(ctx, t, owed[i])
		}()
	}
	wg.Wait()
	for i, t := range p.targets {
		if len(owed[i]) > 0 {
			p.settle(t, owed[i], ends[i])
		}
	}
}

// owed returns what to post to t: the batch, every firing alert when t
// missed the last post of them, and the resolves t missed, except those of
// alerts that fire again.
func (p *Pager) owed(t *target, batch models.PostableAlerts) models.PostableAlerts {
	if !t.resend && len(t.resolves) == 0 {
		return batch
	}
	in := make(map[string]bool, len(batch))
	out := append(models.PostableAlerts(nil), batch...)
	for _, a := range batch {
		in[alertKey(a.Labels)] = true
	}
	for key, st := range p.active {
		if st.startsAt.IsZero() {
			continue
		}
		delete(t.resolves, key) // it fires again: the resolve is stale
		if t.resend && !in[key] {
			out = append(out, st.postable(p.evaluated.Add(3*p.cfg.Resend)))
			in[key] = true
		}
	}
	for key, a := range t.resolves {
		if !in[key] {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i].Labels) < fmt.Sprint(out[j].Labels) })
	return out
}

// settle records how the post of alerts to t ended: once delivered or
// rejected, nothing is owed; after a failure, the firing alerts and the
// resolves in alerts are.
func (p *Pager) settle(t *target, alerts models.PostableAlerts, end outcome) {
	if end != failed {
		t.resend, t.resolves = false, nil
		return
	}
	for _, a := range alerts {
		if time.Time(a.EndsAt).After(p.evaluated) {
			t.resend = true
			continue
		}
		if t.resolves == nil {
			t.resolves = map[string]*models.PostableAlert{}
		}
		t.resolves[alertKey(a.Labels)] = a
	}
}

// send posts alerts to t, retrying with backoff (250 ms doubling to 2 s)
// within the timeout, except after a 4xx answer other than 429, and counts
// them by outcome.
func (p *Pager) send(ctx context.Context, t *target, alerts models.PostableAlerts) outcome {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	var lastErr error // the last attempt's own error, not Retry's
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		_, err := t.api.Alert.PostAlerts(alert.NewPostAlertsParamsWithContext(ctx).WithAlerts(alerts))
		if err == nil {
			return struct{}{}, nil
		}
		lastErr = err
		if isRejection(err) {
			return struct{}{}, backoff.Permanent(err)
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
	n := float64(len(alerts))
	switch {
	case err == nil:
		p.sent.WithLabelValues(t.url).Add(n)
		if t.failing {
			t.failing = false
			p.logger.Info("posting alerts to Alertmanager works again", "alertmanager", t.url)
		}
		return delivered
	case isRejection(lastErr):
		p.rejected.WithLabelValues(t.url).Add(n)
		p.logger.Warn("Alertmanager rejected alerts; not retrying them", "alertmanager", t.url, "alerts", len(alerts), "err", lastErr)
		return rejected
	}
	p.failed.WithLabelValues(t.url).Add(n)
	if lastErr == nil {
		lastErr = err // the context ended before the first try
	}
	if !t.failing {
		t.failing = true
		p.logger.Warn("posting alerts to Alertmanager failed; posting them again at each evaluation", "alertmanager", t.url, "alerts", len(alerts), "err", lastErr)
	} else {
		p.logger.Debug("posting alerts to Alertmanager failed again", "alertmanager", t.url, "alerts", len(alerts), "err", lastErr)
	}
	return failed
}

// isRejection reports whether err is an Alertmanager's 4xx answer other
// than 429 Too Many Requests: the alerts themselves were refused, and the
// same post would be refused again. (Alertmanager answers 400 when some
// alerts are invalid, after taking the valid ones.) The client returns
// such answers as *alert.PostAlertsBadRequest or *runtime.APIError, both
// telling their status by these methods.
func isRejection(err error) bool {
	var status interface {
		IsClientError() bool
		IsCode(code int) bool
	}
	return errors.As(err, &status) && status.IsClientError() && !status.IsCode(http.StatusTooManyRequests)
}

// alertKey is the key of an alert in Pager.active, from its labels.
func alertKey(labels models.LabelSet) string {
	return labels["alertname"] + "/" + labels["namespace"] + "/" + labels["name"]
}

// labelName matches a Prometheus label name.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
