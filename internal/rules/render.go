package rules

import (
	"bytes"
	"fmt"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"
)

// RulesFile is where the rendered rules are checked in, relative to the
// repository root.
const RulesFile = "alerts/crowsnest.rules.yaml"

// Render returns the Prometheus rule file of the alerts: each of
// AlertGroups with its alerts, then each of RecordingGroups with its
// records and the alerts on them. forScale scales the for durations and
// the groups' intervals (1 for the real thing; tests shorten them). Its
// alerts' dashboard_url is relative and they carry no argocd_url: RulesFile
// is rendered so, and the chart adds its links.
func Render(alerts []Alert, forScale float64) ([]byte, error) {
	return RenderWith(alerts, forScale, Links{})
}

// RenderWith is Render with the alerts' links on links' base URLs.
func RenderWith(alerts []Alert, forScale float64, links Links) ([]byte, error) {
	groups, err := ruleGroups(alerts, forScale, ProdEnv, links)
	if err != nil {
		return nil, err
	}
	doc := struct {
		Groups []ruleGroup `yaml:"groups"`
	}{Groups: groups}
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

// ruleGroup is a group of a Prometheus rule file.
type ruleGroup struct {
	Name     string `yaml:"name" json:"name"`
	Interval string `yaml:"interval,omitempty" json:"interval,omitempty"`
	Rules    []Rule `yaml:"rules" json:"rules"`
}

// ruleGroups are the groups of the rule file: each of AlertGroups with its
// alerts, then each of RecordingGroups with its records and the alerts on
// them, prod naming the environments that page.
func ruleGroups(alerts []Alert, forScale float64, prod string, links Links) ([]ruleGroup, error) {
	type group = ruleGroup
	byGroup := map[string][]Alert{}
	for _, a := range alerts {
		byGroup[a.Group] = append(byGroup[a.Group], a)
	}
	var groups []group
	for _, g := range AlertGroups() {
		if len(byGroup[g.Name]) == 0 {
			continue
		}
		var interval string
		if g.Interval > 0 {
			interval = promDuration(scaleInterval(g.Interval, forScale))
		}
		groups = append(groups, group{Name: g.Name, Interval: interval, Rules: RulesFor(byGroup[g.Name], forScale, prod, links)})
		delete(byGroup, g.Name)
	}
	for _, g := range RecordingGroups() {
		groups = append(groups, group{
			Name:     g.Name,
			Interval: promDuration(scaleInterval(g.Interval, forScale)),
			Rules:    append(g.Rules(), RulesFor(byGroup[g.Name], forScale, prod, links)...),
		})
		delete(byGroup, g.Name)
	}
	for name, as := range byGroup {
		return nil, fmt.Errorf("rendering rules: alert %s names group %q, which is no alert or recording group", as[0].Name, name)
	}
	return groups, nil
}

// scaleInterval is a group's evaluation interval d scaled by forScale, in
// whole milliseconds and at least a second.
func scaleInterval(d time.Duration, forScale float64) time.Duration {
	return max(time.Duration(float64(d)*forScale).Truncate(time.Millisecond), time.Second)
}

var labelRef = regexp.MustCompile(`\{\{ \$labels\.([a-z_]+) \}\}`)

// Expand fills {{ $labels.x }} in an annotation template, as Prometheus
// does for these templates.
func Expand(tmpl string, labels map[string]string) string {
	return labelRef.ReplaceAllStringFunc(tmpl, func(m string) string {
		return labels[labelRef.FindStringSubmatch(m)[1]]
	})
}
