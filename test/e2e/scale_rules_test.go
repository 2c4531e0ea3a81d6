//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	crowsnestrules "github.com/crowsnest/crowsnest/internal/rules"
)

// The rules' cost at fleet size: after the run with every app is measured,
// the real Prometheus scrapes that crowsnest as two replicas and evaluates
// crowsnest's rules (unscaled: the content of alerts/crowsnest.rules.yaml)
// over their series, and each group's evaluation time is read from
// Prometheus itself.
//
// Two replicas are two targets of the same crowsnest, told apart by their
// instance label (crowsnest-0, crowsnest-1), as two pods of a Deployment
// are: both serve the same apps' series, and Prometheus stores, and the
// rules read, two copies of each. A second crowsnest process would serve
// the same series (the same apps from the same API server) at the cost of
// another start (some 300 MiB and 4.5 s of CPU, and the API server's 8 s
// of CPU for its list, at 10,000 apps) on a 2-core machine, for nothing the
// rules would see.

const (
	// rulesScrapeInterval is the chart's ServiceMonitor interval.
	rulesScrapeInterval = 30 * time.Second
	// rulesIngestTimeout bounds the wait for both targets' series.
	rulesIngestTimeout = 5 * time.Minute
	// rulesGroupBudget: a group evaluated in longer than this (median) at
	// up to scaleChartApps apps fails the benchmark (issue 27).
	rulesGroupBudget = time.Second
)

// rulesResult is what Prometheus reported evaluating crowsnest's rules.
type rulesResult struct {
	interval    time.Duration // every group's evaluation interval
	replicas    int
	headSeries  float64
	appSeries   int           // crowsnest_app_sync_status series == 1, both replicas
	ingest      time.Duration // from Prometheus' start until both replicas' series were stored
	scrape      time.Duration // the targets' scrape_duration_seconds, the slower one, at the end
	cpu         float64       // Prometheus' CPU, cores, over the evaluations
	peakRSS     float64       // Prometheus' VmHWM at the end
	alerts      string        // ALERTS series by state at the end
	groups      []ruleGroupCost
	load        string // the load average when it started
	err         string
	measureTime time.Duration
}

// ruleGroupCost is one group's evaluation times.
type ruleGroupCost struct {
	name        string
	rules       int
	evals       []time.Duration
	missed      float64 // prometheus_rule_group_iterations_missed_total
	slowest     string  // the rule with the highest median evaluation time
	slowestTime time.Duration
}

// rulesAPIGroups is the part of /api/v1/rules read here.
type rulesAPIGroups struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		Groups []struct {
			Name           string  `json:"name"`
			File           string  `json:"file"`
			EvaluationTime float64 `json:"evaluationTime"`
			LastEvaluation string  `json:"lastEvaluation"`
			Rules          []struct {
				Name           string  `json:"name"`
				Health         string  `json:"health"`
				LastError      string  `json:"lastError"`
				EvaluationTime float64 `json:"evaluationTime"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"data"`
}

// renderScaleRules renders crowsnest's rules unscaled (as in
// alerts/crowsnest.rules.yaml) with every group evaluated every interval:
// the groups without an interval of their own take the global evaluation
// interval, and those with one (the slow alert groups' 1 m,
// crowsnest-dora's 5 m) are shortened to it, so that every group is
// evaluated several times within minutes (and more often than it will be:
// more load on the others). What one
// evaluation costs does not depend on the interval, but on the series and
// the samples in the windows it reads.
func renderScaleRules(interval time.Duration) ([]byte, error) {
	rendered, err := crowsnestrules.Render(crowsnestrules.Alerts(), 1)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(rendered, &doc); err != nil {
		return nil, err
	}
	var file struct {
		Groups []map[string]any `yaml:"groups"`
	}
	if err := doc.Decode(&file); err != nil {
		return nil, err
	}
	for _, g := range file.Groups {
		if _, ok := g["interval"]; ok {
			g["interval"] = interval.String()
		}
	}
	return yaml.Marshal(file)
}

// measureRules starts Prometheus scraping crowsnest at url as replicas
// targets, waits until both hold every app's series, and then until every
// rule group has been evaluated evals times, reading each evaluation's
// time from /api/v1/rules (the evaluationTime Prometheus also exports as
// prometheus_rule_group_last_duration_seconds). Errors are recorded in
// the result, not fatal.
func measureRules(env *Env, url, name string, apps int, cfg scaleConfig) *rulesResult {
	const replicas = 2
	res := &rulesResult{interval: cfg.rulesInterval, replicas: replicas, load: loadAverage()}
	fail := func(format string, args ...any) *rulesResult {
		res.err = fmt.Sprintf(format, args...)
		return res
	}
	dir := env.Dir(sanitize("prometheus rules " + name))
	rendered, err := renderScaleRules(cfg.rulesInterval)
	if err != nil {
		return fail("render the rules: %v", err)
	}
	rulesFile := filepath.Join(dir, "crowsnest.rules.yaml")
	if err := os.WriteFile(rulesFile, rendered, 0o600); err != nil {
		return fail("%v", err)
	}
	target := strings.TrimPrefix(url, "http://")
	var targets strings.Builder
	for i := range replicas {
		fmt.Fprintf(&targets, "      - targets: [%q]\n        labels: {instance: crowsnest-%d}\n", target, i)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: 25s
  evaluation_interval: %s
rule_files: [%q]
scrape_configs:
  - job_name: crowsnest
    static_configs:
%s`, rulesScrapeInterval, cfg.rulesInterval, rulesFile, targets.String())), 0o600); err != nil {
		return fail("%v", err)
	}
	port := env.Port()
	p := &Prometheus{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	p.Process = env.NewProcess(sanitize("prometheus rules "+name), bin.prometheus,
		"--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	if err := p.start(); err != nil {
		return fail("start Prometheus: %v", err)
	}
	defer func() {
		if err := p.Stop(); err != nil && res.err == "" {
			res.err = "stop Prometheus: " + err.Error()
		}
	}()
	start := time.Now()
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	// Both replicas' series stored: every app's sync status twice.
	want := replicas * apps
	for {
		if err := p.checkAlive(); err != nil {
			return fail("%v", err)
		}
		if avail := memAvailable(); avail > 0 && avail < scaleMinAvailable {
			return fail("stopped: the machine has %s available (Prometheus RSS %s)", mib(avail), mib(must(procField(p.pid(), "VmRSS"))))
		}
		if time.Since(start) > rulesIngestTimeout {
			return fail("Prometheus did not store %d apps' series of %d replicas within %v", apps, replicas, rulesIngestTimeout)
		}
		if v, err := p.Query(`count(crowsnest_app_sync_status == 1)`); err == nil && len(v) == 1 && int(v[0].Value) >= want {
			res.appSeries = int(v[0].Value)
			break
		}
		time.Sleep(time.Second)
	}
	res.ingest = time.Since(start)

	// Every group evaluated evals times after that. An evaluation under
	// way when the series were complete is not counted: it may have read
	// one replica only.
	from := time.Now()
	cpu0 := procCPU(p.pid())
	byGroup := map[string]*ruleGroupCost{}
	last := map[string]string{}
	ruleTimes := map[string]map[string][]time.Duration{}
	var order []string
	deadline := from.Add(time.Duration(cfg.rulesEvals+2)*cfg.rulesInterval + 2*time.Minute)
	for {
		if err := p.checkAlive(); err != nil {
			return fail("%v", err)
		}
		if avail := memAvailable(); avail > 0 && avail < scaleMinAvailable {
			return fail("stopped: the machine has %s available (Prometheus RSS %s)", mib(avail), mib(must(procField(p.pid(), "VmRSS"))))
		}
		var api rulesAPIGroups
		if err := getJSON(client, p.URL+"/api/v1/rules", &api); err != nil {
			return fail("%v", err)
		}
		if api.Status != "success" {
			return fail("/api/v1/rules: %s", api.Error)
		}
		done := len(api.Data.Groups) > 0
		for _, g := range api.Data.Groups {
			c := byGroup[g.Name]
			if c == nil {
				c = &ruleGroupCost{name: g.Name, rules: len(g.Rules)}
				byGroup[g.Name] = c
				order = append(order, g.Name)
				ruleTimes[g.Name] = map[string][]time.Duration{}
			}
			at, err := time.Parse(time.RFC3339Nano, g.LastEvaluation)
			if err == nil && at.After(from) && g.LastEvaluation != last[g.Name] {
				last[g.Name] = g.LastEvaluation
				c.evals = append(c.evals, seconds(g.EvaluationTime))
				seen := map[string]int{}
				for _, r := range g.Rules {
					if r.Health == "err" {
						return fail("group %s, rule %s: %s", g.Name, r.Name, r.LastError)
					}
					// An alert of two severities is two rules of one name.
					seen[r.Name]++
					key := r.Name
					if seen[r.Name] > 1 {
						key = fmt.Sprintf("%s (#%d)", r.Name, seen[r.Name])
					}
					ruleTimes[g.Name][key] = append(ruleTimes[g.Name][key], seconds(r.EvaluationTime))
				}
			}
			done = done && len(c.evals) >= cfg.rulesEvals
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			counts := []string{}
			for _, n := range order {
				counts = append(counts, fmt.Sprintf("%s %d", n, len(byGroup[n].evals)))
			}
			return fail("fewer than %d evaluations of every group after %v: %s", cfg.rulesEvals, time.Since(from).Round(time.Second), strings.Join(counts, ", "))
		}
		time.Sleep(time.Second)
	}
	res.measureTime = time.Since(from)
	res.cpu = (procCPU(p.pid()) - cpu0) / res.measureTime.Seconds()
	res.peakRSS, _ = procField(p.pid(), "VmHWM")

	if m, err := p.Scrape(); err == nil {
		res.headSeries, _ = m.Value("prometheus_tsdb_head_series")
		for _, s := range m.Find("prometheus_rule_group_iterations_missed_total") {
			g := string(s.Metric["rule_group"])
			if c := byGroup[g[strings.LastIndexByte(g, ';')+1:]]; c != nil {
				c.missed = float64(s.Value)
			}
		}
	}
	if v, err := p.Query(`max(scrape_duration_seconds{job="crowsnest"})`); err == nil && len(v) == 1 {
		res.scrape = seconds(v[0].Value)
	}
	if v, err := p.Query(`count by (alertstate) (ALERTS)`); err == nil {
		var states []string
		for _, s := range v {
			states = append(states, fmt.Sprintf("%s %.0f", s.Metric["alertstate"], s.Value))
		}
		res.alerts = strings.Join(states, ", ")
	}
	for _, n := range order {
		c := byGroup[n]
		for rule, ts := range ruleTimes[n] {
			if m := percentile(ts, 50); m > c.slowestTime || (m == c.slowestTime && rule < c.slowest) {
				c.slowest, c.slowestTime = rule, m
			}
		}
		res.groups = append(res.groups, *c)
	}
	return res
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func getJSON(client *http.Client, url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// String summarises the result for the test log.
func (r *rulesResult) String() string {
	var b strings.Builder
	for _, g := range r.groups {
		fmt.Fprintf(&b, "; group %s: %d evaluations, min %v, median %v, max %v (slowest rule %s, median %v)", g.name, len(g.evals),
			percentile(g.evals, 0).Round(time.Microsecond), percentile(g.evals, 50).Round(time.Microsecond), percentile(g.evals, 100).Round(time.Microsecond),
			g.slowest, g.slowestTime.Round(time.Microsecond))
	}
	s := fmt.Sprintf("rules: %d replicas, %.0f head series, every series stored after %v%s", r.replicas, r.headSeries, r.ingest.Round(time.Second), b.String())
	if r.err != "" {
		s += "; FAILED: " + r.err
	}
	return s
}

// markdown renders the rule groups' evaluation times of the results that
// measured them.
func rulesMarkdown(b *strings.Builder, cfg scaleConfig, results []scaleResult) {
	first := true
	for _, res := range results {
		r := res.rules
		if r == nil {
			continue
		}
		if first {
			first = false
			fmt.Fprintf(b, "\nRule evaluation (`CROWSNEST_SCALE_RULES`): after the run's churn, Prometheus %s scrapes that crowsnest every %v as %d replicas (two targets of the same endpoint, instance crowsnest-0 and crowsnest-1) and evaluates crowsnest's rules as rendered to alerts/crowsnest.rules.yaml (for durations unscaled), every group every %v (the slow alert groups' 1 m and crowsnest-dora's 5 m shortened to it: an evaluation's cost does not depend on the interval). The times are Prometheus' own (`/api/v1/rules` evaluationTime, also `prometheus_rule_group_last_duration_seconds`) over %d or more evaluations per group, counted once both replicas' series were stored. The windows the rules read (`[1h]`, and crowsnest-dora's `[1d]` and `[7d]`) hold only the minutes Prometheus has run.\n\n",
				prometheusVersion(), rulesScrapeInterval, r.replicas, r.interval, cfg.rulesEvals)
			b.WriteString("| binary | load at start | group | rules | evaluations | min | median | max | missed | slowest rule (median) | head series | stored after | scrape | Prometheus CPU | Prometheus peak RSS | alerts |\n")
			b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|---|\n")
		}
		if r.err != "" && len(r.groups) == 0 {
			fmt.Fprintf(b, "| %s | %s | **failed: %s** | | | | | | | | | | | | | |\n", res.binary, r.load, escapePipes(r.err))
			continue
		}
		for i, g := range r.groups {
			shared := "| | | | | |"
			if i == 0 {
				shared = fmt.Sprintf("| %s | %s | %s | %.2f cores | %s | %s |", thousands(int(r.headSeries)), secs(r.ingest), msec(r.scrape), r.cpu, mib(r.peakRSS), r.alerts)
			}
			fmt.Fprintf(b, "| %s | %s | %s | %d | %d | %s | %s | %s | %.0f | %s (%s) %s\n", res.binary, r.load, g.name, g.rules, len(g.evals),
				msec(percentile(g.evals, 0)), msec(percentile(g.evals, 50)), msec(percentile(g.evals, 100)), g.missed, g.slowest, msec(g.slowestTime), shared)
		}
		if r.err != "" {
			fmt.Fprintf(b, "| %s | | **failed: %s** | | | | | | | | | | | | | |\n", res.binary, escapePipes(r.err))
		}
	}
}

// prometheusVersion is the version the Prometheus binary reports.
func prometheusVersion() string {
	out, err := command(bin.repoRoot, bin.prometheus, "--version")
	if err != nil {
		return "?"
	}
	// "prometheus, version 2.42.0+ds (branch: ...)"
	f := strings.Fields(strings.SplitN(out, "\n", 2)[0])
	if i := slices.Index(f, "version"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	return "?"
}
