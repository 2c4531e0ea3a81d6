package dashboards

import (
	"slices"
	"strings"
	"testing"
)

// logVars are the values of the variables the log queries are translated
// with: a multi-value env, All projects, one app.
func logVars() map[string]string {
	return map[string]string{"env": "dev|stage", "project": ".*", "app": "dev-backend", "namespace": "argocd", "dest_cluster": "in-cluster"}
}

// Every LogQL query of the dashboards translates into LogsQL; the
// translations are checked whole (VictoriaLogs v1.52.1's parser accepts
// each, and the e2e suite runs them on a real VictoriaLogs).
func TestLogQueriesTranslate(t *testing.T) {
	qs, err := LogQueries(".")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(qs, logQueries(loadAll(t))) {
		t.Error("LogQueries(\".\") differs from the queries of the builders: go test ./dashboards -update")
	}
	want := map[string]string{
		"crowsnest-app / Recent facts":                    `{job="crowsnest",env=~"dev|stage",project=~".*",dest_cluster=~"in-cluster"} | unpack_json | filter app:="argocd/dev-backend"`,
		"crowsnest-app / Fact log":                        `{job="crowsnest",env=~"dev|stage",project=~".*",dest_cluster=~"in-cluster"} | unpack_json | filter app:="argocd/dev-backend"`,
		"crowsnest-dora / Recent prod deployments":        `{job="crowsnest",event="deployment_finished",env="prod",project=~".*"} | unpack_json`,
		"crowsnest-dora / annotation Failed changes":      `{job="crowsnest",event="change_failed",env=~"dev|stage",project=~".*"} | unpack_json`,
		"crowsnest-fleet / Recent failed syncs and drift": `{job="crowsnest",env=~"dev|stage",project=~".*",event=~"sync_finished|drift_began|drift_ended"} | unpack_json | filter result:~"^(?:Failed|Error|)$"`,
	}
	seen := map[string]bool{}
	for _, q := range qs {
		key := q.Dashboard + " / " + q.Panel
		seen[key] = true
		got, err := LogsQL(q.Expr, logVars())
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if got != want[key] {
			t.Errorf("%s:\n\tLogsQL %s\n\twant   %s", q, got, want[key])
		}
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("no log query %s", key)
		}
	}
}

func TestLogsQL(t *testing.T) {
	for in, want := range map[string]string{
		`{job="crowsnest"}`:                                      `{job="crowsnest"}`,
		`{job = "crowsnest", env=~"$env"} | json`:                `{job="crowsnest",env=~"dev|stage"} | unpack_json`,
		`{job="x", env!="prod", project!~"a|b"}`:                 `{job="x",env!="prod",project!~"a|b"}`,
		`{job="x"} | json | trace_id="abc"`:                      `{job="x"} | unpack_json | filter trace_id:="abc"`,
		`{job="x"} | json | trace_id=="abc"`:                     `{job="x"} | unpack_json | filter trace_id:="abc"`,
		`{job="x"} | json | result=~"Failed|Error"`:              `{job="x"} | unpack_json | filter result:~"^(?:Failed|Error)$"`,
		`{job="x"} | json | result!="Succeeded"`:                 `{job="x"} | unpack_json | filter -result:="Succeeded"`,
		`{job="x"} | json | result!~"Succ.*" | app="a/b"`:        `{job="x"} | unpack_json | filter -result:~"^(?:Succ.*)$" | filter app:="a/b"`,
		"{job=`x`} | json | message=~`a\\.b \"q\"`":              `{job="x"} | unpack_json | filter message:~"^(?:a\\.b \"q\")$"`,
		`{job="x"} | json | app=~".+/$app"`:                      `{job="x"} | unpack_json | filter app:~"^(?:.+/dev-backend)$"`,
		`{job="x"} | event="sync_finished" | json`:               `{job="x"} | filter event:="sync_finished" | unpack_json`,
		`{job="x", env=~"${env:regex}"} | json | app=~"[[app]]"`: `{job="x",env=~"dev|stage"} | unpack_json | filter app:~"^(?:dev-backend)$"`,
	} {
		got, err := LogsQL(in, logVars())
		if err != nil {
			t.Errorf("LogsQL(%s): %v", in, err)
			continue
		}
		if got != want {
			t.Errorf("LogsQL(%s)\n\t= %s\n\twant %s", in, got, want)
		}
	}
}

// What LogsQL cannot translate is an error that says what.
func TestLogsQLErrors(t *testing.T) {
	for in, want := range map[string]string{
		`{job="x"} | logfmt`:                            "| logfmt",
		`{job="x"} |= "error"`:                          "line filter |=",
		`{job="x"} != "error"`:                          "line filter !=",
		`{job="x"} |~ "err.*"`:                          "line filter |~",
		`{job="x"} | json | line_format "{{.app}}"`:     "| line_format",
		"{job=\"x\"} | json | label_format a=`{{.b}}`":  "| label_format",
		`{job="x"} | json | a="1" or b="2"`:             "not translated",
		`{job="x"} | json | a="1", b="2"`:               "not translated",
		`{job="x"} | json | duration_seconds > 10`:      "only =, =~, != and !~",
		`{job="x"} | json | __error__=""`:               "internal label",
		`{job="x"} | json lead="lead_time_seconds"`:     "| json",
		`rate({job="x"}[5m])`:                           "metric queries",
		`sum by (env) (count_over_time({job="x"}[5m]))`: "metric queries",
		`{job>"x"}`:                            "matcher operator",
		`{job="x"`:                             "the query ends",
		`{job="x} | json`:                      "unterminated string",
		`job="x"`:                              "metric queries",
		`{job="x"} | json | app=~".+/$app" | `: "the query ends",
	} {
		_, err := LogsQL(in, logVars())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LogsQL(%s): error %v, want one saying %q", in, err, want)
		}
	}
}
