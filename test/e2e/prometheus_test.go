//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	amalert "github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"

	crowsnestrules "github.com/crowsnest/crowsnest/internal/rules"
)

// prometheusReadyTimeout bounds how long Prometheus and Alertmanager may
// take to become ready.
const prometheusReadyTimeout = 60 * time.Second

// scrapeInterval is how often the e2e Prometheus scrapes crowsnest: short,
// so the tests see changes within seconds.
const scrapeInterval = time.Second

// Alertmanager is a real Alertmanager on a loopback port.
type Alertmanager struct {
	*Process
	URL string
}

// StartAlertmanager starts Alertmanager with one receiver that goes
// nowhere: the tests read alerts back through its API.
func (e *Env) StartAlertmanager() *Alertmanager {
	e.t.Helper()
	return e.StartAlertmanagerWith(e.Dir("alertmanager"), `route:
  receiver: sink
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sink
`)
}

// StartAlertmanagerWith starts Alertmanager with the configuration config,
// its files in dir.
func (e *Env) StartAlertmanagerWith(dir, config string) *Alertmanager {
	e.t.Helper()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		e.t.Fatal(err)
	}
	port := e.Port()
	am := &Alertmanager{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	am.Process = e.NewProcess("alertmanager", bin.alertmanager,
		"--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--cluster.listen-address=")
	am.Start()
	waitHTTP200(e, am.Process, am.URL+"/-/ready")
	return am
}

// Prometheus is a real Prometheus scraping crowsnest, loading the rule
// files of alerts/ and sending alerts to an Alertmanager.
type Prometheus struct {
	*Process
	URL string
}

// alertForScale shortens the alerts' for durations in the tests: 5 m
// becomes 6 s. Prometheus and crowsnest's direct paging use the same.
const alertForScale = 0.02

// StartPrometheus starts Prometheus scraping targets (host:port) every
// scrapeInterval, with crowsnest's alert rules (for durations scaled by
// alertForScale).
func (e *Env) StartPrometheus(targets []string, am *Alertmanager) *Prometheus {
	e.t.Helper()
	return e.startPrometheus(targets, am, "")
}

// operatorPrometheus is the Prometheus kube-prometheus-stack's Prometheus
// Operator runs: release kube-prometheus-stack in namespace monitoring.
const operatorPrometheus = "monitoring/kube-prometheus-stack-prometheus"

// StartOperatorPrometheus is StartPrometheus with the external labels and
// alert relabelling the Prometheus Operator configures: prometheus names
// the Prometheus (operatorPrometheus) and prometheus_replica its pod; the
// replica label is dropped from alerts (so Alertmanager merges the
// replicas' alerts), the prometheus label is not.
func (e *Env) StartOperatorPrometheus(targets []string, am *Alertmanager) *Prometheus {
	e.t.Helper()
	return e.startPrometheus(targets, am, `  external_labels:
    prometheus: `+operatorPrometheus+`
    prometheus_replica: prometheus-kube-prometheus-stack-prometheus-0
`)
}

// startPrometheus starts Prometheus, globals (indented YAML) added to its
// global section and the replica label dropped from its alerts.
func (e *Env) startPrometheus(targets []string, am *Alertmanager, globals string) *Prometheus {
	e.t.Helper()
	dir := e.Dir("prometheus")
	// crowsnest's rules, with their for durations scaled down so the
	// tests do not wait minutes, linking to the e2e's Argo CD and Grafana
	// URLs as the chart renders its links.*; alerts/ holds the same rules
	// unscaled, without base URLs.
	rendered, err := crowsnestrules.RenderWith(crowsnestrules.Alerts(), alertForScale,
		crowsnestrules.Links{ArgoCD: e2eArgoCDURL, Grafana: e2eGrafanaURL})
	if err != nil {
		e.t.Fatal(err)
	}
	rules := []string{filepath.Join(dir, "crowsnest.rules.yaml")}
	if err := os.WriteFile(rules[0], rendered, 0o600); err != nil {
		e.t.Fatal(err)
	}
	quoted := func(ss []string) string {
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	amTargets := "[]"
	if am != nil {
		amTargets = quoted([]string{strings.TrimPrefix(am.URL, "http://")})
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: %[1]s
  evaluation_interval: %[1]s
%[5]srule_files: %[2]s
alerting:
  alert_relabel_configs:
    - action: labeldrop
      regex: prometheus_replica
  alertmanagers:
    - static_configs:
        - targets: %[3]s
scrape_configs:
  - job_name: crowsnest
    static_configs:
      - targets: %[4]s
`, scrapeInterval, quoted(rules), amTargets, quoted(targets), globals)), 0o600); err != nil {
		e.t.Fatal(err)
	}
	port := e.Port()
	p := &Prometheus{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	p.Process = e.NewProcess("prometheus", bin.prometheus,
		"--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--enable-feature=exemplar-storage")
	p.Start()
	waitHTTP200(e, p.Process, p.URL+"/-/ready")
	return p
}

// Scrape returns Prometheus' own metrics.
func (p *Prometheus) Scrape() (*Metrics, error) {
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape Prometheus: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape Prometheus: status %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant PromQL query and returns its vector, sorted by
// labels; it fails on errors of the query, not on empty results.
func (p *Prometheus) Query(query string) ([]promSample, error) {
	return p.QueryAt(query, time.Time{})
}

// QueryAt runs an instant PromQL query evaluated at at (now if zero), as
// Query does.
func (p *Prometheus) QueryAt(query string, at time.Time) ([]promSample, error) {
	u := p.URL + "/api/v1/query?query=" + url.QueryEscape(query)
	if !at.IsZero() {
		u += "&time=" + strconv.FormatFloat(float64(at.UnixNano())/1e9, 'f', 3, 64)
	}
	resp, err := http.Get(u)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %s: %w: %s", query, err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", query, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result type %s, want vector", query, r.Data.ResultType)
	}
	out := make([]promSample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", query, s.Value[1], err)
		}
		out = append(out, promSample{Metric: s.Metric, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i].Metric) < fmt.Sprint(out[j].Metric) })
	return out, nil
}

// ExpectValue returns nil when query yields exactly one sample of value want.
func (p *Prometheus) ExpectValue(query string, want float64) error {
	v, err := p.Query(query)
	if err != nil {
		return err
	}
	if len(v) != 1 {
		return fmt.Errorf("%s: %d samples %v, want one of value %v", query, len(v), v, want)
	}
	if v[0].Value != want {
		return fmt.Errorf("%s = %v, want %v", query, v[0].Value, want)
	}
	return nil
}

// waitHTTP200 waits until url answers 200, failing fast if p exits.
func waitHTTP200(e *Env, p *Process, url string) {
	e.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	eventually(e.t, prometheusReadyTimeout, func() error {
		if err := p.checkAlive(); err != nil {
			return err
		}
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
}

// ExemplarTraceIDs returns the trace_id labels of the exemplars Prometheus
// stored for series matching query over the last hour.
func (p *Prometheus) ExemplarTraceIDs(query string) (map[string]bool, error) {
	now := time.Now()
	u := fmt.Sprintf("%s/api/v1/query_exemplars?query=%s&start=%d&end=%d", p.URL, url.QueryEscape(query), now.Add(-time.Hour).Unix(), now.Unix())
	resp, err := http.Get(u)
	if err != nil {
		return nil, fmt.Errorf("query exemplars %s: %w", query, err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   []struct {
			Exemplars []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("query exemplars %s: %w", query, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query exemplars %s: %s", query, r.Error)
	}
	ids := map[string]bool{}
	for _, series := range r.Data {
		for _, e := range series.Exemplars {
			ids[e.Labels["trace_id"]] = true
		}
	}
	return ids, nil
}

// ActiveAlerts returns the alerts Alertmanager holds active, read with
// Alertmanager's API v2 client, as label sets.
func (am *Alertmanager) ActiveAlerts(ctx context.Context) ([]map[string]string, error) {
	alerts, err := am.active(ctx, false)
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for _, a := range alerts {
		out = append(out, map[string]string(a.Labels))
	}
	return out, nil
}

// active returns the active alerts Alertmanager holds, silenced and
// inhibited ones too when all is set.
func (am *Alertmanager) active(ctx context.Context, all bool) (models.GettableAlerts, error) {
	u, err := url.Parse(am.URL)
	if err != nil {
		return nil, err
	}
	api := amclient.NewHTTPClientWithConfig(strfmt.Default, amclient.DefaultTransportConfig().WithHost(u.Host).WithSchemes([]string{"http"}))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	params := amalert.NewGetAlertsParamsWithContext(ctx).WithActive(ptr(true))
	if !all {
		params = params.WithSilenced(ptr(false)).WithInhibited(ptr(false))
	}
	ok, err := api.Alert.GetAlerts(params)
	if err != nil {
		return nil, fmt.Errorf("alertmanager %s: %w", am.URL, err)
	}
	return ok.Payload, nil
}

// Annotations returns the annotations of the active alerts whose labels
// include all of want.
func (am *Alertmanager) Annotations(ctx context.Context, want map[string]string) ([]map[string]string, error) {
	alerts, err := am.active(ctx, true)
	if err != nil {
		return nil, err
	}
	var out []map[string]string
next:
	for _, a := range alerts {
		for k, v := range want {
			if a.Labels[k] != v {
				continue next
			}
		}
		out = append(out, map[string]string(a.Annotations))
	}
	return out, nil
}

// AlertAnnotations returns the annotations of the alerts Prometheus's rules
// hold (pending or firing) whose labels include all of want, as
// /api/v1/alerts shows them: templates expanded by the real Prometheus.
func (p *Prometheus) AlertAnnotations(want map[string]string) ([]map[string]string, error) {
	resp, err := http.Get(p.URL + "/api/v1/alerts")
	if err != nil {
		return nil, fmt.Errorf("prometheus alerts: %w", err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("prometheus alerts: %w", err)
	}
	var out []map[string]string
next:
	for _, a := range r.Data.Alerts {
		for k, v := range want {
			if a.Labels[k] != v {
				continue next
			}
		}
		out = append(out, a.Annotations)
	}
	return out, nil
}

// FindAlerts returns the active alerts whose labels include all of want.
func (am *Alertmanager) FindAlerts(ctx context.Context, want map[string]string) ([]map[string]string, error) {
	all, err := am.ActiveAlerts(ctx)
	if err != nil {
		return nil, err
	}
	var out []map[string]string
next:
	for _, a := range all {
		for k, v := range want {
			if a[k] != v {
				continue next
			}
		}
		out = append(out, a)
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }
