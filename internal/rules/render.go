package rules

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// RulesFile is where the rendered rules are checked in, relative to the
// repository root.
const RulesFile = "alerts/crowsnest.rules.yaml"

// Render returns the Prometheus rule file of the alerts, for durations
// scaled by forScale.
func Render(alerts []Alert, forScale float64) ([]byte, error) {
	type group struct {
		Name  string `yaml:"name"`
		Rules []Rule `yaml:"rules"`
	}
	doc := struct {
		Groups []group `yaml:"groups"`
	}{Groups: []group{{Name: "crowsnest", Rules: Rules(alerts, forScale)}}}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated from internal/rules by `go test ./internal/rules -update`. DO NOT EDIT.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("rendering rules: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rendering rules: %w", err)
	}
	return b.Bytes(), nil
}
