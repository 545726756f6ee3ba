// Every command README.md and docs/*.md print in a ```sh block is run by the suite: the cheap ones here, the
// others by the test named beside them, which must still contain what shows it runs that command. The few that
// need what the suite has not (a Kubernetes cluster) are allowed only in the pages that say so.
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { ROOT, userDocuments, fencedBlocks, shellCommands } = require("../support/doc_blocks");

const KUBERNETES_PAGES = ["docs/higress.md", "docs/istio.md"];
const NOT_RUN_ON_KUBERNETES = "needs a Kubernetes cluster with Higress or Istio; the page says which steps are tested";
const PRETEST = ["package.json", '"pretest": "npm run setup -- --test-tools && npm run build"'];

// What each command is, and what runs it: [file, text the file must contain], or `here` (run below).
const COMMANDS = [
  { match: /^npm ci$/, notRun: "installs the locked dependencies (package-lock.json) the suite itself runs with" },
  { match: /^npm test$/, runBy: [["package.json", '"test": "jest --runInBand"']] },
  { match: /^npm run setup$/, runBy: [PRETEST] },
  { match: /^npm run build$/, runBy: [PRETEST] },
  { match: /^npm run demo$/, runBy: [["package.json", "node envoy/demo.mjs"], ["tests/e2e/product/demo.test.js", '"envoy", "demo.mjs"']] },
  { match: /^\.venv\/bin\/envoy -c envoy\.yaml$/, only: ["README.md"], runBy: [["tests/e2e/product/readme_config.test.js", "startEnvoy({ bootstrap: bootstrapFor })"], ["tests/e2e/support/envoy.js", '"-c", configPath']] },
  { match: /^curl -sS -i http:\/\/127\.0\.0\.1:10000\//, only: ["README.md"], runBy: [["tests/e2e/product/readme_config.test.js", "readmeCurl(README)"]] },
  { match: /^node scripts\/streamed-config\.mjs envoy\/streamed\/plugin\.json envoy\/streamed\/clusters\.json > [\w.-]+\.json$/, here: true, runBy: [["tests/e2e/product/example.test.js", '"--mode", "validate", "-c"']] },
  { match: /^\.venv\/bin\/envoy -c envoy\.json$/, only: ["docs/streamed-mode.md"], runBy: [["tests/e2e/product/example.test.js", "the streamed example (envoy/streamed/) generates a bootstrap Envoy accepts"]] },
  { match: /^npm run package$/, runBy: [["tests/e2e/product/oci_registry.test.js", 'expect(scripts.package).toBe("npm run build && node scripts/package.mjs")'], ["tests/e2e/product/oci_registry.test.js", 'runScript("package.mjs"']] },
  { match: /^npm run push -- registry\.example\.com\/plugins\/ai-fallback$/, runBy: [["tests/e2e/product/oci_registry.test.js", 'expect(scripts.push).toBe("node scripts/push.mjs")'], ["tests/e2e/product/oci_registry.test.js", 'runScript("push.mjs", [`${registry.host}/plugins/ai-fallback`']] },
  { match: /^node scripts\/higress-handoff\.mjs examples\/higress-handoff\/plugin\.json .* > handoff\.yaml$/, only: ["docs/higress.md"], runBy: [["tests/unit/docs/higress_handoff.test.js", "node scripts/higress-handoff.mjs, as docs/higress.md prints it"]] },
  { match: /^kubectl /, only: KUBERNETES_PAGES, notRun: NOT_RUN_ON_KUBERNETES },
  { match: /^curl -s (-X POST )?'http:\/\/127\.0\.0\.1:15000\//, only: KUBERNETES_PAGES, notRun: NOT_RUN_ON_KUBERNETES },
];

const printed = userDocuments().flatMap(({ file, text }) =>
  fencedBlocks(text, "sh").flatMap(shellCommands).map((command) => ({ file, command })));

describe("the commands README.md and docs/ print", () => {
  test("there are some (README.md and docs/ are read)", () => {
    expect(printed.filter((p) => p.file === "README.md").length).toBeGreaterThan(5);
    expect(new Set(printed.map((p) => p.file)).size).toBeGreaterThan(3);
  });

  test("no shell block hides under another name (```bash, ```shell, ```console)", () => {
    for (const { file, text } of userDocuments()) {
      for (const lang of ["bash", "shell", "console", "zsh"]) expect([file, lang, fencedBlocks(text, lang).length]).toEqual([file, lang, 0]);
    }
  });

  test.each(printed.map((p) => [p.file, p.command]))("%s: %s is run by the suite, or allowed in that page only", (file, command) => {
    const entry = COMMANDS.find((c) => c.match.test(command));
    expect([command, entry ? "known" : "not in the list of commands the suite runs"]).toEqual([command, "known"]);
    if (entry.only) expect(entry.only).toContain(file);
    for (const [runner, text] of entry.runBy ?? []) {
      expect([runner, fs.readFileSync(path.join(ROOT, runner), "utf8").includes(text)]).toEqual([runner, true]);
    }
  });

  test("each entry of the list is still printed somewhere (no stale entries)", () => {
    for (const entry of COMMANDS) expect([String(entry.match), printed.some((p) => entry.match.test(p.command))]).toEqual([String(entry.match), true]);
  });

  test("the streamed generator's commands work as printed: the file they write is the bootstrap alone", () => {
    const commands = printed.filter((p) => COMMANDS.find((c) => c.match.test(p.command))?.here);
    expect(commands.length).toBeGreaterThan(0);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-doc-commands-"));
    try {
      for (const { command } of commands) {
        // As printed, from the repository root; only the file it writes goes to a scratch directory.
        const out = path.join(dir, command.split("> ")[1]);
        execFileSync("/bin/sh", ["-c", `${command.split("> ")[0]}> '${out}'`], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
        const bootstrap = JSON.parse(fs.readFileSync(out, "utf8"));
        expect(bootstrap.static_resources.clusters.length).toBeGreaterThan(1);
        const filters = JSON.stringify(bootstrap.static_resources.clusters.map((c) => c.typed_extension_protocol_options ?? null));
        expect(filters.includes('"root_id":"ai-fallback-upstream"')).toBe(true);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("every `npm run <script>` the documents mention is a script of package.json", () => {
    const { scripts } = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    for (const { file, text } of userDocuments()) {
      for (const m of text.matchAll(/npm run ([\w-]+(?::[\w-]+)*)/g)) expect([file, m[1], m[1] in scripts]).toEqual([file, m[1], true]);
    }
  });

  test("every `node <file>` the documents mention exists", () => {
    for (const { file, text } of userDocuments()) {
      for (const m of text.matchAll(/\bnode ((?:scripts|bench|envoy|examples|tests)\/[\w./-]+\.m?[jc]?js)/g)) {
        expect([file, m[1], fs.existsSync(path.join(ROOT, m[1]))]).toEqual([file, m[1], true]);
      }
    }
  });
});
