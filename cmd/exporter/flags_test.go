package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/crowsnest/crowsnest/internal/collect/source"
	"github.com/crowsnest/crowsnest/internal/daemon"
)

// Every serve flag lands in its field of daemon.Options: the chart's
// "all on" command line, each value different from its default.
func TestFlagsParseIntoOptions(t *testing.T) {
	c := newCLI(nil, nil)
	if _, err := c.app.Parse([]string{
		"--kubeconfig=/kube/config", "--namespaces=argocd,team-a", "--namespaces=team-b",
		"--config.file=/etc/crowsnest.yml", "--web.telemetry-path=/m", "--web.enable-lifecycle",
		"--web.read-header-timeout=1s", "--web.read-timeout=2s", "--web.write-timeout=3s", "--web.idle-timeout=4s",
		"--source=argocd-api", "--replay.file=/rec.jsonl", "--replay.speed=3",
		"--argocd.server=argocd:443", "--argocd.token-file=/token", "--argocd.ca-file=/ca.crt",
		"--argocd.plaintext", "--argocd.insecure", "--argocd.grpc-web", "--argocd.resync-period=7m",
		"--argocd.url=https://argocd.example.com", "--argocd.sync-wave-delay=3s", "--grafana.url=https://grafana.example.com",
		"--metrics.per-app-histograms", "--metrics.app-labels-allowlist=team, app.kubernetes.io/part-of",
		"--runtime.gomemlimit-ratio=0.5", "--runtime.gogc=75",
		"--traces.exporter=otlp", "--traces.otlp.endpoint=https://tempo:4317", "--traces.otlp.protocol=grpc",
		"--workloads.kinds=deployments,jobs", "--workloads.cluster=hub",
		"--argocd.tracking-method=label", "--argocd.instance-label-key=example.com/app", "--argocd.installation-id=hub-a",
		"--leader-elect", "--leader-elect.namespace=obs", "--leader-elect.lease-name=cn",
		"--leader-elect.lease-duration=20s", "--leader-elect.retry-period=2s",
		"--checkpoint.configmap=cn-state", "--checkpoint.interval=45s", "--shard=1", "--total-shards=3",
		"--loki.url=http://loki:3100", "--loki.username=u", "--loki.password-file=/pw", "--loki.bearer-token-file=/bt",
		"--loki.tenant=t", "--loki.job=j", "--loki.buffer-size=5", "--loki.timeout=6s", "--loki.max-line-bytes=2048", "--loki.max-retries=7",
		"--alertmanager.url=http://am1:9093", "--alertmanager.url=http://am2:9093",
		"--alertmanager.evaluation-interval=2s", "--alertmanager.resend-interval=2m", "--alertmanager.timeout=9s",
		"--alertmanager.external-label=cluster=ci", "--alertmanager.external-label=prometheus=monitoring/k",
		"--alertmanager.runbook-url=https://wiki/rb", "--alertmanager.for-scale=0.5",
		"--deployments.failure-window=2h", "--deployments.commit-timeout=10s",
		"--cloudevents.url=http://events:8080", "--cloudevents.source=/cn/ci", "--cloudevents.buffer-size=500",
	}); err != nil {
		t.Fatal(err)
	}
	got := c.options()
	got.Web = nil // exporter-toolkit's own flags
	want := daemon.Options{
		Kubeconfig: "/kube/config", Namespaces: []string{"argocd", "team-a", "team-b"},
		ConfigFile: "/etc/crowsnest.yml", MetricsPath: "/m", Lifecycle: true,
		HTTP:   daemon.HTTPTimeouts{ReadHeader: time.Second, Read: 2 * time.Second, Write: 3 * time.Second, Idle: 4 * time.Second},
		Source: "argocd-api", Replay: daemon.ReplayOptions{File: "/rec.jsonl", Speed: 3},
		ArgoCD: daemon.ArgoCDOptions{Server: "argocd:443", TokenFile: "/token", CAFile: "/ca.crt", PlainText: true, Insecure: true, GRPCWeb: true,
			ResyncPeriod: 7 * time.Minute, URL: "https://argocd.example.com", SyncWaveDelay: 3 * time.Second,
			Tracking: source.Tracking{Method: "label", LabelKey: "example.com/app", InstallationID: "hub-a"}},
		GrafanaURL: "https://grafana.example.com", PerAppHistograms: true, AppLabels: []string{"team", "app.kubernetes.io/part-of"},
		MemLimitRatio: 0.5, GCPercent: 75,
		Traces:        daemon.TraceOptions{Exporter: "otlp", Endpoint: "https://tempo:4317", Protocol: "grpc"},
		WorkloadKinds: "deployments,jobs", WorkloadsCluster: "hub",
		Leader:     daemon.LeaderOptions{Elect: true, Namespace: "obs", LeaseName: "cn", LeaseDuration: 20 * time.Second, RetryPeriod: 2 * time.Second},
		Checkpoint: daemon.CheckpointOptions{ConfigMap: "cn-state", Interval: 45 * time.Second},
		Shard:      daemon.ShardOptions{Index: "1", Total: 3},
		Loki: daemon.LokiOptions{URL: "http://loki:3100", Username: "u", PasswordFile: "/pw", BearerTokenFile: "/bt", Tenant: "t", Job: "j",
			BufferSize: 5, MaxRetries: 7, MaxLineBytes: 2048, Timeout: 6 * time.Second},
		Alertmanager: daemon.AlertmanagerOptions{URLs: []string{"http://am1:9093", "http://am2:9093"},
			Interval: 2 * time.Second, Resend: 2 * time.Minute, Timeout: 9 * time.Second,
			ExternalLabels: map[string]string{"cluster": "ci", "prometheus": "monitoring/k"}, RunbookURL: "https://wiki/rb", ForScale: 0.5},
		Deployments: daemon.DeploymentOptions{FailureWindow: 2 * time.Hour, CommitTimeout: 10 * time.Second},
		CloudEvents: daemon.CloudEventsOptions{URL: "http://events:8080", Source: "/cn/ci", BufferSize: 500},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("options\n got %+v\nwant %+v", got, want)
	}
}

// --demo is resolved into options once: the built-in recording replayed at
// 10× (or --replay.speed), the demo's configuration, traces to stdout
// unless told otherwise, nothing read from Argo CD.
func TestDemoResolvedIntoOptions(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		speed float64
	}{
		{[]string{"--demo", "--argocd.server=argocd:443"}, 10},
		{[]string{"--demo", "--replay.speed=0"}, 0},
	} {
		c := newCLI(nil, nil)
		if _, err := c.app.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		o := c.options()
		if o.Source != daemon.SourceReplay || len(o.Replay.Data) == 0 || o.Replay.Speed != tc.speed ||
			len(o.BuiltinConfig) == 0 || o.Traces.Default != "file" || o.Traces.File != daemon.DemoTracesFile() || o.ArgoCD.Server != "" {
			t.Errorf("%v: source %q, %d bytes at speed %v, config %d bytes, traces %q, server %q",
				tc.args, o.Source, len(o.Replay.Data), o.Replay.Speed, len(o.BuiltinConfig), o.Traces.Default, o.ArgoCD.Server)
		}
	}
}
