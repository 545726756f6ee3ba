// The load generator: Debian's `wrk` (installed with apt-get when missing), POSTing one body over
// keep-alive connections. Its Lua `done` hook prints the numbers as one JSON line.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const SCRIPT = `
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"meanUs":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;

/** Makes sure `wrk` is on PATH: Debian's package, installed with apt-get (as root) when missing. */
export function ensureWrk() {
  if (spawnSync("wrk", ["-v"], { encoding: "utf8" }).error === undefined) return wrkVersion();
  console.log("bench: wrk is missing; installing Debian's package: apt-get install -y wrk");
  let r = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "wrk"], { stdio: "inherit" });
  if (r.status !== 0) {
    spawnSync("apt-get", ["update"], { stdio: "inherit" });
    r = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "wrk"], { stdio: "inherit" });
  }
  if (r.status !== 0) throw new Error("could not install wrk with apt-get (run as root on Debian/Ubuntu, or install wrk yourself)");
  return wrkVersion();
}

function wrkVersion() {
  const r = spawnSync("wrk", ["-v"], { encoding: "utf8" });
  const line = `${r.stdout}${r.stderr}`.split("\n").find((l) => l.startsWith("wrk")) ?? "wrk";
  return line.replace(/\s*Copyright.*$/, "").trim();
}

const scriptPath = path.join(os.tmpdir(), `ai-fallback-bench-${process.pid}.lua`);
const bodyFiles = new Map(); // Buffer -> file

function bodyFile(body) {
  if (!bodyFiles.has(body)) {
    const file = path.join(os.tmpdir(), `ai-fallback-bench-${process.pid}-${bodyFiles.size}.json`);
    fs.writeFileSync(file, body);
    bodyFiles.set(body, file);
  }
  return bodyFiles.get(body);
}

/** Removes the files wrk read. */
export function cleanupWrkFiles() {
  for (const f of [scriptPath, ...bodyFiles.values()]) fs.rmSync(f, { force: true });
  bodyFiles.clear();
}

/**
 * One wrk run: POST `body` to http://127.0.0.1:port+urlPath for `seconds` over `connections`
 * keep-alive connections on one thread. Resolves with { rps, p50Ms, p99Ms, requests, errors, non2xx }.
 */
export function runWrk({ port, urlPath, body, seconds, connections = 32, headers = {}, timeoutS = 10 }) {
  if (!fs.existsSync(scriptPath)) fs.writeFileSync(scriptPath, SCRIPT);
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, `--timeout`, `${timeoutS}s`, "-s", scriptPath];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  args.push(`http://127.0.0.1:${port}${urlPath}`);
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", args, { env: { ...process.env, BENCH_BODY_FILE: bodyFile(body) }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    const killer = setTimeout(() => child.kill("SIGKILL"), (seconds + timeoutS + 15) * 1000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(killer);
      const line = out.split("\n").find((l) => l.startsWith("BENCH_JSON "));
      if (!line) return reject(new Error(`wrk exited ${code} without a result:\n${out}`));
      const j = JSON.parse(line.slice("BENCH_JSON ".length));
      const seconds_ = j.durationUs / 1e6;
      resolve({
        rps: j.requests / seconds_,
        p50Ms: j.p50Us / 1000,
        p99Ms: j.p99Us / 1000,
        requests: j.requests,
        errors: j.connect + j.read + j.write + j.timeout,
        non2xx: j.status,
      });
    });
  });
}
