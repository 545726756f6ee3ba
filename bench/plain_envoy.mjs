// An Envoy with the same bootstrap as tests/e2e/envoy.js builds, minus the ai-fallback wasm filter: the
// baseline for the happy-path overhead benchmark. Same binary, same arguments, ports on 127.0.0.1.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { buildBootstrap, ENVOY_BIN } = require("../tests/e2e/envoy.js");

const READY_TIMEOUT_MS = 20000;
const STOP_GRACE_MS = 3000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const live = new Set();
function killAllNow() {
  for (const e of live) {
    try {
      e.child.kill("SIGKILL");
    } catch {
      // already gone
    }
    fs.rmSync(e.dir, { recursive: true, force: true });
  }
}
process.on("exit", killAllNow);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function httpGet(port, urlPath, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on("error", reject);
  });
}

/** The bootstrap of tests/e2e/envoy.js for `opts`, with every wasm HTTP filter removed. */
export function plainBootstrap(opts, ports) {
  const b = buildBootstrap(opts, ports);
  for (const l of b.static_resources.listeners) {
    for (const chain of l.filter_chains) {
      for (const f of chain.filters) {
        const hcm = f.typed_config;
        if (hcm && Array.isArray(hcm.http_filters)) {
          hcm.http_filters = hcm.http_filters.filter((h) => h.name !== "envoy.filters.http.wasm");
        }
      }
    }
  }
  return b;
}

/** Starts Envoy without the filter. Resolves with { port, adminPort, pid, url(p), get(p), logs(), stop() }. */
export async function startPlainEnvoy(opts = {}) {
  if (!fs.existsSync(ENVOY_BIN)) throw new Error(`${ENVOY_BIN} not found: run \`npm run setup\` first`);
  let admin = await freePort();
  let listener = await freePort();
  for (let i = 0; i < 10 && listener === admin; i++) listener = await freePort();
  const bootstrap = plainBootstrap(opts, { admin, listener });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-bench-envoy-"));
  const configPath = path.join(dir, "envoy.json");
  fs.writeFileSync(configPath, JSON.stringify(bootstrap, null, 2));
  const args = [
    "-c", configPath,
    "--disable-hot-restart",
    "--use-dynamic-base-id",
    "-l", opts.logLevel ?? "info",
    "--component-log-level", opts.componentLogLevel ?? "wasm:info",
    "--concurrency", "1",
  ];
  const child = spawn(ENVOY_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  const entry = { child, dir };
  live.add(entry);
  let text = "";
  child.stdout.on("data", (c) => (text += c));
  child.stderr.on("data", (c) => (text += c));
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve((exited = { code, signal })));
    child.on("error", (err) => resolve((exited = exited ?? { code: null, signal: null, error: err })));
  });

  let stopping = null;
  const stop = () => {
    if (!stopping) {
      stopping = (async () => {
        if (!exited) {
          child.kill("SIGTERM");
          const t = setTimeout(() => {
            if (!exited) child.kill("SIGKILL");
          }, STOP_GRACE_MS);
          await exitPromise;
          clearTimeout(t);
        }
        live.delete(entry);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
    }
    return stopping;
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!exited && Date.now() < deadline) {
    try {
      const r = await httpGet(admin, "/ready", 1000);
      if (r.status === 200 && r.text.trim() === "LIVE") {
        return {
          port: listener,
          adminPort: admin,
          pid: child.pid,
          url: (p = "/") => `http://127.0.0.1:${listener}${p}`,
          get: (p) => httpGet(admin, p),
          logs: () => text,
          stop,
        };
      }
    } catch {
      // admin not listening yet
    }
    await Promise.race([sleep(50), exitPromise]);
  }
  await stop();
  throw new Error(`plain Envoy not ready (${exited ? `exited ${exited.code}/${exited.signal}` : "timeout"}); logs:\n${text.slice(-2000)}`);
}
