// docs/higress.md's handoff steps: the generator command it prints runs, writes the objects the page
// describes, the EnvoyFilter the page quotes, and a WasmPlugin the filter accepts as Higress's controller
// writes it; the generator refuses what it cannot turn into routes, naming the field.
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const yaml = require("js-yaml");
const { ROOT, fencedBlocks, shellCommands } = require("../support/doc_blocks");
const { load } = require("../support/wasm");
const { controllerConfig } = require("../support/higress_controller");
const { handoffObjects } = require("../../../scripts/higress_handoff_lib.cjs");

const w = load();
const page = fs.readFileSync(path.join(ROOT, "docs", "higress.md"), "utf8");
const command = fencedBlocks(page, "sh").flatMap(shellCommands).find((c) => c.startsWith("node scripts/higress-handoff.mjs "));
const quotedEnvoyFilter = yaml.safeLoad(fencedBlocks(page, "yaml").find((b) => b.includes("kind: EnvoyFilter")));

/** The printed command, run from the repository root; only the file it writes goes to a scratch directory. */
function runPrinted() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-handoff-"));
  try {
    const [run, file] = command.split(" > ");
    const out = path.join(dir, file);
    execFileSync("/bin/sh", ["-c", `${run} > '${out}'`], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
    return yaml.safeLoadAll(fs.readFileSync(out, "utf8"));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("node scripts/higress-handoff.mjs, as docs/higress.md prints it", () => {
  const objects = runPrinted();
  const [plugin, envoyFilter, ...ingresses] = objects;

  test("writes the WasmPlugin, the EnvoyFilter and one Ingress per backup", () => {
    expect(objects.map((o) => o.kind)).toEqual(["WasmPlugin", "EnvoyFilter", "Ingress", "Ingress"]);
  });

  test("the EnvoyFilter is the one the page quotes", () => {
    expect(envoyFilter).toEqual(quotedEnvoyFilter);
  });

  test("the WasmPlugin, as the controller writes it, is accepted; its rule (handoff on) applies on the primary's route and every hop's", () => {
    const json = JSON.stringify(controllerConfig(plugin.spec));
    const summary = w.configSummary(json);
    expect(summary.error).toBeUndefined();
    expect(summary.rules[0].policy.handoff).toBe(true);
    for (const route of ["ai-route-gpt-4o.internal", "default/ai-route-gpt-4o-internal-ai-fallback-1", "default/ai-route-gpt-4o-internal-ai-fallback-2"]) {
      expect([route, w.policyFor(json, route, "api.example.com")]).toEqual([route, "rule:0"]);
    }
    // Elsewhere the global policy, which defaultConfigDisable leaves without backups: nothing is done.
    expect(w.policyFor(json, "default/other", "api.example.com")).toBe("global");
    expect(summary.global.backups).toEqual([]);
  });

  test("custom_response redirects a marked answer on the primary's route and the first hop's, not the last hop's", () => {
    const routes = envoyFilter.spec.configPatches.filter((p) => p.applyTo === "HTTP_ROUTE").map((p) => p.match.routeConfiguration.vhost.route.name);
    expect(routes).toEqual(["ai-route-gpt-4o.internal", "default/ai-route-gpt-4o-internal-ai-fallback-1"]);
    const policy = envoyFilter.spec.configPatches[1].patch.value.typed_per_filter_config["envoy.filters.http.custom_response"].value;
    const matcher = policy.custom_response_matcher.matcher_list.matchers[0];
    expect(matcher.predicate.single_predicate.input.typed_config.header_name).toBe("x-ai-fallback-handoff");
    expect(matcher.on_match.action.typed_config.value).toMatchObject({
      max_internal_redirects: 2, use_original_request_uri: true, use_original_request_body: true, only_redirect_upstream_code: false,
      request_headers_to_add: [{ header: { key: "x-higress-fallback-from", value: "ai-route-gpt-4o.internal" } }],
    });
  });

  test("each hop's route: the redirect's header, the hop header from the second hop on, the backup's service, authority and path", () => {
    expect(ingresses.map((i) => i.metadata.annotations)).toEqual([
      {
        "higress.io/destination": "llm-deepseek.internal.dns:443",
        "higress.io/exact-match-header-x-higress-fallback-from": "ai-route-gpt-4o.internal",
        "higress.io/upstream-vhost": "api.deepseek.com",
        "higress.io/rewrite-path": "/v1/chat/completions",
      },
      {
        "higress.io/destination": "llm-qwen.internal.dns:443",
        "higress.io/exact-match-header-x-higress-fallback-from": "ai-route-gpt-4o.internal",
        "higress.io/exact-match-header-x-ai-fallback-hop": "2",
        "higress.io/upstream-vhost": "dashscope.aliyuncs.com",
        "higress.io/rewrite-path": "/compatible-mode/v1/chat/completions",
      },
    ]);
    expect(ingresses.map((i) => [i.spec.rules[0].host, i.spec.rules[0].http.paths[0].path])).toEqual([
      ["api.example.com", "/v1/chat/completions"], ["api.example.com", "/v1/chat/completions"],
    ]);
  });
});

describe("the generator's refusals name the field", () => {
  const options = { route: "r", host: "h", url: "oci://r/p:1" };
  test.each([
    [{ backups: [{ service: "qwen" }] }, options, /^backups\[0\]\.service: "qwen" is not a Higress cluster name/],
    [{ backups: [] }, options, /^backups: required/],
    [{ backups: [{ service: "outbound|443||a.dns" }], _rules_: [] }, options, /^_rules_: one Model API's plugin JSON/],
    [{ backups: [{ service: "outbound|443||a.dns" }], handoff: "dispatch" }, options, /^handoff: "dispatch" here/],
    [{ backups: [{ service: "outbound|443||a.dns" }] }, { host: "h", url: "u" }, /^--route: required/],
  ])("%j %j", (plugin, opts, message) => {
    expect(() => handoffObjects(plugin, opts)).toThrow(message);
  });

  test("a configuration the filter refuses is refused with the filter's message", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-handoff-"));
    try {
      const file = path.join(dir, "plugin.json");
      fs.writeFileSync(file, JSON.stringify({ backups: [{ service: "outbound|443||a.dns" }], firstPacketTimeout: "3s" }));
      let stderr = "";
      try {
        execFileSync("node", ["scripts/higress-handoff.mjs", file, "--route", "r", "--host", "h", "--url", "u"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      } catch (e) {
        stderr = e.stderr.toString();
      }
      expect(stderr).toMatch(/invalid configuration: _rules_\[0\]\.firstPacketTimeout: must be an integer number of milliseconds/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
