// npm run mutate: the suite's own mutation check. Each mutation of scripts/check/mutations.mjs (a
// small source edit that breaks one promise of README.md or docs/) is applied to a scratch copy of the project,
// built, and run against its tests; a mutation no test notices is a survivor.
//
// For each mutation: the edit must apply exactly once (else: error, the list needs updating for the
// changed source), the copy must build (else: error), then the mutation's own test files run; if
// they all pass, the whole suite runs. Killed = some test failed (the failing tests are listed).
// Before any mutation the listed test files run unmutated in the scratch copy: they must be green.
//
//   node scripts/mutate.mjs [--only TEXT] [--keep]
//     --only TEXT   only mutations whose name contains TEXT
//     --keep        leave the scratch copy in place (its path is printed)
// Exit code 0 only when every mutation was killed.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runJest } from "./check/jest.mjs";
import { MUTATIONS } from "./check/mutations.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function option(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : null;
}

/** A copy of the project's tracked files, sharing node_modules and .venv with the original. */
function makeScratch() {
  const dir = mkdtempSync(join(tmpdir(), "ai-fallback-mutate-"));
  const files = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: root, encoding: "utf8" });
  if (files.status !== 0) throw new Error(`git ls-files failed: ${files.stderr}`);
  for (const file of files.stdout.split("\0").filter(Boolean)) {
    if (!existsSync(join(root, file))) continue; // deleted in the work tree
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(root, file), join(dir, file));
  }
  for (const shared of ["node_modules", ".venv"]) {
    if (!existsSync(join(root, shared))) throw new Error(`${shared}/ is missing: run \`npm ci\` and \`npm run setup\` first`);
    symlinkSync(join(root, shared), join(dir, shared));
  }
  return dir;
}

/**
 * Builds everything `npm run build` builds in `dir` (the filter, the unit-test module, the noop and
 * any probe modules tests load); null when it built, else the build's output.
 */
function build(dir) {
  const r = spawnSync("npm", ["run", "build", "--silent"], { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) return `${r.stdout}${r.stderr}`.trim().split("\n").slice(-15).join("\n");
  return null;
}

const failedTests = (run) => run.tests.filter((t) => t.status === "failed");

function describeFailures(failed) {
  return failed.slice(0, 6).map((t) => `      ${t.file.split("/tests/")[1] ?? t.file} :: ${t.fullName}\n        ${t.failure.slice(0, 160)}`).join("\n") +
    (failed.length > 6 ? `\n      ... and ${failed.length - 6} more` : "");
}

/** Applies `m` in `dir`, builds, runs its tests; resolves with { outcome, detail }. Restores the file. */
async function tryMutation(dir, m) {
  const path = join(dir, m.file);
  const original = readFileSync(path, "utf8");
  const count = original.split(m.find).length - 1;
  if (count !== 1) {
    return { outcome: "error", detail: `the edit no longer applies: its text occurs ${count} times in ${m.file} (the source changed; rewrite this mutation)` };
  }
  writeFileSync(path, original.replace(m.find, m.replace));
  try {
    const buildError = build(dir);
    if (buildError) return { outcome: "error", detail: `the mutated source does not build:\n${buildError}` };
    const first = await runJest(dir, ["--runInBand", ...m.tests]);
    if (!first.report) return { outcome: "error", detail: `jest did not run:\n${first.output.slice(-1500)}` };
    let failed = failedTests(first);
    if (failed.length) return { outcome: "killed", detail: `by ${failed.length} test(s) of its own files:\n${describeFailures(failed)}` };
    const whole = await runJest(dir, ["--runInBand"]);
    if (!whole.report) return { outcome: "error", detail: `jest did not run:\n${whole.output.slice(-1500)}` };
    failed = failedTests(whole);
    if (failed.length) return { outcome: "killed", detail: `only by tests outside its list (add them to its tests):\n${describeFailures(failed)}` };
    return { outcome: "survived", detail: `all ${whole.tests.length} tests pass with it` };
  } finally {
    writeFileSync(path, original);
  }
}

async function main() {
  const only = option("--only");
  const mutations = MUTATIONS.filter((m) => !only || m.name.includes(only));
  if (mutations.length === 0) throw new Error(`no mutation's name contains "${only}"`);
  const dir = makeScratch();
  const started = Date.now();
  try {
    console.log(`scratch copy: ${dir}`);
    const baselineError = build(dir);
    if (baselineError) throw new Error(`the unmutated copy does not build:\n${baselineError}`);
    const files = [...new Set(mutations.flatMap((m) => m.tests))];
    const baseline = await runJest(dir, ["--runInBand", ...files]);
    const red = failedTests(baseline);
    if (!baseline.report || red.length) {
      throw new Error(`the unmutated tests are not green; no mutation can be judged:\n${baseline.report ? describeFailures(red) : baseline.output.slice(-2000)}`);
    }
    console.log(`baseline: ${baseline.tests.length} tests of ${files.length} files pass unmutated\n`);
    const results = [];
    for (const [i, m] of mutations.entries()) {
      const t0 = Date.now();
      const { outcome, detail } = await tryMutation(dir, m);
      results.push({ m, outcome });
      console.log(`${String(i + 1).padStart(2)}. ${outcome.toUpperCase().padEnd(8)} ${m.name} (${m.file}, ${Math.round((Date.now() - t0) / 1000)} s)\n    ${detail}`);
    }
    const count = (o) => results.filter((r) => r.outcome === o).length;
    console.log(`\n${results.length} mutations in ${Math.round((Date.now() - started) / 1000)} s: ` +
      `${count("killed")} killed, ${count("survived")} survived, ${count("error")} errors`);
    for (const r of results.filter((x) => x.outcome !== "killed")) console.log(`  ${r.outcome}: ${r.m.name}`);
    process.exitCode = count("killed") === results.length ? 0 : 1;
  } finally {
    if (process.argv.includes("--keep")) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`mutate: ${err.message}`);
  process.exitCode = 2;
});
