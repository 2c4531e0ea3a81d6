package rules

import (
	"encoding/json"
	"fmt"
	"strings"
)

// MixinDataFile is the data of the Jsonnet mixin (mixin/), relative to the
// repository root: the rule groups of RulesFile as JSON, with placeholders
// that mixin/mixin.libsonnet fills from its _config. The Go definitions
// are the one source: the mixin is rendered from them, and a test renders
// the mixin with go-jsonnet and compares it with RulesFile and the
// dashboards.
const MixinDataFile = "mixin/generated/rules.json"

// The placeholders of the mixin's data.
const (
	// MixinProd stands for the environments that page, in the env
	// matchers (_config.prodEnvironments).
	MixinProd = "@PROD_ENVIRONMENTS@"
	// MixinRunbook stands for the runbook base: "@RUNBOOK@#anchor"
	// becomes _config.runbookURLPattern % anchor.
	MixinRunbook = "@RUNBOOK@"
	// MixinSelector stands for the selector of crowsnest's scrape target,
	// job="crowsnest" (_config.crowsnestSelector).
	MixinSelector = "@CROWSNEST_SELECTOR@"
)

// jobSelector is the selector of crowsnest's scrape target in the rules.
const jobSelector = `job="crowsnest"`

// RenderMixinData returns MixinDataFile's content: the rule groups of the
// rule file (alert groups, then recording groups with the alerts on
// them), their env matchers, runbook URLs and job selector replaced by
// placeholders.
func RenderMixinData(alerts []Alert) ([]byte, error) {
	groups, err := ruleGroups(alerts, 1, MixinProd, Links{})
	if err != nil {
		return nil, err
	}
	for gi := range groups {
		for ri := range groups[gi].Rules {
			r := &groups[gi].Rules[ri]
			if strings.Contains(strings.ReplaceAll(r.Expr, MixinProd, ""), "@") {
				return nil, fmt.Errorf("mixin data: %s: the expression holds @, which the placeholders are made of", r.Alert+r.Record)
			}
			r.Expr = strings.ReplaceAll(r.Expr, jobSelector, MixinSelector)
			if u, ok := r.Annotations["runbook_url"]; ok {
				anchor, found := strings.CutPrefix(u, RunbookURL+"#")
				if !found {
					return nil, fmt.Errorf("mixin data: %s: runbook_url %q not on %s", r.Alert, u, RunbookURL)
				}
				r.Annotations["runbook_url"] = MixinRunbook + "#" + anchor
			}
		}
	}
	b, err := json.MarshalIndent(struct {
		Comment string      `json:"//"`
		Groups  []ruleGroup `json:"groups"`
	}{"Generated from internal/rules by `go test ./internal/rules -update`. DO NOT EDIT.", groups}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("mixin data: %w", err)
	}
	return append(b, '\n'), nil
}
