// Runs jest as a child process and reads its JSON report: the e2e test list, one test alone, or a
// set of test files. Shared by the noop check (check_noop.mjs) and the mutation check (mutate.mjs).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A pattern that matches exactly this test's full name (jest's -t takes a regular expression). */
export function exactName(fullName) {
  return `^${fullName.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`;
}

/**
 * Runs jest in `cwd` with `args` (plus --json) and resolves with
 * { code, report, tests: [{ file, fullName, status, failure }] }; `env` is added to the environment.
 * `report` is null when jest wrote none (it could not start); `output` then says why.
 */
export async function runJest(cwd, args, { env = {}, timeoutMs = 20 * 60 * 1000 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "ai-fallback-jest-"));
  const out = join(dir, "report.json");
  try {
    const { code, output } = await new Promise((resolve) => {
      const child = spawn(process.execPath, [join(cwd, "node_modules", "jest", "bin", "jest.js"), ...args, "--json", `--outputFile=${out}`],
        { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
      let text = "";
      child.stdout.on("data", (d) => { text += d; });
      child.stderr.on("data", (d) => { text += d; });
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("close", (c, signal) => {
        clearTimeout(timer);
        resolve({ code: c ?? signal, output: text });
      });
    });
    let report = null;
    try {
      report = JSON.parse(readFileSync(out, "utf8"));
    } catch {
      // no report: jest did not get as far as running tests
    }
    const tests = [];
    for (const file of report?.testResults ?? []) {
      for (const t of file.assertionResults) {
        tests.push({ file: file.name, fullName: t.fullName, status: t.status, failure: firstLine(t.failureMessages) });
      }
      // A file whose hooks failed before any test ran reports no tests but a message.
      if (file.assertionResults.length === 0 && file.message) {
        tests.push({ file: file.name, fullName: "(file)", status: "failed", failure: firstLine([file.message]) });
      }
    }
    return { code, report, tests, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function firstLine(messages) {
  const text = (messages ?? []).join("\n").replace(/\u001b\[[0-9;]*m/g, "");
  const line = text.split("\n").map((l) => l.trim()).find((l) => l.length > 0 && !l.startsWith("at "));
  return line ?? "";
}

/** Every e2e test, without running any: [{ file, fullName }]. Jest lists them as skipped. */
export async function listE2eTests(cwd) {
  const { tests, output, report } = await runJest(cwd, ["--selectProjects", "e2e", "-t", "^no test is named this ~~ listing only$"]);
  if (!report) throw new Error(`jest could not list the e2e tests:\n${output.slice(-3000)}`);
  const names = new Map();
  for (const t of tests) {
    const key = `${t.file}\u0000${t.fullName}`;
    if (names.has(key)) throw new Error(`two e2e tests share the name "${t.fullName}" in ${t.file}: names must be unique`);
    names.set(key, t);
  }
  return tests.map(({ file, fullName }) => ({ file, fullName }));
}

/**
 * Runs one e2e test alone (its file's hooks included); resolves with { status, failure, loaded }:
 * `loaded` says whether it started an Envoy with the module under test (tests/e2e/support/envoy.js tells).
 */
export async function runOneTest(cwd, test, env = {}) {
  const dir = mkdtempSync(join(tmpdir(), "ai-fallback-loads-"));
  const loadLog = join(dir, "loads");
  try {
    const { tests, output } = await runJest(cwd, ["--selectProjects", "e2e", test.file, "-t", exactName(test.fullName)],
      { env: { ...env, AI_FALLBACK_LOAD_LOG: loadLog } });
    let loaded = false;
    try {
      loaded = readFileSync(loadLog, "utf8").length > 0;
    } catch {
      // no Envoy with the module was started
    }
    const ran = tests.filter((t) => t.status === "passed" || t.status === "failed");
    const hookFailure = tests.find((t) => t.fullName === "(file)");
    if (hookFailure) return { status: "failed", failure: hookFailure.failure, loaded };
    if (ran.length !== 1) {
      return { status: "error", failure: `expected this one test to run, ${ran.length} ran\n${output.slice(-1500)}`, loaded };
    }
    return { status: ran[0].status, failure: ran[0].failure, loaded };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `items` through `worker` with at most `jobs` at once, in order of completion. */
export async function pool(items, jobs, worker) {
  const results = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await worker(items[i], i);
    }
  });
  await Promise.all(lanes);
  return results;
}
