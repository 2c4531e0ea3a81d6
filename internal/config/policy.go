package config

import (
	"regexp"
	"strings"
	"sync"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Policy is what the Applications of one environment must look like. A
// nil requirement is not checked.
type Policy struct {
	Env string `yaml:"env"`
	// AutoSync, SelfHeal and Prune require automated sync (and its
	// selfHeal and prune) to be on (true) or off (false), as the controller
	// reads it: spec.syncPolicy.automated with enabled: false (v3.1+) is
	// off, and so are its selfHeal and prune.
	AutoSync *bool `yaml:"auto_sync"`
	SelfHeal *bool `yaml:"self_heal"`
	Prune    *bool `yaml:"prune"`
	// ImagesByDigest requires every image the app runs (status.summary.images)
	// to be pinned by digest (name@sha256:...), not by tag.
	ImagesByDigest bool `yaml:"images_by_digest"`
}

// Promotion groups the same service's apps across environments.
type Promotion struct {
	// Order is the promotion path, e.g. [dev, stage, prod].
	Order []string `yaml:"order"`
	// GroupLabel names the Application label whose value is the group; if
	// empty, GroupName's first capture group on the app name is.
	GroupLabel string  `yaml:"group_label"`
	GroupName  *Regexp `yaml:"group_name"`
}

func ptr(b bool) *bool { return &b }

// DefaultPolicies are the deployment model's: prod syncs by hand and runs
// images pinned by digest; dev and stage auto-sync with self-heal and
// prune.
func DefaultPolicies() []Policy {
	return []Policy{
		{Env: "prod", AutoSync: ptr(false), ImagesByDigest: true},
		{Env: "stage", AutoSync: ptr(true), SelfHeal: ptr(true), Prune: ptr(true)},
		{Env: "dev", AutoSync: ptr(true), SelfHeal: ptr(true), Prune: ptr(true)},
	}
}

// DefaultPromotion promotes dev → stage → prod and groups apps named
// <env>-<group>.
func DefaultPromotion() *Promotion {
	return &Promotion{Order: []string{"dev", "stage", "prod"}, GroupName: &Regexp{Regexp: defaultGroupName, original: `(?:dev|stage|prod)-(.+)`}}
}

// defaultGroupName is compiled once: the promotion view asks for the group
// of every app on every scrape. (Read-only after init.)
var defaultGroupName = regexp.MustCompile(`^(?:(?:dev|stage|prod)-(.+))$`)

// defaults are the policies and promotion used when the file sets none,
// built once per Config.
type defaults struct {
	once      sync.Once
	policies  []Policy
	promotion *Promotion
}

func (c *Config) resolved() *defaults {
	c.defaults.once.Do(func() {
		c.defaults.policies = DefaultPolicies()
		if c.Policies != nil {
			c.defaults.policies = *c.Policies
		}
		c.defaults.promotion = c.Promotion
		if c.defaults.promotion == nil {
			c.defaults.promotion = DefaultPromotion()
		}
	})
	return &c.defaults
}

// PolicyResult is one policy checked on one app.
type PolicyResult = model.PolicyResult

// CheckPolicies checks app, in env, against the policies of env; auto is
// the app's automated sync policy (model.AutoSyncOf of its spec, or
// model.RollingSyncPolicy for an app an ApplicationSet's RollingSync syncs).
func (c *Config) CheckPolicies(app *v1alpha1.Application, env string, auto model.AutoSyncPolicy) []PolicyResult {
	var out []PolicyResult
	for _, p := range c.resolved().policies {
		if p.Env != env {
			continue
		}
		check := func(name string, want *bool, got bool) {
			if want != nil {
				out = append(out, PolicyResult{Policy: name, Violated: got != *want})
			}
		}
		check("auto_sync", p.AutoSync, auto.Enabled)
		check("self_heal", p.SelfHeal, auto.SelfHeal)
		check("prune", p.Prune, auto.Prune)
		if p.ImagesByDigest {
			violated := false
			for _, img := range app.Status.Summary.Images {
				if !strings.Contains(img, "@sha256:") {
					violated = true
				}
			}
			out = append(out, PolicyResult{Policy: "images_by_digest", Violated: violated})
		}
		break
	}
	return out
}

// PromotionOf returns the app's promotion group and the order of its
// environments; nil when it is in none.
func (c *Config) PromotionOf(app *v1alpha1.Application) *model.Promotion {
	p, group := c.PromotionGroup(app)
	if group == "" {
		return nil
	}
	return &model.Promotion{Group: group, Order: p.Order}
}

// PromotionGroup returns the promotion config and the group of app, or ""
// when it is in none.
func (c *Config) PromotionGroup(app *v1alpha1.Application) (*Promotion, string) {
	p := c.resolved().promotion
	if p.GroupLabel != "" {
		return p, app.Labels[p.GroupLabel]
	}
	if p.GroupName != nil && p.GroupName.Regexp != nil {
		if m := p.GroupName.FindStringSubmatch(app.Name); len(m) > 1 {
			return p, m[1]
		}
	}
	return p, ""
}
