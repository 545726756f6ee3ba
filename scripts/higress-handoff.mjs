#!/usr/bin/env node
// node scripts/higress-handoff.mjs plugin.json --route NAME --host HOST --url oci://... [options]: the Higress
// objects of the handoff way to fall back (WasmPlugin, the custom_response EnvoyFilter, one Ingress per
// backup's hop) as one multi-document YAML on stdout. The plugin JSON goes through the built module's own
// check first (scripts/module_config_check.cjs): what the filter would refuse is refused here, with its message.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import lib from "./higress_handoff_lib.cjs";
import check from "./module_config_check.cjs";

const { handoffObjects, HandoffConfigError } = lib;
const { loadModuleCheck, ModuleMissingError } = check;

const USAGE = `usage: node scripts/higress-handoff.mjs plugin.json --route NAME --host HOST --url oci://REGISTRY/ai-fallback:VERSION
  [--path PATH]                 the primary's route path the hops' routes match and rewrite (default /v1/chat/completions)
  [--namespace NS]              the WasmPlugin's and EnvoyFilter's namespace (default higress-system)
  [--routes-namespace NS]       the hops' Ingresses' namespace (default default)
  [--max-request-bytes N]       the request body custom_response keeps for the redirect (default 10485760)
  [--check-wasm PATH]           the built module that checks the configuration (default build/ai_fallback.wasm)`;

function fail(message, code = 1) {
  console.error(message);
  process.exit(code);
}

const VALUED = { "--route": "route", "--host": "host", "--url": "url", "--path": "path", "--namespace": "namespace",
  "--routes-namespace": "routesNamespace", "--max-request-bytes": "maxRequestBytes", "--check-wasm": "checkWasm" };
const args = process.argv.slice(2);
const options = {};
const files = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a in VALUED) {
    if (i + 1 >= args.length) fail(`${a}: needs a value\n${USAGE}`, 2);
    options[VALUED[a]] = args[++i];
  } else if (a.startsWith("--")) fail(`${a}: unknown option\n${USAGE}`, 2);
  else files.push(a);
}
if (files.length !== 1) fail(USAGE, 2);
if (options.maxRequestBytes !== undefined) {
  const n = Number(options.maxRequestBytes);
  if (!Number.isInteger(n) || n <= 0) fail(`--max-request-bytes: a positive whole number of bytes, got ${options.maxRequestBytes}`, 2);
  options.maxRequestBytes = n;
}

let plugin;
try {
  plugin = JSON.parse(fs.readFileSync(files[0], "utf8"));
} catch (e) {
  fail(`${files[0]}: ${e.message}`);
}
let objects;
try {
  objects = handoffObjects(plugin, options);
} catch (e) {
  if (e instanceof HandoffConfigError) fail(`invalid handoff configuration: ${e.message}`);
  throw e;
}
// The rule Higress's controller writes from the WasmPlugin is the one the filter gets: checked by the module.
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
try {
  const moduleCheck = loadModuleCheck(options.checkWasm ?? path.join(root, "build", "ai_fallback.wasm"));
  const rule = objects[0].spec.matchRules[0];
  const verdict = moduleCheck.check("ai-fallback", JSON.stringify({ _rules_: [{ ...rule.config, _match_route_: rule.ingress }] }));
  if (!verdict.accepted) fail(verdict.errors.join("\n"));
} catch (e) {
  if (e instanceof ModuleMissingError) fail(e.message);
  throw e;
}
process.stdout.write(objects.map((o) => yaml.safeDump(o, { lineWidth: 160, noRefs: true })).join("---\n"));
