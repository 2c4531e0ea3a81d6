// Package promtest holds the shapes of a promtool rule unit test file
// ("promtool test rules"), written by the tests that render alerts/tests/:
// the alert and recording rule tests of internal/rules and the agreement
// test of internal/pager.
package promtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// ExpAlert is one alert a rule test expects firing.
type ExpAlert struct {
	Labels      map[string]string `yaml:"exp_labels"`
	Annotations map[string]string `yaml:"exp_annotations"`
}

// AlertTest checks which alerts of one name fire at one time.
type AlertTest struct {
	EvalTime  string     `yaml:"eval_time"`
	Alertname string     `yaml:"alertname"`
	ExpAlerts []ExpAlert `yaml:"exp_alerts"`
}

// Series is one input series and its values.
type Series struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// ExpSample is one sample an expression test expects.
type ExpSample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

// ExprTest checks the samples of an expression (a recorded series) at one
// time; no samples expects none.
type ExprTest struct {
	Expr       string      `yaml:"expr"`
	EvalTime   string      `yaml:"eval_time"`
	ExpSamples []ExpSample `yaml:"exp_samples"`
}

// Group is one test group: input series and the checks on them.
type Group struct {
	Interval  string      `yaml:"interval"`
	Input     []Series    `yaml:"input_series"`
	AlertTest []AlertTest `yaml:"alert_rule_test,omitempty"`
	ExprTest  []ExprTest  `yaml:"promql_expr_test,omitempty"`
}

// RepoFile is a path relative to the repository root, from a package two
// levels below it (internal/rules, internal/pager).
func RepoFile(rel string) string { return filepath.Join("..", "..", rel) }

// CheckGenerated compares a checked-in generated file (rel, from the
// repository root) with what it must be, or rewrites it when update is
// set (the test's -update flag); pkg names the package whose -update
// writes it.
func CheckGenerated(t testing.TB, pkg, rel string, want []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(RepoFile(rel), want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(RepoFile(rel))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run go test ./%s -update", rel, pkg)
	}
}
