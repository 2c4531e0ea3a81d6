package rules

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestParseLinks(t *testing.T) {
	l, err := ParseLinks("https://argocd.example.com/", "http://grafana.example.com/sub/")
	if err != nil || l.ArgoCD != "https://argocd.example.com" || l.Grafana != "http://grafana.example.com/sub" {
		t.Errorf("ParseLinks = %+v, %v; want the URLs without trailing slashes", l, err)
	}
	if l, err := ParseLinks("", ""); err != nil || l != (Links{}) {
		t.Errorf("no URLs: %+v, %v", l, err)
	}
	for _, bad := range []struct{ argocd, grafana, flag string }{
		{"argocd.example.com", "", "--argocd.url"},
		{"ftp://argocd", "", "--argocd.url"},
		{"", "https://grafana/?orgId=1", "--grafana.url"},
		{"", "https://admin:secret@grafana", "--grafana.url"},
	} {
		_, err := ParseLinks(bad.argocd, bad.grafana)
		if err == nil || !strings.Contains(err.Error(), bad.flag) || strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseLinks(%q, %q) = %v, want an error naming %s without the password", bad.argocd, bad.grafana, err, bad.flag)
		}
	}
}

func TestLinksInfo(t *testing.T) {
	for _, c := range []struct {
		links Links
		want  string
	}{
		{testLinks, `argocd_url="https://argocd.example.com",grafana_url="https://grafana.example.com/grafana"`},
		{Links{Grafana: "https://g"}, `grafana_url="https://g"`},
		{Links{}, ``},
	} {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c.links.Collector())
		fams, err := reg.Gather()
		if err != nil || len(fams) != 1 || fams[0].GetName() != "crowsnest_links_info" || len(fams[0].GetMetric()) != 1 {
			t.Fatalf("%+v: gathered %v, %v", c.links, fams, err)
		}
		m := fams[0].GetMetric()[0]
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
		}
		if got := strings.Join(labels, ","); got != c.want || m.GetGauge().GetValue() != 1 {
			t.Errorf("%+v: crowsnest_links_info{%s} %v, want {%s} 1", c.links, got, m.GetGauge().GetValue(), c.want)
		}
	}
}

func TestAlertDashboards(t *testing.T) {
	want := map[string]string{
		"CrowsnestSyncFailed":            DashboardApp,
		"CrowsnestPolicyViolated":        DashboardApp,
		"CrowsnestSyncSlow":              DashboardApp,
		"CrowsnestChangeFailureRateHigh": DashboardDORA,
		"CrowsnestDown":                  DashboardFleet,
		"CrowsnestWatchStale":            DashboardFleet,
		"CrowsnestClusterDown":           DashboardFleet,
	}
	for _, a := range Alerts() {
		if w, ok := want[a.Name]; ok && a.Dashboard() != w {
			t.Errorf("%s links to %s, want %s", a.Name, a.Dashboard(), w)
		}
	}
}

// The rule file rendered with base URLs carries them as literals: the
// same links as the pager's, with nothing left for Prometheus to look up
// per alert; without them (alerts/), relative dashboard links and no
// argocd_url.
func TestRenderWithLinks(t *testing.T) {
	urlqueryRef := regexp.MustCompile(`\{\{ \$labels\.([a-z_]+) \| urlquery \}\}`)
	labels := map[string]string{"namespace": "argocd", "name": "prod-backend", "project": "shop", "env": "prod"}
	for _, links := range []Links{testLinks, {}} {
		for _, a := range Alerts() {
			for _, r := range RulesFor([]Alert{a}, 1, ProdEnv, links) {
				// As Prometheus expands it: {{ $labels.x | urlquery }}, "" for a label the alert lacks
				// (the cluster: neither a label nor an external label here).
				dash := strings.ReplaceAll(r.Annotations["dashboard_url"], "{{ with $labels.cluster }}{{ . | urlquery }}{{ else }}{{ $externalLabels.cluster | urlquery }}{{ end }}", "")
				dash = urlqueryRef.ReplaceAllStringFunc(dash, func(m string) string {
					return url.QueryEscape(labels[urlqueryRef.FindStringSubmatch(m)[1]])
				})
				if want := links.DashboardURL(&a, labels); dash != want {
					t.Errorf("%s with %+v: dashboard_url %q, want %q", a.Name, links, dash, want)
				}
				argo, ok := r.Annotations["argocd_url"]
				if want := links.AppURL(labels["namespace"], labels["name"]); a.Dashboard() == DashboardApp && want != "" {
					if got := Expand(argo, labels); got != want {
						t.Errorf("%s with %+v: argocd_url %q, want %q", a.Name, links, got, want)
					}
				} else if ok {
					t.Errorf("%s with %+v: argocd_url %q, want none", a.Name, links, argo)
				}
				if strings.Contains(r.Annotations["dashboard_url"]+argo, "with query") {
					t.Errorf("%s: a link looks up its base URL when the alert fires: %q", a.Name, r.Annotations)
				}
			}
		}
	}
	if got := templateSafe("https://h/a{{b}}"); got != "https://h/a{{ `{{` }}b{{ `}}` }}" {
		t.Errorf("templateSafe: %q", got)
	}
}
