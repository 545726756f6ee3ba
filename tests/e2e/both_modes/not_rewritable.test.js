// A backup with a model override is never called with a body its model could not be written into
// (docs/security.md): a strict primary refuses such a body (a NaN member, trailing
// bytes) with a 400, which triggers; a lenient backup would serve the client's own model on the
// backup's account. The override backup is skipped (result not_rewritable), the chain goes on, and a
// pass-through backup still gets the body. Both modes: in the streamed mode the attempt still goes out
// (Envoy's router offers an upstream filter no way to skip it), with an empty body, and its answer is
// replaced.
const { startEnvoy, counter } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { streamedBootstrapFor } = require("../support/streamed_fixtures");

// JSON.parse refuses both; Python's json.loads takes the first (NaN) as a float.
const NAN_MEMBER = '{"model":"gpt-4o","temperature":NaN,"messages":[{"role":"user","content":"hi"}]}';
const TRAILING_BYTES = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]} {"x":1}';
const BODIES = [["a NaN member", NAN_MEMBER], ["trailing bytes", TRAILING_BYTES]];

const OVERRIDE_THEN_PASS_THROUGH = { backups: [{ service: "backup-a", model: "override-a" }, { service: "backup-b" }] };
const PASS_THROUGH_THEN_OVERRIDE = { backups: [{ service: "backup-b" }, { service: "backup-a", model: "override-a" }] };

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
const clusters = () => ({ primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port });

beforeEach(() => m.primary.behave({ status: 400, json: { error: { message: "invalid JSON" } } }));

/** The override backup got nothing of the client's body: no call (dispatch), or an empty body (streamed). */
const nothingCalled = () => expect(m.backupA.requests).toHaveLength(0);
const onlyEmptyBodies = () => expect(m.backupA.requests.map((r) => r.body.length)).toEqual(m.backupA.requests.map(() => 0));

describe.each([
  ["dispatch mode", (plugin) => startEnvoy({ pluginConfig: plugin, clusters: clusters() }), nothingCalled],
  ["streamed mode", (plugin) => startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, plugin) }), onlyEmptyBodies],
])("%s: a body whose model cannot be rewritten", (mode, start, overrideBackupGotNothing) => {
  let envoy;
  let overrideLast;
  beforeAll(async () => {
    [envoy, overrideLast] = await Promise.all([start(OVERRIDE_THEN_PASS_THROUGH), start(PASS_THROUGH_THEN_OVERRIDE)]);
  }, 30000);

  test.each(BODIES)("(%s) never reaches the override backup; the next, pass-through backup gets it as sent", async (_, body) => {
    const before = counter(await envoy.stats(), "wasmcustom.ai_fallback.not_rewritable");
    const res = await request(envoy.port, { headers: { "content-type": "application/json" }, body });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-b");
    overrideBackupGotNothing();
    expect(m.backupB.requests).toHaveLength(1);
    expect(m.backupB.requests[0].body.toString()).toBe(body);
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=400, backup-a;model=override-a;result=not_rewritable, backup-b;model=pass-through;result=200");
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-b");
    expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.not_rewritable")).toBe(before + 1);
    expect(envoy.logs()).toMatch(/backup-a(:| is not called,) .*the chain goes on/);
  });

  test("a JSON object without a top-level model is not sent to the override backup either", async () => {
    const body = JSON.stringify({ messages: [{ role: "user", content: "hi", model: "gpt-4o" }] });
    const res = await request(envoy.port, { body });
    expect(res.status).toBe(200);
    overrideBackupGotNothing();
    expect(res.headers["x-ai-fallback-attempts"]).toMatch(/backup-a;model=override-a;result=not_rewritable, backup-b;model=pass-through;result=200$/);
  });

  test("a rewritable body still reaches the override backup with its model rewritten", async () => {
    const res = await request(envoy.port, { body: { model: "gpt-4o", messages: [] } });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(JSON.parse(m.backupA.requests[0].body.toString()).model).toBe("override-a");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=400, backup-a;model=override-a;result=200");
  });

  test("the override backup last: the client gets an error with the report, the override backup nothing", async () => {
    m.backupB.behave({ status: 503, json: { error: { message: "b down" } } });
    const res = await request(overrideLast.port, { headers: { "content-type": "application/json" }, body: NAN_MEMBER });
    expect(res.status).toBeGreaterThanOrEqual(400);
    overrideBackupGotNothing();
    expect(m.backupB.requests).toHaveLength(1);
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=400, backup-b;model=pass-through;result=503, backup-a;model=override-a;result=not_rewritable");
  });
});
