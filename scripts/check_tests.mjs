// Runs every end-to-end test alone, in a fresh jest process (its file's hooks included), so that no
// result depends on the tests before it.
//
//   node scripts/check_tests.mjs --against noop     (npm run check:noop)
//     Every Envoy loads build/noop.wasm, a module that does nothing. Every test must fail, except
//     those whose name carries PASS_THROUGH_TAG: they check that the filter leaves something alone,
//     so they must pass without it too (else they test more than pass-through and need no tag).
//     A test that starts no Envoy with the module under test (packaging tools) is out of scope.
//   node scripts/check_tests.mjs --against filter   (npm run check:isolated)
//     The real filter: every test must pass on its own.
//
// Options: --jobs N (tests at once, default 1: timing tests want a quiet machine), --grep TEXT (only
// tests whose full name contains TEXT). Exit code 1 when any test is not as expected.
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { listE2eTests, pool, runOneTest } from "./check/jest.mjs";

export const PASS_THROUGH_TAG = "[pass-through]";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/**
 * Whether a test's result against `against` is as it must be; `loaded` = it started an Envoy with the
 * module under test. Against the noop, a test that never does (packaging tools, say) checks nothing
 * of the filter in Envoy and is out of scope whatever its result.
 */
export function verdict({ fullName, status, loaded }, against) {
  if (status !== "passed" && status !== "failed") return { ok: false, expected: "a result" };
  if (against === "filter") return { ok: status === "passed", expected: "passed" };
  const tagged = fullName.includes(PASS_THROUGH_TAG);
  if (!tagged && status === "passed" && !loaded) return { ok: true, expected: "failed", outOfScope: true };
  const expected = tagged ? "passed" : "failed";
  return { ok: status === expected, expected };
}

/**
 * Runs every e2e test (or those whose name contains `grep`) alone against `against` ("noop" or
 * "filter"), printing one line per test. Resolves with { results, unexpected }.
 */
export async function checkTests({ cwd = root, against, jobs = 1, grep = "", log = console.log }) {
  const env = against === "noop" ? { AI_FALLBACK_WASM: join(cwd, "build", "noop.wasm") } : {};
  if (against === "noop" && !existsSync(env.AI_FALLBACK_WASM)) throw new Error(`${env.AI_FALLBACK_WASM} not found: run \`npm run build\` first`);
  const tests = (await listE2eTests(cwd)).filter((t) => t.fullName.includes(grep));
  log(`${tests.length} e2e tests, each alone, against ${against === "noop" ? "build/noop.wasm (the filter does nothing)" : "the filter"}`);
  const started = Date.now();
  const results = await pool(tests, jobs, async (test) => {
    const t0 = Date.now();
    const { status, failure, loaded } = await runOneTest(cwd, test, env);
    const { ok, expected, outOfScope = false } = verdict({ fullName: test.fullName, status, loaded }, against);
    const where = relative(cwd, test.file);
    log(`${outOfScope ? "n/a " : ok ? "ok  " : "BAD "} ${status.padEnd(6)} ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s  ${where} :: ${test.fullName}` +
      (status === "failed" && failure ? `\n        ${failure.slice(0, 200)}` : "") +
      (!ok ? `\n        expected ${expected}` : ""));
    return { ...test, status, failure, expected, ok, outOfScope };
  });
  const unexpected = results.filter((r) => !r.ok);
  const tagged = results.filter((r) => r.fullName.includes(PASS_THROUGH_TAG)).length;
  const outside = results.filter((r) => r.outOfScope);
  log(`\n${results.length} tests (${tagged} tagged ${PASS_THROUGH_TAG}) in ${Math.round((Date.now() - started) / 1000)} s: ` +
    `${results.length - unexpected.length} as expected, ${unexpected.length} not` +
    (outside.length ? `; ${outside.length} start no Envoy with the module under test (n/a)` : ""));
  for (const r of unexpected) log(`  not as expected (${r.status}, wanted ${r.expected}): ${relative(cwd, r.file)} :: ${r.fullName}`);
  return { results, unexpected };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const against = option("--against", "noop");
  if (against !== "noop" && against !== "filter") {
    console.error("--against must be noop or filter");
    process.exit(2);
  }
  checkTests({ against, jobs: Number(option("--jobs", "1")), grep: option("--grep", "") })
    .then(({ unexpected }) => { process.exitCode = unexpected.length ? 1 : 0; })
    .catch((err) => { console.error(err); process.exitCode = 2; });
}
