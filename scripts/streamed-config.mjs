#!/usr/bin/env node
// node scripts/streamed-config.mjs plugin.json clusters.json [--out FILE] [options]: the streamed mode's Envoy
// bootstrap (JSON, also valid YAML), on stdout (nothing else is written there) or into FILE. The plugin
// configuration and every filter configuration generated from it first go through the built module's own
// check (scripts/module_config_check.cjs), so what the filter would refuse is refused here, with its message.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import lib from "./streamed_config_lib.cjs";
import check from "./module_config_check.cjs";

const { streamedBootstrap, StreamedConfigError, ignoredFields } = lib;
const { loadModuleCheck, checkStreamed, ModuleMissingError } = check;

const USAGE = `usage: node scripts/streamed-config.mjs plugin.json clusters.json [--out FILE]
  [--wasm PATH]            the module's path as Envoy will load it (default build/ai_fallback.wasm)
  [--ca-bundle FILE]       the CA bundle https clusters check their server's certificate against
                           (default: clusters.json's "caBundle", else /etc/ssl/certs/ca-certificates.crt)
  [--check-wasm PATH]      the built module that checks the configuration here (default: --wasm's file if it exists, else build/ai_fallback.wasm)
  [--port N]               the listener's port (default 10000)
  [--listen-address ADDR]  the listener's address (default 0.0.0.0)
  [--admin-port N]         Envoy's admin port on 127.0.0.1 (default 9901)
  [--xff-num-trusted-hops N] [--no-primary-filter]
  [--retry-mark SECRET]    the value the route retries the filters' marks on (default: a digest of plugin.json;
                           give a secret of 16 to 128 characters when plugin.json holds no credentials)`;

function fail(message, code = 1) {
  console.error(message);
  process.exit(code);
}

const args = process.argv.slice(2);
const VALUED = ["--out", "--wasm", "--ca-bundle", "--check-wasm", "--port", "--listen-address", "--admin-port", "--xff-num-trusted-hops", "--retry-mark"];
const options = {};
const files = [];
let lean = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--no-primary-filter") lean = true;
  else if (VALUED.includes(a)) {
    if (i + 1 >= args.length) fail(`${a}: needs a value\n${USAGE}`, 2);
    options[a] = args[++i];
  } else if (a.startsWith("--")) fail(`${a}: unknown option\n${USAGE}`, 2);
  else files.push(a);
}
if (files.length !== 2) fail(USAGE, 2);

function port(option, dflt) {
  const text = options[option];
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(`${option}: must be a port number from 1 to 65535, got ${JSON.stringify(text)}`, 2);
  return n;
}

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const builtModule = path.join(root, "build", "ai_fallback.wasm");
const wasmPath = path.resolve(options["--wasm"] ?? builtModule);
const checkWasm = options["--check-wasm"] ?? (fs.existsSync(wasmPath) ? wasmPath : builtModule);
const listenPort = port("--port", 10000);
const adminPort = port("--admin-port", 9901);
const listenAddress = options["--listen-address"] ?? "0.0.0.0";
// Proxies in front of Envoy that add to x-forwarded-for; none by default.
const hops = options["--xff-num-trusted-hops"];
const xffNumTrustedHops = hops === undefined ? undefined : Number(hops);

const read = (file) => {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    fail(`${file}: not valid JSON: ${e.message}`);
  }
};
const [plugin, clusters] = files.map(read);

let bootstrap, warnings;
try {
  const moduleCheck = loadModuleCheck(checkWasm);
  // The module's verdict on the plugin configuration first: the same message as Envoy would log.
  const pluginVerdict = moduleCheck.check("ai-fallback", JSON.stringify(plugin));
  if (!pluginVerdict.accepted) fail(pluginVerdict.errors.join("\n") || "invalid configuration (the module refused it without a message)");
  bootstrap = streamedBootstrap(plugin, clusters, { wasmPath, listenPort, adminPort, listenAddress, primaryFilter: !lean, xffNumTrustedHops, caBundle: options["--ca-bundle"], retryMark: options["--retry-mark"] });
  // Then each generated filter's configuration, as its role (root_id) will read it.
  warnings = [...pluginVerdict.warnings, ...checkStreamed(moduleCheck, bootstrap)];
} catch (e) {
  if (e instanceof StreamedConfigError) fail(`invalid configuration: ${e.message}`);
  if (e instanceof ModuleMissingError || e instanceof check.ModuleRefusedError) fail(e.message);
  throw e;
}

const text = JSON.stringify(bootstrap, null, 2) + "\n";
if (options["--out"] !== undefined) fs.writeFileSync(options["--out"], text);
else process.stdout.write(text);
for (const w of warnings) console.error(w);
// Fields the dispatch mode uses and this mode cannot: said, so that nobody relies on them silently.
for (const { field, why } of ignoredFields(plugin)) console.error(`note: ${field} is ignored in streamed mode: ${why}`);
