// Starts a real OCI registry (Debian's `docker-registry`: the reference distribution registry, installed
// by `npm run setup`) on 127.0.0.1 with a free port and storage in a temporary directory, and stops it
// again. With `htpasswd` (file text), it asks for HTTP Basic credentials, naming `realm` in its challenge.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");

const { freePort } = require("./envoy");

const REGISTRY_BIN = process.env.AI_FALLBACK_REGISTRY || "docker-registry";
const READY_TIMEOUT_MS = 15000;
const STOP_GRACE_MS = 3000;

const live = new Set();
function killAllNow() {
  for (const r of live) {
    try {
      r.child.kill("SIGKILL");
    } catch {
      // already gone
    }
    r.cleanup();
  }
}

function getStatus(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/v2/", agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves with { port, host ("127.0.0.1:PORT"), logs(), stop() } once GET /v2/ answers. */
async function startRegistry({ htpasswd, realm = "ai-fallback-test" } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-registry-"));
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  const port = await freePort();
  const lines = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(path.join(dir, "data"))}`,
    "http:",
    `  addr: 127.0.0.1:${port}`,
  ];
  if (htpasswd) {
    fs.writeFileSync(path.join(dir, "htpasswd"), htpasswd);
    lines.push("auth:", "  htpasswd:", `    realm: ${JSON.stringify(realm)}`, `    path: ${JSON.stringify(path.join(dir, "htpasswd"))}`);
  }
  const configPath = path.join(dir, "config.yml");
  fs.writeFileSync(configPath, `${lines.join("\n")}\n`);

  // The registry reads REGISTRY_* variables as configuration overrides: give it none of the caller's.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("REGISTRY_")));
  const child = spawn(REGISTRY_BIN, ["serve", configPath], { stdio: ["ignore", "pipe", "pipe"], env });
  let text = "";
  child.stdout.on("data", (c) => { text += c; });
  child.stderr.on("data", (c) => { text += c; });
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve((exited = { code, signal })));
    child.on("error", (err) => {
      text += `\n[harness] could not run ${REGISTRY_BIN}: ${err.message} (npm run setup installs it)\n`;
      resolve((exited = exited ?? { code: null, signal: null }));
    });
  });
  const entry = { child, cleanup };
  if (live.size === 0) process.on("exit", killAllNow);
  live.add(entry);

  let stopping = null;
  const handle = {
    port,
    host: `127.0.0.1:${port}`,
    logs: () => text,
    stop() {
      stopping ??= (async () => {
        if (!exited) {
          child.kill("SIGTERM");
          const timer = setTimeout(() => exited || child.kill("SIGKILL"), STOP_GRACE_MS);
          await exitPromise;
          clearTimeout(timer);
        }
        live.delete(entry);
        if (live.size === 0) process.removeListener("exit", killAllNow);
        cleanup();
      })();
      return stopping;
    },
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!exited && Date.now() < deadline) {
    const status = await getStatus(port);
    if (status === 200 || status === 401) return handle;
    await Promise.race([sleep(50), exitPromise]);
  }
  await handle.stop();
  throw new Error(`the registry did not start (${exited ? `exited ${exited.code ?? exited.signal}` : "timeout"}); output:\n${text.slice(-3000)}`);
}

module.exports = { startRegistry, freePort };
