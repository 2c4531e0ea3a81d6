package exposition

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/promslog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/health"
	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// FuzzRender renders an Application whose strings are anything at all
// (invalid UTF-8, quotes, backslashes, newlines, very long) through the
// outputs /metrics is made of, wired as cmd/exporter wires them, and
// scrapes it in both formats. Each scrape must parse; every label value
// must be valid UTF-8 and at most model.MaxLabelValueBytes; and the app's
// identity labels must read back as model.LabelValue made them.
//
// The view and the operation are built here as the tracker builds them
// (it copies these strings from the Application unchanged), so that every
// label-carrying series gets a fuzzed value.
func FuzzRender(f *testing.F) {
	f.Add("web", "argocd", "shop", "https://git.example.com/deploy.git", "main", "Synced", "Healthy", "ok", "https://kubernetes.default.svc", "web", "prod", "apps", uint8(0))
	f.Fuzz(func(t *testing.T, name, namespace, project, repo, revision, syncStatus, healthStatus, message, destServer, destNamespace, env, extra string, long uint8) {
		fields := []*string{&name, &namespace, &project, &repo, &revision, &syncStatus, &healthStatus, &message, &destServer, &destNamespace, &env, &extra}
		// long picks a field to blow up past the cap, so every run of
		// the fuzzer tries the cut on each label in turn.
		if p := fields[int(long)%len(fields)]; long >= uint8(len(fields)) && *p != "" {
			*p = strings.Repeat(*p, model.MaxLabelValueBytes/len(*p)+1)
		}
		app, view, op := fuzzedApp(name, namespace, project, repo, revision, syncStatus, healthStatus, message, destServer, destNamespace, env, extra)
		handler := metricsOf(t, view, prodView(extra), op)

		want := map[string]string{
			"namespace": model.LabelValue(namespace), "name": model.LabelValue(name), "project": model.LabelValue(project), "env": model.LabelValue(env),
			"repo": model.LabelValue(StripCredentials(repo)), "path": model.LabelValue(extra), "target_revision": model.LabelValue(revision),
			"dest_server": model.LabelValue(destServer), "dest_namespace": model.LabelValue(destNamespace),
		}
		if destServer != "" { // an empty label is none
			want["dest_cluster"] = model.LabelValue(destServer)
		}
		for _, accept := range []string{"text/plain", "application/openmetrics-text; version=1.0.0"} {
			families := scrape(t, handler, accept)
			info := families["crowsnest_app_info"]
			found := false
			for _, m := range info.GetMetric() {
				labels := labelMap(m)
				if labels["name"] != want["name"] || labels["namespace"] != want["namespace"] {
					continue // the other app
				}
				found = true
				for k, v := range want {
					if labels[k] != v {
						t.Errorf("%s: crowsnest_app_info label %s = %q, want %q", accept, k, trim(labels[k]), trim(v))
					}
				}
			}
			if !found {
				t.Errorf("%s: no crowsnest_app_info series of %s/%s", accept, trim(app.Namespace), trim(app.Name))
			}
		}
	})
}

// TestOpenMetricsScrape parses the OpenMetrics scrape of an app with
// quotes, backslashes and newlines in its strings with expfmt's own
// OpenMetrics parser, which FuzzRender cannot afford (see scrape).
func TestOpenMetricsScrape(t *testing.T) {
	_, view, op := fuzzedApp(`we"b`, `argo\cd`, "sh\nop", `https://u:p"w@git.example.com/a\b.git`, "v1\\n\"2\"", `"`, `\`,
		"line1\nline2", `https://x/"}`, "\n", `pr"od\`, "a\\\"b\nc # {x=\"y\"} 1")
	h := metricsOf(t, view, prodView("g"), op)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	families, err := decodeAll(rec.Body.String(), expfmt.ResponseFormat(rec.Header()))
	if err != nil {
		t.Fatalf("OpenMetrics scrape does not parse: %v\n%s", err, rec.Body.String())
	}
	if info := families["crowsnest_app_info"]; len(info.GetMetric()) != 2 || len(families["crowsnest_sync_duration_seconds"].GetMetric()) != 1 {
		t.Errorf("want 2 crowsnest_app_info series and 1 crowsnest_sync_duration_seconds, got %v", families)
	}
}

// metricsOf returns the /metrics handler of the apps of views, one of
// which finished op, with the outputs wired as cmd/exporter wires them.
func metricsOf(t *testing.T, view, other *model.AppView, op *model.Operation) http.Handler {
	t.Helper()
	reg := prometheus.NewRegistry()
	store := NewStore(true)
	promotion := NewPromotion(func() time.Time { return t0.Add(time.Hour) })
	reg.MustRegister(promotion)
	durations := NewDurations(reg)
	for _, v := range []*model.AppView{view, other} {
		store.SetApp(v)
		promotion.SetApp(v)
	}
	durations.Finished(op)
	store.Finished(op)
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	return NewMetricsHandler(reg, store, promslog.NewNopLogger())
}

// t0 is when the fuzzed app's last operation started.
var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// fuzzedApp returns an Application with the given strings in every field
// crowsnest reads, its view and its last finished operation.
func fuzzedApp(name, namespace, project, repo, revision, syncStatus, healthStatus, message, destServer, destNamespace, env, extra string) (*v1alpha1.Application, *model.AppView, *model.Operation) {
	started, finished := metav1.NewTime(t0), metav1.NewTime(t0.Add(90*time.Second))
	app := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, UID: types.UID("uid-fuzz"), Labels: map[string]string{"env": env}},
		Spec: v1alpha1.ApplicationSpec{
			Project: project,
			Source:  &v1alpha1.ApplicationSource{RepoURL: repo, Path: extra, TargetRevision: revision, Ref: extra},
			Destination: v1alpha1.ApplicationDestination{
				Server: destServer, Name: destServer, Namespace: destNamespace,
			},
			SyncPolicy: &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{Prune: new(true)}},
		},
		Status: v1alpha1.ApplicationStatus{
			Sync:       v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCode(syncStatus), Revision: revision},
			Health:     v1alpha1.AppHealthStatus{Status: health.HealthStatusCode(healthStatus), Message: message},
			Conditions: []v1alpha1.ApplicationCondition{{Type: extra}},
			Resources: []v1alpha1.ResourceStatus{
				{Group: extra, Kind: extra, Name: name, Status: v1alpha1.SyncStatusCodeOutOfSync},
				{Group: destNamespace, Kind: syncStatus, Name: name, Status: v1alpha1.SyncStatusCodeOutOfSync},
			},
			History: v1alpha1.RevisionHistories{{ID: 1, Revision: revision, DeployedAt: finished, DeployStartedAt: &started}},
			OperationState: &v1alpha1.OperationState{
				Phase: synccommon.OperationFailed, Message: message, StartedAt: started, FinishedAt: &finished,
				SyncResult: &v1alpha1.SyncOperationResult{Revision: revision, Resources: v1alpha1.ResourceResults{
					{Group: extra, Kind: extra, Namespace: destNamespace, Name: name, Message: message, SyncPhase: synccommon.SyncPhase(extra)},
				}},
			},
		},
	}
	waves := []model.WaveTiming{{Phase: extra, Wave: -1, Start: t0, End: t0.Add(time.Minute)}}
	truth := true
	view := &model.AppView{
		App: app, Env: env, Dest: destServer, DriftSince: t0, LastWaves: waves,
		Policies:  []model.PolicyResult{{Policy: extra, Violated: true}},
		Promotion: &model.Promotion{Group: extra, Order: promotionOrder(env)},
		Workloads: []model.Workload{{
			Kind: extra, Namespace: destNamespace, Name: name, Replicas: map[string]int64{"desired": 2, "ready": 1},
			RolloutInProgress: true, JobStatus: "Failed", CertReady: &truth, CertExpiry: t0.Add(24 * time.Hour),
		}},
		Phase: model.PhasePending, PendingSince: t0,
		LastFinished:   &model.FinishedOperation{Result: model.ResultFailed, Started: t0, Finished: finished.Time},
		LastSuccessful: t0,
	}
	view.Syncs[model.ResultIndex(model.ResultFailed)] = 1
	op := &model.Operation{
		UID: string(app.UID), Namespace: namespace, Name: name, Project: project, Env: env,
		Revision: revision, Result: model.ResultFailed, Message: message,
		StartedAt: t0, FinishedAt: finished.Time, TimedWaves: waves,
	}
	return app, view, op
}

// promotionOrder is env then prod, without a duplicate (the config refuses
// one).
func promotionOrder(env string) []string {
	if env == "prod" {
		return []string{"prod"}
	}
	return []string{env, "prod"}
}

// prodView is a second app, in prod, of the fuzzed app's promotion group:
// with it the lag series is rendered too.
func prodView(group string) *model.AppView {
	app := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "prod-app", Namespace: "argocd", UID: types.UID("uid-prod")},
		Status: v1alpha1.ApplicationStatus{History: v1alpha1.RevisionHistories{
			{ID: 1, Revision: "r1", DeployedAt: metav1.NewTime(t0.Add(-time.Hour))},
		}},
	}
	return &model.AppView{App: app, Env: "prod", Promotion: &model.Promotion{Group: group, Order: []string{"prod"}}}
}

// scrape gets /metrics in the format accept asks for, parses all of it and
// checks every label value. An OpenMetrics scrape is checked for what
// OpenMetrics adds to the text format and then parsed as text: expfmt's
// OpenMetrics parser takes about a second a scrape, and minutes for one
// with long label values (TestOpenMetricsScrape runs it on one).
func scrape(t *testing.T, h http.Handler, accept string) map[string]*dto.MetricFamily {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", accept)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	format := expfmt.ResponseFormat(rec.Header())
	body := rec.Body.String()
	if want := strings.Contains(accept, "openmetrics"); (format.FormatType() == expfmt.TypeOpenMetrics) != want {
		t.Fatalf("Accept %q: got Content-Type %q", accept, rec.Header().Get("Content-Type"))
	}
	text := body
	if format.FormatType() == expfmt.TypeOpenMetrics {
		var err error
		if text, err = openMetricsAsText(body); err != nil {
			t.Fatalf("OpenMetrics scrape: %v\n%s", err, trim(body))
		}
	}
	families, err := decodeAll(text, expfmt.NewFormat(expfmt.TypeTextPlain))
	if err != nil {
		t.Fatalf("%s scrape does not parse: %v\n%s", format, err, trim(text))
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); !utf8.ValidString(v) || len(v) > model.MaxLabelValueBytes {
					t.Errorf("%s: %s label %s: %d bytes, valid UTF-8 %v: %q", format, mf.GetName(), l.GetName(), len(v), utf8.ValidString(v), trim(v))
				}
			}
		}
	}
	if len(families) == 0 {
		t.Fatalf("%s scrape has no metric family", format)
	}
	return families
}

// decodeAll parses a whole exposition.
func decodeAll(body string, format expfmt.Format) (map[string]*dto.MetricFamily, error) {
	dec := expfmt.NewDecoder(strings.NewReader(body), format)
	families := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if err == io.EOF {
			return families, nil
		}
		if err != nil {
			return nil, err
		}
		families[mf.GetName()] = mf
	}
}

// openMetricsAsText checks what OpenMetrics 1.0 adds to the text format
// (a HELP text escapes double quotes; one "# EOF" ends the exposition) and
// returns the exposition in the text format: HELP lines dropped, counter
// families named as their samples are, exemplars cut off.
func openMetricsAsText(body string) (string, error) {
	rest, ok := strings.CutSuffix(body, "# EOF\n")
	if !ok {
		return "", errors.New(`does not end with "# EOF"`)
	}
	var out strings.Builder
	for i, line := range strings.SplitAfter(rest, "\n") {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && i == strings.Count(rest, "\n"):
			// after the last newline
		case strings.HasPrefix(line, "# HELP "):
			_, help, _ := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			if err := checkOpenMetricsEscapes(help); err != nil {
				return "", fmt.Errorf("line %d: HELP: %w", i+1, err)
			}
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, _ := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			if typ == "counter" {
				name += "_total"
			}
			fmt.Fprintf(&out, "# TYPE %s %s\n", name, typ)
		case strings.HasPrefix(line, "#"):
			return "", fmt.Errorf("line %d: unexpected comment %q", i+1, trim(line))
		default:
			out.WriteString(withoutExemplar(line))
			out.WriteByte('\n')
		}
	}
	return out.String(), nil
}

// checkOpenMetricsEscapes checks an OpenMetrics escaped-string: valid
// UTF-8, no bare double quote, a backslash only before \, " or n.
func checkOpenMetricsEscapes(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			return fmt.Errorf("bare double quote at byte %d", i)
		case '\\':
			if i+1 == len(s) || !strings.ContainsRune(`\"n`, rune(s[i+1])) {
				return fmt.Errorf("bad escape at byte %d", i)
			}
			i++
		}
	}
	return nil
}

// withoutExemplar cuts the exemplar (" # {...} value") off a sample line.
func withoutExemplar(line string) string {
	end := labelSetEnd(line)
	if i := strings.Index(line[end:], " # "); i >= 0 {
		return line[:end+i]
	}
	return line
}

// labelSetEnd returns where a sample line's label set ends (its name's end
// without one): a label value may hold " # ".
func labelSetEnd(line string) int {
	i := strings.IndexAny(line, "{ ")
	if i < 0 || line[i] != '{' {
		return max(i, 0)
	}
	quoted := false
	for i++; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '}' && !quoted:
			return i + 1
		}
	}
	return len(line)
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// trim shortens s for a failure message.
func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
