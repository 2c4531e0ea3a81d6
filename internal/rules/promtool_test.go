package rules

// The shapes of a promtool rule unit test file ("promtool test rules"),
// written by the tests that render alerts/tests/.

// expAlert is one alert a rule test expects firing.
type expAlert struct {
	Labels      map[string]string `yaml:"exp_labels"`
	Annotations map[string]string `yaml:"exp_annotations"`
}

// ruleTest checks which alerts of one name fire at one time.
type ruleTest struct {
	EvalTime  string     `yaml:"eval_time"`
	Alertname string     `yaml:"alertname"`
	ExpAlerts []expAlert `yaml:"exp_alerts"`
}

// seriesYAML is one input series and its values.
type seriesYAML struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// expSample is one sample an expression test expects.
type expSample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

// exprTest checks the samples of an expression (a recorded series) at one
// time; no samples expects none.
type exprTest struct {
	Expr       string      `yaml:"expr"`
	EvalTime   string      `yaml:"eval_time"`
	ExpSamples []expSample `yaml:"exp_samples"`
}

// testYAML is one test group: input series and the checks on them.
type testYAML struct {
	Interval  string       `yaml:"interval"`
	Input     []seriesYAML `yaml:"input_series"`
	AlertTest []ruleTest   `yaml:"alert_rule_test,omitempty"`
	ExprTest  []exprTest   `yaml:"promql_expr_test,omitempty"`
}
