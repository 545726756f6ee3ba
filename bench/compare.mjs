// `npm run bench -- --compare`: the same happy and fallback scenarios through LiteLLM's proxy and
// Portkey's gateway, against the same direct_response upstream, side by side with plain Envoy and
// the filter. Both are installed on first use into .bench/ (git-ignored), never into the project:
//   LiteLLM: a Python venv .bench/litellm-venv with PyPI `litellm[proxy]==LITELLM_VERSION`
//   Portkey: .bench/portkey with npm `@portkey-ai/gateway@PORTKEY_VERSION`
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CHAT_PATH, FAIL_PATH, FALLBACK_CONFIG, HAPPY_CONFIG, cpuMs, startFront } from "./fleet.mjs";
import { runWrk } from "./wrk.mjs";
import { chatBody, f, header, median, note, sleep, spread, table } from "./stats.mjs";

// Pinned: a release from before the 2026 supply-chain incidents that yanked later LiteLLM releases.
const LITELLM_VERSION = "1.81.13";
const PORTKEY_VERSION = "1.15.2";

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIR = path.join(ROOT, ".bench");
const children = [];

function run(cmd, args, opts = {}) {
  console.log(`bench: ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { stdio: "inherit", ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.status})`);
}

function ensureLiteLLM() {
  const venv = path.join(DIR, "litellm-venv");
  const bin = path.join(venv, "bin", "litellm");
  const pip = path.join(venv, "bin", "pip");
  const installed = fs.existsSync(pip) && spawnSync(pip, ["show", "litellm"], { encoding: "utf8" }).stdout.includes(`Version: ${LITELLM_VERSION}`);
  if (!installed || !fs.existsSync(bin)) {
    fs.mkdirSync(DIR, { recursive: true });
    if (!fs.existsSync(pip)) run("python3", ["-m", "venv", venv]);
    run(pip, ["install", "--quiet", "--disable-pip-version-check", `litellm[proxy]==${LITELLM_VERSION}`]);
  }
  return bin;
}

function ensurePortkey() {
  const dir = path.join(DIR, "portkey");
  const entry = path.join(dir, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js");
  const pkg = path.join(dir, "node_modules", "@portkey-ai", "gateway", "package.json");
  const installed = fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, "utf8")).version === PORTKEY_VERSION;
  if (!installed) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "ai-fallback-bench-portkey", private: true }));
    run("npm", ["install", "--no-audit", "--no-fund", `@portkey-ai/gateway@${PORTKEY_VERSION}`], { cwd: dir });
  }
  return entry;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts a server process and waits until a POST of `probe` through it answers 200. */
async function startServer(name, cmd, args, { port, env = {}, probe, cwd }) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: false });
  let log = "";
  child.stdout.on("data", (c) => (log = (log + c).slice(-20000)));
  child.stderr.on("data", (c) => (log = (log + c).slice(-20000)));
  const handle = { name, child, port, pid: child.pid, log: () => log };
  children.push(handle);
  const deadline = Date.now() + 120000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}):\n${log}`);
    try {
      if ((await probe(port)) === 200) return handle;
    } catch {
      // not listening yet
    }
    await sleep(500);
  }
  throw new Error(`${name} was not ready after 120 s:\n${log}`);
}

async function post(port, urlPath, body, headers = {}) {
  const r = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
    method: "POST", headers: { "content-type": "application/json", ...headers }, body,
  });
  await r.arrayBuffer();
  return r.status;
}

function liteLLMConfig(upstreamPort) {
  const base = `http://127.0.0.1:${upstreamPort}`;
  const model = (name, apiBase, upstreamModel) =>
    `  - model_name: ${name}\n    litellm_params:\n      model: openai/${upstreamModel}\n      api_base: ${apiBase}\n      api_key: sk-bench\n`;
  return "model_list:\n" +
    model("gpt-4o", `${base}/v1`, "gpt-4o") +
    model("gpt-4o-failing", `${base}/v1/fail`, "gpt-4o") +
    model("qwen-plus", `${base}/v1`, "qwen-plus") +
    "router_settings:\n  num_retries: 0\n  fallbacks: [{\"gpt-4o-failing\": [\"qwen-plus\"]}]\n" +
    "litellm_settings:\n  num_retries: 0\n  request_timeout: 30\n  drop_params: true\n";
}

function portkeyConfig(upstreamPort, primaryPath) {
  const host = (p) => `http://127.0.0.1:${upstreamPort}${p}`;
  return JSON.stringify({
    strategy: { mode: "fallback" },
    targets: [
      { provider: "openai", api_key: "sk-bench", custom_host: host(primaryPath) },
      { provider: "openai", api_key: "sk-bench", custom_host: host("/v1"), override_params: { model: "qwen-plus" } },
    ],
  });
}

/** Requests the upstream Envoy has answered so far (admin /stats). */
async function upstreamRequests(upstream) {
  const text = await upstream.stats();
  const m = /http\.ingress\.downstream_rq_completed: (\d+)/.exec(text);
  return m ? Number(m[1]) : NaN;
}

export async function benchCompare({ upstream, opts }) {
  header("Compared with other gateways (--compare): the same upstream, happy and fallback paths, 1 KB bodies");
  const litellmBin = ensureLiteLLM();
  const portkeyEntry = ensurePortkey();
  const body = chatBody(1024);
  const failingBody = Buffer.from(body.toString().replace('"model":"gpt-4o"', '"model":"gpt-4o-failing"'));

  const plain = await startFront(upstream.port, "plain");
  const happy = await startFront(upstream.port, "filter", HAPPY_CONFIG);
  const fallback = await startFront(upstream.port, "filter", FALLBACK_CONFIG);

  const llmPort = await freePort();
  const cfgPath = path.join(DIR, "litellm-config.yaml");
  fs.writeFileSync(cfgPath, liteLLMConfig(upstream.port));
  const litellm = await startServer("LiteLLM", litellmBin, ["--config", cfgPath, "--host", "127.0.0.1", "--port", String(llmPort), "--num_workers", "1"], {
    port: llmPort, env: { LITELLM_LOG: "ERROR", LITELLM_TELEMETRY: "False" }, probe: (p) => post(p, CHAT_PATH, body),
  });
  const pkPort = await freePort();
  const pkHappy = { "x-portkey-config": portkeyConfig(upstream.port, "/v1") };
  const pkFallback = { "x-portkey-config": portkeyConfig(upstream.port, "/v1/fail") };
  const portkey = await startServer("Portkey", process.execPath, [portkeyEntry, `--port=${pkPort}`, "--headless"], {
    port: pkPort, cwd: path.dirname(portkeyEntry), env: { NODE_ENV: "production" }, probe: (p) => post(p, CHAT_PATH, body, pkHappy),
  });

  const list = [
    { name: "plain Envoy", port: plain.port, pid: plain.pid, urlPath: CHAT_PATH, body },
    { name: "Envoy + ai-fallback, happy path", port: happy.port, pid: happy.pid, urlPath: CHAT_PATH, body },
    { name: "Envoy + ai-fallback, fallback", port: fallback.port, pid: fallback.pid, urlPath: FAIL_PATH, body },
    { name: `LiteLLM ${LITELLM_VERSION}, happy path`, port: litellm.port, pid: litellm.pid, urlPath: CHAT_PATH, body },
    { name: `LiteLLM ${LITELLM_VERSION}, fallback`, port: litellm.port, pid: litellm.pid, urlPath: CHAT_PATH, body: failingBody },
    { name: `Portkey ${PORTKEY_VERSION}, happy path`, port: portkey.port, pid: portkey.pid, urlPath: CHAT_PATH, body, headers: pkHappy },
    { name: `Portkey ${PORTKEY_VERSION}, fallback`, port: portkey.port, pid: portkey.pid, urlPath: CHAT_PATH, body, headers: pkFallback },
  ];
  const connections = opts.connections;
  for (const s of list) {
    s.runs = [];
    await runWrk({ ...s, seconds: 1, connections });
  }
  for (let r = 0; r < opts.rounds; r++) {
    for (let i = 0; i < list.length; i++) {
      const s = list[(i + r) % list.length];
      const up0 = await upstreamRequests(upstream);
      const cpu0 = cpuMs(s.pid);
      const w = await runWrk({ ...s, seconds: opts.seconds, connections });
      const cpu = cpuMs(s.pid) - cpu0;
      const up = (await upstreamRequests(upstream)) - up0;
      s.runs.push({ ...w, upstreamPerRequest: up / w.requests, cpuUsPerReq: (cpu * 1000) / w.requests });
      process.stdout.write(".");
    }
  }
  process.stdout.write("\n");
  const base = list[0];
  const rows = list.map((s) => {
    const ratios = s.runs.map((run, i) => run.rps / base.runs[i].rps);
    const errors = s.runs.reduce((a, r) => a + r.errors + r.non2xx, 0);
    return [s.name, spread(s.runs.map((r) => r.rps), 0) + (errors ? ` (${errors} err)` : ""), spread(s.runs.map((r) => r.p50Ms), 2),
      spread(s.runs.map((r) => r.p99Ms), 2), spread(ratios, 3), f(median(s.runs.map((r) => r.upstreamPerRequest)), 2),
      f(median(s.runs.map((r) => r.cpuUsPerReq)), 0)];
  });
  const markdown = table(["gateway, path", "req/s", "p50 ms", "p99 ms", "ratio to plain Envoy", "upstream calls/req", "gateway CPU µs/req"], rows);
  note("LiteLLM: `litellm --num_workers 1`, router fallbacks gpt-4o-failing -> qwen-plus, num_retries 0. Portkey: one Node");
  note("process, x-portkey-config strategy.mode fallback with two openai targets (custom_host on the upstream).");
  note("Every gateway gets one process/worker; wrk and the upstream share the same 2 cores.");
  await stopCompare();
  return { markdown };
}

export async function stopCompare() {
  for (const c of children.splice(0)) {
    if (c.child.exitCode === null) {
      c.child.kill("SIGTERM");
      await Promise.race([new Promise((r) => c.child.once("exit", r)), sleep(3000)]);
      if (c.child.exitCode === null) c.child.kill("SIGKILL");
    }
  }
}
