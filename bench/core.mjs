// The pure core's speed, in Node's V8 (the same engine Envoy embeds): the model rewrite and the
// request scans, from tests/unit/entry.ts compiled with the release target's optimisation options
// (bench_core.wasm in the system temp directory, built here: not a proxy-wasm module, so kept out of build/), called on bodies copied into wasm memory once.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chatBody, f, header, note, nowMs, table } from "./stats.mjs";

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const CORE_WASM = path.join(os.tmpdir(), "ai-fallback-bench_core.wasm");

function buildCore() {
  const asc = path.join(ROOT, "node_modules", ".bin", "asc");
  const r = spawnSync(asc, ["tests/unit/entry.ts", "--target", "unit", "--optimizeLevel", "3", "--shrinkLevel", "1", "--outFile", CORE_WASM],
    { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`building ${CORE_WASM} failed:\n${r.stdout}${r.stderr}`);
}

function instantiate() {
  let memory;
  const imports = { env: { proxy_log: () => 0 } };
  const x = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(CORE_WASM)), imports).exports;
  memory = x.memory;
  x._initialize();
  const pinned = (ptr) => (x.__pin(ptr), ptr);
  return {
    x,
    buf(bytes) {
      const ptr = pinned(x.__new(bytes.length, x.BUFFER_ID.value));
      new Uint8Array(memory.buffer, ptr, bytes.length).set(bytes);
      return ptr;
    },
    str(s) {
      const ptr = pinned(x.__new(s.length * 2, x.STRING_ID.value));
      const view = new Uint16Array(memory.buffer, ptr, s.length);
      for (let i = 0; i < s.length; i++) view[i] = s.charCodeAt(i);
      return ptr;
    },
  };
}

/** ms per call: the best of `repeats` batches (the least disturbed by other work on the machine). */
function best(fn, perBatch, repeats, budgetMs) {
  const end = nowMs() + budgetMs;
  let bestMs = Infinity;
  for (let r = 0; r < repeats && nowMs() < end; r++) {
    const t = nowMs();
    for (let i = 0; i < perBatch; i++) fn();
    bestMs = Math.min(bestMs, (nowMs() - t) / perBatch);
  }
  return bestMs;
}

export function benchCore({ quick }) {
  header("Pure core in V8 (Node): tests/unit/entry.ts built with -O3");
  buildCore();
  const w = instantiate();
  const model = w.str("qwen-plus");
  const rows = [];
  const results = {};
  for (const [label, size, perBatch] of [["1 KB", 1024, 2000], ["100 KB", 100 * 1024, 50], ["1 MB", 1024 * 1024, 5]]) {
    const body = w.buf(chatBody(size));
    const stream = w.buf(chatBody(size, { stream: true }));
    // The same request with "stream" as its first member: the check reads the whole body (clients put it last).
    const keyFirst = w.buf(Buffer.from(`{"stream":true,${chatBody(size, { stream: true }).toString().slice(1).replace(',"stream":true}', "}")}`));
    // warm-up: V8 tiers the wasm code up
    for (let i = 0; i < Math.max(3, 200000 / size); i++) {
      w.x.rewrite(body, model);
      w.x.streamingRequest(stream);
      w.x.streamingRequest(keyFirst);
    }
    const repeats = quick ? 5 : 20;
    const rewrite = best(() => w.x.rewrite(body, model), perBatch, repeats, 5000);
    const streaming = best(() => w.x.streamingRequest(stream), perBatch, repeats, 5000);
    const streamingKeyFirst = best(() => w.x.streamingRequest(keyFirst), perBatch, repeats, 5000);
    const valid = best(() => w.x.jsonError(body), perBatch, repeats, 5000);
    results[label] = { rewrite, streaming, streamingKeyFirst, valid };
    const mbps = (ms) => size / 1048576 / (ms / 1000);
    rows.push([`model rewrite (scan + new body), ${label}`, f(rewrite, 4), f(mbps(rewrite), 0)]);
    rows.push([`"stream": true check (request path), ${label}`, f(streaming, 4), f(mbps(streaming), 0)]);
    rows.push([`"stream": true check, "stream" the first member, ${label}`, f(streamingKeyFirst, 4), f(mbps(streamingKeyFirst), 0)]);
    rows.push([`full JSON validation (reference), ${label}`, f(valid, 4), f(mbps(valid), 0)]);
  }
  const markdown = table(["operation", "ms/call (best batch)", "MB/s"], rows);
  note("The rewrite scans the whole body (a validating JSON scan) and writes a new one; the result is garbage-collected.");
  note('The "stream" check reads the body from its end: the bench\'s bodies end with "stream" (as clients write them), so it reads');
  note('a few bytes; with "stream" first (or absent) it reads the whole body.');
  return { markdown, results };
}
