#!/usr/bin/env node
// node examples/streamed.mjs DIR [--wasm PATH] [--port N] [--out OUT]
// The streamed mode's Envoy bootstrap for an example folder that talks to real HTTPS providers:
//   1. DIR/plugin.json and DIR/clusters.json, with each ${NAME} taken from the environment
//      (examples/render.mjs), go through the generator, `node scripts/streamed-config.mjs`, with
//      `--ca-bundle` from DIR/streamed-extras.json's `caBundle` (every https cluster checks its
//      provider's certificate against it and the cluster's host name);
//   2. DIR/streamed-extras.json adds what the generator does not set: the primary's host name and key
//      (on the route: a backup's filter replaces them with its own);
//   3. the listener is moved to 127.0.0.1 (the gateway holds your keys).
// OUT is readable by you alone (it holds your keys); without --out the bootstrap is printed.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderText, takeOut, writePrivate } from "./render.mjs";

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");

function fail(message) {
  console.error(message);
  process.exit(1);
}

const args = process.argv.slice(2);
let outFile;
try {
  outFile = takeOut(args);
} catch (e) {
  fail(e.message);
}
const [dir, ...options] = args;
if (!dir || dir.startsWith("--")) {
  console.error("usage: node examples/streamed.mjs DIR [--wasm PATH] [--port N] [--out OUT]");
  process.exit(2);
}
const read = (name) => {
  try {
    return renderText(fs.readFileSync(path.join(dir, name), "utf8"), process.env, path.join(dir, name));
  } catch (e) {
    fail(e.message);
  }
};

let extras;
try {
  extras = JSON.parse(read("streamed-extras.json"));
} catch (e) {
  fail(`${path.join(dir, "streamed-extras.json")}: ${e.message}`);
}
const { primary = {}, caBundle } = extras;
if (typeof caBundle !== "string" || caBundle === "") fail("streamed-extras.json: caBundle: required, the path of the CA bundle, e.g. /etc/ssl/certs/ca-certificates.crt");

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-example-"));
let bootstrap;
try {
  // Rendered files hold keys: only this process may read them, and they are removed at once.
  for (const name of ["plugin.json", "clusters.json"]) fs.writeFileSync(path.join(tmp, name), read(name), { mode: 0o600 });
  const generated = execFileSync(process.execPath, [
    path.join(ROOT, "scripts", "streamed-config.mjs"), path.join(tmp, "plugin.json"), path.join(tmp, "clusters.json"), "--ca-bundle", caBundle, ...options,
  ], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  bootstrap = JSON.parse(generated);
} catch (e) {
  fail(e.status !== undefined ? "scripts/streamed-config.mjs refused the example (its message is above)" : e.message);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

// The gateway spends your keys: it listens on this machine only (the generator listens on every address).
for (const listener of bootstrap.static_resources.listeners) listener.address.socket_address.address = "127.0.0.1";

// The primary's host name and key, on every route (the retrying one and the primary-only one).
for (const listener of bootstrap.static_resources.listeners) {
  for (const chain of listener.filter_chains) {
    for (const filter of chain.filters) {
      for (const vhost of filter.typed_config.route_config?.virtual_hosts ?? []) {
        for (const route of vhost.routes) {
          if (!route.route) continue;
          if (primary.authority) route.route.host_rewrite_literal = primary.authority;
          const headers = Object.entries(primary.headers ?? {});
          if (headers.length > 0) {
            route.request_headers_to_add = headers.map(([key, value]) => ({ header: { key, value }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }));
          }
        }
      }
    }
  }
}

writePrivate(outFile, JSON.stringify(bootstrap, null, 2) + "\n");
