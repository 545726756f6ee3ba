// Starts a real Envoy (the one `npm run setup` put in .venv/) with the ai-fallback filter in front of
// static clusters on 127.0.0.1, waits until it is ready and stops it again.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..", "..", "..");
// The filter module every Envoy loads. AI_FALLBACK_WASM swaps it: `npm run check:noop` points it at
// build/noop.wasm (a module that does nothing), `npm run mutate` at a mutated build.
const FILTER_WASM_PATH = path.join(ROOT, "build", "ai_fallback.wasm");
const NOOP_WASM_PATH = path.join(ROOT, "build", "noop.wasm");
const WASM_PATH = process.env.AI_FALLBACK_WASM ? path.resolve(process.env.AI_FALLBACK_WASM) : FILTER_WASM_PATH;
const ENVOY_BIN = process.env.AI_FALLBACK_ENVOY || path.join(ROOT, ".venv", "bin", "envoy");
const READY_TIMEOUT_MS = 20000;
const STOP_GRACE_MS = 3000;

// Every Envoy started by this module and not yet stopped.
const live = new Set();

// Last resort when the test process ends without stopping its Envoys: 'exit' handlers must be
// synchronous, so the processes are killed outright. Installed only while something is live.
function killAllNow() {
  for (const e of live) {
    try {
      e.child.kill("SIGKILL");
    } catch {
      // already gone
    }
    e.cleanup();
  }
}
function trackLive(e) {
  if (live.size === 0) process.on("exit", killAllNow);
  live.add(e);
}
function untrackLive(e) {
  if (live.delete(e) && live.size === 0) process.removeListener("exit", killAllNow);
}

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

async function freePorts(n) {
  // Taken one after the other but each is released before the next is asked for, so make sure
  // they differ.
  const ports = [];
  while (ports.length < n) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  return ports;
}

function httpGet(port, urlPath, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${urlPath} on 127.0.0.1:${port} timed out`)));
    req.on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function duration(ms) {
  return `${ms / 1000}s`;
}

// A cluster spec: a port, or { port, connectTimeoutMs, trailers, http2, upstreamFilters }, or { noEndpoints: true }
// (a cluster with no host at all: Envoy answers its requests with 503 no_healthy_upstream).
// http2: the hosts speak plaintext HTTP/2 (a gRPC service, e.g. mock_ext_proc.js).
// upstreamFilters: upstream HTTP filters (e.g. http_filters.js primaryGuard), before the upstream codec.
function staticCluster(name, spec) {
  const { port, connectTimeoutMs = 1000, trailers = false, http2 = false, noEndpoints = false, upstreamFilters = null } = typeof spec === "number" ? { port: spec } : spec;
  if (!noEndpoints && !Number.isInteger(port)) throw new Error(`cluster ${name}: port must be an integer, got ${JSON.stringify(spec)}`);
  const endpoints = noEndpoints ? [] :
    [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }] }];
  return {
    name,
    type: "STATIC",
    connect_timeout: duration(connectTimeoutMs),
    lb_policy: "ROUND_ROBIN",
    load_assignment: {
      cluster_name: name,
      endpoints,
    },
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        explicit_http_config: http2 ? { http2_protocol_options: {} } : { http_protocol_options: trailers ? { enable_trailers: true } : {} },
        ...(upstreamFilters ? { http_filters: [...upstreamFilters, UPSTREAM_CODEC] } : {}),
      },
    },
  };
}

const UPSTREAM_CODEC = {
  name: "envoy.filters.http.upstream_codec",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec" },
};

// r.connect: a route for CONNECT requests, tunnelled to the cluster (the listener needs
// connectionManager: { upgrade_configs: [{ upgrade_type: "CONNECT" }] }).
function routeEntry(r, primaryCluster, routeTimeoutMs) {
  const match = r.connect ? { connect_matcher: {} } : r.path !== undefined ? { path: r.path } : { prefix: r.prefix ?? "/" };
  // r.headers: { name: value } the request must carry, exactly.
  if (r.headers) match.headers = Object.entries(r.headers).map(([name, exact]) => ({ name, string_match: { exact } }));
  const out = { match };
  if (r.name) out.name = r.name;
  if (r.directResponse) {
    out.direct_response = { status: r.directResponse.status ?? 200 };
    if (r.directResponse.body !== undefined) out.direct_response.body = { inline_string: String(r.directResponse.body) };
  } else {
    const timeoutMs = r.timeoutMs ?? routeTimeoutMs ?? 0;
    out.route = { cluster: r.cluster ?? primaryCluster, timeout: duration(timeoutMs) };
    if (r.connect) out.route.upgrade_configs = [{ upgrade_type: "CONNECT", connect_config: {} }];
    // r.routeExtra: more fields of the route action (e.g. a retry_policy).
    if (r.routeExtra) Object.assign(out.route, r.routeExtra);
  }
  if (r.typedPerFilterConfig) out.typed_per_filter_config = r.typedPerFilterConfig;
  if (r.responseHeaders) {
    out.response_headers_to_add = Object.entries(r.responseHeaders).map(([key, value]) => ({ header: { key, value }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }));
  }
  return out;
}

function virtualHosts(routes, primaryCluster, routeTimeoutMs) {
  const list = routes ?? [{ name: "primary-route", prefix: "/", cluster: primaryCluster }];
  const hosts = new Map(); // key: the domains list, in order of first appearance
  for (const r of list) {
    const domains = r.domains && r.domains.length ? r.domains : ["*"];
    const key = JSON.stringify(domains);
    if (!hosts.has(key)) hosts.set(key, { name: `vhost-${hosts.size}`, domains, routes: [] });
    hosts.get(key).routes.push(routeEntry(r, primaryCluster, routeTimeoutMs));
  }
  return [...hosts.values()];
}

function buildBootstrap(opts, ports) {
  const primaryCluster = opts.primaryCluster ?? "primary";
  const pluginConfig = typeof opts.pluginConfig === "string" ? opts.pluginConfig : JSON.stringify(opts.pluginConfig ?? {});
  const wasmFilter = {
    name: "envoy.filters.http.wasm",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
      config: {
        name: "ai-fallback",
        root_id: "ai-fallback",
        vm_config: {
          vm_id: "ai-fallback",
          runtime: "envoy.wasm.runtime.v8",
          code: { local: { filename: opts.wasmPath ?? WASM_PATH } },
        },
        configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: pluginConfig },
        allow_on_headers_stop_iteration: opts.allowOnHeadersStopIteration ?? true,
        // e.g. { failure_policy: "FAIL_RELOAD" }: more fields of the wasm PluginConfig.
        ...(opts.pluginOptions ?? {}),
      },
    },
  };
  const clusters = Object.entries(opts.clusters ?? {}).map(([name, spec]) => staticCluster(name, spec));
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: ports.admin } } },
    static_resources: {
      listeners: [
        {
          name: "ingress",
          address: { socket_address: { address: "127.0.0.1", port_value: ports.listener } },
          filter_chains: [
            {
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    stat_prefix: "ingress",
                    codec_type: "AUTO",
                    ...(opts.connectionManager ?? {}),
                    route_config: { name: "local", virtual_hosts: virtualHosts(opts.routes, primaryCluster, opts.routeTimeoutMs) },
                    http_filters: [
                      ...(opts.extraHttpFilters ?? []),
                      // withFilter: false gives the same Envoy without the filter (benchmark baseline).
                      ...(opts.withFilter === false ? [] : [wasmFilter]),
                      ...(opts.extraHttpFiltersAfter ?? []),
                      {
                        name: "envoy.filters.http.router",
                        typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters,
    },
  };
}

/**
 * Starts Envoy; see the file header. Resolves with
 * { port, adminPort, logs(), logsWhen(pattern), stop(), stats(), statsPrometheus(), url(path), configPath, bootstrap, pid }
 * or, when opts.expectFailure and Envoy exits before it is ready, with { exitCode, signal, logs() }.
 */
async function startEnvoy(opts = {}) {
  if (!fs.existsSync(ENVOY_BIN)) throw new Error(`${ENVOY_BIN} not found: run \`npm run setup\` first`);
  if (!opts.wasmPath && !fs.existsSync(WASM_PATH)) throw new Error(`${WASM_PATH} not found: run \`npm run build\` first`);

  const [admin, listener] = await freePorts(2);
  // opts.bootstrap: (ports) => a whole bootstrap, for layouts buildBootstrap does not make (streamed mode).
  const bootstrap = opts.bootstrap ? opts.bootstrap({ admin, listener }) : buildBootstrap(opts, { admin, listener });
  // The noop check (scripts/check_tests.mjs) asks to be told which tests run the module under test.
  if (process.env.AI_FALLBACK_LOAD_LOG && opts.withFilter !== false && (opts.wasmPath ?? WASM_PATH) === WASM_PATH) {
    fs.appendFileSync(process.env.AI_FALLBACK_LOAD_LOG, `${WASM_PATH}\n`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-envoy-"));
  const configPath = path.join(dir, "envoy.json");
  fs.writeFileSync(configPath, JSON.stringify(bootstrap, null, 2));

  const args = [
    "-c", configPath,
    "--disable-hot-restart",
    "--use-dynamic-base-id",
    "-l", opts.logLevel ?? "info",
    "--component-log-level", opts.componentLogLevel ?? "wasm:debug",
    "--concurrency", String(opts.concurrency ?? 1),
    // e.g. ["--file-flush-interval-msec", "50"]: access log files written at once.
    ...(opts.extraArgs ?? []),
  ];
  // opts.env: more environment variables for Envoy (e.g. LD_PRELOAD for a faked wall clock).
  const child = spawn(ENVOY_BIN, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...(opts.env ?? {}) } });
  let text = "";
  const append = (chunk) => {
    text += chunk.toString("utf8");
  };
  child.stdout.on("data", append);
  child.stderr.on("data", append);
  const logs = () => text;

  let exited = null; // { code, signal } once the process is gone
  const exitPromise = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
    child.on("error", (err) => {
      append(`\n[harness] could not run ${ENVOY_BIN}: ${err.message}\n`);
      exited = exited ?? { code: null, signal: null, error: err };
      resolve(exited);
    });
  });
  // The output pipes may still hold the last lines when 'exit' fires; 'close' comes after them.
  const closed = new Promise((resolve) => child.on("close", resolve));
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });

  let stopping = null;
  const handle = {
    port: listener,
    adminPort: admin,
    pid: child.pid,
    configPath,
    bootstrap,
    logs,
    // Envoy writes its log a little after it acts: the logs once `pattern` shows (or after timeoutMs).
    async logsWhen(pattern, timeoutMs = 2000) {
      const until = Date.now() + timeoutMs;
      while (!pattern.test(text) && Date.now() < until) await sleep(20);
      return text;
    },
    url: (p = "/") => `http://127.0.0.1:${listener}${p.startsWith("/") ? p : `/${p}`}`,
    stats: async () => (await httpGet(admin, "/stats")).text,
    statsPrometheus: async () => (await httpGet(admin, "/stats/prometheus")).text,
    stop() {
      if (!stopping) {
        stopping = (async () => {
          if (!exited) {
            child.kill("SIGTERM");
            const timer = setTimeout(() => {
              if (!exited) child.kill("SIGKILL");
            }, STOP_GRACE_MS);
            await exitPromise;
            clearTimeout(timer);
          }
          await Promise.race([closed, sleep(1000)]);
          untrackLive(entry);
          cleanup();
        })();
      }
      return stopping;
    },
  };
  const entry = { child, handle, cleanup };
  trackLive(entry);

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let ready = false;
  while (!exited && Date.now() < deadline) {
    try {
      const r = await httpGet(admin, "/ready", 1000);
      if (r.status === 200 && r.text.trim() === "LIVE") {
        ready = true;
        break;
      }
    } catch {
      // admin not listening yet
    }
    await Promise.race([sleep(50), exitPromise]);
  }

  if (ready && !exited) {
    if (opts.expectFailure) {
      await handle.stop();
      throw new Error(`Envoy started although expectFailure was set; logs:\n${text.slice(-3000)}`);
    }
    return handle;
  }

  if (exited) {
    await Promise.race([closed, sleep(1000)]);
    untrackLive(entry);
    cleanup();
    if (opts.expectFailure) return { exitCode: exited.code, signal: exited.signal, logs };
    throw new Error(`Envoy exited (code ${exited.code}, signal ${exited.signal}) before it was ready; last logs:\n${text.slice(-3000)}`);
  }
  await handle.stop();
  throw new Error(`Envoy was not ready after ${READY_TIMEOUT_MS} ms; last logs:\n${text.slice(-3000)}`);
}

async function stopAllEnvoys() {
  await Promise.all([...live].map((e) => e.handle.stop()));
}

// The value of `name` in the text of admin /stats (lines `name: value`). A name Envoy does not report
// throws: a misspelt metric, or a filter that never defined it, must not read as 0.
function counter(statsText, name) {
  const prefix = `${name}: `;
  for (const line of statsText.split("\n")) {
    if (line.startsWith(prefix)) {
      const value = Number(line.slice(prefix.length).trim());
      if (!Number.isFinite(value)) throw new Error(`metric ${name} is not a number: ${line}`);
      return value;
    }
  }
  throw new Error(`Envoy reports no metric named ${name}`);
}

/** How much each metric grew between two /stats texts: grew(name). */
function growth(beforeText, afterText) {
  return (name) => counter(afterText, name) - counter(beforeText, name);
}

module.exports = { startEnvoy, stopAllEnvoys, freePort, counter, growth, WASM_PATH, FILTER_WASM_PATH, NOOP_WASM_PATH, ENVOY_BIN, buildBootstrap };
