#!/usr/bin/env node
// npm run streamed-config -- plugin.json clusters.json [--wasm PATH] [--port N] [--xff-num-trusted-hops N] [--no-primary-filter]
// Prints an Envoy bootstrap (JSON, also valid YAML) for the streamed mode. See README "Streamed mode".
import fs from "node:fs";
import path from "node:path";
import lib from "./streamed_config_lib.cjs";

const { streamedBootstrap, StreamedConfigError, ignoredFields } = lib;

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const wasmPath = path.resolve(opt("--wasm", "build/ai_fallback.wasm"));
const listenPort = Number(opt("--port", "10000"));
// Proxies in front of Envoy that add to x-forwarded-for (README "Streamed mode"); none by default.
const hops = opt("--xff-num-trusted-hops", undefined);
const xffNumTrustedHops = hops === undefined ? undefined : Number(hops);
// The lean streamed mode: no filter on the primary's cluster (README "Streamed mode").
const lean = args.indexOf("--no-primary-filter");
if (lean >= 0) args.splice(lean, 1);
if (args.length !== 2) {
  console.error("usage: npm run streamed-config -- plugin.json clusters.json [--wasm PATH] [--port N] [--xff-num-trusted-hops N] [--no-primary-filter]");
  process.exit(2);
}
try {
  const [plugin, clusters] = args.map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
  process.stdout.write(JSON.stringify(streamedBootstrap(plugin, clusters, { wasmPath, listenPort, primaryFilter: lean < 0, xffNumTrustedHops }), null, 2) + "\n");
  // Fields the dispatch mode uses and this mode cannot: said, so that nobody relies on them silently.
  for (const { field, why } of ignoredFields(plugin)) console.error(`note: ${field} is ignored in streamed mode: ${why}`);
} catch (e) {
  console.error(e instanceof StreamedConfigError ? `invalid configuration: ${e.message}` : e.message);
  process.exit(1);
}
