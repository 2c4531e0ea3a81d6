//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"gopkg.in/yaml.v3"

	"github.com/crowsnest/crowsnest/internal/pager"
	crowsnestrules "github.com/crowsnest/crowsnest/internal/rules"
)

// kubePrometheusStackInhibitRules are the inhibition rules
// kube-prometheus-stack's chart gives Alertmanager by default
// (alertmanager.config.inhibit_rules in its values.yaml, as kube-prometheus
// has them).
const kubePrometheusStackInhibitRules = `inhibit_rules:
  - source_matchers: ['severity = critical']
    target_matchers: ['severity =~ warning|info']
    equal: ['namespace', 'alertname']
  - source_matchers: ['severity = warning']
    target_matchers: ['severity = info']
    equal: ['namespace', 'alertname']
  - source_matchers: ['alertname = InfoInhibitor']
    target_matchers: ['severity = info']
    equal: ['namespace']
  - target_matchers: ['alertname = InfoInhibitor']
`

// readmeAlertmanagerExample returns the Alertmanager configuration the
// README ships (between its alertmanager-example markers), decoded.
func readmeAlertmanagerExample(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bin.repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- alertmanager-example:begin -->\n```yaml\n(.*?)```\n<!-- alertmanager-example:end -->").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no Alertmanager example between its alertmanager-example markers")
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(m[1], &cfg); err != nil {
		t.Fatalf("the README's Alertmanager example: %v", err)
	}
	return cfg
}

// webhookSink receives Alertmanager's webhook notifications.
type webhookSink struct {
	mu    sync.Mutex
	notes []webhookNote
}

// webhookNote is one notification, as Alertmanager's webhook sends it.
type webhookNote struct {
	Receiver    string            `json:"receiver"`
	Status      string            `json:"status"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

func (w *webhookSink) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var n webhookNote
	if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.notes = append(w.notes, n)
	w.mu.Unlock()
}

// of returns the notifications of the group of app name.
func (w *webhookSink) of(name string) []webhookNote {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []webhookNote
	for _, n := range w.notes {
		if n.GroupLabels["name"] == name {
			out = append(out, n)
		}
	}
	return out
}

// alertnames lists a notification's firing alerts' names.
func (n webhookNote) alertnames() []string {
	var out []string
	for _, a := range n.Alerts {
		if a.Status == "firing" {
			out = append(out, a.Labels["alertname"])
		}
	}
	return out
}

// startPager runs crowsnest's pager on apps against the Alertmanager at
// url until the test ends, its for durations scaled by alertForScale.
func startPager(t *testing.T, url string, apps []crowsnestrules.AppState) {
	t.Helper()
	p, err := pager.NewPager(pager.PagerConfig{
		URLs: []string{url}, Interval: 200 * time.Millisecond, Resend: time.Minute, Timeout: 5 * time.Second, ForScale: alertForScale,
	}, crowsnestrules.Alerts(), func() []crowsnestrules.AppState { return apps }, prometheus.NewRegistry(), promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestAlertmanagerRoutes: the README's Alertmanager route and inhibition
// example, loaded into the real Alertmanager, turns one incident into one
// notification. crowsnest's pager pages a prod app whose sync failed, which
// is also degraded and drifted (three alerts, the last two after their for
// durations), and a dev app whose sync failed: the webhook receives one
// notification for the prod app, with the failed sync only (the other two
// inhibited, held by Alertmanager), and one for the dev app. Then the same
// incident under kube-prometheus-stack's default inhibition rules: the
// prod page does not inhibit the dev app's warning; the control, two
// alerts of one name and namespace at critical and warning, shows those
// rules are in force.
func TestAlertmanagerRoutes(t *testing.T) {
	env := NewEnv(t)
	sink := &webhookSink{}
	hook := httptest.NewServer(sink)
	t.Cleanup(hook.Close)

	prod := crowsnestrules.AppState{Namespace: argoCDNamespace, Name: "shop-prod", Project: "shop", Env: "prod", Dest: "prod-eu",
		SyncStatus: "OutOfSync", Health: "Degraded", Phase: "Failed", LiveDrift: true}
	dev := crowsnestrules.AppState{Namespace: argoCDNamespace, Name: "shop-dev", Project: "shop", Env: "dev", Dest: "in-cluster",
		SyncStatus: "Synced", Health: "Healthy", Phase: "Failed", AutoSync: true}
	// readmeConfig is the README's example with its timing shortened for
	// the test and its app receiver sending to the webhook url; everything
	// else is the README's.
	readmeConfig := func(t *testing.T, url string) string {
		cfg := readmeAlertmanagerExample(t)
		route := cfg["route"].(map[string]any)["routes"].([]any)[0].(map[string]any)
		route["group_wait"], route["group_interval"] = "1s", "2s"
		for _, r := range cfg["receivers"].([]any) {
			r := r.(map[string]any)
			if r["name"] == route["receiver"] {
				r["webhook_configs"] = []any{map[string]any{"url": url, "send_resolved": false}}
			}
		}
		b, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("the README's example: one notification per incident", func(t *testing.T) {
		am := env.StartAlertmanagerWith(env.Dir("alertmanager-readme"), readmeConfig(t, hook.URL))
		startPager(t, am.URL, []crowsnestrules.AppState{prod, dev})
		ctx := t.Context()

		// Every alert of the incident fired and reached Alertmanager;
		// the failed sync holds back the other two.
		eventually(t, signalTimeout, func() error {
			return am.expectInhibited(ctx, map[string]bool{
				"CrowsnestProdSyncFailed/" + prod.Name: false, "CrowsnestProdAppDegraded/" + prod.Name: true, "CrowsnestProdDrift/" + prod.Name: true,
				"CrowsnestSyncFailed/" + dev.Name: false,
			})
		})
		// Two group intervals more: a new notification would have come.
		time.Sleep(5 * time.Second)
		for name, want := range map[string]string{prod.Name: "CrowsnestProdSyncFailed", dev.Name: "CrowsnestSyncFailed"} {
			notes := sink.of(name)
			if len(notes) != 1 {
				t.Errorf("%d notifications for %s, want 1: %+v", len(notes), name, notes)
				continue
			}
			if got := notes[0].alertnames(); len(got) != 1 || got[0] != want {
				t.Errorf("the notification for %s holds %v, want %s alone", name, got, want)
			}
		}
		t.Logf("notifications: %s %v, %s %v", prod.Name, len(sink.of(prod.Name)), dev.Name, len(sink.of(dev.Name)))
	})

	t.Run("the README's example: a destination cluster down holds back its apps' alerts", func(t *testing.T) {
		sink := &webhookSink{}
		hook := httptest.NewServer(sink)
		t.Cleanup(hook.Close)
		am := env.StartAlertmanagerWith(env.Dir("alertmanager-readme-cluster"), readmeConfig(t, hook.URL))
		// CrowsnestClusterDown of prod's cluster, as Prometheus posts it,
		// before the apps' alerts.
		am.post(t, map[string]string{"alertname": "CrowsnestClusterDown", "dest_cluster": "prod-eu", "dest_server": "https://prod-eu.example.com:6443", "severity": "warning"})
		startPager(t, am.URL, []crowsnestrules.AppState{prod, dev})
		ctx := t.Context()
		// Every alert of prod's app is inhibited (its failed sync too);
		// the dev app, in another cluster, is not.
		eventually(t, signalTimeout, func() error {
			return am.expectInhibited(ctx, map[string]bool{
				"CrowsnestProdSyncFailed/" + prod.Name: true, "CrowsnestProdAppDegraded/" + prod.Name: true, "CrowsnestProdDrift/" + prod.Name: true,
				"CrowsnestSyncFailed/" + dev.Name: false,
			})
		})
		time.Sleep(5 * time.Second) // two group intervals: a notification would have come
		if notes := sink.of(prod.Name); len(notes) != 0 {
			t.Errorf("%d notifications for %s with its cluster down, want none: %+v", len(notes), prod.Name, notes)
		}
		if notes := sink.of(dev.Name); len(notes) != 1 {
			t.Errorf("%d notifications for %s, want 1: %+v", len(notes), dev.Name, notes)
		}
	})

	t.Run("kube-prometheus-stack's default inhibition: a prod page silences no dev warning", func(t *testing.T) {
		am := env.StartAlertmanagerWith(env.Dir("alertmanager-kps"), `route:
  receiver: sink
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: sink
`+kubePrometheusStackInhibitRules)
		startPager(t, am.URL, []crowsnestrules.AppState{prod, dev})
		ctx := t.Context()
		// The control: one alertname and namespace at both severities,
		// posted as Prometheus would.
		post := func(name, severity string) {
			am.post(t, map[string]string{"alertname": "ControlAlert", "namespace": argoCDNamespace, "name": name, "severity": severity})
		}
		post("control-prod", "critical")
		post("control-dev", "warning")
		eventually(t, signalTimeout, func() error {
			all, err := am.active(ctx, true)
			if err != nil {
				return err
			}
			state := map[string]bool{} // alertname/name: inhibited
			for _, a := range all {
				state[a.Labels["alertname"]+"/"+a.Labels["name"]] = len(a.Status.InhibitedBy) > 0
			}
			want := map[string]bool{
				"CrowsnestProdSyncFailed/" + prod.Name: false, "CrowsnestSyncFailed/" + dev.Name: false,
				"ControlAlert/control-prod": false, "ControlAlert/control-dev": true,
			}
			for k, v := range want {
				if got, ok := state[k]; !ok || got != v {
					return fmt.Errorf("%s: held %v, inhibited %v; want inhibited %v (all: %v)", k, ok, got, v, state)
				}
			}
			return nil
		})
	})
}

// post posts one alert of labels to am, as Prometheus would.
func (am *Alertmanager) post(t *testing.T, labels map[string]string) {
	t.Helper()
	body, err := json.Marshal([]map[string]any{{"labels": labels}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post %v: %s", labels, resp.Status)
	}
}

// expectInhibited compares the app alerts am holds (those with a name
// label), by alertname/name, and whether each is inhibited, with want.
func (am *Alertmanager) expectInhibited(ctx context.Context, want map[string]bool) error {
	all, err := am.active(ctx, true)
	if err != nil {
		return err
	}
	got := map[string]bool{}
	for _, a := range all {
		if a.Labels["name"] != "" {
			got[a.Labels["alertname"]+"/"+a.Labels["name"]] = len(a.Status.InhibitedBy) > 0
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("alertname/name: inhibited: %v, want %v", got, want)
	}
	return nil
}
