package rules

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// The dashboards' uids (dashboards/), which alerts link to.
const (
	DashboardFleet = "crowsnest-fleet"
	DashboardApp   = "crowsnest-app"
	DashboardDORA  = "crowsnest-dora"
)

// Links are the base URLs crowsnest links to (--argocd.url, --grafana.url),
// without a trailing slash; empty when not set. The daemon's pages carry
// them, and crowsnest_links_info exposes them to the dashboards, which know
// no flags; the rule files get them when rendered (RenderWith, the chart).
type Links struct {
	// ArgoCD is the Argo CD UI, e.g. https://argocd.example.com.
	ArgoCD string
	// Grafana is the Grafana the dashboards are provisioned in, e.g.
	// https://grafana.example.com.
	Grafana string
}

// ParseLinks checks the base URLs (absolute http or https URLs; the flag
// names go into the errors) and trims their trailing slashes.
func ParseLinks(argocd, grafana string) (Links, error) {
	var l Links
	for _, f := range []struct {
		flag, raw string
		dst       *string
	}{{"--argocd.url", argocd, &l.ArgoCD}, {"--grafana.url", grafana, &l.Grafana}} {
		if f.raw == "" {
			continue
		}
		u, err := url.Parse(f.raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
			return Links{}, fmt.Errorf("%s=%q: want a base URL like https://host[/path]", f.flag, f.raw)
		}
		if u.User != nil {
			return Links{}, fmt.Errorf("%s: a link must not carry credentials", f.flag)
		}
		*f.dst = strings.TrimRight(f.raw, "/")
	}
	return l, nil
}

// Collector exposes the links as crowsnest_links_info, one series whose
// labels argocd_url and grafana_url are the base URLs (a label is absent
// when its URL is not set).
func (l Links) Collector() prometheus.Collector {
	labels := prometheus.Labels{}
	if l.ArgoCD != "" {
		labels["argocd_url"] = l.ArgoCD
	}
	if l.Grafana != "" {
		labels["grafana_url"] = l.Grafana
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "crowsnest_links_info",
		Help:        "The base URLs of the Argo CD UI (argocd_url, from --argocd.url) and of Grafana (grafana_url, from --grafana.url) that alerts and dashboards link to; always 1.",
		ConstLabels: labels,
	})
	g.Set(1)
	return g
}

// AppURL is the Argo CD UI's page of one Application, or "" without an
// Argo CD URL.
func (l Links) AppURL(namespace, name string) string {
	if l.ArgoCD == "" {
		return ""
	}
	return l.ArgoCD + "/applications/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
}

// DashboardURL is the dashboard of an alert with these labels, relative
// ("/d/...") without a Grafana URL, as the rules render it then.
func (l Links) DashboardURL(a *Alert, labels map[string]string) string {
	uid := a.Dashboard()
	var q []string
	for _, v := range dashboardVars(uid) {
		q = append(q, "var-"+v.variable+"="+url.QueryEscape(labels[v.label]))
	}
	u := l.Grafana + "/d/" + uid + "/" + uid
	if len(q) > 0 {
		u += "?" + strings.Join(q, "&")
	}
	return u
}

// Dashboard is the uid of the dashboard an alert links to: the app's for
// an alert on one app, DORA's for an alert on the DORA records, else the
// fleet's.
func (a *Alert) Dashboard() string {
	switch {
	case a.Check != nil || strings.Contains(a.Expr(""), "max without ("+scrapeLabels): // perApp
		return DashboardApp
	case a.Group == DORAGroup:
		return DashboardDORA
	}
	return DashboardFleet
}

// dashboardVar maps an alert label to the dashboard variable it sets.
type dashboardVar struct{ label, variable string }

// dashboardVars are the variables an alert's dashboard link sets from its
// labels, in a fixed order: the app dashboard's app, namespace and
// installation (cluster) pick one app, as its variables do.
func dashboardVars(uid string) []dashboardVar {
	switch uid {
	case DashboardApp:
		return []dashboardVar{{"name", "app"}, {"namespace", "namespace"}, {"cluster", "cluster"}, {"env", "env"}, {"project", "project"}}
	case DashboardDORA:
		return []dashboardVar{{"env", "env"}, {"project", "project"}}
	}
	return nil
}

// linkAnnotations are the Prometheus rule annotations of an alert's links,
// on links' base URLs: dashboard_url always (relative without a Grafana
// URL), argocd_url for an alert on one app with an Argo CD URL. The base
// URLs are literals, not looked up when the alert fires: Prometheus
// expands the annotations of every pending and firing alert at every
// evaluation, and a query template per link took 0.4 ms an alert (0.4 s an
// evaluation with 1,000 apps OutOfSync, docs/scale.md). The rule file in
// alerts/ has none (Render); the chart adds its links.* (values), and
// RenderWith any.
func linkAnnotations(a *Alert, links Links) map[string]string {
	uid := a.Dashboard()
	var b strings.Builder
	b.WriteString(templateSafe(links.Grafana) + "/d/" + uid + "/" + uid + "?")
	for i, v := range dashboardVars(uid) {
		if i > 0 {
			b.WriteString("&")
		}
		// Label values are URL-query safe for apps, projects and envs
		// (DNS-1123 names); urlquery guards the rest.
		if v.label == "cluster" {
			// The installation: a label of the series (the scrape's
			// relabelling), else Prometheus' external label, which
			// $labels lacks and the pager's alerts carry
			// (--alertmanager.external-label): both paths link alike.
			fmt.Fprintf(&b, "var-%s={{ with $labels.cluster }}{{ . | urlquery }}{{ else }}{{ $externalLabels.cluster | urlquery }}{{ end }}", v.variable)
			continue
		}
		fmt.Fprintf(&b, "var-%s={{ $labels.%s | urlquery }}", v.variable, v.label)
	}
	out := map[string]string{"dashboard_url": strings.TrimSuffix(b.String(), "?")}
	if uid == DashboardApp && links.ArgoCD != "" {
		out["argocd_url"] = templateSafe(links.ArgoCD) + "/applications/{{ $labels.namespace }}/{{ $labels.name }}"
	}
	return out
}

// templateSafe quotes the template delimiters of a literal put into an
// annotation template.
func templateSafe(s string) string {
	if !strings.Contains(s, "{{") && !strings.Contains(s, "}}") {
		return s
	}
	r := strings.NewReplacer("{{", "{{ `{{` }}", "}}", "{{ `}}` }}")
	return r.Replace(s)
}
