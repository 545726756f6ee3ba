// One vocabulary in both modes (docs/observability.md): a fallback's log line, its counters and the
// access log's %FILTER_STATE(wasm.ai_fallback.outcome:PLAIN)% are asserted from one shared expectation,
// in the dispatch mode (one filter) and in the streamed mode (generated bootstrap, upstream filters).
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { startEnvoy, counter } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { streamedBootstrapFor } = require("../support/streamed_fixtures");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });

const PLUGIN = { backups: [{ service: "backup-a", model: "backup-model-a" }, { service: "backup-b" }], triggerStatuses: ["5xx", 429] };
const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const FORMAT = "[%REQ(X-REQUEST-ID)%] outcome=%FILTER_STATE(wasm.ai_fallback.outcome:PLAIN)%\n";

/** What an operator reads for each case, in both modes: the outcome text, and the counters that grow by one. */
const CASES = [
  {
    name: "the primary answers 503, the first backup serves",
    primary: { status: 503 },
    backupA: {},
    outcome: "served by backup-a (model backup-model-a); trigger status=503; attempts primary;result=503, backup-a;model=backup-model-a;result=200",
    counters: ["ai_fallback.started", "ai_fallback.served_by_backup", "ai_fallback.backup_calls", "ai_fallback.trigger.status",
      "ai_fallback.backup.backup-a.answered"],
  },
  {
    name: "neither the primary nor the first backup answers (each resets the connection), the second backup serves",
    primary: { reset: true },
    backupA: { reset: true },
    outcome: "served by backup-b (model pass-through); trigger upstream_failure; attempts primary;result=no_response, " +
      "backup-a;model=backup-model-a;result=no_response, backup-b;model=pass-through;result=200",
    counters: ["ai_fallback.started", "ai_fallback.served_by_backup", "ai_fallback.trigger.upstream_failure",
      "ai_fallback.backup.backup-a.failed", "ai_fallback.backup.backup-b.answered"],
  },
];

function accessLog(file) {
  return { access_log: [{
    name: "envoy.access_loggers.file",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
      path: file,
      log_format: { text_format_source: { inline_string: FORMAT } },
    },
  }] };
}

/** The streamed bootstrap with the access log on its connection manager. */
function streamedWithAccessLog(file) {
  const make = streamedBootstrapFor(m, m.primary.port, PLUGIN);
  return (ports) => {
    const boot = make(ports);
    Object.assign(boot.static_resources.listeners[0].filter_chains[0].filters[0].typed_config, accessLog(file));
    return boot;
  };
}

const MODES = {
  dispatch: (file) => ({ pluginConfig: PLUGIN, clusters: { primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port },
    connectionManager: accessLog(file) }),
  streamed: (file) => ({ bootstrap: streamedWithAccessLog(file) }),
};

async function lineFor(file, id) {
  for (let i = 0; i < 100; i++) {
    const line = (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "").split("\n").find((l) => l.startsWith(`[${id}]`));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
}

describe.each(Object.keys(MODES))("one vocabulary: %s mode", (mode) => {
  let envoy, dir, file;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-access-"));
    file = path.join(dir, "access.log");
    // Envoy writes an access log file every 10 s by default.
    envoy = await startEnvoy({ ...MODES[mode](file), extraArgs: ["--file-flush-interval-msec", "50"] });
  }, 30000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each(CASES.map((c) => [c.name, c]))("%s: the log line, the counters and the access log say it alike", async (_, c) => {
    m.primary.behave(c.primary);
    m.backupA.behave(c.backupA);
    const before = await envoy.stats();
    const res = await request(envoy.port, { body: CHAT, timeoutMs: 10000 });
    expect(res.status).toBe(200);
    const id = m.backupA.requests[0].headers["x-request-id"];
    expect(id).toBeTruthy();
    const logs = await envoy.logsWhen(new RegExp(`x-request-id=${id}`));
    expect(logs).toContain(`[info][wasm]`);
    expect(logs).toContain(`fallback: ${c.outcome} x-request-id=${id}`);
    const after = await envoy.stats();
    // The dispatch mode defines a backup's own counters at its first fallback: absent before, they stood at 0.
    const was = (name) => (before.includes(`wasmcustom.${name}:`) ? counter(before, `wasmcustom.${name}`) : 0);
    for (const name of c.counters) expect([name, counter(after, `wasmcustom.${name}`) - was(name)]).toEqual([name, 1]);
    expect(await lineFor(file, id)).toBe(`[${id}] outcome=${c.outcome}`);
  });

  test("[pass-through] a request the primary answers leaves no outcome in the access log", async () => {
    const res = await request(envoy.port, { body: CHAT, headers: { "x-request-id": "happy-1" } });
    expect(res.status).toBe(200);
    const id = m.primary.requests[0].headers["x-request-id"];
    expect(await lineFor(file, id)).toBe(`[${id}] outcome=-`);
  });
});
