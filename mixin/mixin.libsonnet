// crowsnest's monitoring mixin: the alerts, recording rules and Grafana
// dashboards of github.com/crowsnest/crowsnest, for teams that run
// kubernetes-mixin and argo-cd-mixin.
//
//   local crowsnest = (import 'crowsnest/mixin.libsonnet') + {
//     _config+:: { prodEnvironments: 'production|prod-.*' },
//   };
//   crowsnest.prometheusAlerts, crowsnest.prometheusRules, crowsnest.grafanaDashboards
//
// One source of truth: the Go definitions in internal/rules and dashboards/
// generate generated/rules.json and dashboards/*.json, and a test renders
// this mixin with go-jsonnet and checks it yields exactly the repository's
// alerts/crowsnest.rules.yaml and dashboards. prometheusRules holds the
// recording groups with the alerts on their records, as the rule file has
// them (Prometheus evaluates a group's rules in order); prometheusAlerts the
// other groups.
local data = import 'generated/rules.json';

// replaceAll applies f to every string of x.
local replaceAll(x, f) =
  if std.isString(x) then f(x)
  else if std.isArray(x) then [replaceAll(e, f) for e in x]
  else if std.isObject(x) then { [k]: replaceAll(x[k], f) for k in std.objectFields(x) }
  else x;

{
  _config+:: {
    // The environments whose problems page (critical) rather than warn: a
    // regular expression, anchored as Prometheus' =~ anchors it; 'prod' is
    // matched by equality. The same as crowsnest's prod_environments.
    prodEnvironments: 'prod',
    // The selector of crowsnest's scrape targets (CrowsnestDown).
    crowsnestSelector: 'job="crowsnest"',
    // Each alert's runbook_url: %s is its anchor, the alert's name in lower
    // case (docs/runbook.md's sections).
    runbookURLPattern: 'https://github.com/crowsnest/crowsnest/blob/main/docs/runbook.md#%s',
  },

  local config = $._config,
  local prod = std.escapeStringJson(config.prodEnvironments),
  local matchers =
    if config.prodEnvironments == 'prod'
    then { eq: 'env="prod"', ne: 'env!="prod"' }
    else { eq: 'env=~' + prod, ne: 'env!~' + prod },
  local runbook = '@RUNBOOK@#',
  local fill(s) =
    if std.startsWith(s, runbook)
    then config.runbookURLPattern % std.substr(s, std.length(runbook), std.length(s))
    else std.strReplace(std.strReplace(std.strReplace(s,
      'env=~"@PROD_ENVIRONMENTS@"', matchers.eq),
      'env!~"@PROD_ENVIRONMENTS@"', matchers.ne),
      '@CROWSNEST_SELECTOR@', config.crowsnestSelector),
  local groups = replaceAll(data.groups, fill),
  local recording(g) = std.length([r for r in g.rules if std.objectHas(r, 'record')]) > 0,

  prometheusAlerts+:: { groups+: [g for g in groups if !recording(g)] },
  prometheusRules+:: { groups+: [g for g in groups if recording(g)] },

  // The prod panels' queries follow prodEnvironments, as the Helm chart's
  // copies follow its config.prod_environments.
  local dashboard(text) =
    if config.prodEnvironments == 'prod' then std.parseJson(text)
    else replaceAll(std.parseJson(text), function(s) std.strReplace(s, 'env="prod"', 'env=~' + prod)),
  grafanaDashboards+:: {
    'crowsnest-app.json': dashboard(importstr 'dashboards/crowsnest-app.json'),
    'crowsnest-dora.json': dashboard(importstr 'dashboards/crowsnest-dora.json'),
    'crowsnest-fleet.json': dashboard(importstr 'dashboards/crowsnest-fleet.json'),
  },
}
