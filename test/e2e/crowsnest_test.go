//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const (
	// crowsnestHealthyTimeout bounds crowsnest's start-up until /healthz
	// answers.
	crowsnestHealthyTimeout = 30 * time.Second
	// crowsnestStopTimeout leaves room for crowsnest's own 10 s graceful
	// shutdown.
	crowsnestStopTimeout = 15 * time.Second
)

// Crowsnest is the daemon under test, built by TestMain, serving on a
// loopback port.
type Crowsnest struct {
	*Process
	// URL is the base URL of its web server, http://127.0.0.1:PORT.
	URL    string
	client *http.Client
}

// NewCrowsnest prepares crowsnest watching the API server of kubeconfig,
// with extra flags (e.g. --config.file=...); Start runs it.
func (e *Env) NewCrowsnest(kubeconfig string, flags ...string) *Crowsnest {
	e.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", e.Port())
	args := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--web.listen-address=" + addr,
		"--log.level=debug",
	}, flags...)
	p := e.NewProcess("crowsnest", bin.crowsnest, args...)
	p.StopTimeout = crowsnestStopTimeout
	c := &Crowsnest{Process: p, URL: "http://" + addr, client: &http.Client{Timeout: 5 * time.Second}}
	p.beforeStop = func() { e.saveMetrics(c) } // its labels are searched for secrets
	e.t.Cleanup(c.client.CloseIdleConnections)
	return c
}

// StartCrowsnest starts crowsnest (see NewCrowsnest) and waits until it
// serves /healthz.
func (e *Env) StartCrowsnest(kubeconfig string, flags ...string) *Crowsnest {
	e.t.Helper()
	c := e.NewCrowsnest(kubeconfig, flags...)
	c.Start()
	return c
}

// Start runs crowsnest and waits until /healthz answers 200.
func (c *Crowsnest) Start() {
	c.t.Helper()
	c.Process.Start()
	took := eventually(c.t, crowsnestHealthyTimeout, func() error {
		if err := c.checkAlive(); err != nil {
			return err
		}
		return c.ExpectStatus("/healthz", http.StatusOK)
	})
	c.t.Logf("crowsnest serving on %s in %v", c.URL, took.Round(time.Millisecond))
}

// Get fetches path from crowsnest's web server.
func (c *Crowsnest) Get(path string) (status int, body string, err error) {
	resp, err := c.client.Get(c.URL + path)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("GET %s: read body: %w", path, err)
	}
	return resp.StatusCode, string(b), nil
}

// ExpectStatus returns an error unless GET path answers with status want.
func (c *Crowsnest) ExpectStatus(path string, want int) error {
	status, body, err := c.Get(path)
	if err != nil {
		return err
	}
	if status != want {
		return fmt.Errorf("GET %s: status %d, want %d: %s", path, status, want, strings.TrimSpace(body))
	}
	return nil
}

// Scrape fetches and parses /metrics.
func (c *Crowsnest) Scrape() (*Metrics, error) {
	req, err := http.NewRequest(http.MethodGet, c.URL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	// The classic text format: what expfmt's TextParser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("scrape: status %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	m, err := ParseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	return m, nil
}

// ExpectSample scrapes crowsnest and returns an error unless the one sample
// of name with the given label pairs has value want.
func (c *Crowsnest) ExpectSample(want float64, name string, labels ...string) error {
	m, err := c.Scrape()
	if err != nil {
		return err
	}
	return m.Expect(want, name, labels...)
}

// waitScraped waits until cn's Kubernetes source is up and prom scrapes
// cn (job crowsnest).
func waitScraped(t *testing.T, cn *Crowsnest, prom *Prometheus) {
	t.Helper()
	eventually(t, signalTimeout, func() error {
		if err := cn.ExpectSample(1, "crowsnest_source_up", "source", "kubernetes"); err != nil {
			return err
		}
		return prom.ExpectValue(`up{job="crowsnest"}`, 1)
	})
}

// Metrics is one parsed scrape: every sample, histograms and summaries
// flattened into their _bucket, _sum and _count series.
type Metrics struct {
	Samples model.Vector
}

// ParseMetrics parses the Prometheus text exposition format.
func ParseMetrics(r io.Reader) (*Metrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	opts := &expfmt.DecodeOptions{Timestamp: model.Now()}
	m := &Metrics{}
	for _, f := range families {
		s, err := expfmt.ExtractSamples(opts, f)
		if err != nil {
			return nil, fmt.Errorf("parse metrics: %w", err)
		}
		m.Samples = append(m.Samples, s...)
	}
	return m, nil
}

// Find returns the samples of metric name ("" for any) that carry all the
// given label pairs ("name", "guestbook", ...).
func (m *Metrics) Find(name string, labels ...string) []*model.Sample {
	var out []*model.Sample
next:
	for _, s := range m.Samples {
		if name != "" && string(s.Metric[model.MetricNameLabel]) != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if string(s.Metric[model.LabelName(labels[i])]) != labels[i+1] {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// Value returns the value of the one sample of name with the given label
// pairs; it is an error if there is none or more than one.
func (m *Metrics) Value(name string, labels ...string) (float64, error) {
	if len(labels)%2 != 0 {
		return 0, fmt.Errorf("odd number of label arguments: %q", labels)
	}
	found := m.Find(name, labels...)
	switch len(found) {
	case 1:
		return float64(found[0].Value), nil
	case 0:
		return 0, fmt.Errorf("no sample %s%s", name, formatLabels(labels))
	default:
		series := make([]string, len(found))
		for i, s := range found {
			series[i] = s.Metric.String()
		}
		return 0, fmt.Errorf("%d samples match %s%s: %s", len(found), name, formatLabels(labels), strings.Join(series, ", "))
	}
}

// Expect returns an error unless the one sample of name with the given
// label pairs has value want.
func (m *Metrics) Expect(want float64, name string, labels ...string) error {
	got, err := m.Value(name, labels...)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s%s = %v, want %v", name, formatLabels(labels), got, want)
	}
	return nil
}

// Names returns the sorted, distinct metric names of the samples that carry
// the given label pairs.
func (m *Metrics) Names(labels ...string) []string {
	seen := map[string]bool{}
	for _, s := range m.Find("", labels...) {
		seen[string(s.Metric[model.MetricNameLabel])] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func formatLabels(labels []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", labels[i], labels[i+1])
	}
	b.WriteByte('}')
	return b.String()
}
