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

// testYAML is one test group: input series and the checks on them.
type testYAML struct {
	Interval  string       `yaml:"interval"`
	Input     []seriesYAML `yaml:"input_series"`
	AlertTest []ruleTest   `yaml:"alert_rule_test"`
}
