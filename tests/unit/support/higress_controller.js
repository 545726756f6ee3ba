// The plugin configuration Higress's controller writes for a WasmPlugin (higress-group/higress
// pkg/ingress/config/ingress_config.go, convertIstioWasmPlugin): defaultConfig's fields at the top
// (none with defaultConfigDisable), each matchRule's `config` plus `_match_route_` (from `ingress`),
// `_match_service_` and `_match_domain_` in `_rules_` (rules with configDisable left out), and the
// `_plugin_id_` Higress adds to name the plugin.
function controllerConfig(spec, pluginId = "ai-fallback-1.0.0") {
  const out = spec.defaultConfigDisable ? {} : { ...(spec.defaultConfig ?? {}) };
  out._plugin_id_ = pluginId;
  const rules = (spec.matchRules ?? []).filter((rule) => !rule.configDisable).map((rule) => {
    const entry = { ...(rule.config ?? {}) };
    if (rule.ingress && rule.ingress.length) entry._match_route_ = rule.ingress;
    if (rule.service && rule.service.length) entry._match_service_ = rule.service;
    if (rule.domain && rule.domain.length) entry._match_domain_ = rule.domain;
    return entry;
  });
  if (rules.length) out._rules_ = rules;
  return out;
}

module.exports = { controllerConfig };
