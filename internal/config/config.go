// Package config loads crowsnest's configuration file: the ordered rules that
// put each Argo CD Application into an environment (dev, stage, prod, ...).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

// DefaultEnv is the environment of an Application that no rule matches.
const DefaultEnv = "unknown"

// DefaultProdEnvironments is the environment that pages by default: the
// deployment model's prod.
const DefaultProdEnvironments = "prod"

// Config is the parsed configuration file.
type Config struct {
	// DefaultEnv names the environment of Applications that no rule matches.
	DefaultEnv string `yaml:"default_env"`
	// Environments are tried in order; the first rule that matches wins.
	Environments []EnvRule `yaml:"environments"`
	// Policies say what the Applications of each environment must look
	// like. Absent: DefaultPolicies (the deployment model's); an empty
	// list checks nothing.
	Policies *[]Policy `yaml:"policies"`
	// Promotion groups apps across environments to show how far each
	// environment trails the one before. Absent: DefaultPromotion.
	Promotion *Promotion `yaml:"promotion"`
	// ProdEnvironments is a regular expression, anchored at both ends,
	// on the environments whose problems page: their failed syncs,
	// degraded apps and live drift are the critical Prod alerts, every
	// other env's warnings. Empty: DefaultProdEnvironments.
	ProdEnvironments string `yaml:"prod_environments"`

	defaults defaults // Policies and Promotion with the defaults filled in
}

// EnvRule assigns Env to every Application that matches all of Match's
// criteria. An empty Match matches everything, which makes a catch-all rule.
type EnvRule struct {
	Env   string `yaml:"env"`
	Match Match  `yaml:"match"`
}

// Match holds the criteria of one rule; all criteria that are set must hold.
type Match struct {
	// Labels must all be present on the Application with these exact values.
	Labels map[string]string `yaml:"labels"`
	// Project is the Application's AppProject (spec.project), exact.
	Project string `yaml:"project"`
	// DestinationNamespace is spec.destination.namespace, exact.
	DestinationNamespace string `yaml:"destination_namespace"`
	// DestinationServer is spec.destination.server or, when the server is
	// not set, spec.destination.name, exact.
	DestinationServer string `yaml:"destination_server"`
	// Name is a regular expression, anchored at both ends, on the
	// Application's name.
	Name *Regexp `yaml:"name"`
}

// Regexp is a regular expression anchored at both ends, as Prometheus
// relabelling regexes are, so "prod" does not match "preprod".
type Regexp struct {
	*regexp.Regexp
	original string
}

// anchored compiles s anchored at both ends, as Prometheus anchors =~.
func anchored(s string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + s + ")$")
}

// UnmarshalYAML compiles the expression and reports the line of a bad one.
func (r *Regexp) UnmarshalYAML(node *yaml.Node) error {
	var s string
	if err := node.Decode(&s); err != nil {
		return err
	}
	re, err := anchored(s)
	if err != nil {
		return &fieldError{line: node.Line, field: "name", msg: fmt.Sprintf("invalid regular expression %q: %v", s, err)}
	}
	r.Regexp, r.original = re, s
	return nil
}

// String returns the expression as written in the file.
func (r *Regexp) String() string { return r.original }

// fieldError is a validation error that knows where in the file it is.
type fieldError struct {
	line  int
	field string
	msg   string
}

func (e *fieldError) Error() string {
	return fmt.Sprintf("line %d: field %s: %s", e.line, e.field, e.msg)
}

// Load reads and validates the file at path. Errors name the file, and the
// line and field where the file says where.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse parses and validates a configuration document. Unknown fields are
// errors: a misspelt key would otherwise silently change an app's env.
func Parse(data []byte) (*Config, error) {
	c := &Config{DefaultEnv: DefaultEnv}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil // an empty file is the default configuration
		}
		return nil, err
	}
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(c); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, fe
		}
		return nil, err
	}
	if err := c.validate(&root); err != nil {
		return nil, err
	}
	return c, nil
}

// validate checks what the YAML decoder cannot; root locates errors.
func (c *Config) validate(root *yaml.Node) error {
	if strings.TrimSpace(c.DefaultEnv) == "" {
		return &fieldError{line: lineOf(root, "default_env"), field: "default_env", msg: "must not be empty"}
	}
	if _, err := anchored(c.ProdEnvironments); err != nil {
		return &fieldError{line: lineOf(root, "prod_environments"), field: "prod_environments", msg: fmt.Sprintf("invalid regular expression %q: %v", c.ProdEnvironments, err)}
	}
	envs := sequenceItems(root, "environments")
	for i, r := range c.Environments {
		line := 0
		if i < len(envs) {
			line = envs[i].Line
			if l := lineOf(envs[i], "env"); l != 0 {
				line = l
			}
		}
		if strings.TrimSpace(r.Env) == "" {
			return &fieldError{line: line, field: fmt.Sprintf("environments[%d].env", i), msg: "must not be empty"}
		}
	}
	if c.Promotion != nil {
		// An env twice in the order would make two lag series of one
		// group, env pair: every scrape would fail on the duplicate.
		_, prom := mappingValue(root, "promotion")
		var items []*yaml.Node
		if prom != nil {
			items = sequenceItems(prom, "order")
		}
		seen := map[string]bool{}
		for i, env := range c.Promotion.Order {
			if seen[env] {
				line := 0
				if i < len(items) {
					line = items[i].Line
				}
				return &fieldError{line: line, field: fmt.Sprintf("promotion.order[%d]", i), msg: fmt.Sprintf("%q is already in the order", env)}
			}
			seen[env] = true
		}
	}
	return nil
}

// mappingValue returns the key and value nodes of key in the mapping n (or
// in the document's top mapping), or nil. It looks through aliases and
// merge keys ("<<") as the decoder does, explicit keys first, so that an
// error points at the line that set the value rather than at line 0.
func mappingValue(n *yaml.Node, key string) (k, v *yaml.Node) {
	n = dealias(n)
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = dealias(n.Content[0])
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch name := n.Content[i]; {
		case name.Value == key:
			return name, dealias(n.Content[i+1])
		case name.Value == "<<" && name.ShortTag() == "!!merge":
			merged = append(merged, n.Content[i+1])
		}
	}
	for _, m := range merged {
		// A merge value is a mapping or a sequence of mappings, the
		// first of which wins.
		if m = dealias(m); m.Kind == yaml.SequenceNode {
			for _, item := range m.Content {
				if k, v := mappingValue(item, key); k != nil {
					return k, v
				}
			}
		} else if k, v := mappingValue(m, key); k != nil {
			return k, v
		}
	}
	return nil, nil
}

// dealias returns the node an alias stands for, or n itself.
func dealias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func lineOf(n *yaml.Node, key string) int {
	if k, _ := mappingValue(n, key); k != nil {
		return k.Line
	}
	return 0
}

func sequenceItems(n *yaml.Node, key string) []*yaml.Node {
	if _, v := mappingValue(n, key); v != nil && v.Kind == yaml.SequenceNode {
		return v.Content
	}
	return nil
}

// Prod returns the regular expression (unanchored source) of the
// environments that page: ProdEnvironments, else DefaultProdEnvironments.
func (c *Config) Prod() string {
	if c.ProdEnvironments == "" {
		return DefaultProdEnvironments
	}
	return c.ProdEnvironments
}

// Env returns the environment of app: the Env of the first matching rule,
// else DefaultEnv.
func (c *Config) Env(app *v1alpha1.Application) string {
	for i := range c.Environments {
		if c.Environments[i].Match.matches(app) {
			return c.Environments[i].Env
		}
	}
	return c.DefaultEnv
}

func (m *Match) matches(app *v1alpha1.Application) bool {
	for k, v := range m.Labels {
		if got, ok := app.Labels[k]; !ok || got != v {
			return false
		}
	}
	if m.Project != "" && app.Spec.Project != m.Project {
		return false
	}
	if m.DestinationNamespace != "" && app.Spec.Destination.Namespace != m.DestinationNamespace {
		return false
	}
	if m.DestinationServer != "" && DestinationServer(app) != m.DestinationServer {
		return false
	}
	if m.Name != nil && m.Name.Regexp != nil && !m.Name.MatchString(app.Name) {
		return false
	}
	return true
}

// DestinationServer is the destination cluster of app: its server URL, or
// its cluster name when the Application names the cluster instead.
func DestinationServer(app *v1alpha1.Application) string {
	if app.Spec.Destination.Server != "" {
		return app.Spec.Destination.Server
	}
	return app.Spec.Destination.Name
}

// Summary says in one line what the configuration makes of the fleet, for
// crowsnest check-config: its environment rules, the default env, the
// environments that page, the policies and the promotion order (defaults
// named as such).
func (c *Config) Summary() string {
	d := c.resolved()
	policies := fmt.Sprintf("%d policies", len(d.policies))
	if c.Policies == nil {
		policies += " (the default ones)"
	}
	promotion := "no promotion order"
	if p := d.promotion; p != nil && len(p.Order) > 0 {
		promotion = "promotion " + strings.Join(p.Order, " > ")
		if c.Promotion == nil {
			promotion += " (the default)"
		}
	}
	return fmt.Sprintf("%d environment rules, default env %q, paging environments %q, %s, %s",
		len(c.Environments), c.DefaultEnv, c.Prod(), policies, promotion)
}
